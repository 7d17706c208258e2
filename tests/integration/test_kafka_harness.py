"""Tests of the Kafka test harness itself (scripts/kafka and the fixtures in conftest.py).

All of them talk to a real broker: a failure here means the later integration tests of the
agent would be testing against nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.conftest import KAFKA_SCRIPT

KafkaScript = Callable[..., "subprocess.CompletedProcess[str]"]

N_MESSAGES = 300
PARTITIONS = 3
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class NumberedTopic:
    bootstrap: str
    topic: str
    by_partition: dict[int, list[str]]  # values in the order they were sent to each partition

    @property
    def values(self) -> list[str]:
        return [v for part in self.by_partition.values() for v in part]


def produce_numbered(
    bootstrap: str, topic: str, count: int, partitions: int, prefix: str = "msg"
) -> dict[int, list[str]]:
    """Send `prefix-00000`.. round-robin over the partitions; acks=all, idempotent."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=10_000,
    )
    sent: dict[int, list[str]] = {p: [] for p in range(partitions)}
    try:
        futures = []
        for i in range(count):
            value = f"{prefix}-{i:05d}"
            futures.append(producer.send(topic, value=value.encode(), partition=i % partitions))
            sent[i % partitions].append(value)
        producer.flush(timeout=TIMEOUT_S)
        for future in futures:
            future.get(timeout=TIMEOUT_S)  # raises if any send failed
    finally:
        producer.close(timeout=10)
    return sent


def consume_all(bootstrap: str, topic: str, expected: int) -> dict[int, list[str]]:
    """Read `expected` records from the start of `topic` with a consumer group."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"harness-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got: dict[int, list[str]] = {}
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while sum(map(len, got.values())) < expected and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                got.setdefault(tp.partition, []).extend(r.value.decode() for r in records)
    finally:
        consumer.close()
    return got


def run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def describe_partitions(
    kafka_script: KafkaScript, bootstrap: str, topic: str
) -> list[dict[str, str]]:
    """`kafka-topics --describe` partition lines as dicts: {"Partition": "0", "Isr": "1,2,3"}."""
    result = kafka_script(
        "tool", "kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic
    )
    assert result.returncode == 0, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        fields = dict(
            part.split(": ", 1) if ": " in part else (part.rstrip(":"), "")
            for part in line.strip().split("\t")
        )
        if "Partition" in fields:
            rows.append(fields)
    return rows


def managed_only() -> None:
    """Skip (visibly) tests that drive scripts/kafka when an external broker is in use."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        pytest.skip("KAFKA_BOOTSTRAP is set: the broker is not managed by scripts/kafka")


@pytest.fixture(scope="module")
def numbered_topic(kafka_bootstrap: str, make_topic: Callable[..., str]) -> NumberedTopic:
    topic = make_topic(kafka_bootstrap, partitions=PARTITIONS, name="numbered")
    sent = produce_numbered(kafka_bootstrap, topic, N_MESSAGES, PARTITIONS)
    return NumberedTopic(kafka_bootstrap, topic, sent)


# --------------------------------------------------------------------------- single node


@pytest.mark.kafka
def test_kafka_python_round_trip_in_order(numbered_topic: NumberedTopic) -> None:
    got = consume_all(numbered_topic.bootstrap, numbered_topic.topic, N_MESSAGES)
    assert sum(map(len, got.values())) == N_MESSAGES
    assert got == numbered_topic.by_partition  # every record, once, in order per partition


@pytest.mark.kafka
def test_kcat_reads_the_same_messages(numbered_topic: NumberedTopic) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not on PATH: install the Debian package kcat (apt-get install kcat)")
    cmd = [kcat, "-C", "-b", numbered_topic.bootstrap, "-t", numbered_topic.topic]
    result = run([*cmd, "-e", "-f", "%s\n"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == N_MESSAGES
    assert set(lines) == set(numbered_topic.values)


@pytest.mark.kafka
def test_console_consumer_reads_the_same_messages(
    numbered_topic: NumberedTopic, kafka_script: KafkaScript
) -> None:
    result = kafka_script(
        "tool",
        "kafka-console-consumer",
        "--bootstrap-server",
        numbered_topic.bootstrap,
        "--topic",
        numbered_topic.topic,
        "--from-beginning",
        "--max-messages",
        str(N_MESSAGES),
        "--timeout-ms",
        str(int(TIMEOUT_S * 1000)),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == N_MESSAGES
    assert set(lines) == set(numbered_topic.values)
    assert "SLF4J" not in result.stderr


@pytest.mark.kafka
def test_console_producer_reads_stdin(
    kafka_bootstrap: str, kafka_script: KafkaScript, create_topic: Callable[..., str]
) -> None:
    topic = create_topic(name="console-producer")
    lines = [f"line-{i}" for i in range(5)]
    cmd = ["tool", "kafka-console-producer", "--bootstrap-server", kafka_bootstrap]
    result = kafka_script(*cmd, "--topic", topic, input="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert consume_all(kafka_bootstrap, topic, len(lines)) == {0: lines}


@pytest.mark.kafka
def test_kafka_topics_create_and_describe(kafka_bootstrap: str, kafka_script: KafkaScript) -> None:
    topic = f"cli-{uuid.uuid4().hex[:12]}"
    boot = ["--bootstrap-server", kafka_bootstrap]
    created = kafka_script(
        "tool", "kafka-topics", *boot, "--create", "--topic", topic, "--partitions", "3"
    )
    assert created.returncode == 0, created.stderr
    assert f"Created topic {topic}." in created.stdout
    described = kafka_script("tool", "kafka-topics", *boot, "--describe", "--topic", topic)
    assert "PartitionCount: 3" in described.stdout
    assert [r["Partition"] for r in describe_partitions(kafka_script, kafka_bootstrap, topic)] == [
        "0",
        "1",
        "2",
    ]


def test_unknown_tool_is_a_one_line_error(kafka_script: KafkaScript) -> None:
    result = kafka_script("tool", "kafka-no-such-tool")
    assert result.returncode == 2
    assert "unknown tool 'kafka-no-such-tool'" in result.stderr
    assert "kafka-topics" in result.stderr and "kafka-console-consumer" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.kafka
def test_status_exit_code_when_up(kafka_bootstrap: str, kafka_script: KafkaScript) -> None:
    managed_only()
    result = kafka_script("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "node 1: up" in result.stdout
    assert f"broker {kafka_bootstrap} " in result.stdout


def run_without_kafka_python(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """scripts/kafka as before the venv exists: Python without site-packages (-S), and not
    rerun with the venv's Python."""
    return subprocess.run(
        [sys.executable, "-S", str(KAFKA_SCRIPT), *args],
        env={**os.environ, "SCRIPTS_KAFKA_IN_VENV": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.kafka
def test_before_the_venv_exists_status_sees_the_node_answer_on_its_port(
    kafka_bootstrap: str,
) -> None:
    managed_only()
    result = run_without_kafka_python("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "node 1: up" in result.stdout


def test_a_first_port_that_is_not_a_port_is_a_one_line_error() -> None:
    result = run_without_kafka_python("status", KAFKA_FIRST_PORT="90g2")
    assert result.returncode == 1
    assert (
        result.stderr
        == "scripts/kafka: error: KAFKA_FIRST_PORT='90g2': expected a port 1024-65000\n"
    )


@pytest.mark.kafka
def test_up_is_idempotent(kafka_bootstrap: str, kafka_script: KafkaScript) -> None:
    managed_only()
    result = kafka_script("up")
    assert result.returncode == 0, result.stderr
    assert "already up" in result.stderr
    assert result.stdout.splitlines()[-1] == kafka_bootstrap


@pytest.mark.kafka
@pytest.mark.disruptive
def test_stop_node_is_an_outage_and_start_node_keeps_data(
    kafka_bootstrap: str, kafka_script: KafkaScript, make_topic: Callable[..., str]
) -> None:
    managed_only()
    host, port = kafka_bootstrap.rsplit(":", 1)
    topic = make_topic(kafka_bootstrap, partitions=1, name="outage")
    sent = produce_numbered(kafka_bootstrap, topic, 50, 1)
    try:
        stopped = kafka_script("stop-node", "1")
        assert stopped.returncode == 0, stopped.stderr
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=5).close()
        status = kafka_script("status")
        assert status.returncode == 3
        assert "node 1: stopped" in status.stdout
    finally:
        started = kafka_script("start-node", "1")  # always restore the broker for later tests
    assert started.returncode == 0, started.stderr
    socket.create_connection((host, int(port)), timeout=5).close()
    assert kafka_script("status").returncode == 0
    assert consume_all(kafka_bootstrap, topic, 50) == sent


# --------------------------------------------------------------------------- three nodes


@pytest.mark.cluster
def test_cluster_replicated_topic(
    kafka_cluster: str, kafka_script: KafkaScript, create_topic: Callable[..., str]
) -> None:
    status = kafka_script("status")
    assert status.returncode == 0, status.stdout
    assert [f"node {i}: up" in status.stdout for i in (1, 2, 3)] == [True] * 3

    topic = create_topic(
        partitions=3,
        replication_factor=3,
        config={"min.insync.replicas": "2"},
        name="replicated",
        bootstrap=kafka_cluster,
    )
    rows = describe_partitions(kafka_script, kafka_cluster, topic)
    assert [r["Partition"] for r in rows] == ["0", "1", "2"]
    for row in rows:
        assert sorted(row["Replicas"].split(",")) == ["1", "2", "3"], row
        assert sorted(row["Isr"].split(",")) == ["1", "2", "3"], row

    sent = produce_numbered(kafka_cluster, topic, N_MESSAGES, 3)
    assert consume_all(kafka_cluster, topic, N_MESSAGES) == sent


@pytest.mark.cluster
def test_cluster_keeps_serving_with_one_node_stopped(
    kafka_cluster: str, kafka_script: KafkaScript, create_topic: Callable[..., str]
) -> None:
    topic = create_topic(
        replication_factor=3,
        config={"min.insync.replicas": "2"},
        name="failover",
        bootstrap=kafka_cluster,
    )
    before = produce_numbered(kafka_cluster, topic, 100, 1, prefix="before")
    try:
        assert kafka_script("stop-node", "3").returncode == 0
        during = produce_numbered(kafka_cluster, topic, 100, 1, prefix="during")  # ISR of 2
    finally:
        started = kafka_script("start-node", "3")
    assert started.returncode == 0, started.stderr
    assert consume_all(kafka_cluster, topic, 200) == {0: before[0] + during[0]}
