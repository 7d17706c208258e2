"""`agent sink` against a real broker: printing, storing once, groups, lag, reset, rebalances.

Each test puts known line-protocol records on a fresh topic and runs the sink as a real
process (`python -m agent sink …`), as a user would.
"""

from __future__ import annotations

import datetime
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata

from bench.broker import create_and_await_topic
from tests.conftest import REPO
from tests.integration.agent_process import AgentProcess, toml_brokers

pytestmark = pytest.mark.kafka

T0 = 1_795_569_040_000_000_000
# Quick group changes: a member that dies is out after 6 s; members notice a join within 1 s.
FAST_GROUP = 'session_timeout_ms = 6000\nheartbeat_interval_ms = 1000\nflush_interval = "100ms"\n'


def lines(count: int, start: int = 0, name: str = "cpu") -> list[str]:
    """`count` distinct points, one line each, a microsecond apart (the stores keep times
    to the microsecond: points closer than that are one point)."""
    return [
        f"{name},cpu=cpu{i % 2},host=h{i % 3} usage_idle={i}.5,n={i}i {T0 + i * 1000}"
        for i in range(start, start + count)
    ]


def produce(
    bootstrap: str,
    topic: str,
    values: list[str],
    keys: list[str | None] | None = None,
    partitions: int = 1,
) -> None:
    """One record per value, spread round-robin over `partitions`, each value with a newline."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for index, value in enumerate(values):
            key = keys[index] if keys else None
            producer.send(
                topic,
                value=(value + "\n").encode(),
                key=key.encode() if key is not None else None,
                partition=index % partitions,
            )
        producer.flush(timeout=30)
    finally:
        producer.close()


def sink_argv(bootstrap: str, command: str) -> list[str]:
    """`agent sink [lag|reset] --brokers BOOTSTRAP FLAGS…` for a command such as
    "--topic t --group g" or "lag --group g" (test paths and names hold no spaces)."""
    words = command.split()
    subcommand = words[:1] if words[:1] in (["lag"], ["reset"]) else []
    flags = words[len(subcommand) :]
    return [sys.executable, "-m", "agent", "sink", *subcommand, "--brokers", bootstrap, *flags]


def sink(bootstrap: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `agent sink` to its end."""
    return subprocess.run(
        sink_argv(bootstrap, command),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


class SinkProcess:
    """`agent sink` in the background; stdout and stderr kept in files."""

    def __init__(self, directory: Path, bootstrap: str, command: str, ignore_sigint: bool = False):
        name = uuid.uuid4().hex[:8]
        self.out_path = directory / f"sink-{name}.out"
        self.err_path = directory / f"sink-{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                sink_argv(bootstrap, command),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                # As a process started in the background from a script: SIGINT ignored.
                preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
                if ignore_sigint
                else None,
            )

    def out(self) -> list[str]:
        return self.out_path.read_text().splitlines()

    def log(self) -> str:
        return self.err_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 30, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log()}"
            time.sleep(0.1)

    def wait_for_output(self, count: int, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.out()) < count:
            assert time.monotonic() < deadline, f"{len(self.out())} lines:\n{self.log()}"
            time.sleep(0.1)
        return self.out()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def sinks():
    """Start background sinks with `sinks(tmp_path, bootstrap, "FLAGS…")`; killed at the end."""
    started: list[SinkProcess] = []

    def start(*args, **kwargs) -> SinkProcess:
        process = SinkProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def group() -> str:
    return f"sink-test-{uuid.uuid4().hex[:10]}"


def config(tmp_path: Path, text: str = FAST_GROUP) -> str:
    path = tmp_path / f"sink-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(text)
    return str(path)


def stored(db: Path, query: str = "SELECT count(*) FROM cpu") -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchone()[0]


def stored_so_far(db: Path) -> int:
    """Rows stored by a sink still starting: its file may exist before its schema does."""
    try:
        return stored(db) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def stored_rows(db: Path) -> list[tuple]:
    """The cpu points of a SQLite store: host, cpu, n, usage_idle, time."""
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT t.host, t.cpu, c.n, c.usage_idle, c.time"
            " FROM cpu c JOIN cpu_tag t USING (tag_id) ORDER BY c.time"
        ).fetchall()


def time_text(time_ns: int) -> str:
    """A time as the stores' layout writes it in SQLite: UTC to the microsecond."""
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=time_ns // 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def table(text: str) -> list[dict[str, str]]:
    """Rows of a kafka-consumer-groups style table, by column name."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    header_index = next(i for i, row in enumerate(rows) if row[0] == "GROUP")
    header = rows[header_index]
    return [dict(zip(header, row, strict=True)) for row in rows[header_index + 1 :]]


def lag_rows(bootstrap: str, group: str) -> list[tuple[str, str, str, str]]:
    """`agent sink lag` of an inactive group: (PARTITION, CURRENT-OFFSET, LOG-END-OFFSET, LAG)."""
    result = sink(bootstrap, f"lag --group {group}")
    assert result.returncode == 0, result.stderr
    assert f"Consumer group '{group}' has no active members." in result.stdout
    columns = ("PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG")
    return [tuple(row[c] for c in columns) for row in table(result.stdout)]


def consumer_groups(kafka_script, bootstrap: str, flags: str) -> str:
    """What Kafka's own `kafka-consumer-groups --bootstrap-server BOOTSTRAP FLAGS…` prints."""
    command = f"--bootstrap-server {bootstrap} {flags}"
    result = kafka_script("tool", "kafka-consumer-groups", *command.split())
    assert result.returncode == 0, result.stderr
    return result.stdout


def groups_with_offsets_in(kafka_script, bootstrap: str, topic: str) -> list[str]:
    """Every consumer group on the broker that has committed offsets (or members) in `topic`,
    by Kafka's own `kafka-consumer-groups --describe --all-groups`."""
    described = consumer_groups(kafka_script, bootstrap, "--describe --all-groups")
    rows = [line.split() for line in described.splitlines()]
    return sorted({row[0] for row in rows if len(row) > 1 and row[1] == topic})


# -- printing -------------------------------------------------------------------------------


def test_prints_each_metric_then_exits_when_nothing_arrives_for_timeout_ms(
    kafka_bootstrap, create_topic
):
    topic = create_topic(name="sink-print")
    produce(kafka_bootstrap, topic, lines(5))
    result = sink(kafka_bootstrap, f"--topic {topic} --from-beginning --timeout-ms 1500")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines(5)
    assert "no message for 1500 ms; stopping" in result.stderr
    assert "processed a total of 5 messages" in result.stderr


def test_print_key_puts_the_key_or_null_and_the_separator_before_each_metric(
    kafka_bootstrap, create_topic
):
    topic = create_topic(name="sink-key")
    values = lines(3)
    produce(kafka_bootstrap, topic, values, keys=["0", "1", None])
    result = sink(
        kafka_bootstrap,
        f"--topic {topic} --from-beginning --timeout-ms 1500 --print-key --key-separator -",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"0-{values[0]}", f"1-{values[1]}", f"null-{values[2]}"]


def test_max_messages_stops_after_that_many_records(kafka_bootstrap, create_topic):
    topic = create_topic(name="sink-max")
    produce(kafka_bootstrap, topic, lines(10))
    result = sink(kafka_bootstrap, f"--topic {topic} --from-beginning --max-messages 3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines(3)


def commit_offsets(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for an inactive group, as kafka-consumer-groups --reset-offsets would
    (without its clamping to the log). A fresh broker makes its offsets topic on the first
    request for a coordinator: until then, it is asked again."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                admin.alter_group_offsets(
                    group, {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
                )
                return
            except CoordinatorNotAvailableError:
                assert time.monotonic() < deadline, "no group coordinator after 30 s"
                time.sleep(0.2)
    finally:
        admin.close()


@pytest.mark.parametrize(
    ("reset", "printed"), [("--from-beginning", lines(6)), ("", lines(2, start=6))]
)
def test_a_committed_offset_past_the_log_is_reset_as_auto_offset_reset_says(
    kafka_bootstrap, create_topic, group, sinks, tmp_path, reset, printed
):
    topic = create_topic(name="sink-range")
    produce(kafka_bootstrap, topic, lines(6))
    commit_offsets(kafka_bootstrap, group, {TopicPartition(topic, 0): 1000})
    process = sinks(tmp_path, kafka_bootstrap, f"--topic {topic} --group {group} {reset}")
    expected = "reading from the earliest" if reset else "reading from the latest"
    process.wait_for_log(f"{topic}[0]: offset 1000 is no longer in the log; {expected} offset")
    if not reset:  # read from the end: only what comes after
        produce(kafka_bootstrap, topic, lines(2, start=6))
    assert process.wait_for_output(len(printed)) == printed
    assert process.stop() == 0


def test_records_beyond_a_batch_are_fetched_again_for_the_next_one(
    kafka_bootstrap, create_topic, tmp_path
):
    topic = create_topic(name="sink-batches")
    produce(kafka_bootstrap, topic, lines(250))
    db = tmp_path / "metrics.db"
    result = sink(
        kafka_bootstrap,
        f"--topic {topic} --from-beginning --store sqlite:{db} --batch-size 7 --timeout-ms 1500",
    )
    assert result.returncode == 0, result.stderr
    assert [row[2] for row in stored_rows(db)] == list(range(250))


def test_a_topic_that_appears_after_the_sink_started_is_read_from_its_start(
    kafka_bootstrap, kafka_script, sinks, tmp_path
):
    topic = f"sink-late-{uuid.uuid4().hex[:10]}"
    late = sinks(tmp_path, kafka_bootstrap, f"--topic {topic} --max-messages 3")
    late.wait_for_log("not found yet")
    created = kafka_script("tool", "kafka-topics", "--bootstrap-server", kafka_bootstrap,
                           "--create", "--topic", topic, "--partitions", "1")  # fmt: skip
    assert created.returncode == 0, created.stderr
    produce(kafka_bootstrap, topic, lines(3))
    # Everything in a topic that did not exist at start is newer than the sink: none missed.
    assert late.process.wait(60) == 0, late.log()
    assert late.out() == lines(3)
    assert late.log().count("not found yet") == 1  # said once, not once a second


def topic_exists(bootstrap: str, topic: str) -> bool:
    """Whether the broker knows `topic`, asked in a way that never creates it (all topics)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sink-test-admin")
    try:
        return topic in admin.list_topics()
    finally:
        admin.close()


@pytest.mark.parametrize("grouped", [True, False], ids=["group", "no-group"])
def test_a_sink_waits_for_a_missing_topic_and_never_creates_it(
    kafka_bootstrap, sinks, tmp_path, group, grouped
):
    topic = f"sink-wait-{uuid.uuid4().hex[:10]}"
    in_group = f"-config {config(tmp_path)} --group {group}" if grouped else ""
    waiting = sinks(tmp_path, kafka_bootstrap, f"{in_group} --topic {topic} --from-beginning")
    waiting.wait_for_log(f"topic(s) {topic} not found yet; waiting")
    time.sleep(2.0)  # a sink that subscribes asks for the topic's metadata within a second
    assert not topic_exists(kafka_bootstrap, topic), waiting.log()
    # Created as the user wants it: three partitions, not the broker's default of one.
    create_and_await_topic(kafka_bootstrap, topic, partitions=3)
    if grouped:
        waiting.wait_for_log(f"partitions assigned: {topic}[0,1,2]")
    produce(kafka_bootstrap, topic, lines(30), partitions=3)
    assert sorted(waiting.wait_for_output(30)) == sorted(lines(30))
    assert waiting.log().count("not found yet") == 1
    assert "no partitions assigned" not in waiting.log()
    assert waiting.stop() == 0


def test_timeout_ms_ends_a_sink_on_an_empty_topic(kafka_bootstrap, create_topic, group):
    topic = create_topic(name="sink-empty")
    # A sink that did not stop would outlive the 20 s and fail the test (TimeoutExpired).
    result = sink(kafka_bootstrap, f"--topic {topic} --group {group} --timeout-ms 1000", 20)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_reads_telegraf_json_with_data_format_json(kafka_bootstrap, create_topic):
    topic = create_topic(name="sink-json")
    json_line = '{"fields":{"v":1.5},"name":"m","tags":{"h":"a"},"timestamp":2}'
    produce(kafka_bootstrap, topic, [json_line])
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --data-format json"
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["m,h=a v=1.5 2000000000"]


# Metrics of several kinds: float, integer, unsigned, boolean and string fields, a metric
# without a host tag; one second apart, so the JSON timestamps (in seconds) differ.
SEVERAL_KINDS = [
    f"cpu,cpu=cpu0,host=a usage_idle=98.5,usage_user=1.25 {T0}",
    f"mem,host=b total=8000000000u,used_percent=12.5,available=3i {T0 + 1_000_000_000}",
    f'disk,host=a,path=/ ok=true,mode="rw" {T0 + 2_000_000_000}',
    f"system load1=0.123456789 {T0 + 3_000_000_000}",
]


def test_format_json_prints_each_metric_as_telegraf_json(kafka_bootstrap, create_topic):
    topic = create_topic(name="sink-format-json")
    produce(kafka_bootstrap, topic, SEVERAL_KINDS)
    result = sink(
        kafka_bootstrap, f"--topic {topic} --from-beginning --timeout-ms 1500 --format json"
    )
    assert result.returncode == 0, result.stderr
    seconds = T0 // 1_000_000_000
    expected = [
        {
            "fields": {"usage_idle": 98.5, "usage_user": 1.25},
            "name": "cpu",
            "tags": {"cpu": "cpu0", "host": "a"},
            "timestamp": seconds,
        },
        {
            "fields": {"available": 3, "total": 8_000_000_000, "used_percent": 12.5},
            "name": "mem",
            "tags": {"host": "b"},
            "timestamp": seconds + 1,
        },
        {
            "fields": {"mode": "rw", "ok": True},
            "name": "disk",
            "tags": {"host": "a", "path": "/"},
            "timestamp": seconds + 2,
        },
        {"fields": {"load1": 0.123456789}, "name": "system", "tags": {}, "timestamp": seconds + 3},
    ]
    printed = result.stdout.splitlines()
    assert [json.loads(line) for line in printed] == expected
    # Telegraf's form: keys sorted at every level, no spaces.
    assert printed == [json.dumps(m, sort_keys=True, separators=(",", ":")) for m in expected]


def test_format_table_into_a_pipe_prints_a_header_then_one_plain_row_per_metric(
    kafka_bootstrap, create_topic
):
    topic = create_topic(name="sink-format-table")
    produce(kafka_bootstrap, topic, SEVERAL_KINDS)
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --format table"
    result = sink(kafka_bootstrap, command)  # stdout is a pipe, not a terminal
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout  # no cursor movement: nothing is redrawn in place
    rows = [tuple(line.split(maxsplit=4)) for line in result.stdout.splitlines()]
    # T0 is 2026-11-25 01:10:40 UTC.
    assert rows == [
        ("TIME", "HOST", "MEASUREMENT", "TAGS", "FIELDS"),
        ("01:10:40", "a", "cpu", "cpu=cpu0", "usage_idle=98.5 usage_user=1.25"),
        ("01:10:41", "b", "mem", "-", "total=8000000000 used_percent=12.5 available=3"),
        ("01:10:42", "a", "disk", "path=/", 'ok=true mode="rw"'),
        ("01:10:43", "-", "system", "-", "load1=0.123457"),
    ]


# A line whose measurement, tag and string field would act on a terminal: colour, clear the
# screen, write the clipboard (OSC 52).
HOSTILE_LINE = f'\x1b[31mred,host=a,t=\x1b[2J s="\x1b]52;c;aGk=\x07" {T0}'


def sink_on_a_terminal(bootstrap: str, command: str, timeout: float = 60) -> tuple[int, bytes]:
    """Run `agent sink` to its end with stdout on a pseudo-terminal: its status and what the
    terminal received."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            sink_argv(bootstrap, command),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.DEVNULL,
        )
        os.close(terminal)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the sink closed the terminal's last descriptor
                    break
                received += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=10), received
    finally:
        os.close(controller)


def test_format_table_into_a_pipe_shows_control_characters_from_the_topic_escaped(
    kafka_bootstrap, create_topic
):
    topic = create_topic(name="sink-escape-table")
    produce(kafka_bootstrap, topic, [HOSTILE_LINE])
    result = sink(
        kafka_bootstrap, f"--topic {topic} --from-beginning --timeout-ms 1500 --format table"
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    row = result.stdout.splitlines()[1].split()
    assert row[1:] == ["a", "\\x1b[31mred", "t=\\x1b[2J", 's="\\x1b]52;c;aGk=\\x07"']


def test_format_table_on_a_terminal_sends_no_control_character_from_the_topic(
    kafka_bootstrap, create_topic
):
    topic = create_topic(name="sink-escape-live")
    produce(kafka_bootstrap, topic, [HOSTILE_LINE])
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --format table"
    status, received = sink_on_a_terminal(kafka_bootstrap, command)
    assert status == 0
    screen = received.replace(b"\x1b[H\x1b[J", b"")  # the table's own redraw
    assert b"\x1b" not in screen and b"\x07" not in screen
    assert b"\\x1b[31mred" in screen and b"t=\\x1b[2J" in screen


def test_format_line_keeps_the_bytes_into_a_pipe_and_escapes_them_on_a_terminal(
    kafka_bootstrap, create_topic
):
    topic = create_topic(name="sink-escape-line")
    produce(kafka_bootstrap, topic, [HOSTILE_LINE])
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --format line"
    piped = sink(kafka_bootstrap, command)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == HOSTILE_LINE + "\n"
    status, received = sink_on_a_terminal(kafka_bootstrap, command)
    assert status == 0
    escaped = HOSTILE_LINE.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert received.decode() == escaped + "\r\n"


# -- storing --------------------------------------------------------------------------------


def test_stores_every_metric_once_and_a_record_of_several_lines_gives_several_metrics(
    kafka_bootstrap, create_topic, tmp_path
):
    topic = create_topic(name="sink-store", partitions=2)
    single = lines(100)
    multi = ["\n".join(lines(5, start=1000))]  # one record, five metrics
    produce(kafka_bootstrap, topic, single + multi, partitions=2)
    db = tmp_path / "metrics.db"
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --store sqlite:{db}"
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # storing prints nothing unless a --format is named
    assert stored(db) == 105
    assert stored(db, "SELECT count(*) FROM cpu WHERE n >= 1000") == 5
    assert stored_rows(db)[0] == ("h0", "cpu0", 0, 0.5, time_text(T0))


def test_stores_what_the_agent_itself_wrote(kafka_bootstrap, create_topic, tmp_path):
    topic = create_topic(name="sink-agent")
    agent_config = f"""
[agent]
  hostname = "sink-test-host"
[[inputs.cpu]]
  percpu = false
[[inputs.mem]]
[[outputs.kafka]]
  brokers = [{toml_brokers(kafka_bootstrap)}]
  topic = "{topic}"
"""
    agent = AgentProcess(agent_config, tmp_path, "--once")
    agent.start()
    assert agent.process is not None and agent.process.wait(120) == 0, agent.log()
    db = tmp_path / "agent.db"
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --store sqlite:{db}"
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT 'cpu', t.host, typeof(c.usage_idle) FROM cpu c JOIN cpu_tag t USING (tag_id)"
            " UNION ALL"
            " SELECT 'mem', t.host, typeof(m.total) FROM mem m JOIN mem_tag t USING (tag_id)"
        ).fetchall()
    assert rows == [("cpu", "sink-test-host", "real"), ("mem", "sink-test-host", "integer")]


def test_a_garbage_message_is_counted_logged_with_its_place_and_the_rest_stored(
    kafka_bootstrap, create_topic, tmp_path
):
    topic = create_topic(name="sink-garbage")
    good = lines(4)
    values = [good[0], "this is not line protocol", good[1], f"{good[2]}\ncpu value=\n{good[3]}"]
    produce(kafka_bootstrap, topic, values)
    db = tmp_path / "m.db"
    command = (
        f"--topic {topic} --from-beginning --timeout-ms 1500 --store sqlite:{db} --format line"
    )
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    assert stored(db) == 4
    assert result.stdout.splitlines() == good
    log = result.stderr
    place = f"E! [sink] topic {topic} partition 0 offset"
    assert f"{place} 1: not line protocol: line 1, column 8: expected '=' after field key" in log
    assert f"{place} 3: not line protocol: line 2, column 11: expected field value" in log
    assert "4 metrics kept (4 new), 2 invalid lines" in log


# Records no store or printer can hold, on a JSON topic: a timestamp past 64-bit nanoseconds
# (seconds), one nested deeper than Python's JSON reader goes, half a surrogate pair.
POISON_JSON = [
    '{"name":"y","tags":{},"fields":{"v":1},"timestamp":9300000000}',
    "[" * 1000 + "]" * 1000,
    '{"name":"s","tags":{},"fields":{"v":"\\ud800"},"timestamp":1}',
]


def test_records_no_store_or_printer_can_hold_are_logged_skipped_and_committed_past(
    kafka_bootstrap, create_topic, group, tmp_path
):
    topic = create_topic(name="sink-poison")
    values = ['{"name":"a","tags":{},"fields":{"v":1},"timestamp":1}', *POISON_JSON]
    values.append('{"name":"b","tags":{},"fields":{"v":2},"timestamp":2}')
    produce(kafka_bootstrap, topic, values)
    db = tmp_path / "m.db"
    command = (
        f"-config {config(tmp_path)} --topic {topic} --group {group} --from-beginning"
        f" --data-format json --store sqlite:{db} --format line --timeout-ms 1500"
    )
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines() == ["a v=1i 1000000000", "b v=2i 2000000000"]
    assert stored(db, "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)") == 2
    place = f"E! [sink] topic {topic} partition 0 offset"
    log = result.stderr
    assert f'{place} 1: not json: line 1, column 1: "timestamp": 9300000000 is outside' in log
    assert f"{place} 2: not json: line 1, column 1: not JSON this parser can read: nested" in log
    assert f"{place} 3: not json: line 1, column 1: \\ud800 is half of a surrogate pair" in log
    assert "2 metrics kept (2 new), 3 invalid lines" in log
    # Their offsets were committed with the good ones: a restart does not meet them again.
    again = sink(kafka_bootstrap, command)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert "processed a total of 0 messages" in again.stderr
    assert lag_rows(kafka_bootstrap, group) == [("0", "5", "5", "0")]


@pytest.mark.parametrize("print_format", ["line", "table"])
def test_an_influx_line_dated_2264_in_seconds_is_an_invalid_record_for_printers_too(
    kafka_bootstrap, create_topic, tmp_path, print_format
):
    topic = create_topic(name="sink-2264")
    produce(kafka_bootstrap, topic, ["a v=1 1795569040", "late v=2 9300000000", "b v=3 1795569041"])
    precision = config(tmp_path, 'influx_timestamp_precision = "1s"\n')
    command = (
        f"-config {precision} --topic {topic} --from-beginning --timeout-ms 1500"
        f" --format {print_format}"
    )
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    if print_format == "line":
        assert printed == ["a v=1 1795569040000000000", "b v=3 1795569041000000000"]
    else:
        assert [row.split()[2] for row in printed] == ["MEASUREMENT", "a", "b"]
    assert (
        f"topic {topic} partition 0 offset 1: not line protocol: line 1, column 10: timestamp out"
        " of range: 64-bit nanoseconds count from 1677-09-21 to 2262-04-11 UTC"
    ) in result.stderr
    assert "2 metrics kept (2 new), 1 invalid lines" in result.stderr


def test_the_readme_shows_the_schema_of_the_store_a_sink_creates(
    kafka_bootstrap, create_topic, tmp_path
):
    topic = create_topic(name="sink-schema")
    produce(
        kafka_bootstrap, topic, [f"cpu,cpu=cpu-total,host=vm usage_idle=98.5,usage_user=1 {T0}"]
    )
    db = tmp_path / "metrics.db"
    command = f"--topic {topic} --from-beginning --timeout-ms 1500 --store sqlite:{db}"
    result = sink(kafka_bootstrap, command)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        schema = [
            f"{sql};"  # as `sqlite3 metrics.db .schema` prints it
            for (sql,) in connection.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
            )
        ]
    assert [statement.split("(")[0] for statement in schema] == [
        "CREATE TABLE agent_sink_positions ",
        'CREATE TABLE "cpu" ',
        'CREATE TABLE "cpu_tag" ',
    ]
    readme = (REPO / "README.md").read_text()
    assert [statement for statement in schema if statement not in readme] == []


# -- groups ---------------------------------------------------------------------------------


def test_a_group_resumes_where_it_stopped_and_prints_nothing_twice(
    kafka_bootstrap, create_topic, group, tmp_path
):
    topic = create_topic(name="sink-resume", partitions=3)
    produce(kafka_bootstrap, topic, lines(30), partitions=3)
    db = tmp_path / "m.db"
    command = f"--topic {topic} --group {group} --from-beginning --store sqlite:{db} --format line"
    first = sink(kafka_bootstrap, f"{command} --max-messages 12")
    assert first.returncode == 0, first.stderr
    second = sink(kafka_bootstrap, f"{command} --timeout-ms 1500")
    assert second.returncode == 0, second.stderr
    printed = first.stdout.splitlines() + second.stdout.splitlines()
    assert len(first.stdout.splitlines()) == 12
    assert sorted(printed) == sorted(lines(30))
    assert stored(db) == 30


def test_two_groups_read_the_same_data_independently(kafka_bootstrap, create_topic, group):
    topic = create_topic(name="sink-groups", partitions=2)
    produce(kafka_bootstrap, topic, lines(10), partitions=2)
    for name in (f"{group}-1", f"{group}-2"):
        result = sink(
            kafka_bootstrap, f"--topic {topic} --group {name} --from-beginning --timeout-ms 1500"
        )
        assert result.returncode == 0, result.stderr
        assert sorted(result.stdout.splitlines()) == sorted(lines(10))


def test_without_a_group_the_sink_commits_no_offset_under_any_group(
    kafka_bootstrap, create_topic, group, kafka_script
):
    topic = create_topic(name="sink-anonymous", partitions=2)
    produce(kafka_bootstrap, topic, lines(6), partitions=2)
    anonymous = sink(kafka_bootstrap, f"--topic {topic} --from-beginning --timeout-ms 1500")
    assert anonymous.returncode == 0, anonymous.stderr
    assert sorted(anonymous.stdout.splitlines()) == sorted(lines(6))  # it had offsets to commit
    # Kafka's own view of every group on the broker: none has an offset in the topic.
    assert groups_with_offsets_in(kafka_script, kafka_bootstrap, topic) == []
    # The same check sees a sink that does commit: a run in a named group.
    named = sink(
        kafka_bootstrap, f"--topic {topic} --group {group} --from-beginning --timeout-ms 1500"
    )
    assert named.returncode == 0, named.stderr
    assert groups_with_offsets_in(kafka_script, kafka_bootstrap, topic) == [group]


def test_a_sink_killed_mid_stream_and_restarted_stores_every_metric_exactly_once(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    topic = create_topic(name="sink-kill", partitions=2)
    total = 20_000
    produce(kafka_bootstrap, topic, lines(total), partitions=2)
    db = tmp_path / "m.db"
    common = (
        f"-config {config(tmp_path)} --topic {topic} --from-beginning --store sqlite:{db} "
        "--batch-size 250"
    )
    first = sinks(tmp_path, kafka_bootstrap, f"{common} --group {group}")
    deadline = time.monotonic() + 60
    while stored_so_far(db) < 1000:
        assert first.process.poll() is None, first.log()
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.02)
    first.kill()  # SIGKILL: no flush, no commit, no goodbye to the group
    assert stored(db) < total
    second = sink(kafka_bootstrap, f"{common} --group {group} --timeout-ms 2000", timeout=120)
    assert second.returncode == 0, second.stderr
    assert stored(db) == total
    assert stored(db, "SELECT count(DISTINCT time) FROM cpu") == total
    # Everything delivered once more (without a group, the sink reads from the start; a
    # group would resume at the store's positions): nothing new.
    replay = sink(kafka_bootstrap, f"{common} --timeout-ms 1500", timeout=120)
    assert replay.returncode == 0, replay.stderr
    assert f"{total} metrics kept (0 new)" in replay.stderr
    assert stored(db) == total


def test_sigterm_and_sigint_keep_and_commit_what_the_sink_holds_then_exit_0(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    topic = create_topic(name="sink-term")
    produce(kafka_bootstrap, topic, lines(6))
    holding = config(tmp_path, FAST_GROUP.replace('"100ms"', '"60s"'))
    command = f"-config {holding} --topic {topic} --group {group} --from-beginning"
    for signum in (signal.SIGTERM, signal.SIGINT):
        process = sinks(tmp_path, kafka_bootstrap, command, ignore_sigint=True)
        process.wait_for_log("partitions assigned")
        time.sleep(1.5)  # polled, held (flush_interval 60s), not yet printed
        assert process.stop(signum) == 0, process.log()
        if signum == signal.SIGTERM:
            assert process.out() == lines(6)
        else:
            assert process.out() == []  # the group had committed everything: nothing new
    lag = sink(kafka_bootstrap, f"lag --group {group}")
    assert [row["LAG"] for row in table(lag.stdout)] == ["0"]


def test_a_rebalance_keeps_and_commits_the_pending_batch_before_partitions_move(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    topic = create_topic(name="sink-rebalance", partitions=2)
    produce(kafka_bootstrap, topic, lines(20), partitions=2)
    holding = config(tmp_path, FAST_GROUP.replace('"100ms"', '"60s"'))
    command = f"--topic {topic} --group {group} --from-beginning"
    first = sinks(tmp_path, kafka_bootstrap, f"-config {holding} {command}")
    first.wait_for_log(f"partitions assigned: {topic}[0,1]")
    time.sleep(1.5)  # the 20 records are polled and held
    assert first.out() == []
    second = sinks(tmp_path, kafka_bootstrap, f"-config {config(tmp_path)} {command}")
    first.wait_for_log("before the rebalance")
    second.wait_for_log("partitions assigned:")
    assert sorted(first.out()) == sorted(lines(20))
    time.sleep(1.0)
    assert second.out() == []  # it starts at the offsets the first one committed
    assert first.stop() == 0 and second.stop() == 0


def last_assignment(process: SinkProcess) -> str:
    """The sink's latest "partitions assigned: …" or "no partitions assigned; …" line."""
    found = [line for line in process.log().splitlines() if "partitions assigned" in line]
    return found[-1].split("[sink] ", 1)[1] if found else ""


def test_two_sinks_in_a_group_split_two_partitions_and_a_third_stays_idle(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    topic = create_topic(name="sink-split", partitions=2)
    command = f"-config {config(tmp_path)} --topic {topic} --group {group} --from-beginning"
    first = sinks(tmp_path, kafka_bootstrap, command)
    first.wait_for_log(f"partitions assigned: {topic}[0,1]")
    second = sinks(tmp_path, kafka_bootstrap, command)
    second.wait_for_log("partitions assigned: ")
    third = sinks(tmp_path, kafka_bootstrap, command)
    third.wait_for_log("partitions assigned")
    trio = [first, second, third]
    # After the third join every member has one of: topic[0], topic[1], nothing.
    idle_line = "no partitions assigned; 3 members share 2 partitions (this sink stays idle)"
    wanted = sorted([f"partitions assigned: {topic}[0]", f"partitions assigned: {topic}[1]"])
    wanted = sorted([*wanted, idle_line])
    deadline = time.monotonic() + 30
    while sorted(last_assignment(p) for p in trio) != wanted:
        assert time.monotonic() < deadline, "\n".join(p.log() for p in trio)
        time.sleep(0.1)
    idle = next(p for p in trio if last_assignment(p) == idle_line)
    busy = [p for p in trio if p is not idle]
    produce(kafka_bootstrap, topic, lines(20), partitions=2)
    deadline = time.monotonic() + 30
    while sum(len(p.out()) for p in busy) < 20:
        assert time.monotonic() < deadline, "\n".join(p.log() for p in trio)
        time.sleep(0.1)
    time.sleep(0.5)
    assert [len(p.out()) for p in busy] == [10, 10]
    assert sorted(busy[0].out() + busy[1].out()) == sorted(lines(20))
    assert idle.out() == []
    assert [p.stop() for p in trio] == [0, 0, 0]


STALE_LEADER_CLIENT_ID = "stale-leader"


class LeaderAssigningFromStaleMetadata(RangePartitionAssignor):
    """The range assignment, except the first time another member is there: then the leader
    keeps every partition, as a leader does whose metadata did not show the partitions yet
    when it assigned (seen right after a broker restart; that race cannot be triggered at
    will). Named "range" so the sinks accept its assignments."""

    assigned_with_others = 0

    @classmethod
    def assign(cls, cluster, members):
        fair = super().assign(cluster, members)
        if len(members) < 2 or cls.assigned_with_others:
            return fair
        cls.assigned_with_others += 1
        everything = sorted({tp for answer in fair.values() for tp in answer.partitions()})
        topics: dict[str, list[int]] = {}
        for tp in everything:
            topics.setdefault(tp.topic, []).append(tp.partition)
        return {
            m.member_id: ConsumerProtocolAssignment(
                cls.version, sorted(topics.items()) if cls.is_leader(m.member_id) else [], b""
            )
            for m in members
        }

    @staticmethod
    def is_leader(member_id: str) -> bool:
        return member_id.startswith(STALE_LEADER_CLIENT_ID)  # ids begin with the client id


def test_a_member_left_without_partitions_while_they_outnumber_the_members_joins_again(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    topic = create_topic(name="sink-rejoin", partitions=3)
    leader = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        client_id=STALE_LEADER_CLIENT_ID,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        partition_assignment_strategy=[LeaderAssigningFromStaleMetadata],
    )
    try:
        # The consumer knows the topic's partitions before it joins: a leader whose metadata
        # lacks them assigns nothing, and a bare KafkaConsumer does not join again by itself
        # (the sink does; that is what this test is about).
        deadline = time.monotonic() + 30
        while len(leader.partitions_for_topic(topic) or ()) < 3:
            assert time.monotonic() < deadline, "the topic's partitions never showed"
            time.sleep(0.1)
        leader.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(leader.assignment()) < 3:
            assert time.monotonic() < deadline, "the leader was never assigned the topic"
            leader.poll(timeout_ms=100)
        command = f"-config {config(tmp_path)} --topic {topic} --group {group} --from-beginning"
        left_out = (
            f"no partitions assigned although the group has 2 members and {topic} 3 partitions;"
            " joining the group again in 1 s, with fresh metadata"
        )
        # The stale assignment happens only when the test's consumer leads the rebalance;
        # should the sink's join come first and make it the leader (a loaded machine), the
        # sink assigns fairly and the case did not occur: it is set up again.
        for _ in range(3):
            LeaderAssigningFromStaleMetadata.assigned_with_others = 0
            member = sinks(tmp_path, kafka_bootstrap, command)
            deadline = time.monotonic() + 60
            while "partitions assigned: " not in member.log():
                assert time.monotonic() < deadline, member.log()
                leader.poll(timeout_ms=100)
            if left_out in member.log():
                break
            assert member.stop() == 0
        read_by_leader: list[str] = []
        log = member.log()
        assert left_out in log
        assert "this sink stays idle" not in log  # it was not true
        produce(kafka_bootstrap, topic, lines(30), partitions=3)
        deadline = time.monotonic() + 60
        while len(read_by_leader) + len(member.out()) < 30:
            assert time.monotonic() < deadline, member.log()
            for records in leader.poll(timeout_ms=100).values():
                read_by_leader += [record.value.decode().rstrip("\n") for record in records]
        assert member.out() and read_by_leader  # each reads its share
        assert sorted(read_by_leader + member.out()) == sorted(lines(30))
        assert member.stop() == 0
    finally:
        leader.close(autocommit=False)


def test_a_member_the_range_assignment_leaves_idle_says_so_and_does_not_join_again(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    # Range assignment, topic by topic: both one-partition topics go to the same member.
    topics = [create_topic(name="sink-one-a"), create_topic(name="sink-one-b")]
    command = f"-config {config(tmp_path)} --topic {','.join(topics)} --group {group}"
    first = sinks(tmp_path, kafka_bootstrap, command)
    first.wait_for_log("partitions assigned: ")
    second = sinks(tmp_path, kafka_bootstrap, command)
    second.wait_for_log("partitions assigned")
    pair = [first, second]
    idle_line = "no partitions assigned; 2 members share 2 partitions (this sink stays idle)"
    deadline = time.monotonic() + 30
    while idle_line not in [last_assignment(p) for p in pair]:
        assert time.monotonic() < deadline, "\n".join(p.log() for p in pair)
        time.sleep(0.1)
    idle = next(p for p in pair if last_assignment(p) == idle_line)
    time.sleep(3.0)  # a rejoin would come after 1 s
    assert "joining the group again" not in idle.log()
    assert last_assignment(idle) == idle_line
    assert [p.stop() for p in pair] == [0, 0]


def test_reset_to_earliest_makes_lag_equal_the_log_end_offset(
    kafka_bootstrap, create_topic, group, kafka_script
):
    topic = create_topic(name="sink-reset", partitions=2)
    produce(kafka_bootstrap, topic, lines(10), partitions=2)
    command = f"--topic {topic} --group {group} --timeout-ms 1500"
    consumed = sink(kafka_bootstrap, f"{command} --from-beginning")
    assert consumed.returncode == 0, consumed.stderr

    assert lag_rows(kafka_bootstrap, group) == [("0", "5", "5", "0"), ("1", "5", "5", "0")]
    reset = sink(kafka_bootstrap, f"reset --group {group} --topic {topic} --to-earliest")
    assert reset.returncode == 0, reset.stderr
    new_offsets = [(r["PARTITION"], r["NEW-OFFSET"]) for r in table(reset.stdout)]
    assert new_offsets == [("0", "0"), ("1", "0")]
    earliest = [("0", "0", "5", "5"), ("1", "0", "5", "5")]  # LAG == LOG-END-OFFSET
    assert lag_rows(kafka_bootstrap, group) == earliest
    described = consumer_groups(kafka_script, kafka_bootstrap, f"--describe --group {group}")
    rows = sorted(table(described), key=lambda r: r["PARTITION"])
    assert [(r["PARTITION"], r["LOG-END-OFFSET"], r["LAG"]) for r in rows] == [
        ("0", "5", "5"),
        ("1", "5", "5"),
    ]
    one = sink(kafka_bootstrap, f"reset --group {group} --topic {topic}:1 --to-offset 3")
    assert [(r["PARTITION"], r["NEW-OFFSET"]) for r in table(one.stdout)] == [("1", "3")]
    assert [row[3] for row in lag_rows(kafka_bootstrap, group)] == ["5", "2"]
    again = sink(kafka_bootstrap, command)
    assert len(again.stdout.splitlines()) == 7  # 5 from partition 0, 2 from partition 1


@pytest.mark.parametrize("consumed", [0, 3], ids=["nothing-consumed", "part-consumed"])
def test_reset_to_latest_puts_the_group_at_the_log_end_so_it_reads_nothing_old(
    kafka_bootstrap, create_topic, group, kafka_script, consumed
):
    topic = create_topic(name="sink-latest", partitions=2)
    produce(kafka_bootstrap, topic, lines(10), partitions=2)
    # --from-beginning: without the reset, the group would start at offset 0.
    command = f"--topic {topic} --group {group} --from-beginning --timeout-ms 1500"
    if consumed:
        part = sink(kafka_bootstrap, f"{command} --max-messages {consumed}")
        assert part.returncode == 0, part.stderr
        assert sum(int(row[1]) for row in lag_rows(kafka_bootstrap, group)) == consumed
    reset = sink(kafka_bootstrap, f"reset --group {group} --topic {topic} --to-latest")
    assert reset.returncode == 0, reset.stderr
    new_offsets = [(r["PARTITION"], r["NEW-OFFSET"]) for r in table(reset.stdout)]
    assert new_offsets == [("0", "5"), ("1", "5")]
    at_the_end = [("0", "5", "5", "0"), ("1", "5", "5", "0")]
    assert lag_rows(kafka_bootstrap, group) == at_the_end
    described = consumer_groups(kafka_script, kafka_bootstrap, f"--describe --group {group}")
    columns = ("PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG")
    rows = sorted(table(described), key=lambda r: r["PARTITION"])
    assert [tuple(r[c] for c in columns) for r in rows] == at_the_end
    produce(kafka_bootstrap, topic, lines(4, start=100), partitions=2)
    after = sink(kafka_bootstrap, command)
    assert after.returncode == 0, after.stderr
    assert sorted(after.stdout.splitlines()) == sorted(lines(4, start=100))  # only the new


def test_reset_is_refused_while_the_group_has_active_members(
    kafka_bootstrap, create_topic, group, tmp_path, sinks
):
    topic = create_topic(name="sink-active")
    running = sinks(
        tmp_path, kafka_bootstrap, f"-config {config(tmp_path)} --topic {topic} --group {group}"
    )
    running.wait_for_log("partitions assigned")
    refused = sink(kafka_bootstrap, f"reset --group {group} --to-earliest")
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"agent sink: cannot reset the offsets of group '{group}' while it is active "
        "(state Stable, 1 member(s)); stop its consumers first"
    ]
    described = sink(kafka_bootstrap, f"lag --group {group}")
    assert "has no active members" not in described.stdout
    assert table(described.stdout)[0]["CLIENT-ID"] == "agent-sink"
    assert running.stop() == 0
