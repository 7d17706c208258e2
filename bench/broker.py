"""The shared Kafka broker of scripts/kafka: fresh topics, and counting what reached them.

Every measurement writes to a topic of its own (a unique name), so runs never mix and other
users of the broker are not disturbed. Nothing here stops or restarts the broker.
"""

from __future__ import annotations

import subprocess
import time
import uuid

TOPIC_READY_TIMEOUT_S = 30.0


def kafka_python_producer_config(bootstrap: str, compression_type: str = "lz4") -> dict:
    """KafkaProducer settings of the benchmarks that measure kafka-python itself: what
    outputs.kafka asks of its own producer (acks all, idempotence, linger 5 ms, 1 MiB
    batches), in kafka-python's terms."""
    return {
        "bootstrap_servers": [bootstrap],
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": compression_type,
        "linger_ms": 5,
        "batch_size": 1048576,
        "max_request_size": 1048576 + 4096,
    }


def unique_name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    """A new topic with a unique name; returns once every partition has a leader."""
    topic = unique_name(prefix)
    create_and_await_topic(bootstrap, topic, partitions=partitions, client_id="bench")
    return topic


def create_and_await_topic(
    bootstrap: str,
    topic: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = TOPIC_READY_TIMEOUT_S,
    client_id: str = "metrics-agent-dev",
) -> None:
    """Create `topic` and wait until metadata shows a leader for every partition; raises
    RuntimeError if that takes longer than `timeout` seconds. The test fixtures use it too."""
    from kafka.admin import KafkaAdminClient

    spec = {
        "num_partitions": partitions,
        "replication_factor": replication_factor,
        "configs": dict(config or {}),
    }
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    try:
        admin.create_topics({topic: spec})
        deadline = time.monotonic() + timeout
        while True:
            described = {t.get("name"): t for t in admin.describe_topics([topic])}
            parts = (described.get(topic) or {}).get("partitions") or []
            leaders = [p.get("leader_id", -1) for p in parts if p.get("error_code", 0) == 0]
            if len(leaders) == partitions and min(leaders) >= 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"topic {topic}: no leader for every partition after {timeout}s: {parts}"
                )
            time.sleep(0.1)
    finally:
        admin.close()


def kcat_consume_command(bootstrap: str, topic: str, record_format: str | None = None) -> list[str]:
    """`kcat -C` reading `topic` from its start to its current end, then exiting."""
    command = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"]
    if record_format is not None:
        command += ["-f", record_format]
    return command


def _newlines_consumed(bootstrap: str, topic: str, record_format: str) -> int:
    """Newlines in what kcat -C prints for every record of `topic` in `record_format`."""
    command = kcat_consume_command(bootstrap, topic, record_format)
    return subprocess.run(command, check=True, capture_output=True, timeout=600).stdout.count(b"\n")


def count_records(bootstrap: str, topic: str) -> int:
    """Records on `topic`, every partition, counted by kcat (one output line per record)."""
    return _newlines_consumed(bootstrap, topic, "%p %o\n")


def count_lines(bootstrap: str, topic: str) -> int:
    """Newline-terminated lines in all records of `topic` (metrics, for line protocol)."""
    return _newlines_consumed(bootstrap, topic, "%s")


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
