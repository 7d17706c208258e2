"""Progress lines on stderr while the suite runs, with the time since it started."""

from __future__ import annotations

import sys
import time

_STARTED = time.monotonic()


def say(text: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:6.1f}s] {text}", file=sys.stderr, flush=True)
