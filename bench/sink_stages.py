"""Where one `agent sink --store postgresql://…` worker spends its time, per metric.

    python -m bench.sink_stages TOPIC METRICS BROKER POSTGRESQL_URI

Runs the sink's own steps one after the other in this process, each timed with
time.perf_counter() and time.process_time() (a profiler would inflate the many small calls
of kafka-python's record reader): kafka-python fetching and unpacking every record of TOPIC
(a consumer without a group, the sink's fetch settings), the sink's decoder parsing the
lines, then per batch of the sink's default size the rows being built
(`agent.sink.layout.point_tables`) and the PostgreSQL store writing them (COPY into the
staging table, INSERT … ON CONFLICT, the positions), into the database of POSTGRESQL_URI.
Wall time beyond this process's CPU time in the write is the server's work, which the sink
waits for. The topic must hold METRICS records of one line each (bench/fleet.py makes such
topics).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from agent.sink.batch import Batch
from agent.sink.consumer import MAX_POLL_RECORDS, PARTITION_FETCH_BYTES
from agent.sink.decoder import RecordDecoder
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


def fetch_all(topic: str, count: int, broker: str, clock: Clock) -> list:
    consumer = KafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        max_poll_records=MAX_POLL_RECORDS,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
    )
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    consumer.poll(timeout_ms=1000, max_records=1)  # connected, fetching: start-up left out
    consumer.seek_to_beginning()
    records: list = []
    while len(records) < count:
        fetched = clock.time("kafka-python fetch and unpack", lambda: consumer.poll(1000))
        records += [record for batch in fetched.values() for record in batch]
    consumer.close()
    return records[:count]


def main(argv: list[str]) -> int:
    topic, count, broker, url = argv[0], int(argv[1]), argv[2], argv[3]
    clock = Clock()
    records = fetch_all(topic, count, broker, clock)
    decoder = RecordDecoder()
    store = PostgresStore(url)
    try:
        for start in range(0, count, BATCH_METRICS):
            chunk = records[start : start + BATCH_METRICS]
            deliveries = clock.time("parse (decoder)", lambda c=chunk: decoder.decode_all(c))
            batch = Batch()
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
