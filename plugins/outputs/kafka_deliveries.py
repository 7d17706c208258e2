"""outputs.kafka's deliveries: which metrics of a write Kafka acknowledged, and which are
still on their way from an earlier write, named by their buffer sequence numbers.

A metric whose record is still on its way is never sent again: a later write that holds it
(the buffer hands it out again, with the same sequence number) awaits that record instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.buffer import Batch
from plugins.outputs.kafka_records import Record

log = logging.getLogger("outputs.kafka")


@dataclass(slots=True)
class Sending:
    """One send() of a batch: the records handed to the producer with their futures, the
    indexes of metrics not handed over (the broker is away) and of those whose record from
    an earlier write is still pending."""

    batch: Batch
    awaited: list[int]
    sent: list[tuple[Record, Any]] = field(default_factory=list)
    not_sent: list[int] = field(default_factory=list)


class Deliveries:
    """The records handed to the producer and not yet acknowledged, by the sequence number
    of each metric they carry. Sequence numbers, not the metric objects: a disk buffer
    hands a retried metric out as a new object read from its file. A buffer never gives a
    number to another metric while this one is in it, and a pending metric stays in it (in
    flight, never dropped), so a pending number always names the same metric."""

    def __init__(self) -> None:
        self._pending: dict[int, Any] = {}  # sequence number → future of its record

    def pending(self) -> set[int]:
        """Sequence numbers of the metrics whose records are still on their way."""
        return set(self._pending)

    def start(self, batch: Batch) -> tuple[Sending, Sequence[int]]:
        """The Sending of `batch`, and the indexes of its metrics to send: all but those
        whose record from an earlier write is still pending (those are awaited)."""
        if not self._pending:
            return Sending(batch, []), range(len(batch.sequence))
        awaited: list[int] = []
        unsent: list[int] = []
        for index, sequence in enumerate(batch.sequence):
            (awaited if sequence in self._pending else unsent).append(index)
        return Sending(batch, awaited), unsent

    def futures(self, sending: Sending) -> Iterator[Any]:
        """The futures a settle of `sending` waits for: of its own records, then of the
        earlier records it awaits."""
        yield from (future for _, future in sending.sent)
        sequence = sending.batch.sequence
        for index in sending.awaited:
            future = self._pending.get(sequence[index])
            if future is not None:
                yield future

    def unacknowledged(self, sending: Sending) -> list[int]:
        """Indexes (sorted) of the metrics of `sending` to report as not delivered: not
        handed over, still on their way (now pending), or failed and worth sending again."""
        return sorted(
            {
                *sending.not_sent,
                *self._unacknowledged_in_sent(sending),
                *self._unacknowledged_in_awaited(sending),
            }
        )

    def in_flight(self, sending: Sending, indexes: list[int]) -> list[int]:
        """Of `indexes`, those of metrics whose records are still on their way."""
        sequence = sending.batch.sequence
        return [index for index in indexes if sequence[index] in self._pending]

    def _unacknowledged_in_sent(self, sending: Sending) -> list[int]:
        """Indexes of metrics of this write's records that are not acknowledged. A record
        still on its way makes its metrics pending (never sent again while it is); a failed
        one is forgotten, so the next write sends its metrics again, unless sending them
        again cannot succeed. Checked per record: an acknowledged one needs no bookkeeping."""
        sequence = sending.batch.sequence
        failed: list[int] = []
        for record, future in sending.sent:
            if not future.is_done:
                for index in record.indexes:
                    self._pending[sequence[index]] = future
                failed.extend(record.indexes)
            elif future.failed():
                failed.extend(self._to_send_again(sending, record.indexes, future))
        return failed

    def _to_send_again(self, sending: Sending, indexes: list[int], future: Any) -> list[int]:
        """Of metrics whose record failed, those to send again (a retriable error); the others
        are dropped with an error, since keeping them would block the buffer."""
        metrics = sending.batch.metrics
        if getattr(future.exception, "retriable", True):
            for index in indexes:
                log.debug("Record of %s failed: %s", metrics[index].name, future.exception)
            return indexes
        for index in indexes:
            log.error(
                "Dropped metric %s: Kafka refused it: %s", metrics[index].name, future.exception
            )
        return []

    def _unacknowledged_in_awaited(self, sending: Sending) -> list[int]:
        """Of the metrics that were pending from an earlier write (indexes `awaited`), those
        still not acknowledged; acknowledged ones are no longer pending."""
        sequence = sending.batch.sequence
        failed = []
        for index in sending.awaited:
            future = self._pending.get(sequence[index])
            if future is None:  # the same number twice in the batch: done just above
                continue
            if not future.is_done:
                failed.append(index)
                continue
            del self._pending[sequence[index]]
            if future.failed():
                failed.extend(self._to_send_again(sending, [index], future))
        return failed

    def clear(self) -> None:
        """Forget every pending record (the producer is closed)."""
        self._pending.clear()
