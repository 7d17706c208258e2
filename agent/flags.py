"""Command-line flags as Telegraf spells them: each with one dash or two (`-config`,
`--config`), and every mistake a UsageError instead of argparse's exit."""

from __future__ import annotations

import argparse
from typing import Any

from agent.errors import UsageError


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError (one line, exit status 1 at the top)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def add_flag(parser: argparse.ArgumentParser, *names: str, **kwargs: Any) -> None:
    """A flag under each of `names` (aliases), each with one dash or two."""
    spelled = [f"{dashes}{name}" for name in names for dashes in ("-", "--")]
    parser.add_argument(*spelled, **kwargs)
