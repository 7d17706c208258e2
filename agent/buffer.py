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
from itertools import count, islice
from typing import Protocol

from agent.metric import Metric


@dataclass(frozen=True, slots=True)
class Batch:
    """Metrics taken from the front of a buffer, with the sequence numbers that name them."""

    metrics: list[Metric]
    sequence: list[int]


class BufferFullError(OSError):
    """An add the buffer could not keep (its disk is full): none of its metrics were kept,
    and what the buffer held before is unchanged."""

    def __init__(self, buffer_name: str, lost: int, reason: str) -> None:
        super().__init__(f"{buffer_name}: no room left on its disk ({reason})")
        self.buffer_name = buffer_name
        self.lost = lost


class InFlight(set[int]):
    """Sequences of a buffer's metrics in flight: handed out in a batch not yet accepted, or
    sent and awaiting the destination's acknowledgement."""

    def release(self, batch: Batch, still_in_flight: Iterable[int]) -> None:
        """The batch is accepted: only its metrics at the indexes `still_in_flight` stay."""
        self.difference_update(batch.sequence)
        self.update(batch.sequence[i] for i in still_in_flight)

    def oldest_waiting(self, sequences: Iterable[int], count: int) -> list[int]:
        """The first `count` of `sequences` (oldest first) that are not in flight: what an
        overflow drops. Never short of them: what is in flight was in the buffer before the
        overflowing add, so at most `limit` metrics are in flight."""
        return list(islice((s for s in sequences if s not in self), count))


class Buffer(Protocol):
    """What an output's buffer offers; MemoryBuffer and DiskBuffer both fulfil it."""

    limit: int
    dropped: int

    def __len__(self) -> int: ...
    def add(self, metrics: Iterable[Metric]) -> int: ...  # may raise BufferFullError
    def batch(self, size: int, skip: int = 0) -> Batch: ...
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
        self._in_flight = InFlight()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, metrics: Iterable[Metric]) -> int:
        """Append metrics; returns how many waiting ones were dropped to make room."""
        with self._lock:
            entries = self._entries
            before = len(entries)
            entries.extend(zip(count(self._next_sequence), metrics))
            self._next_sequence += len(entries) - before
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
        entries = self._entries
        doomed = set(self._in_flight.oldest_waiting((sequence for sequence, _ in entries), count))
        self._entries = deque(entry for entry in entries if entry[0] not in doomed)

    def batch(self, size: int, skip: int = 0) -> Batch:
        """Up to `size` metrics from the front, oldest first, after the first `skip` (those
        of batches taken before and still being written); they are kept in the buffer and in
        flight until accepted."""
        with self._lock:
            entries = list(islice(self._entries, skip, skip + size))
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
            self._in_flight.release(batch, in_flight)
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
