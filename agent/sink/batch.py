"""What flows from the consumer to a store: metrics with the Kafka record they came in.

A record decoded on its own is a Delivery of Python metrics (what a printer shows). For a
store, the decoder reads runs of records straight into points instead (PointRun, made by the
native core: agent/sink/decoder.py says when); a batch may hold both, in the order read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from agent._native import PointRun
from agent.metric import Metric


@dataclass(slots=True)
class Delivery:
    """The metrics of one Kafka record (a record may carry several lines), and its place."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    metrics: list[Metric]

    @property
    def next_offset(self) -> int:
        return self.offset + 1

    @property
    def records(self) -> int:
        return 1

    @property
    def metric_count(self) -> int:
        return len(self.metrics)


@dataclass
class Batch:
    """Deliveries to keep together: one store transaction, then one offset commit.

    `next_offsets` holds, per (topic, partition), the offset after the last record taken,
    which is what the consumer group commits once the batch is kept."""

    deliveries: list[Delivery | PointRun] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    messages: int = 0
    metric_count: int = 0
    started_s: float = field(default_factory=time.monotonic)

    def add(self, delivery: Delivery | PointRun) -> None:
        self.extend([delivery])

    def extend(self, deliveries: list[Delivery | PointRun]) -> None:
        """Deliveries in the order they were read, in one call (the sink takes thousands a
        poll)."""
        if not deliveries:
            return
        if not self.deliveries:
            self.started_s = time.monotonic()
        self.deliveries += deliveries
        next_offsets = self.next_offsets
        metric_count = records = 0
        for delivery in deliveries:
            next_offsets[(delivery.topic, delivery.partition)] = delivery.next_offset
            metric_count += delivery.metric_count
            records += delivery.records
        self.messages += records
        self.metric_count += metric_count

    def __bool__(self) -> bool:
        return bool(self.next_offsets)

    def age_s(self) -> float:
        return time.monotonic() - self.started_s if self.deliveries else 0.0

    def metrics(self) -> list[Metric]:
        """The metrics of the batch's deliveries (a batch of point runs has none to give)."""
        return [
            metric
            for delivery in self.deliveries
            if isinstance(delivery, Delivery)
            for metric in delivery.metrics
        ]
