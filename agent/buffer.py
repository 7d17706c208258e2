"""An output's buffer: metrics wait here until the output has delivered them.

Bounded by metric_buffer_limit; when full, the oldest metrics still waiting are dropped and
counted. A write takes a batch from the front without removing it; only `accept()` after the
destination acknowledged removes what was delivered, so a failed write loses nothing and
the next try sends the same metrics in the same order.

Metrics in flight (in a batch being written, or sent and awaiting the destination's
acknowledgement) are never dropped: they may arrive whatever the buffer does, and counting
them as dropped would make the count a lie. An overflow drops the oldest waiting ones
instead, the newest if nothing else waits.
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
    def accept(
        self, batch: Batch, failed: Iterable[int] = (), in_flight: Iterable[int] = ()
    ) -> None: ...
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
        self._in_flight: set[int] = set()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, metrics: Iterable[Metric]) -> int:
        """Append metrics; returns how many waiting ones were dropped to make room."""
        with self._lock:
            entries = self._entries
            for metric in metrics:
                entries.append((self._next_sequence, metric))
                self._next_sequence += 1
            dropped = len(entries) - self.limit
            if dropped <= 0:
                return 0
            if self._in_flight:
                self._drop_oldest_waiting(dropped)
            else:
                for _ in range(dropped):
                    entries.popleft()
            self.dropped += dropped
        return dropped

    def _drop_oldest_waiting(self, count: int) -> None:
        # Never short of candidates: what is in flight was in the buffer before this add,
        # so at most `limit` entries are in flight.
        kept: deque[tuple[int, Metric]] = deque()
        for entry in self._entries:
            if count and entry[0] not in self._in_flight:
                count -= 1
            else:
                kept.append(entry)
        self._entries = kept

    def batch(self, size: int) -> Batch:
        """Up to `size` metrics from the front, oldest first, still kept in the buffer and in
        flight until accepted."""
        with self._lock:
            entries = list(islice(self._entries, size))
            sequence = [sequence for sequence, _ in entries]
            self._in_flight.update(sequence)
        return Batch([metric for _, metric in entries], sequence)

    def accept(
        self, batch: Batch, failed: Iterable[int] = (), in_flight: Iterable[int] = ()
    ) -> None:
        """Remove the batch's delivered metrics; those at the indexes in `failed` stay, in
        order. Those at the indexes in `in_flight` (a subset of `failed`: sent, not yet
        acknowledged) stay in flight, so an overflow does not drop them."""
        keep = {batch.sequence[i] for i in failed}
        with self._lock:
            self._in_flight.difference_update(batch.sequence)
            self._in_flight.update(batch.sequence[i] for i in in_flight)
            entries = self._entries
            if not keep and entries and entries[0][0] == batch.sequence[0]:
                # The usual case: the whole batch is still at the front, in order (nothing in
                # flight is dropped, and the first one is still there).
                for _ in range(len(batch.sequence)):
                    entries.popleft()
                return
            delivered = set(batch.sequence) - keep
            self._entries = deque(entry for entry in entries if entry[0] not in delivered)

    def close(self) -> None:
        """Nothing to release; a memory buffer's content ends with the process."""
