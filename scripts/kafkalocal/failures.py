"""How scripts/kafka reports: progress on stderr, and one line for an expected failure."""

from __future__ import annotations

import sys


class KafkaError(Exception):
    """An expected failure: reported as one line on stderr and a nonzero exit, no traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
