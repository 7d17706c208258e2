"""outputs.kafka against a real broker: delivery, codecs, routing, topics, the daemon's life."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaConsumer
from line_protocol_parser import parse_line

from tests.integration.agent_process import (
    AgentProcess,
    log_segments,
    parse_records,
    read_records,
    toml_brokers,
    wait_for_records,
)

pytestmark = pytest.mark.kafka


def kafka_config(bootstrap: str, topic: str, extra: str = "", flush_interval: str = "1s") -> str:
    brokers = toml_brokers(bootstrap)
    return f"""
[agent]
  hostname = "test-host"
  interval = "1s"
  flush_interval = "{flush_interval}"
[[inputs.cpu]]
  percpu = false
[[inputs.mem]]
[[outputs.kafka]]
  brokers = [{brokers}]
  topic = "{topic}"
  {extra}
"""


def run_once(tmp_path, config: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "once.toml").write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(tmp_path / "once.toml"), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_once_delivers_cpu_and_mem_as_line_protocol_one_metric_per_record(
    tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="once")
    result = run_once(tmp_path, kafka_config(kafka_bootstrap, topic))
    assert result.returncode == 0, result.stderr
    metrics = parse_records(read_records(kafka_bootstrap, topic))
    assert sorted(m["measurement"] for m in metrics) == ["cpu", "mem"]
    cpu = next(m for m in metrics if m["measurement"] == "cpu")
    assert cpu["tags"] == {"cpu": "cpu-total", "host": "test-host"}
    assert sum(cpu["fields"].values()) == pytest.approx(100)


def test_records_carry_no_key_and_the_metric_time_by_default(
    tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="key")
    assert run_once(tmp_path, kafka_config(kafka_bootstrap, topic)).returncode == 0
    records = read_records(kafka_bootstrap, topic)
    for record, metric in zip(records, parse_records(records), strict=True):
        assert record.key is None
        assert record.timestamp == metric["time"] // 1_000_000


@pytest.mark.parametrize(("codec", "name"), [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")])
def test_each_compression_codec_is_applied_on_the_broker(
    tmp_path, kafka_bootstrap, create_topic, kafka_script, codec, name
):
    topic = create_topic(name=f"codec-{name}")
    config = kafka_config(kafka_bootstrap, topic, f"compression_codec = {codec}")
    assert run_once(tmp_path, config).returncode == 0
    assert len(read_records(kafka_bootstrap, topic)) == 2
    (segment,) = log_segments(topic)
    dump = kafka_script("tool", "kafka-dump-log", "--files", str(segment), "--print-data-log")
    assert dump.returncode == 0, dump.stderr
    codecs = set(re.findall(r"compresscodec: (\w+)", dump.stdout))
    assert codecs == {name}, dump.stdout[:2000]


def test_codec_names_are_accepted_as_well_as_numbers(tmp_path, kafka_bootstrap, create_topic):
    topic = create_topic(name="codec-name")
    config = kafka_config(kafka_bootstrap, topic, 'compression_codec = "lz4"')
    assert run_once(tmp_path, config).returncode == 0
    assert len(read_records(kafka_bootstrap, topic)) == 2


def test_routing_tag_keys_each_record_by_the_host(tmp_path, kafka_bootstrap, create_topic):
    topic = create_topic(partitions=3, name="routing")
    config = kafka_config(kafka_bootstrap, topic, 'routing_tag = "host"')
    assert run_once(tmp_path, config).returncode == 0
    records = read_records(kafka_bootstrap, topic)
    assert [r.key for r in records] == [b"test-host", b"test-host"]
    assert len({r.partition for r in records}) == 1  # one host's metrics stay in order


def test_routing_key_sets_a_constant_key(tmp_path, kafka_bootstrap, create_topic):
    topic = create_topic(name="routing-key")
    config = kafka_config(kafka_bootstrap, topic, 'routing_key = "fleet-a"')
    assert run_once(tmp_path, config).returncode == 0
    assert {r.key for r in read_records(kafka_bootstrap, topic)} == {b"fleet-a"}


def test_topic_suffix_by_measurement_routes_to_per_measurement_topics(
    tmp_path, kafka_bootstrap, create_topic
):
    base = create_topic(name="suffix")
    suffix = '[outputs.kafka.topic_suffix]\n  method = "measurement"\n  separator = "_"'
    assert run_once(tmp_path, kafka_config(kafka_bootstrap, base, suffix)).returncode == 0
    for measurement in ("cpu", "mem"):
        metrics = parse_records(wait_for_records(kafka_bootstrap, f"{base}_{measurement}", 1))
        assert [m["measurement"] for m in metrics] == [measurement]
    assert read_records(kafka_bootstrap, base) == []


def test_topic_tag_picks_the_topic_and_exclude_topic_tag_removes_it(
    tmp_path, kafka_bootstrap, create_topic
):
    base = create_topic(name="tagged")
    routed = create_topic(name="routed")
    config = kafka_config(
        kafka_bootstrap, base, 'topic_tag = "dest"\n  exclude_topic_tag = true'
    ).replace("[[inputs.mem]]", f'[[inputs.mem]]\n  [inputs.mem.tags]\n    dest = "{routed}"')
    assert run_once(tmp_path, config).returncode == 0
    (mem,) = parse_records(read_records(kafka_bootstrap, routed))
    assert mem["measurement"] == "mem" and "dest" not in mem["tags"]
    assert [m["measurement"] for m in parse_records(read_records(kafka_bootstrap, base))] == ["cpu"]


def test_json_data_format_writes_telegrafs_json(tmp_path, kafka_bootstrap, create_topic):
    import json

    topic = create_topic(name="json")
    config = kafka_config(kafka_bootstrap, topic, 'data_format = "json"')
    assert run_once(tmp_path, config).returncode == 0
    documents = [json.loads(r.value) for r in read_records(kafka_bootstrap, topic)]
    assert sorted(d["name"] for d in documents) == ["cpu", "mem"]
    assert all(list(d) == ["fields", "name", "tags", "timestamp"] for d in documents)


def test_metric_larger_than_max_message_bytes_is_dropped_with_its_name(
    tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="too-big")
    config = kafka_config(kafka_bootstrap, topic, "max_message_bytes = 500")
    result = run_once(tmp_path, config)
    metrics = parse_records(read_records(kafka_bootstrap, topic))
    assert [m["measurement"] for m in metrics] == ["cpu"]  # the ~900-byte mem line is dropped
    assert "Dropped metric mem" in result.stderr and "max_message_bytes (500)" in result.stderr


def test_kcat_and_the_console_consumer_read_what_the_agent_wrote(
    tmp_path, kafka_bootstrap, create_topic, kafka_script
):
    topic = create_topic(name="readers")
    assert run_once(tmp_path, kafka_config(kafka_bootstrap, topic)).returncode == 0
    expected = sorted(r.value.decode().rstrip("\n") for r in read_records(kafka_bootstrap, topic))
    kcat = subprocess.run(
        ["kcat", "-C", "-b", kafka_bootstrap, "-t", topic, "-e", "-q", "-D", ""],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert sorted(kcat.stdout.splitlines()) == expected
    console = kafka_script(
        "tool", "kafka-console-consumer", "--bootstrap-server", kafka_bootstrap,
        "--topic", topic, "--from-beginning", "--max-messages", "2",
    )  # fmt: skip
    assert sorted(line for line in console.stdout.splitlines() if line) == expected


def cpu_seconds(metrics: list[dict]) -> list[int]:
    return sorted(m["time"] // 1_000_000_000 for m in metrics if m["measurement"] == "cpu")


def test_daemon_delivers_one_cpu_total_metric_per_second_and_sigterm_loses_nothing(
    tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="daemon")
    config = kafka_config(kafka_bootstrap, topic, flush_interval="30s")
    with AgentProcess(config, tmp_path) as agent:
        agent.wait_for_log("Outputs: kafka")
        time.sleep(6)
        # Nothing has been flushed yet (flush_interval 30s): all of it rides on the stop.
        assert agent.stop(signal.SIGTERM) == 0
    log = agent.log()
    metrics = parse_records(read_records(kafka_bootstrap, topic))
    seconds = cpu_seconds(metrics)
    assert len(seconds) >= 4
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds)))  # no gap, none twice
    gathered = int(log.split("Metrics gathered: ")[1].split(",")[0])
    assert len(metrics) == gathered
    assert "could not be delivered" not in log


def test_sigint_stops_the_daemon_cleanly_too(tmp_path, kafka_bootstrap, create_topic):
    topic = create_topic(name="sigint")
    with AgentProcess(kafka_config(kafka_bootstrap, topic), tmp_path) as agent:
        agent.wait_for_log("Outputs: kafka")
        time.sleep(2.5)
        assert agent.stop(signal.SIGINT) == 0
    assert "Received SIGINT" in agent.log() and "Stopped" in agent.log()


def test_unreachable_broker_at_start_buffers_and_logs_once_per_flush(tmp_path):
    config = kafka_config("127.0.0.1:9", "nowhere", flush_interval="2s")
    with AgentProcess(config, tmp_path) as agent:
        agent.wait_for_log("Outputs: kafka")
        time.sleep(9)
        assert agent.process.poll() is None  # still gathering
        assert agent.stop(timeout=90) == 0
    errors = [line for line in agent.log().splitlines() if " E! [outputs.kafka]" in line]
    gathered = int(agent.log().split("Metrics gathered: ")[1].split(",")[0])
    assert gathered >= 10
    assert 1 <= len(errors) <= 8, "\n".join(errors)  # per flush, not per metric
    assert "metrics stay buffered" in errors[0]


def test_sighup_reloads_the_config_and_a_broken_one_keeps_the_old(
    tmp_path, kafka_bootstrap, create_topic
):
    first, second = create_topic(name="before-hup"), create_topic(name="after-hup")
    with AgentProcess(kafka_config(kafka_bootstrap, first), tmp_path) as agent:
        agent.wait_for_log("Outputs: kafka")
        agent.config.write_text("[[inputs.cpu]\n")  # broken
        agent.send(signal.SIGHUP)
        agent.wait_for_log("Config reload failed")
        assert wait_for_records(kafka_bootstrap, first, 2)
        agent.config.write_text(kafka_config(kafka_bootstrap, second))
        agent.send(signal.SIGHUP)
        assert wait_for_records(kafka_bootstrap, second, 2, timeout=30)
        assert agent.stop() == 0
    assert agent.log().count("Outputs: kafka") == 2


@pytest.mark.disruptive
def test_agent_started_while_the_broker_is_down_delivers_everything_once_it_is_back(
    tmp_path, kafka_bootstrap, create_topic, kafka_script
):
    topic = create_topic(name="late-broker")
    assert kafka_script("stop-node", "1").returncode == 0
    try:
        config = kafka_config(kafka_bootstrap, topic)
        with AgentProcess(config, tmp_path, "--debug") as agent:
            agent.wait_for_log("Outputs: kafka")
            agent.wait_for_log("E! [outputs.kafka] Write failed", timeout=30)
            time.sleep(3)
            started = kafka_script("start-node", "1")
            assert started.returncode == 0, started.stderr
            deadline = time.monotonic() + 60
            while "Batch written" not in agent.log() and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(2)
            assert agent.stop() == 0
    finally:
        kafka_script("start-node", "1")
    metrics = parse_records(read_records(kafka_bootstrap, topic))
    seconds = cpu_seconds(metrics)
    assert len(seconds) >= 6
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds)))
    gathered = int(agent.log().split("Metrics gathered: ")[1].split(",")[0])
    assert len(metrics) == gathered


def test_use_batch_format_puts_the_metrics_of_a_write_in_one_record(
    tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="batch")
    config = kafka_config(kafka_bootstrap, topic, "use_batch_format = true").replace(
        "percpu = false", "percpu = true"
    )
    assert run_once(tmp_path, config).returncode == 0
    (record,) = read_records(kafka_bootstrap, topic)
    lines = record.value.decode().splitlines()
    assert len(lines) >= 4  # cpu0, cpu1…, cpu-total, mem
    assert [parse_line(line)["measurement"] for line in lines].count("mem") == 1


def test_use_batch_format_splits_records_at_max_message_bytes_and_drops_nothing(
    tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="batch-split")
    extra = "use_batch_format = true\n  max_message_bytes = 1000"
    config = kafka_config(kafka_bootstrap, topic, extra).replace("percpu = false", "percpu = true")
    result = run_once(tmp_path, config)
    assert result.returncode == 0, result.stderr
    records = read_records(kafka_bootstrap, topic)
    assert len(records) >= 2
    assert all(len(record.value) <= 1000 for record in records)
    lines = [line for r in records for line in r.value.decode().splitlines()]
    measurements = [parse_line(line)["measurement"] for line in lines]
    assert measurements.count("mem") == 1 and measurements.count("cpu") >= 3


def test_use_batch_format_with_json_writes_a_metrics_array(tmp_path, kafka_bootstrap, create_topic):
    import json

    topic = create_topic(name="batch-json")
    extra = 'use_batch_format = true\n  data_format = "json"'
    assert run_once(tmp_path, kafka_config(kafka_bootstrap, topic, extra)).returncode == 0
    (record,) = read_records(kafka_bootstrap, topic)
    document = json.loads(record.value)
    assert sorted(m["name"] for m in document["metrics"]) == ["cpu", "mem"]


def secure_config(secure, topic: str, **overrides: str) -> str:
    options = {
        "tls_ca": f'"{secure.ca}"',
        "sasl_mechanism": '"SCRAM-SHA-512"',
        "sasl_username": f'"{secure.username}"',
        "sasl_password": '"${KAFKA_TEST_PASSWORD}"',
        **overrides,
    }
    extra = "\n  ".join(f"{key} = {value}" for key, value in options.items())
    return kafka_config(secure.bootstrap, topic, extra)


def run_once_with_password(tmp_path, config: str, password: str):
    (tmp_path / "once.toml").write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(tmp_path / "once.toml"), "--once",
         "--debug"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KAFKA_TEST_PASSWORD": password},
    )  # fmt: skip


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_with_the_right_credentials_delivers(tmp_path, kafka_secure, mechanism):
    topic = f"secure-{mechanism.lower()}-{uuid.uuid4().hex[:8]}"
    config = secure_config(kafka_secure, topic, sasl_mechanism=f'"{mechanism}"')
    result = run_once_with_password(tmp_path, config, kafka_secure.password)
    assert result.returncode == 0, result.stderr
    consumer = KafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
        **kafka_secure.kafka_python_config(mechanism),
    )
    values = [record.value for _, record in zip(range(2), consumer, strict=False)]
    consumer.close()
    assert len(values) == 2
    assert kafka_secure.password not in result.stderr


def test_wrong_password_fails_with_one_clear_error_and_no_secret(tmp_path, kafka_secure):
    config = secure_config(kafka_secure, "secure-wrong-password")
    result = run_once_with_password(tmp_path, config, "not-the-password-42")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " E! " in line]
    assert len(errors) == 1, result.stderr
    assert "SASL SCRAM-SHA-512 login as 'agent' refused" in errors[0]
    assert "Traceback" not in result.stderr
    assert "not-the-password-42" not in result.stderr


def test_wrong_ca_fails_with_one_clear_error(tmp_path, kafka_secure):
    config = secure_config(kafka_secure, "secure-wrong-ca", tls_ca=f'"{kafka_secure.other_ca}"')
    result = run_once_with_password(tmp_path, config, kafka_secure.password)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " E! " in line]
    assert len(errors) == 1, result.stderr
    assert f"TLS handshake with {kafka_secure.bootstrap} failed" in errors[0]
    assert "certificate verify failed" in errors[0]
    assert "Traceback" not in result.stderr


def test_use_batch_format_records_are_stored_by_the_sink_metric_by_metric(
    tmp_path, kafka_bootstrap, create_topic
):
    import sqlite3

    topic = create_topic(name="batch-sink")
    extra = "use_batch_format = true\n  max_message_bytes = 1500"
    config = kafka_config(kafka_bootstrap, topic, extra).replace("percpu = false", "percpu = true")
    # Nanosecond timestamps: three runs never share a metric identity, each line is new.
    config = config.replace('interval = "1s"', 'interval = "1s"\n  precision = "1ns"', 1)
    for _ in range(3):
        assert run_once(tmp_path, config).returncode == 0
    records = read_records(kafka_bootstrap, topic)
    lines = [line for record in records for line in record.value.decode().splitlines()]
    assert len(records) < len(lines)
    db = tmp_path / "sink.db"
    sink = subprocess.run(
        [sys.executable, "-m", "agent", "sink", "--brokers", kafka_bootstrap, "--topic", topic,
         "--from-beginning", "--store", f"sqlite:{db}", "--timeout-ms", "3000"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert sink.returncode == 0, sink.stderr
    with sqlite3.connect(db) as connection:
        points = "SELECT (SELECT count(*) FROM cpu) + (SELECT count(*) FROM mem)"
        assert connection.execute(points).fetchone()[0] == len(lines)


@pytest.mark.parametrize("batch_format", ["false", "true"])
def test_many_batches_written_three_at_a_time_arrive_each_exactly_once(
    tmp_path, kafka_bootstrap, create_topic, batch_format
):
    """metric_batch_size 100 for 3,000 lines: thirty writes, up to three on their way at once
    (the next one sent before the one before is acknowledged)."""
    topic = create_topic(name="window", partitions=2)
    lines = [f"m,host=h{n % 7} n={n}i,x={n}.5 {(1_700_000_000 + n) * 10**9}" for n in range(3000)]
    (tmp_path / "lines.lp").write_text("\n".join(lines) + "\n")
    config = f"""
[agent]
  metric_batch_size = 100
  metric_buffer_limit = 10000
[[inputs.file]]
  files = ["{tmp_path / "lines.lp"}"]
  data_format = "influx"
[[outputs.kafka]]
  brokers = [{toml_brokers(kafka_bootstrap)}]
  topic = "{topic}"
  use_batch_format = {batch_format}
"""
    result = run_once(tmp_path, config)
    assert result.returncode == 0, result.stderr
    records = read_records(kafka_bootstrap, topic)
    received = [line for record in records for line in record.value.decode().splitlines()]
    assert sorted(received) == sorted(lines)
    assert len(records) == (3000 if batch_format == "false" else 30)
