"""The disk buffer on a disk that fills up, with the agent as a process and the real broker:
the agent says once that the disk is full and once that it has room again, counts exactly
the metrics it could not keep as dropped, keeps delivering, and stops on SIGTERM.

The buffer lives on a 1 MB tmpfs (mounting one needs root: the test is skipped, saying so,
without it); a file input gathers 3,000 metrics every 2 s.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.conftest import fill_disk
from tests.integration.agent_process import AgentProcess, read_records, toml_brokers

pytestmark = [pytest.mark.kafka]

METRICS_PER_GATHER = 3000
FULL = ": no room left on its disk ("
ROOM_AGAIN = ": room on its disk again; new metrics are kept"


def config(bootstrap: str, topic: str, buffer_directory, metrics_file) -> str:
    return f"""
[agent]
  hostname = "full-disk"
  interval = "2s"
  flush_interval = "1s"
  metric_buffer_limit = 100000
  buffer_strategy = "disk"
  buffer_directory = "{buffer_directory}"
[[inputs.file]]
  files = ["{metrics_file}"]
  data_format = "influx"
[[outputs.kafka]]
  brokers = [{toml_brokers(bootstrap)}]
  topic = "{topic}"
"""


def record_count(bootstrap: str, topic: str) -> int:
    return len(read_records(bootstrap, topic, timeout=30))


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def closing_count(counter: str, log: str) -> int:
    """A counter of the agent's closing line "Metrics gathered: N, written: N, dropped: N"."""
    (line,) = [line for line in log.splitlines() if "Metrics gathered:" in line]
    return int(line.split(f"{counter}: ")[1].split(",")[0])


def test_a_full_disk_under_the_disk_buffer_is_said_once_counted_exactly_and_delivery_goes_on(
    small_tmpfs, tmp_path, kafka_bootstrap, create_topic
):
    topic = create_topic(name="full-disk")
    metrics_file = tmp_path / "metrics.lp"
    metrics_file.write_text("".join(f"load,n={n} v=1i\n" for n in range(METRICS_PER_GATHER)))
    text = config(kafka_bootstrap, topic, small_tmpfs, metrics_file)
    with AgentProcess(text, tmp_path, "--debug") as agent:
        wait_until(lambda: record_count(kafka_bootstrap, topic) >= METRICS_PER_GATHER, 60,
                   "the first gather was not delivered")  # fmt: skip
        filler = fill_disk(small_tmpfs)
        agent.wait_for_log(FULL, timeout=30)
        time.sleep(5)  # two gathers or more come while the disk is full, and are refused
        filler.unlink()
        agent.wait_for_log(ROOM_AGAIN, timeout=30)
        delivered_when_room_came = record_count(kafka_bootstrap, topic)
        wait_until(
            lambda: (
                record_count(kafka_bootstrap, topic)
                >= delivered_when_room_came + METRICS_PER_GATHER
            ),
            60,
            "nothing was delivered after the disk had room again",
        )
        # SIGTERM stops it as always (the guard is generous; the final flush has 30 s).
        assert agent.stop(timeout=60) == 0
    log = agent.log()
    # Said once when the disk fills and once when it has room again, not once per gather.
    # (A broker slow to take the first gathers can make a short episode of its own before
    # the disk is filled: the lines alternate whatever happens.)
    said = [line for line in log.splitlines() if FULL in line or ROOM_AGAIN in line]
    assert said, log
    assert all(FULL in line for line in said[0::2]), said
    assert all(ROOM_AGAIN in line for line in said[1::2]) and len(said) % 2 == 0, said
    assert f"disk buffer {small_tmpfs}/kafka.db: no room left on its disk (" in said[0]
    assert "Wrote batch of 0 metrics" not in log
    assert "Traceback" not in log and "raised an exception" not in log
    gathered, written = closing_count("gathered", log), closing_count("written", log)
    dropped = closing_count("dropped", log)
    assert dropped > 0 and dropped % METRICS_PER_GATHER == 0  # whole gathers, none half-kept
    assert gathered == written + dropped
    assert record_count(kafka_bootstrap, topic) == written
    with sqlite3.connect(small_tmpfs / "kafka.db") as buffer_file:
        assert buffer_file.execute("SELECT COUNT(*) FROM buffer").fetchone()[0] == 0
