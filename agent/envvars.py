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

Values taken from the environment are secrets as far as messages go: they are never
written to logs or errors. Substitution records each value it inserts, with the name of its
variable; `reveals_environment()` lets error messages check a value before they quote it,
and `hide_environment()` (applied to every log line by agent.logs) writes `${NAME}` instead.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":+", ":?", "-", "+", "?")

# Values shorter than this are not hidden in log lines: a port such as "80", a count, "on"
# or "dc1" is little of a secret, and replacing every "80" or "on" in every log line (inside
# numbers, words, durations) would garble the logs more than it protects. Four characters
# is where values start to be names, hosts, paths and passwords rather than such fragments.
MIN_HIDDEN_LENGTH = 4


class EnvironmentValues:
    """Every non-empty value substitution has inserted, with the name of its variable.

    Values are only ever added: a SIGHUP reload reads the config again (recording what the
    new config inserts) while the previous agent still flushes, and a reload that fails
    keeps the previous config running, so a value once read stays a secret for the process.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # value → the variable it came from (the first one)
        self._lock = threading.Lock()  # log lines come from every thread; reloads record
        self._pattern: re.Pattern[str] | None = None

    def record(self, name: str, value: str) -> None:
        with self._lock:
            if value and value not in self.names:
                self.names[value] = name
                self._pattern = None

    def reveals(self, text: str) -> bool:
        with self._lock:
            values = list(self.names)
        return any(value in text for value in values)

    def hide(self, text: str) -> str:
        """`text` with each value of at least MIN_HIDDEN_LENGTH characters as `${NAME}`."""
        pattern = self._hidden_pattern()
        if pattern is None:
            return text
        return pattern.sub(lambda match: "${" + self.names[match.group()] + "}", text)

    def _hidden_pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None:
                # Longest first, so a value holding another one is replaced as a whole; one
                # pass, so a value is never looked for inside a `${NAME}` just written.
                hidden = sorted(
                    (value for value in self.names if len(value) >= MIN_HIDDEN_LENGTH),
                    key=len,
                    reverse=True,
                )
                if not hidden:
                    return None
                self._pattern = re.compile("|".join(map(re.escape, hidden)))
            return self._pattern


_recorded = EnvironmentValues()


class _Missing(Exception):
    """A `${VAR:?message}` whose variable is unset (or empty); raised inside substitution."""

    def __init__(self, position: int, name: str, problem: str, message: str) -> None:
        super().__init__(name)
        self.position = position
        self.name = name
        self.problem = problem
        self.message = message


def substitute(text: str, source: str | Path, environ: Mapping[str, str] | None = None) -> str:
    """`text` of config file `source` with comments removed and variables replaced.

    Raises ConfigError (naming file, line, variable and the config's message, never a value)
    for a `${VAR:?message}` or `${VAR?message}` whose variable is missing.
    """
    uncommented = strip_comments(text)
    try:
        return _Substitution(uncommented, os.environ if environ is None else environ).run()
    except _Missing as missing:
        from agent.config import ConfigError  # here: agent.config imports this module

        line = uncommented.count("\n", 0, missing.position) + 1
        detail = f": {missing.message}" if missing.message else ""
        raise ConfigError(
            f"{source}:{line}: environment variable {missing.name} is {missing.problem}{detail}"
        ) from None


def reveals_environment(text: str) -> bool:
    """True if `text` contains a value that substitution took from the environment."""
    return _recorded.reveals(text)


def hide_environment(text: str) -> str:
    """`text` with every value taken from the environment (but the shortest, see
    MIN_HIDDEN_LENGTH) replaced by `${NAME}`, the variable it came from."""
    return _recorded.hide(text)


class _Substitution:
    """One left-to-right pass over a text, replacing `$…` references."""

    def __init__(self, text: str, environ: Mapping[str, str]) -> None:
        self.text = text
        self.environ = environ

    def run(self, start: int = 0, end: int | None = None) -> str:
        text = self.text
        end = len(text) if end is None else end
        out: list[str] = []
        position = start
        while position < end:
            dollar = text.find("$", position, end)
            if dollar == -1:
                out.append(text[position:end])
                break
            out.append(text[position:dollar])
            replacement, position = self.reference(dollar, end)
            out.append(replacement)
        return "".join(out)

    def reference(self, dollar: int, end: int) -> tuple[str, int]:
        """What the reference starting at `dollar` becomes, and where the text goes on."""
        text = self.text
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            return "$", dollar + 2
        if following == "{":
            return self.braced(dollar, end)
        name = _NAME.match(text, dollar + 1, end)
        if name is None:
            return "$", dollar + 1
        value = self.lookup(name.group())
        if value is None:
            return text[dollar : name.end()], name.end()
        return self.inserted(name.group(), value), name.end()

    def braced(self, dollar: int, end: int) -> tuple[str, int]:
        text = self.text
        closing = _closing_brace(text, dollar, end)
        name = _NAME.match(text, dollar + 2, end)
        if closing == -1 or name is None:
            return "$", dollar + 1
        operator = next((op for op in _OPERATORS if text.startswith(op, name.end())), "")
        if not operator and name.end() != closing:
            return text[dollar : closing + 1], closing + 1  # not a reference: keep it
        variable = name.group()
        argument = (name.end() + len(operator), closing)
        value = self.lookup(variable)
        after = closing + 1
        if not operator:
            return (text[dollar:after] if value is None else self.inserted(variable, value)), after
        if operator in (":-", "-"):
            absent = value is None or (operator == ":-" and value == "")
            return (self.run(*argument) if absent else self.inserted(variable, value or "")), after
        if operator in (":+", "+"):
            present = value is not None and (operator == "+" or value != "")
            return (self.run(*argument) if present else ""), after
        if value is None or (operator == ":?" and value == ""):
            problem = "not set" if value is None else "empty"
            raise _Missing(dollar, variable, problem, text[argument[0] : argument[1]].strip())
        return self.inserted(variable, value), after

    def lookup(self, name: str) -> str | None:
        return self.environ.get(name)

    def inserted(self, name: str, value: str) -> str:
        """`value`, recorded as a secret: it goes into the config, never into a message."""
        _recorded.record(name, value)
        return value


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


def strip_comments(text: str) -> str:
    """`text` without its TOML comments; every line break stays, so line numbers hold.

    A `#` inside a string is not a comment; strings are followed as TOML writes them:
    "basic" (with backslash escapes), 'literal', and their triple-quoted multi-line forms.
    """
    out: list[str] = []
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char == "#":
            newline = text.find("\n", position)
            position = length if newline == -1 else newline
            continue
        if char in "\"'":
            end = _string_end(text, position)
            out.append(text[position:end])
            position = end
            continue
        if char == "\\":
            out.append(text[position : position + 2])
            position += 2
            continue
        out.append(char)
        position += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Where the string opening at `start` ends (just after its closing quote, or at the
    line break or end of text that cuts an unterminated one short)."""
    quote = text[start]
    escapes = quote == '"'
    if text.startswith(quote * 3, start):
        position = start + 3
        while position < len(text):
            if escapes and text[position] == "\\":
                position += 2
                continue
            if text.startswith(quote * 3, position):
                return position + 3
            position += 1
        return len(text)
    position = start + 1
    while position < len(text):
        char = text[position]
        if escapes and char == "\\":
            position += 2
            continue
        if char == quote:
            return position + 1
        if char == "\n":
            return position  # the line break is kept by the caller
        position += 1
    return len(text)
