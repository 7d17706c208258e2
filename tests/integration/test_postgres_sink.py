"""`agent sink --store postgresql://…` with a real broker and a real PostgreSQL: every
metric stored once across replays and outages, resumed at the store's own positions."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import threading
import time
import uuid

import psycopg
import pytest

from tests.conftest import REPO
from tests.integration.test_sink import (
    FAST_GROUP,
    T0,
    SinkProcess,
    config,
    produce,
    sink,
    table,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def lines(count: int, start: int = 0) -> list[str]:
    """`count` distinct points, one line each, a microsecond apart (PostgreSQL's
    timestamps keep microseconds: points closer than that are one point)."""
    return [
        f"cpu,cpu=cpu{i % 2},host=h{i % 3} usage_idle={i}.5,n={i}i {T0 + i * 1000}"
        for i in range(start, start + count)
    ]


@pytest.fixture
def group() -> str:
    return f"pg-sink-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def background(tmp_path, kafka_bootstrap):
    """Start `agent sink FLAGS…` in the background; killed at the end of the test."""
    started: list[SinkProcess] = []

    def start(command: str) -> SinkProcess:
        process = SinkProcess(tmp_path, kafka_bootstrap, command)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def count(url: str, text: str = "SELECT count(*) FROM cpu") -> int:
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            return connection.execute(text).fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0


def wait_for_rows(url: str, rows: int, process: SinkProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while count(url) < rows:
        assert process.process.poll() is None, process.log()
        assert time.monotonic() < deadline, process.log()
        time.sleep(0.05)


def assert_each_stored_once(url: str, total: int) -> None:
    """`total` rows, one per point, and positions that account for every record."""
    assert count(url) == total
    assert count(url, "SELECT count(DISTINCT (time, tag_id)) FROM cpu") == total
    assert count(url, "SELECT sum(next_offset) FROM agent_sink_positions") == total


def sink_mid_stream(
    kafka_bootstrap: str, create_topic, name: str, url: str, group: str, tmp_path, background
) -> tuple[str, SinkProcess]:
    """A sink storing a 2-partition topic of 2,000 lines into `url`, 200 rows in."""
    topic = create_topic(name=name, partitions=2)
    produce(kafka_bootstrap, topic, lines(2000), partitions=2)
    process = background(
        f"-config {config(tmp_path, FAST_GROUP)} --topic {topic} --group {group} "
        f"--from-beginning --store {url} --batch-size 200 --timeout-ms 5000"
    )
    wait_for_rows(url, 200, process)
    return topic, process


def test_a_topic_is_stored_once_and_a_replay_adds_nothing(
    kafka_bootstrap, create_topic, postgres_database, group
):
    topic = create_topic(name="pg-store", partitions=2)
    produce(kafka_bootstrap, topic, lines(300), partitions=2)
    command = f"--topic {topic} --from-beginning --timeout-ms 2000 --store {postgres_database}"
    first = sink(kafka_bootstrap, f"{command} --group {group}")
    assert first.returncode == 0, first.stderr
    assert "300 metrics kept (300 new)" in first.stderr
    assert count(postgres_database) == 300
    # Everything delivered again (without a group, the sink reads every partition from the
    # start, whatever the store holds): nothing new.
    replay = sink(kafka_bootstrap, command)
    assert replay.returncode == 0, replay.stderr
    assert "300 metrics kept (0 new)" in replay.stderr
    assert count(postgres_database) == 300
    positions = "SELECT sum(next_offset) FROM agent_sink_positions"
    assert count(postgres_database, positions) == 300


def test_an_assigned_partition_resumes_at_the_offset_the_store_holds(
    kafka_bootstrap, create_topic, postgres_database, group
):
    topic = create_topic(name="pg-resume")
    produce(kafka_bootstrap, topic, lines(20))
    command = f"--topic {topic} --from-beginning --timeout-ms 2000 --store {postgres_database}"
    first = sink(kafka_bootstrap, f"{command} --group {group} --max-messages 8")
    assert first.returncode == 0, first.stderr
    with psycopg.connect(postgres_database) as connection:
        # As if a batch up to offset 15 had been stored and the sink died before its
        # Kafka commit: the store knows more than the group.
        connection.execute("UPDATE agent_sink_positions SET next_offset = 15")
    second = sink(kafka_bootstrap, f"{command} --group {group}")
    assert second.returncode == 0, second.stderr
    assert f"{topic}[0]: resuming at offset 15, where the store stopped" in second.stderr
    assert "5 metrics kept (5 new)" in second.stderr
    assert count(postgres_database) == 8 + 5
    assert count(postgres_database, "SELECT next_offset FROM agent_sink_positions") == 20


@pytest.mark.parametrize("stored_up_to", [15, 20])
def test_a_group_member_with_a_sqlite_store_resumes_at_the_files_positions_and_commits_them(
    kafka_bootstrap, create_topic, group, tmp_path, stored_up_to
):
    topic = create_topic(name="sqlite-resume")
    produce(kafka_bootstrap, topic, lines(20))
    db = tmp_path / "m.db"
    command = (
        f"--topic {topic} --group {group} --from-beginning --timeout-ms 2000 --store sqlite:{db}"
    )
    first = sink(kafka_bootstrap, f"{command} --max-messages 8")
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(db) as connection:
        # As if the sink had died after storing up to there, before its Kafka commit.
        connection.execute(f"UPDATE agent_sink_positions SET next_offset = {stored_up_to}")
    second = sink(kafka_bootstrap, command)
    assert second.returncode == 0, second.stderr
    assert f"{topic}[0]: resuming at offset {stored_up_to}, where the store stopped" in (
        second.stderr
    )
    left = 20 - stored_up_to
    assert f"{left} metrics kept ({left} new)" in second.stderr
    # The group is moved to the store's position even when nothing is left to read there.
    lag = sink(kafka_bootstrap, f"lag --group {group}")
    assert [(row["CURRENT-OFFSET"], row["LAG"]) for row in table(lag.stdout)] == [("20", "0")]


def test_a_group_offset_moved_past_the_store_with_reset_is_followed(
    kafka_bootstrap, create_topic, postgres_database, group
):
    topic = create_topic(name="pg-reset")
    produce(kafka_bootstrap, topic, lines(10))
    command = f"--topic {topic} --group {group} --from-beginning --timeout-ms 2000"
    store = f"--store {postgres_database}"
    assert sink(kafka_bootstrap, f"{command} {store}").returncode == 0
    produce(kafka_bootstrap, topic, lines(5, start=10))
    reset = sink(kafka_bootstrap, f"reset --group {group} --to-latest")
    assert reset.returncode == 0, reset.stderr
    again = sink(kafka_bootstrap, f"{command} {store}")
    assert again.returncode == 0, again.stderr
    assert "processed a total of 0 messages" in again.stderr
    assert count(postgres_database) == 10


def test_postgresql_stopped_and_started_mid_stream_loses_nothing_and_stores_nothing_twice(
    kafka_bootstrap,
    create_topic,
    postgres_database,
    postgres_script,
    postgres_transport,
    group,
    tmp_path,
    background,
):
    topic, process = sink_mid_stream(
        kafka_bootstrap, create_topic, "pg-outage", postgres_database, group, tmp_path, background
    )
    try:
        assert postgres_script("stop").returncode == 0
        produce(kafka_bootstrap, topic, lines(2000, start=2000), partitions=2)
        process.wait_for_log("retrying (nothing is lost, nothing is stored twice)")
        time.sleep(2)  # the sink keeps trying while the server is down
    finally:
        started = postgres_script("start")
    assert started.returncode == 0, started.stderr
    assert process.process.wait(120) == 0, process.log()
    log = process.log()
    assert log.count("retrying (nothing is lost") == 1  # once per outage
    assert "answers again after" in log
    assert_each_stored_once(postgres_database, 4000)


def sink_backend(url: str) -> tuple[int, bool]:
    """The pid of the server process serving the sink's connection, and whether it is TLS."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
            " WHERE a.application_name = 'agent-sink' AND a.datname = current_database()"
        ).fetchone()
    assert row is not None, "no connection of the sink"
    return row


def test_postgresql_crashing_mid_stream_loses_nothing_and_stores_nothing_twice(
    kafka_bootstrap,
    create_topic,
    postgres_database,
    postgres_transport,
    group,
    tmp_path,
    background,
):
    topic, process = sink_mid_stream(
        kafka_bootstrap, create_topic, "pg-crash", postgres_database, group, tmp_path, background
    )
    pid, tls = sink_backend(postgres_database)
    assert tls == (postgres_transport == "tls")
    # A server process killed with SIGKILL: PostgreSQL ends every connection without a word
    # (over TLS, no close_notify either) and recovers before it takes new ones.
    os.kill(pid, signal.SIGKILL)
    produce(kafka_bootstrap, topic, lines(2000, start=2000), partitions=2)
    assert process.process.wait(120) == 0, process.log()
    log = process.log()
    warnings = [line for line in log.splitlines() if " W! " in line]
    assert len(warnings) == 1, log  # once per outage
    # Over TLS, libpq says "SSL error: unexpected eof while reading" or "server closed the
    # connection unexpectedly", depending on what it was doing: both are waited out.
    assert "retrying (nothing is lost, nothing is stored twice)" in warnings[0]
    assert "answers again after" in log
    assert_each_stored_once(postgres_database, 4000)


def test_a_wrong_password_is_one_line_without_the_password_and_exit_1(
    kafka_bootstrap, create_topic, postgres_url, postgres_database
):
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS sink_user")
        admin.execute("CREATE ROLE sink_user LOGIN PASSWORD 'right-secret'")
    url = postgres_database.replace("agent@", "sink_user:wrong-secret@")
    topic = create_topic(name="pg-auth")
    result = sink(kafka_bootstrap, f"--topic {topic} --timeout-ms 1000 --store {url}")
    assert result.returncode == 1
    assert "wrong-secret" not in result.stderr + result.stdout
    assert "sink_user:***@" in result.stderr
    assert "password authentication failed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_user_without_rights_on_the_tables_is_one_line_and_exit_1(
    kafka_bootstrap, create_topic, postgres_url, postgres_database
):
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS reader")
        admin.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-secret'")
    with psycopg.connect(postgres_database, autocommit=True) as owner:
        owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = postgres_database.replace("agent@", "reader:reader-secret@")
    topic = create_topic(name="pg-rights")
    result = sink(kafka_bootstrap, f"--topic {topic} --timeout-ms 1000 --store {url}")
    assert result.returncode == 1
    assert "permission denied for schema public" in result.stderr
    assert "reader-secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def readme_postgresql_queries() -> list[str]:
    """The ```sql blocks of the README's "Storing in PostgreSQL" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Storing in PostgreSQL", 1)[1].split("\n#", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```sql\n")[1:]]


def test_the_readmes_sql_examples_run_against_a_store_the_sink_wrote(
    kafka_bootstrap, create_topic, postgres_database
):
    now_ns = time.time_ns()
    values = [
        f"cpu,cpu={cpu},host={host} usage_idle={idle} {now_ns - i * 10_000_000_000}"
        for i, idle in enumerate((90.0, 92.0, 94.0))
        for host in ("vm1", "vm2")
        for cpu in ("cpu-total", "cpu0")
    ]
    topic = create_topic(name="pg-readme", partitions=2)
    produce(kafka_bootstrap, topic, values, partitions=2)
    stored = sink(
        kafka_bootstrap,
        f"--topic {topic} --group readme-{topic} --from-beginning --timeout-ms 2000 "
        f"--store {postgres_database}",
    )
    assert stored.returncode == 0, stored.stderr
    idle_per_host, positions = readme_postgresql_queries()
    with psycopg.connect(postgres_database) as connection:
        rows = connection.execute(idle_per_host).fetchall()
        assert [(host, float(idle), samples) for host, idle, samples in rows] == [
            ("vm1", 92.0, 3),
            ("vm2", 92.0, 3),
        ]
        rows = connection.execute(positions).fetchall()
        assert [(t, p, offset) for t, p, offset, _ in rows] == [(topic, 0, 6), (topic, 1, 6)]


def readme_storing_queries() -> list[str]:
    """The ```sql queries of the README's "Storing" section (its first block is the schema)."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Storing\n", 1)[1].split("\n#", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```sql\n")[2:]]


def test_the_readmes_queries_for_both_stores_give_the_same_rows_from_each(
    kafka_bootstrap, create_topic, postgres_database, tmp_path
):
    nine_oclock_s = 1_795_597_200  # 2026-11-25 09:00:00 UTC, the README query's lower bound
    values = [
        f"cpu,cpu={cpu},host={host} usage_idle={idle},usage_user=1i "
        f"{(nine_oclock_s + offset_s) * 10**9}"
        for offset_s, idle in ((-10, 50.0), (0, 90.0), (10, 92.5), (20, 94.0))
        for host in ("vm1", "vm2")
        for cpu in ("cpu-total", "cpu0")
    ]
    topic = create_topic(name="both-readme", partitions=2)
    produce(kafka_bootstrap, topic, values, partitions=2)
    db = tmp_path / "metrics.db"
    for number, store in enumerate((postgres_database, f"sqlite:{db}")):
        stored = sink(
            kafka_bootstrap,
            f"--topic {topic} --group both-{number}-{topic} --from-beginning --timeout-ms 2000"
            f" --store {store}",
        )
        assert stored.returncode == 0, stored.stderr
        assert "16 metrics kept (16 new)" in stored.stderr
    queries = readme_storing_queries()
    assert len(queries) == 2
    with psycopg.connect(postgres_database) as connection:
        in_postgresql = [connection.execute(query).fetchall() for query in queries]
    with sqlite3.connect(db) as connection:
        in_sqlite = [connection.execute(query).fetchall() for query in queries]
    by_host = [(host, float(idle), samples) for host, idle, samples in in_postgresql[0]]
    assert by_host == [("vm1", 92.2, 3), ("vm2", 92.2, 3)]
    assert [(h, float(i), n) for h, i, n in in_sqlite[0]] == by_host
    assert in_sqlite[1] == in_postgresql[1]
    assert [(t, p) for t, p, _ in in_sqlite[1]] == [(topic, 0), (topic, 1)]
    assert sum(offset for _, _, offset in in_sqlite[1]) == len(values)


def worker_pids(process: SinkProcess) -> dict[int, int]:
    """Worker number → pid of its latest start, from the supervisor's log."""
    started = re.findall(r"worker (\d+) started \(pid (\d+)\)", process.log())
    return {int(number): int(pid) for number, pid in started}


def test_workers_killed_with_sigkill_several_times_store_each_metric_exactly_once(
    kafka_bootstrap, create_topic, postgres_database, group, tmp_path, background
):
    topic = create_topic(name="pg-workers", partitions=4)
    total = 30_000
    produce(kafka_bootstrap, topic, lines(total), partitions=4)
    process = background(
        f"-config {config(tmp_path, FAST_GROUP)} --topic {topic} --group {group} "
        f"--from-beginning --store {postgres_database} --batch-size 250 --workers 2"
    )
    process.wait_for_log("worker 2 started")
    for kill in range(3):
        wait_for_rows(postgres_database, (kill + 1) * total // 6, process)
        os.kill(worker_pids(process)[1 + kill % 2], signal.SIGKILL)
        process.wait_for_log("was killed by SIGKILL; starting it again", count=kill + 1)
    wait_for_rows(postgres_database, total, process, timeout=240)
    assert process.stop() == 0, process.log()
    assert_each_stored_once(postgres_database, total)


def test_sigterm_while_waiting_for_an_unreachable_server_at_start_ends_the_sink_with_0(
    create_topic, background
):
    topic = create_topic(name="pg-away")
    unreachable = "postgresql://agent:hidden-secret@127.0.0.1:1/metrics"
    process = background(f"--topic {topic} --store {unreachable}")
    process.wait_for_log("retrying (nothing is lost")
    assert process.stop() == 0, process.log()
    assert "hidden-secret" not in process.log()
    assert "agent:***@127.0.0.1:1" in process.log()


def test_a_server_that_takes_the_connection_and_never_answers_is_waited_out(
    create_topic, background
):
    topic = create_topic(name="pg-silent")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts, no one answers
        port = silent.getsockname()[1]
        # The DSN's own connect_timeout is kept (libpq counts at least 2 s).
        process = background(
            f"--topic {topic} --store postgresql://agent@127.0.0.1:{port}/m?connect_timeout=2"
        )
        process.wait_for_log("retrying (nothing is lost", timeout=8)
    assert "timeout expired" in process.log()
    assert process.stop() == 0, process.log()


def test_workers_end_when_their_supervisor_is_killed(
    create_topic, postgres_database, group, tmp_path, background
):
    topic = create_topic(name="pg-orphans", partitions=2)
    process = background(
        f"-config {config(tmp_path, FAST_GROUP)} --topic {topic} --group {group} "
        f"--store {postgres_database} --workers 2"
    )
    process.wait_for_log("worker 2 started")
    pids = worker_pids(process)
    process.kill()  # SIGKILL: the supervisor cannot pass anything on
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") and not zombie(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, f"workers {pids} outlived their supervisor"
        time.sleep(0.1)


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_two_sinks_in_a_group_with_a_rebalance_while_records_flow_store_each_metric_once(
    kafka_bootstrap, create_topic, postgres_database, group, tmp_path, background
):
    topic = create_topic(name="pg-rebalance", partitions=4)
    total = 12_000
    produce(kafka_bootstrap, topic, lines(total // 2), partitions=4)
    command = (
        f"-config {config(tmp_path, FAST_GROUP)} --topic {topic} --group {group} "
        f"--from-beginning --store {postgres_database} --batch-size 200"
    )
    first = background(command)
    wait_for_rows(postgres_database, total // 6, first)
    # The second half is produced while the second sink joins and the partitions move.
    more = threading.Thread(
        target=produce, args=(kafka_bootstrap, topic, lines(total // 2, start=total // 2), None, 4)
    )
    more.start()
    second = background(command)
    second.wait_for_log("partitions assigned")
    more.join(120)
    wait_for_rows(postgres_database, total, first, timeout=180)
    assert first.stop() == 0, first.log()
    assert second.stop() == 0, second.log()
    assert count(postgres_database) == total
    assert count(postgres_database, "SELECT sum(next_offset) FROM agent_sink_positions") == total


def test_a_batch_refused_by_the_fence_is_not_committed_and_is_read_again_from_the_store(
    kafka_bootstrap, create_topic, postgres_database, group, tmp_path, background
):
    topic = create_topic(name="pg-fenced")
    produce(kafka_bootstrap, topic, lines(10))
    holding = config(tmp_path, FAST_GROUP.replace('"100ms"', '"60s"'))
    command = f"--topic {topic} --group {group} --from-beginning --store {postgres_database}"
    first = background(f"-config {holding} {command}")
    first.wait_for_log("partitions assigned")
    time.sleep(1.5)  # the ten records are polled and held (flush_interval 60s)
    with psycopg.connect(postgres_database) as connection:
        # Meanwhile another sink, which the group gave the partition, stored offsets 0-2.
        connection.execute(
            "INSERT INTO agent_sink_positions (kafka_topic, kafka_partition, next_offset)"
            " VALUES (%s, 0, 3)",
            (topic,),
        )
    assert first.stop() == 0, first.log()  # SIGTERM: the held batch is offered to the store
    assert f"{topic}[0] were written by another sink" in first.log()
    assert count(postgres_database) == 0
    lag = sink(kafka_bootstrap, f"lag --group {group}")
    assert f"consumer group '{group}' does not exist" in lag.stderr  # nothing committed
    second = sink(kafka_bootstrap, f"{command} --timeout-ms 2000")
    assert second.returncode == 0, second.stderr
    assert f"{topic}[0]: resuming at offset 3" in second.stderr
    assert count(postgres_database) == 7


def test_a_column_of_another_type_stops_the_sink_with_one_line_and_nothing_committed(
    kafka_bootstrap, create_topic, postgres_database, group
):
    with psycopg.connect(postgres_database) as connection:
        connection.execute("CREATE TABLE cpu (time timestamp, tag_id bigint, usage_idle text)")
    topic = create_topic(name="pg-type")
    produce(kafka_bootstrap, topic, lines(5))
    result = sink(
        kafka_bootstrap,
        f"--topic {topic} --group {group} --from-beginning --timeout-ms 2000 "
        f"--store {postgres_database}",
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " E! " in line]
    assert len(errors) == 1, result.stderr
    assert (
        f"table cpu column usage_idle is text, but topic {topic} partition 0 offset 0 has a "
        "double precision value for it" in errors[0]
    )
    assert "Traceback" not in result.stderr
    assert count(postgres_database) == 0
    lag = sink(kafka_bootstrap, f"lag --group {group}")
    assert f"consumer group '{group}' does not exist" in lag.stderr  # nothing committed
