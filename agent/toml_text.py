"""TOML as text, where tomllib's parsed tables are not enough: where strings and comments
are (for substituting environment variables as Telegraf does, before parsing), how deep
values nest, and how to write a value back so that it stays exactly one value.
"""

from __future__ import annotations

import datetime
import math
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

__all__ = ["tomllib", "strip_comments", "too_deep", "escape_basic", "write_value", "STRING"]

# The four kinds of TOML string. An unterminated one ends at its line break (or at the end
# of the text, multi-line), which stays outside it; tomllib then reports it. Each pattern is
# written as runs of ordinary characters so that a string of megabytes is scanned at C speed.
STRING = re.compile(
    r'(?P<multi_basic>"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\Z))'
    r'|(?P<basic>"[^"\\\n]*(?:\\.[^"\\\n]*)*"?)'
    r"|(?P<multi_literal>'''[^']*(?:'(?!'')[^']*)*(?:'''|\Z))"
    r"|(?P<literal>'[^'\n]*'?)",
    re.DOTALL,
)
# Each scan below starts with a run of characters it has no interest in, taken whole: a
# pattern that began with the alternatives alone would be tried again at every character.
_COMMENT = re.compile(rf"[^#\"'\\]+|{STRING.pattern}|(?P<comment>#[^\n]*)|\\.", re.DOTALL)

# Telegraf configs nest two or three levels; this is far beyond that, and well within what
# tomllib and the option checks can follow before Python's recursion limit stops them.
MAX_NESTING = 100
_NESTING = re.compile(
    rf"[^\"'\[\]{{}}\n]+|{STRING.pattern}|(?P<opening>[\[{{])|(?P<closing>[\]}}])|\n",
    re.DOTALL,
)


def strip_comments(text: str) -> str:
    """`text` without its TOML comments; every line break stays, so line numbers hold.

    A `#` inside a string is not a comment; strings are followed as TOML writes them:
    "basic" (with backslash escapes), 'literal', and their triple-quoted multi-line forms.
    """
    return _COMMENT.sub(lambda match: "" if match.group("comment") else match.group(), text)


def too_deep(text: str, limit: int = MAX_NESTING) -> int | None:
    """The 1-based line where arrays and inline tables nest more than `limit` deep in the
    (comment-free) TOML `text`, or None if they never do."""
    depth, line = 0, 1
    for match in _NESTING.finditer(text):
        kind = match.lastgroup
        if kind == "opening":
            depth += 1
            if depth > limit:
                return line
        elif kind == "closing":
            depth = max(depth - 1, 0)
        else:  # line breaks, alone or inside a multi-line string
            line += match.group().count("\n")
    return None


_BASIC_ESCAPES = {
    **{code: f"\\u{code:04x}" for code in (*range(32), 127)},
    ord("\b"): "\\b",
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\f"): "\\f",
    ord("\r"): "\\r",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}
_MULTI_LINE_ESCAPES = {**_BASIC_ESCAPES, ord("\n"): "\n"}


def escape_basic(text: str, keep_line_breaks: bool = False) -> str:
    """`text` as the inside of a "basic" string (between its quotes), every character kept.

    With `keep_line_breaks` (the inside of a multi-line one) line breaks stay as they are."""
    return text.translate(_MULTI_LINE_ESCAPES if keep_line_breaks else _BASIC_ESCAPES)


def write_value(value: Any) -> str:
    """A value tomllib returned, written as one TOML value on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return f'"{escape_basic(value)}"'
    if isinstance(value, list):
        return "[" + ", ".join(map(write_value, value)) + "]"
    if isinstance(value, dict):
        pairs = (f"{write_value(str(key))} = {write_value(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise TypeError(f"not a TOML value: {value!r}")
