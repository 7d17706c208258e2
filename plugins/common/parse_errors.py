"""How inputs that read a `data_format` (inputs.file, inputs.exec) report what did not parse.

Each bad line is one error naming where it is, `source:line:column`, what was expected and
the line itself; the lines around it still become metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.plugin import ParseError

# A source full of garbage must not flood the log every interval: the first few bad lines
# are reported one by one, the rest counted in one more message.
MAX_REPORTED_PER_SOURCE = 10


def parse_error_reports(source: str, errors: Sequence[ParseError]) -> list[str]:
    """One message per error of `source` (a file name, a command), at most
    MAX_REPORTED_PER_SOURCE, then one that counts the others."""
    reports = []
    for error in errors[:MAX_REPORTED_PER_SOURCE]:
        shown = f": {error.text!r}" if error.text else ""
        reports.append(f"{source}:{error.line}:{error.column}: {error.message}{shown}")
    unreported = len(errors) - MAX_REPORTED_PER_SOURCE
    if unreported > 0:
        reports.append(f"{source}: {unreported} more lines did not parse")
    return reports
