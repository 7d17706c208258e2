"""Three-node failover: the partition leader stops mid-run; the SQLite sink ends up with every
metric the agent gathered, each once, and Kafka itself holds no duplicate."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

import pytest
from kafka.admin import KafkaAdminClient
from line_protocol_parser import parse_line

from tests.integration.agent_process import AgentProcess, read_records, toml_brokers
from tests.integration.test_sink import time_text

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
