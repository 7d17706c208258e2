"""No metric lost, none twice: broker outages, agent restarts and kills, buffer overflow.

Every test runs the agent with two outputs: Kafka, and a file that receives the same metrics.
The file is the record of what was gathered; what reached Kafka must be exactly that.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from tests.integration.agent_process import AgentProcess, read_records, toml_brokers

pytestmark = [pytest.mark.kafka, pytest.mark.disruptive]


def config(
    bootstrap: str,
    topic: str,
    gathered_file,
    *,
    buffer_directory=None,
    kafka_extra: str = "",
    extra_outputs: str = "",
) -> str:
    disk = (
        f'buffer_strategy = "disk"\n  buffer_directory = "{buffer_directory}"'
        if (buffer_directory)
        else ""
    )
    brokers = toml_brokers(bootstrap)
    counter = gathered_file.parent / "sequence"
    next_number = (
        f"sh -c 'n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); "
        f"echo $n > {counter}; echo sequence n=${{n}}i'"
    )
    return f"""
[agent]
  hostname = "no-loss"
  interval = "1s"
  flush_interval = "1s"
  {disk}
[[inputs.cpu]]
  percpu = false
[[inputs.exec]]
  ## A gap-visible sequence: each gather prints the next number (kept in a file across runs).
  commands = ["{next_number}"]
  data_format = "influx"
[[outputs.kafka]]
  brokers = [{brokers}]
  topic = "{topic}"
  namedrop = ["internal*"]
  {kafka_extra}
[[outputs.file]]
  files = ["{gathered_file}"]
  namedrop = ["internal*"]
{extra_outputs}
"""


def kafka_lines(bootstrap: str, topic: str) -> list[str]:
    return [r.value.decode() for r in read_records(bootstrap, topic, timeout=30)]


def file_lines(path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def assert_whole_sequence(lines: list[str]) -> None:
    """The exec input's numbers: 1, 2, 3, … each once, none missing."""
    numbers = sorted(
        int(line.split(" n=")[1].split("i")[0]) for line in lines if line.startswith("sequence,")
    )
    assert numbers, "no sequence metric arrived"
    assert numbers == list(range(1, len(numbers) + 1)), numbers


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


@pytest.fixture
def broker_down(kafka_bootstrap, kafka_script):
    """Stops the broker for the test; it is started again at the end whatever happens."""

    def stop() -> None:
        result = kafka_script("stop-node", "1")
        assert result.returncode == 0, result.stderr

    def start() -> None:
        result = kafka_script("start-node", "1")
        assert result.returncode == 0, result.stderr

    yield stop, start
    kafka_script("start-node", "1")


def test_a_30s_broker_outage_loses_nothing_and_duplicates_nothing(
    tmp_path, kafka_bootstrap, create_topic, broker_down
):
    stop, start = broker_down
    topic, gathered = create_topic(name="outage"), tmp_path / "gathered.lp"
    with AgentProcess(config(kafka_bootstrap, topic, gathered), tmp_path) as agent:
        agent.wait_for_log("Outputs: ")
        time.sleep(3)
        stop()
        time.sleep(30)
        start()
        wait_until(lambda: len(kafka_lines(kafka_bootstrap, topic)) >= len(file_lines(gathered)),
                   60, "the backlog was not delivered within 60 s")  # fmt: skip
        assert agent.stop() == 0
    delivered, expected = kafka_lines(kafka_bootstrap, topic), file_lines(gathered)
    assert len(expected) >= 30
    assert Counter(delivered) == Counter(expected)
    assert_whole_sequence(delivered)


def test_agent_restarted_while_the_broker_is_down_delivers_its_disk_buffer(
    tmp_path, kafka_bootstrap, create_topic, broker_down
):
    stop, start = broker_down
    topic, gathered = create_topic(name="restart"), tmp_path / "gathered.lp"
    text = config(kafka_bootstrap, topic, gathered, buffer_directory=tmp_path / "buffer")
    stop()
    with AgentProcess(text, tmp_path) as first:
        first.wait_for_log("Outputs: ")
        time.sleep(5)
        assert first.stop(signal.SIGTERM, timeout=90) == 0
    before_restart = len(file_lines(gathered))
    assert before_restart >= 3
    assert "could not be delivered before shutdown" in first.log()
    with AgentProcess(text, tmp_path) as second:
        second.wait_for_log("Outputs: ")
        time.sleep(3)
        start()
        wait_until(lambda: len(kafka_lines(kafka_bootstrap, topic)) >= len(file_lines(gathered)),
                   60, "the disk buffer was not delivered within 60 s")  # fmt: skip
        assert second.stop() == 0
    delivered = kafka_lines(kafka_bootstrap, topic)
    assert Counter(delivered) == Counter(file_lines(gathered))
    assert_whole_sequence(delivered)  # across the restart too


def test_sigkill_with_the_disk_buffer_loses_nothing_flushed_before_the_kill(
    tmp_path, kafka_bootstrap, create_topic
):
    topic, gathered = create_topic(name="sigkill"), tmp_path / "gathered.lp"
    # Kafka flushes rarely, the file every second: at the kill, Kafka has not been written to
    # yet and everything the file shows exists only in the disk buffer.
    text = config(
        kafka_bootstrap,
        topic,
        gathered,
        buffer_directory=tmp_path / "buffer",
        kafka_extra='flush_interval = "1h"',
    )
    with AgentProcess(text, tmp_path) as first:
        first.wait_for_log("Outputs: ")
        time.sleep(5)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    killed_with = file_lines(gathered)
    assert len(killed_with) >= 3
    assert kafka_lines(kafka_bootstrap, topic) == []
    with AgentProcess(text.replace('flush_interval = "1h"', ""), tmp_path) as second:
        second.wait_for_log("Outputs: ")
        wait_until(lambda: len(kafka_lines(kafka_bootstrap, topic)) >= len(killed_with), 30,
                   "the replayed disk buffer did not arrive")  # fmt: skip
        assert second.stop() == 0
    delivered = Counter(kafka_lines(kafka_bootstrap, topic))
    assert all(delivered[line] == 1 for line in killed_with)
    assert delivered == Counter(file_lines(gathered))


def test_buffer_overflow_drops_the_oldest_waiting_metrics_and_counts_exactly_them(
    tmp_path, kafka_bootstrap, create_topic, broker_down
):
    stop, start = broker_down
    topic, gathered = create_topic(name="overflow"), tmp_path / "gathered.lp"
    limit = 5
    # The disk buffer keeps what survived the overflow across a restart, so the overflow
    # happens entirely while the broker is down: the agent never connects, nothing is in
    # flight, and an overflow can only drop the oldest metrics.
    text = config(kafka_bootstrap, topic, gathered, buffer_directory=tmp_path / "buffer",
                  kafka_extra=f"metric_buffer_limit = {limit}")  # fmt: skip
    stop()
    with AgentProcess(text, tmp_path) as overflowing:
        overflowing.wait_for_log("Outputs: ")
        time.sleep(9)
        assert overflowing.stop(timeout=90) == 0
    gathered_while_down = file_lines(gathered)
    log = overflowing.log()
    dropped = overflow_drops(log)
    assert dropped == len(gathered_while_down) - limit >= 3
    # The agent's own counter (internal_write.metrics_dropped) says the same.
    assert shutdown_count("dropped", log) == dropped
    start()
    # The recovering agent has room for everything: what it delivers first is what the
    # overflow left, then what it gathered itself.
    roomy = text.replace(f"metric_buffer_limit = {limit}", "metric_buffer_limit = 10000")
    with AgentProcess(roomy, tmp_path) as recovering:
        recovering.wait_for_log("Outputs: ")
        wait_until(lambda: len(kafka_lines(kafka_bootstrap, topic)) >= limit + 3, 60,
                   "the surviving metrics were not delivered")  # fmt: skip
        assert recovering.stop() == 0
    assert overflow_drops(recovering.log()) == 0
    gathered_after = file_lines(gathered)[len(gathered_while_down) :]
    # Exactly the oldest were dropped; the newest `limit` and everything after, once, in order.
    assert kafka_lines(kafka_bootstrap, topic) == gathered_while_down[-limit:] + gathered_after


def shutdown_count(counter: str, log: str) -> int:
    """A counter of the agent's closing line "Metrics gathered: N, written: N, dropped: N"."""
    (line,) = [line for line in log.splitlines() if "Metrics gathered:" in line]
    return int(line.split(f"{counter}: ")[1].split(",")[0])


def overflow_drops(log: str) -> int:
    return sum(int(line.split("dropped the ")[1].split()[0]) for line in log.splitlines()
               if "Buffer full: dropped the " in line)  # fmt: skip
