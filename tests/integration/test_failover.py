"""Three-node failover: the partition leader stops mid-run; the SQLite sink ends up with every
metric the agent gathered, each once, and Kafka itself holds no duplicate."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from line_protocol_parser import parse_line

from tests.integration.agent_process import AgentProcess, read_records, toml_brokers
from tests.integration.test_sink import SinkProcess, lines, produce, stored_rows, time_text

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]


def leader_of(bootstrap: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="failover-test")
    try:
        (description,) = admin.describe_topics([topic])
        return description["partitions"][0]["leader_id"]
    finally:
        admin.close()


def stored_identities(db) -> list[tuple]:
    """The cpu points of the sink's SQLite store (none before its first batch)."""
    query = "SELECT 'cpu', t.cpu, c.time FROM cpu c JOIN cpu_tag t USING (tag_id)"
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(query).fetchall()
    except sqlite3.OperationalError:  # no cpu table yet
        return []


def gathered_identities(path) -> list[tuple]:
    metrics = [parse_line(line) for line in path.read_text().splitlines()]
    return [(m["measurement"], m["tags"]["cpu"], time_text(m["time"])) for m in metrics]


def test_leader_stopped_mid_run_loses_nothing_and_the_sink_stores_nothing_twice(
    tmp_path, kafka_cluster, create_topic, kafka_script
):
    topic = create_topic(
        replication_factor=3,
        config={"min.insync.replicas": "2"},
        name="failover",
        bootstrap=kafka_cluster,
    )
    brokers = toml_brokers(kafka_cluster)
    gathered, db = tmp_path / "gathered.lp", tmp_path / "sink.db"
    agent_config = f"""
[agent]
  interval = "1s"
  flush_interval = "1s"
[[inputs.cpu]]
  percpu = false
[[outputs.kafka]]
  brokers = [{brokers}]
  topic = "{topic}"
[[outputs.file]]
  files = ["{gathered}"]
"""
    sink_config = f"""
brokers = [{brokers}]
topics = ["{topic}"]
group = "failover-sink"
from_beginning = true
store = "sqlite:{db}"
flush_interval = "200ms"
"""
    agent_dir, sink_dir = tmp_path / "agent", tmp_path / "sink"
    agent_dir.mkdir(), sink_dir.mkdir()
    with (
        AgentProcess(agent_config, agent_dir) as agent,
        AgentProcess(sink_config, sink_dir, subcommand="sink") as sink,
    ):
        agent.wait_for_log("Outputs: ")
        time.sleep(4)
        leader = leader_of(kafka_cluster, topic)
        stopped = kafka_script("stop-node", str(leader))
        assert stopped.returncode == 0, stopped.stderr
        try:
            time.sleep(8)
        finally:
            started = kafka_script("start-node", str(leader))
        assert started.returncode == 0, started.stderr
        time.sleep(3)
        assert agent.stop() == 0
        expected = gathered_identities(gathered)
        deadline = time.monotonic() + 60
        while len(stored_identities(db)) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sink.stop() == 0
    assert len(expected) >= 12
    stored = stored_identities(db)
    assert Counter(stored) == Counter(expected)  # every metric, each once
    on_kafka = [r.value for r in read_records(kafka_cluster, topic, timeout=30)]
    assert len(on_kafka) == len(expected)  # the idempotent producer wrote no duplicate
    assert leader_of(kafka_cluster, topic) != -1


def replicas_of(bootstrap: str, topic: str) -> list[int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="failover-test")
    try:
        (description,) = admin.describe_topics([topic])
        return list(description["partitions"][0]["replica_nodes"])
    finally:
        admin.close()


def move_leader(bootstrap: str, topic: str, away_from: int) -> None:
    """Take the partition off its leader's broker (the other replicas keep it, and one of
    them leads); every broker stays up."""
    replicas = replicas_of(bootstrap, topic)
    order = [node for node in replicas if node != away_from]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="failover-test")
    try:
        admin.alter_partition_reassignments({TopicPartition(topic, 0): order})
        deadline = time.monotonic() + 30
        while replicas_of(bootstrap, topic) != order:
            assert time.monotonic() < deadline, "the reassignment did not finish"
            time.sleep(0.2)
        admin.elect_leaders(0, {topic: [0]})  # 0: the preferred replica
    finally:
        admin.close()
    deadline = time.monotonic() + 30
    while leader_of(bootstrap, topic) != order[0]:
        assert time.monotonic() < deadline, "the preferred replica was not elected"
        time.sleep(0.2)


def test_a_leader_moved_while_every_broker_stays_up_is_followed_by_the_sink(
    tmp_path, kafka_cluster, create_topic
):
    topic = create_topic(replication_factor=3, name="leader-move", bootstrap=kafka_cluster)
    db = tmp_path / "sink.db"
    produce(kafka_cluster, topic, lines(40))
    sink = SinkProcess(
        tmp_path,
        kafka_cluster,
        f"--topic {topic} --group leader-move --from-beginning --store sqlite:{db}"
        " --flush-interval 100ms",
    )
    try:
        wait_for_rows(db, 40, sink)
        move_leader(kafka_cluster, topic, away_from=leader_of(kafka_cluster, topic))
        produce(kafka_cluster, topic, lines(40, start=40))
        wait_for_rows(db, 80, sink)
        assert sink.stop() == 0, sink.log()
    finally:
        sink.kill()
    assert [row[2] for row in stored_rows(db)] == list(range(80))  # each once, none lost
    # The old leader no longer has the partition: the fetcher asked for metadata again.
    assert "Error; trying again" in sink.log()
    assert "fetching again" in sink.log()


def wait_for_rows(db, count: int, sink: SinkProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(stored_identities(db)) < count:
        assert sink.process.poll() is None, sink.log()
        assert time.monotonic() < deadline, f"fewer than {count} rows:\n{sink.log()}"
        time.sleep(0.2)
