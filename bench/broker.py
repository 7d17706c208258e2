"""The shared Kafka broker of scripts/kafka: fresh topics, and counting what reached them.

Every measurement writes to a topic of its own (a unique name), so runs never mix and other
users of the broker are not disturbed. Nothing here stops or restarts the broker.
"""

from __future__ import annotations

import subprocess
import time
import uuid

TOPIC_READY_TIMEOUT_S = 30.0


def unique_name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    """A new topic with a unique name; returns once every partition has a leader."""
    from kafka.admin import KafkaAdminClient

    topic = unique_name(prefix)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench")
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
        deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
        while True:
            described = {t.get("name"): t for t in admin.describe_topics([topic])}
            parts = (described.get(topic) or {}).get("partitions") or []
            leaders = [p.get("leader_id", -1) for p in parts if p.get("error_code", 0) == 0]
            if len(leaders) == partitions and min(leaders) >= 0:
                return topic
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic}: no leader for every partition: {parts}")
            time.sleep(0.1)
    finally:
        admin.close()


def kcat_consume_command(bootstrap: str, topic: str, record_format: str | None = None) -> list[str]:
    """`kcat -C` reading `topic` from its start to its current end, then exiting."""
    command = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"]
    if record_format is not None:
        command += ["-f", record_format]
    return command


def count_records(bootstrap: str, topic: str) -> int:
    """Records on `topic`, every partition, counted by kcat (one output line per record)."""
    output = subprocess.run(
        kcat_consume_command(bootstrap, topic, "%p %o\n"),
        check=True,
        capture_output=True,
        timeout=600,
    ).stdout
    return output.count(b"\n")


def count_lines(bootstrap: str, topic: str) -> int:
    """Newline-terminated lines in all records of `topic` (metrics, for line protocol)."""
    output = subprocess.run(
        kcat_consume_command(bootstrap, topic, "%s"),
        check=True,
        capture_output=True,
        timeout=600,
    ).stdout
    return output.count(b"\n")


def record_count(bootstrap: str, topic: str) -> int:
    """Records on `topic` by its offsets (log end minus log start, every partition)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        consumer.close()
