"""Where one `agent sink --store postgresql://…` worker spends its time, per metric.

    python -m bench.sink_stages TOPIC METRICS BROKER POSTGRESQL_URI

Runs the sink's own steps one after the other in this process, each timed with
time.perf_counter() and time.process_time() (a profiler would inflate the many small calls):
the sink's fetcher fetching every record of TOPIC and the native core reading the record
batches (the sink's fetch sizes), the sink's decoder parsing the lines, then per batch of
the sink's default size the rows being built (`agent.sink.layout.point_tables`) and the
PostgreSQL store writing them (COPY into the staging table, INSERT … ON CONFLICT, the
positions), into the database of POSTGRESQL_URI.
Wall time beyond this process's CPU time in the write is the server's work, which the sink
waits for. The topic must hold METRICS records of one line each (bench/fleet.py makes such
topics).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from agent.cli import GC_THRESHOLDS
from agent.sink.batch import Batch
from agent.sink.consumer import (
    FIRST_RECORD_BYTES_GUESS,
    MAX_POLL_RECORDS,
    PARTITION_FETCH_BYTES,
)
from agent.sink.decoder import RecordDecoder
from agent.sink.fetch import FetchedRecords, PartitionFetcher
from agent.sink.layout import point_tables
from agent.sink.postgres import PostgresStore
from agent.sink.settings import SinkSettings

BATCH_METRICS = SinkSettings.batch_size


class Clock:
    """Wall and CPU seconds of named steps, summed over calls."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def time(self, step: str, work: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        self.wall[step] = self.wall.get(step, 0.0) + time.perf_counter() - wall
        self.cpu[step] = self.cpu.get(step, 0.0) + time.process_time() - cpu
        return result


def fetch_all(topic: str, count: int, broker: str, clock: Clock) -> list[FetchedRecords]:
    """Every record of the topic as the sink fetches them (its fetcher, its fetch sizes)."""
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    positions = consumer.beginning_offsets(partitions)
    consumer.close()
    fetcher = PartitionFetcher({"bootstrap_servers": broker}, PARTITION_FETCH_BYTES)
    fetcher.fetch(positions, 1000, 1)  # connected: start-up left out
    max_bytes = MAX_POLL_RECORDS * FIRST_RECORD_BYTES_GUESS
    parts: list[FetchedRecords] = []
    taken = 0
    while taken < count:
        fetched = clock.time(
            "fetch (fetcher, native reader)", lambda: fetcher.fetch(positions, 1000, max_bytes)
        )
        for part in fetched.records:
            parts.append(part)
            taken += len(part.offsets)
            if part.next_offset is not None:
                positions[part.partition] = part.next_offset
    fetcher.close()
    return parts


def main(argv: list[str]) -> int:
    topic, count, broker, url = argv[0], int(argv[1]), argv[2], argv[3]
    gc.set_threshold(*GC_THRESHOLDS)  # as `agent sink` runs
    clock = Clock()
    parts = fetch_all(topic, count, broker, clock)
    decoder = RecordDecoder(into_points=True)  # as `agent sink --store` decodes
    store = PostgresStore(url)
    try:
        while parts:
            batch = Batch()
            while parts and batch.metric_count < BATCH_METRICS:
                part = parts.pop(0)
                deliveries = clock.time("parse (decoder)", lambda p=part: decoder.decode_fetched(p))
                for delivery in deliveries:
                    batch.add(delivery)
            tables = clock.time("rows (point_tables)", lambda b=batch: point_tables(b))
            clock.time(
                "write (COPY, INSERT, positions)",
                lambda b=batch, t=tables: store._call(lambda: store._write(b, t)),
            )
    finally:
        store.close()
    print(f"{count:,} metrics; µs per metric, wall (this process's CPU):")
    for step, wall in clock.wall.items():
        print(f"  {step:34} {wall / count * 1e6:6.2f} ({clock.cpu[step] / count * 1e6:6.2f})")
    total = sum(clock.wall.values())
    print(f"  {'all':34} {total / count * 1e6:6.2f} → {count / total:,.0f} metrics/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
