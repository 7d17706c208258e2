"""A bounded memo of a function's results, which switches itself off while it does not pay.

Metrics repeat their values (zeros, small counts, CPU percentages that are ratios of small
tick counts), and turning a float into text or text into a float costs more than looking
the result up. Data whose values never repeat would only pay for the misses, so the memo
counts its hits and, while they are too few, tells its users to go without it for a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Memo(dict):
    """`memo[key]` is `make(key)`, made on first use and remembered (at most `size` keys;
    past that the memo starts over). A result equal to `forget` is returned but never
    remembered (an invalid input, say).

    Before looking up, users call `use(n)` with the number of lookups they are about to
    make: False means go without the memo this time. A lookup that cannot be served (a
    value the memo does not take) is reported with `missed(n)`. After each `window`
    lookups, a memo whose lookups hit less than `min_hit_ratio` of the time rests for
    `rest_s` seconds, then tries again for a tenth of a window."""

    def __init__(
        self,
        make: Callable[[Any], Any],
        size: int,
        forget: object = None,
        window: int = 20_000,
        min_hit_ratio: float = 0.75,
        rest_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.make = make
        self.size = size
        self.forget = forget
        self.window = window
        self.min_hit_ratio = min_hit_ratio
        self.rest_s = rest_s
        self.enabled = True
        self.lookups = 0
        self.misses = 0
        self._window_lookups = window
        self._resting_until = 0.0

    def __missing__(self, key: Any) -> Any:
        self.misses += 1
        result = self.make(key)
        if result is self.forget:
            return result
        if len(self) >= self.size:
            self.clear()
        self[key] = result
        return result

    def use(self, lookups: int) -> bool:
        """Count `lookups`; whether to make them through the memo."""
        if not self.enabled:
            if time.monotonic() < self._resting_until:
                return False
            self.enabled = True  # try again, briefly
            self._window_lookups = max(1, self.window // 10)
        self.lookups += lookups
        if self.lookups >= self._window_lookups:
            if self.lookups - self.misses < self.min_hit_ratio * self.lookups:
                self.enabled = False
                self._resting_until = time.monotonic() + self.rest_s
            self._window_lookups = self.window
            self.lookups = 0
            self.misses = 0
        return self.enabled

    def missed(self, lookups: int) -> None:
        self.misses += lookups
