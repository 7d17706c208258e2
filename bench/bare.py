"""Bare Python: the least any Python program does for the work of two benchmarks.

`python -m bench.bare file PATH TOPIC BOOTSTRAP` and `python -m bench.bare sink TOPIC
RECORDS BOOTSTRAP DATABASE` do what `agent --once` with inputs.file and `agent sink --store`
do in the file and sink benchmarks, with nothing of the agent: no validation of the lines
(they are trusted to be well formed), no error reports, no metric objects, no buffer, no
filters, no serializer. What is left is what no Python program can skip: reading the
lines, splitting each into its measurement, tags, fields and timestamp with the field
values as floats, and Kafka through kafka-python. The rate they reach is a ceiling for any
agent that does its per-line work in Python on the same machine; the agent parses and
serializes in its native core (native/), so it may pass it. The benchmarks report it
beside the agent's figure.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time

LINES_PER_RECORD = 1000  # outputs.kafka's metric_batch_size: one record per write
ROWS_PER_TRANSACTION = 10_000  # the sink's batch_size


def split_line(line: str) -> tuple[str, str, str, dict[str, float], int]:
    """(measurement, tag text, field set text, fields, timestamp) of a well-formed line of
    float fields."""
    head, field_set, stamp = line.split(" ")
    name, _, tags = head.partition(",")
    tokens = field_set.replace("=", ",").split(",")
    fields = dict(zip(tokens[0::2], map(float, tokens[1::2]), strict=True))
    return name, tags, field_set, fields, int(stamp)


def file_to_kafka(path: str, topic: str, bootstrap: str) -> int:
    """Split every line of the file, then send the lines, LINES_PER_RECORD to a record, with
    outputs.kafka's producer settings and lz4. Returns the number of lines sent."""
    from kafka import KafkaProducer

    from bench.broker import kafka_python_producer_config

    producer = KafkaProducer(**kafka_python_producer_config(bootstrap))
    with open(path, "rb") as file:
        lines = file.read().decode().splitlines()
    metrics = [split_line(line) for line in lines]
    for start in range(0, len(lines), LINES_PER_RECORD):
        producer.send(topic, ("\n".join(lines[start : start + LINES_PER_RECORD]) + "\n").encode())
    producer.flush(timeout=600)
    producer.close()
    return len(metrics)


SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
  time_ns INTEGER, measurement TEXT, tags TEXT, field_names TEXT, fields TEXT,
  kafka_topic TEXT, kafka_partition INTEGER, kafka_offset INTEGER,
  PRIMARY KEY (time_ns, measurement, tags, field_names)
) WITHOUT ROWID
"""


def sink(topic: str, records: int, bootstrap: str, database: str) -> int:
    """Read `records` records in a fresh consumer group and keep each line as one row keyed
    on its identity (the field set's text as it came), a transaction per ROWS_PER_TRANSACTION
    rows with synchronous=FULL, offsets committed after it, as the sink does. Returns the
    rows kept."""
    from kafka import KafkaConsumer

    from agent.sink.consumer import MAX_POLL_RECORDS, PARTITION_FETCH_BYTES

    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(SCHEMA)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{os.getpid()}-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=min(records, MAX_POLL_RECORDS),
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,  # the sink's consumer settings
    )
    read = kept = 0
    rows: list[tuple] = []
    while read < records:
        polled = consumer.poll(timeout_ms=1000)
        for partition, batch in polled.items():
            for record in batch[: records - read]:
                read += 1
                for line in record.value.decode().splitlines():
                    name, tags, field_set, fields, stamp = split_line(line)
                    names = ",".join(fields)
                    rows.append(
                        (stamp, name, tags, names, field_set, topic, partition.partition,
                         record.offset)
                    )  # fmt: skip
        if rows and (len(rows) >= ROWS_PER_TRANSACTION or not polled or read >= records):
            with db:
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO metrics VALUES (?,?,?,?,?,?,?,?)", rows)
                kept += db.total_changes - before
            consumer.commit()
            rows = []
    consumer.close()
    db.close()
    return kept


def main(argv: list[str]) -> int:
    if argv[:1] == ["file"] and len(argv) == 4:
        print(file_to_kafka(*argv[1:]))
        return 0
    if argv[:1] == ["sink"] and len(argv) == 5:
        print(sink(argv[1], int(argv[2]), argv[3], argv[4]))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
