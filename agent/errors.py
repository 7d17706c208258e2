"""The errors a user sees, in one module every other one can import.

A ConfigError or UsageError is already the one line printed (`agent: FILE:LINE: …`): its
text shows `${NAME}` wherever a value from the environment would appear, keeps long values
short and control characters visible, whoever raised it.
"""

from __future__ import annotations

from agent.secret_values import hide_environment

# Messages quote what was written; a value of megabytes (a file pasted into an option, say)
# would bury the line. A message longer than this keeps its start (where the file, line,
# option and the value's start are) and its end (what was expected), and counts the rest.
LONGEST_MESSAGE_CHARS = 1000
KEPT_AT_END_CHARS = 200

# A line break or an escape sequence from a value would split the one line or drive the
# terminal: they are written as Python writes them in a string (`\n`, `\x1b`).
_VISIBLE = {code: repr(chr(code))[1:-1] for code in (*range(32), 127)}


def cut_long(message: str) -> str:
    """`message` itself, or its start and end with a count of the characters left out."""
    if len(message) <= LONGEST_MESSAGE_CHARS:
        return message
    kept_at_start = LONGEST_MESSAGE_CHARS - KEPT_AT_END_CHARS
    left_out = len(message) - kept_at_start - KEPT_AT_END_CHARS
    return (
        f"{message[:kept_at_start]}… ({left_out:,} characters left out) …"
        f"{message[-KEPT_AT_END_CHARS:]}"
    )


def one_line(message: str) -> str:
    """`message` as it may be shown: values from the environment as `${NAME}` (first, so a
    cut never leaves part of one), cut to a bounded length, control characters escaped."""
    return cut_long(hide_environment(message)).translate(_VISIBLE)


class UserError(Exception):
    """A problem with what the user gave, phrased as the one line they see."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class ConfigError(UserError):
    """A configuration problem: names the file, the line where it can be found, the option,
    and what was expected."""


class UsageError(UserError):
    """A command-line mistake."""


class OptionError(ValueError):
    """A config value that does not fit its option; `option` is the dotted key path
    (`topic_suffix.keys[2]`). Raised while options are checked, turned into a ConfigError
    by whoever knows the file and line."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message

    @property
    def key(self) -> str:
        """The key as written in its table: `topic_suffix` for `topic_suffix.keys[2]`."""
        return self.option.split(".")[0].split("[")[0]
