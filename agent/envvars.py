"""Environment variables in config files, substituted as Telegraf does it.

Telegraf (1.37, its default "non-strict" mode) first removes comments from the raw TOML
text, then replaces variables anywhere in what is left, before the text is parsed:

| written            | becomes                                                          |
| ------------------ | ---------------------------------------------------------------- |
| `$VAR`, `${VAR}`   | the value of VAR; left as written if VAR is not set              |
| `${VAR:-default}`  | VAR if set and not empty, else `default`                         |
| `${VAR-default}`   | VAR if set (even empty), else `default`                          |
| `${VAR:+other}`    | `other` if VAR is set and not empty, else nothing                |
| `${VAR+other}`     | `other` if VAR is set, else nothing                              |
| `${VAR:?message}`  | VAR if set and not empty, else a config error quoting `message`  |
| `${VAR?message}`   | VAR if set, else a config error quoting `message`                |
| `$$`               | a literal `$`                                                    |

Names are `[A-Za-z_][A-Za-z0-9_]*`; defaults may themselves hold variables. Anything else
after a `$` (`${1}`, a lone `$`) is left alone, so regular expressions in values survive.

Values taken from the environment never become TOML of their own. Inside a quoted string
a value becomes exactly that string's content, whatever characters it holds: escaped in a
"basic" string, and a 'literal' string that cannot hold it is written as a basic one. Outside
quotes (`percpu = ${PERCPU}`) it must be one TOML value (a number, a boolean, an array…),
which is written back as that one value; anything else is an error naming the variable.

Each value inserted is recorded (agent.secret_values), so that no message shows it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from agent.errors import ConfigError
from agent.secret_values import record_environment_value
from agent.toml_text import (
    STRING,
    escape_basic,
    strip_comments,
    tomllib,
    too_deep,
    write_value,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":+", ":?", "-", "+", "?")
# Strings, and the `${…}` references outside them: a default may hold quotes,
# `${HOST:-"box"}`, which open no string.
# (A run of other characters first, taken whole: see toml_text.)
_SEGMENT = re.compile(rf"[^$\"']+|(?P<reference>\$\{{[^{{}}\n]*\}})|{STRING.pattern}", re.DOTALL)
# What a 'literal' string cannot hold: its quote, and control characters but the tab.
_NOT_LITERAL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f']")


class _Refused(Exception):
    """A reference that cannot be substituted; raised inside substitution, turned into a
    ConfigError naming the variable (never its value) by `substitute()`."""

    def __init__(self, position: int, name: str, problem: str) -> None:
        super().__init__(name)
        self.position = position
        self.name = name
        self.problem = problem


class _NeedsEscapes(Exception):
    """A value a 'literal' string cannot hold."""


def substitute(text: str, source: str | Path, environ: Mapping[str, str] | None = None) -> str:
    """`text` of config file `source` with comments removed and variables replaced.

    Raises ConfigError (naming file, line and variable, never a value) for a
    `${VAR:?message}` or `${VAR?message}` whose variable is missing, and for a value
    outside quotes that is not one TOML value.
    """
    uncommented = strip_comments(text)
    try:
        return _Substitution(uncommented, os.environ if environ is None else environ).run()
    except _Refused as refused:
        line = uncommented.count("\n", 0, refused.position) + 1
        raise ConfigError(
            f"{source}:{line}: environment variable {refused.name} {refused.problem}"
        ) from None


class _Placement:
    """Where references stand, which decides how what they become is written: the config's
    own text (around references, and their defaults) and values from the environment."""

    def text(self, written: str) -> str:
        return written

    def value(self, name: str, value: str, position: int) -> str:
        raise NotImplementedError


class _OutsideStrings(_Placement):
    def value(self, name: str, value: str, position: int) -> str:
        parsed: dict[str, object] = {}
        if too_deep(value) is None:
            with contextlib.suppress(tomllib.TOMLDecodeError):
                parsed = tomllib.loads(f"v = {value}")
        if list(parsed) != ["v"]:
            problem = (
                f"is not one TOML value (outside quotes it must be a number, a boolean, an "
                f'array, …; write "${{{name}}}" for a string)'
            )
            raise _Refused(position, name, problem)
        if isinstance(parsed["v"], str):
            record_environment_value(name, parsed["v"])
        return write_value(parsed["v"])


class _InBasicString(_Placement):
    def value(self, name: str, value: str, position: int) -> str:
        return escape_basic(value)


class _InLiteralString(_Placement):
    def value(self, name: str, value: str, position: int) -> str:
        if _NOT_LITERAL.search(value):
            raise _NeedsEscapes
        return value


class _LiteralAsBasic(_Placement):
    """A 'literal' string written again as a "basic" one, so that it can hold the value."""

    def __init__(self, multi_line: bool) -> None:
        self.multi_line = multi_line

    def text(self, written: str) -> str:
        return escape_basic(written, keep_line_breaks=self.multi_line)

    def value(self, name: str, value: str, position: int) -> str:
        return escape_basic(value)


class _Substitution:
    """One left-to-right pass over a text, replacing `$…` references."""

    def __init__(self, text: str, environ: Mapping[str, str]) -> None:
        self.text = text
        self.environ = environ

    def run(self) -> str:
        """The whole text: the parts outside strings, and each string."""
        out: list[str] = []
        position = 0
        for match in _SEGMENT.finditer(self.text):
            if match.lastgroup in (None, "reference"):
                continue
            out.append(self.part(position, match.start(), _OutsideStrings()))
            out.append(self.string(match))
            position = match.end()
        out.append(self.part(position, len(self.text), _OutsideStrings()))
        return "".join(out)

    def string(self, match: re.Match[str]) -> str:
        token, kind = match.group(), match.lastgroup or ""
        if "$" not in token:
            return token
        quote = token[:3] if kind.startswith("multi") else token[0]
        closed = len(token) >= 2 * len(quote) and token.endswith(quote)
        start, end = match.start() + len(quote), match.end() - len(quote) * closed
        if kind in ("basic", "multi_basic"):
            return quote + self.part(start, end, _InBasicString()) + quote * closed
        try:
            return quote + self.part(start, end, _InLiteralString()) + quote * closed
        except _NeedsEscapes:
            basic = '"' * len(quote)
            inside = self.part(start, end, _LiteralAsBasic(multi_line=len(quote) == 3))
            return basic + inside + basic * closed

    def part(self, start: int, end: int, placement: _Placement) -> str:
        text = self.text
        out: list[str] = []
        position = start
        while position < end:
            dollar = text.find("$", position, end)
            if dollar == -1:
                out.append(placement.text(text[position:end]))
                break
            out.append(placement.text(text[position:dollar]))
            replacement, position = self.reference(dollar, end, placement)
            out.append(replacement)
        return "".join(out)

    def reference(self, dollar: int, end: int, placement: _Placement) -> tuple[str, int]:
        """What the reference starting at `dollar` becomes, and where the text goes on."""
        text = self.text
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            return placement.text("$"), dollar + 2
        if following == "{":
            return self.braced(dollar, end, placement)
        name = _NAME.match(text, dollar + 1, end)
        if name is None:
            return placement.text("$"), dollar + 1
        value = self.environ.get(name.group())
        if value is None:
            return placement.text(text[dollar : name.end()]), name.end()
        return self.inserted(name.group(), value, dollar, placement), name.end()

    def braced(self, dollar: int, end: int, placement: _Placement) -> tuple[str, int]:
        text = self.text
        closing = _closing_brace(text, dollar, end)
        name = _NAME.match(text, dollar + 2, end)
        if closing == -1 or name is None:
            return placement.text("$"), dollar + 1
        after = closing + 1
        operator = next((op for op in _OPERATORS if text.startswith(op, name.end())), "")
        if not operator and name.end() != closing:
            return placement.text(text[dollar:after]), after  # not a reference: keep it
        variable = name.group()
        argument = (name.end() + len(operator), closing)
        value = self.environ.get(variable)
        if not operator:
            if value is None:
                return placement.text(text[dollar:after]), after
            return self.inserted(variable, value, dollar, placement), after
        if operator in (":-", "-"):
            absent = value is None or (operator == ":-" and value == "")
            if absent:
                return self.part(*argument, placement), after
            return self.inserted(variable, value or "", dollar, placement), after
        if operator in (":+", "+"):
            present = value is not None and (operator == "+" or value != "")
            return (self.part(*argument, placement) if present else ""), after
        if value is None or (operator == ":?" and value == ""):
            message = text[argument[0] : argument[1]].strip()
            problem = ("is not set" if value is None else "is empty") + (
                f": {message}" if message else ""
            )
            raise _Refused(dollar, variable, problem)
        return self.inserted(variable, value, dollar, placement), after

    def inserted(self, name: str, value: str, position: int, placement: _Placement) -> str:
        """`value`, recorded as a secret: it goes into the config, never into a message."""
        record_environment_value(name, value)
        return placement.value(name, value, position)


def _closing_brace(text: str, dollar: int, end: int) -> int:
    """The `}` that closes the `${` at `dollar`, counting nested `${…}`; -1 if none."""
    depth = 0
    position = dollar
    while position < end:
        if text.startswith("${", position):
            depth += 1
            position += 2
            continue
        if text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return -1
