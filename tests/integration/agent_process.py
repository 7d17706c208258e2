"""Running the agent as a real process in integration tests, and reading what reached Kafka."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from line_protocol_parser import parse_line

from tests.conftest import REPO
from tests.integration.kafka_layout import STATE_FILE


def toml_brokers(bootstrap: str) -> str:
    """`"a:9092", "b:9094"` for a TOML `brokers = [...]` from a bootstrap string."""
    return ", ".join(f'"{address}"' for address in bootstrap.split(","))


class AgentProcess:
    """`python -m agent [SUBCOMMAND] -config FILE ARGS…` in the background, stderr kept in a
    file (`subcommand="sink"` runs the sink)."""

    def __init__(self, config_text: str, directory: Path, *args: str, subcommand: str = "") -> None:
        name = subcommand or "agent"
        self.config = directory / f"{name}.toml"
        self.config.write_text(config_text)
        self.stderr_path = directory / f"{name}.stderr"
        # An agent run before this one in the same directory left its log in the same file:
        # this process's log starts after it.
        self.log_starts_at = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        self.subcommand = [subcommand] if subcommand else []
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    *self.subcommand,
                    "-config",
                    str(self.config),
                    *self.args,
                ],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        return self

    def send(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send `signum` and wait for the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)

    def log(self) -> str:
        with open(self.stderr_path, "rb") as stderr:
            stderr.seek(self.log_starts_at)
            return stderr.read().decode(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.process is not None and self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log()}"
            time.sleep(0.1)

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def read_records(bootstrap: str, topic: str, timeout: float = 10.0) -> list:
    """Every record on every partition of `topic`, from the start, without a consumer group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        records: list = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end in {timeout}s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def wait_for_records(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list:
    """Records of `topic` once there are at least `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_records(bootstrap, topic)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def parse_records(records: list) -> list[dict]:
    """Each record's value as line protocol (one metric per record, as Telegraf writes)."""
    metrics = []
    for record in records:
        text = record.value.decode()
        assert text.endswith("\n") and text.count("\n") == 1, text
        metrics.append(parse_line(text.rstrip("\n")))
    return metrics


def log_segments(topic: str, partition: int = 0) -> list[Path]:
    """The broker's log segment files of one partition (from scripts/kafka's state file)."""
    state = json.loads(STATE_FILE.read_text())
    data_dir = Path(state["data_dir"])
    return sorted(data_dir.glob(f"**/{topic}-{partition}/*.log"))
