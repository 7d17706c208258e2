"""An output's buffer: metrics wait here until the output has delivered them.

Bounded by metric_buffer_limit; when full, the oldest metrics are dropped and counted.
A write takes a batch from the front without removing it; only `accept()` after the
destination acknowledged removes what was delivered, so a failed write loses nothing and
the next try sends the same metrics in the same order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from agent.metric import Metric


@dataclass(frozen=True, slots=True)
class Batch:
    """Metrics taken from the front of a buffer, with the sequence numbers that name them."""

    metrics: list[Metric]
    sequence: list[int]


class Buffer(Protocol):
    """What an output's buffer offers; MemoryBuffer and DiskBuffer both fulfil it."""

    limit: int
    dropped: int

    def __len__(self) -> int: ...
    def add(self, metrics: Iterable[Metric]) -> int: ...
    def batch(self, size: int) -> Batch: ...
    def accept(self, batch: Batch, failed: Iterable[int] = ()) -> None: ...
    def close(self) -> None: ...


class MemoryBuffer:
    """A bounded FIFO of metrics in memory; safe to use from gather and flush threads."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"metric_buffer_limit must be at least 1, got {limit}")
        self.limit = limit
        self._entries: deque[tuple[int, Metric]] = deque()
        self._next_sequence = 0
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, metrics: Iterable[Metric]) -> int:
        """Append metrics; returns how many of the oldest were dropped to make room."""
        dropped = 0
        with self._lock:
            for metric in metrics:
                if len(self._entries) >= self.limit:
                    self._entries.popleft()
                    dropped += 1
                self._entries.append((self._next_sequence, metric))
                self._next_sequence += 1
            self.dropped += dropped
        return dropped

    def batch(self, size: int) -> Batch:
        """Up to `size` metrics from the front, oldest first, still kept in the buffer."""
        with self._lock:
            entries = list(islice(self._entries, size))
        return Batch([metric for _, metric in entries], [sequence for sequence, _ in entries])

    def accept(self, batch: Batch, failed: Iterable[int] = ()) -> None:
        """Remove the batch's delivered metrics; those at the indexes in `failed` stay, in order."""
        keep = {batch.sequence[i] for i in failed}
        with self._lock:
            entries = self._entries
            if not keep and entries and entries[0][0] == batch.sequence[0]:
                # The usual case: the whole batch is still at the front, in order (entries
                # leave only from the front, and the first one is still there).
                for _ in range(len(batch.sequence)):
                    entries.popleft()
                return
            delivered = set(batch.sequence) - keep
            self._entries = deque(entry for entry in entries if entry[0] not in delivered)

    def close(self) -> None:
        """Nothing to release; a memory buffer's content ends with the process."""
