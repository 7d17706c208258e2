"""The PostgreSQL fleet store: a fleet's cpu metrics from Kafka into PostgreSQL, Telegraf's
kafka_consumer → outputs.postgresql beside `agent sink --store postgresql://…`, and what
each stores when it is killed with SIGKILL mid-stream.

Each consumer runs as its own process against a database of its own on one server
(scripts/postgres). It joins its group on an empty topic first; the clock starts when kcat
starts producing and stops when the last metric is stored, so joining the group is not
counted and both sides read while the records arrive, as from a fleet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from agent.metric import Metric
from agent.sink.groups import GroupError, group_lag
from bench import broker, data, telegraf
from bench.context import AGENT, REPO, Context
from bench.progress import say
from bench.report import Figure
from plugins.serializers.influx import InfluxSerializer

TITLE = "PostgreSQL fleet store"
MEANING = """
Metrics per second from Kafka into PostgreSQL, Telegraf's layout (`tags_as_foreign_keys`),
by Telegraf 1.37.2 (`inputs.kafka_consumer` → `outputs.postgresql`, `version = "3.6.0"`,
`flush_interval = "1s"`, `max_undelivered_messages = 10000`, its other settings as it ships
them: `metric_batch_size` 1000) and by `agent sink --store postgresql://…` with one worker
and with two (`--workers 2`, defaults otherwise: batches of up to 10,000 metrics). Telegraf's
default `max_undelivered_messages`, 1000, equals its batch size, and it then writes one
batch per `flush_interval` (2,000 metrics/s here); 10000 was the fastest of the settings
tried (on 100,000 metrics: 97,700/s; batches of 5,000 with 20000 undelivered, 54,500/s; of
10,000 with 40000, 54,900/s). The data
is a fleet's: cpu metrics of 50 hosts × 8 cpus, ten float fields with random 17-digit values
that never repeat, a microsecond apart, one metric per record keyed by host
(murmur2, as outputs.kafka's `routing_tag = "host"` places them) on a 4-partition topic:
7, 14, 12 and 17 hosts on partitions 0 to 3, so of two workers one reads 58 % of the metrics.
Each consumer runs as its own process with a database of its own on one local PostgreSQL 15
(scripts/postgres), and first joins its group on the empty topic; the clock starts when
`kcat -P` starts producing the metrics (about 300,000 records/s, so the consumers read as
the records arrive) and stops when the last one is stored (the time the `cpu` table last
grew, confirmed by a count). The ratios are the sink's rate over Telegraf's.
Exactly once: the same topic is stored again by a 2-worker sink that is killed with
SIGKILL, all its processes at once, three times mid-stream (at a quarter, half and three
quarters of the metrics stored) and started again each time; once its group has committed
every offset, rows are counted: *missing* is the metrics whose point (time, tag_id) is not
in `cpu`, *stored twice* is rows beyond one per point. Telegraf is killed the same way once,
at half, for contrast: its `cpu` table has no key, so what it reads again after the restart
(offsets it had not committed) is stored again. On this 2-core machine the consumers share
the cores with the broker, PostgreSQL and kcat. Where a sink worker's time goes, per metric
(`python -m bench.sink_stages`, each step timed on its own over 200,000 of these metrics,
2026-12-07, two runs; CPU time of the sink's process in brackets): fetching the records 1.1
to 1.4 µs (0.9 to 1.1: the response read over a plain socket, its record batches read in the
native core), reading the lines into points 1.0 (the same, no Python metric made), building
the rows 0.26 (0.26), COPY 2.3 (0.3; the rest is PostgreSQL's work, which the sink's store
thread waits for while its main thread reads on). A batch goes straight into `cpu` by COPY;
only a batch holding a point the table has already is merged through a staging table.
*Batched records* is the same metrics as outputs.kafka writes them with `use_batch_format =
true` and `routing_tag = "host"` (each write of 1,000 metrics as one record per host, about
20 lines each). Telegraf reads that topic with `metric_buffer_limit` raised to hold
what its `max_undelivered_messages` records carry (its default 10,000 drops metrics).
"""

PARTITIONS = 4
# The batched topic: a write of outputs.kafka's default metric_batch_size, split by host.
WRITE_METRICS = 1000
RECORD_SEPARATOR = b"\x1e"
KCAT_SEPARATOR = "\\x1e"
SERIES_STEP_NS = 1000  # a microsecond: PostgreSQL's timestamps keep microseconds
READY_TIMEOUT_S = 120
STORE_TIMEOUT_S = 900
QUIET_S = 0.5  # a table that has not grown for this long is counted
POLL_S = 0.02
KILLS = 3
# Telegraf's default, 1000, equals its metric_batch_size: the consumer then stops one metric
# short of a full batch and the output writes once per flush_interval (2,000 metrics/s
# here, flush_interval 1s). 10000 was the fastest of the settings tried (100,000 metrics:
# 97,700/s; batches of 5,000 with 20000 undelivered: 54,500/s; of 10,000 with 40000: 54,900/s).
TELEGRAF_UNDELIVERED = 10_000
# Room for every metric of TELEGRAF_UNDELIVERED records of the batched topic (its default,
# 10,000 metrics, is less: it then drops metrics and never stores them all).
TELEGRAF_BUFFER_LIMIT = TELEGRAF_UNDELIVERED * 25
# A member killed with SIGKILL leaves its group after the session timeout; a short one
# keeps the restarts quick (the sink's defaults otherwise).
SINK_CONFIG = "session_timeout_ms = 6000\nheartbeat_interval_ms = 1000\n"


def fleet_metrics(count: int, seed: int = 19) -> list[Metric]:
    """`count` cpu metrics of data.HOSTS hosts × data.CPUS_PER_HOST cpus, every field a
    random float, each metric a microsecond after the one before (PostgreSQL's resolution:
    each is a point of its own)."""
    return data.cpu_metrics(count, seed=seed, step_ns=SERIES_STEP_NS)


def write_batched_records(path: Path, metrics: list[Metric]) -> None:
    """What outputs.kafka writes with `use_batch_format = true` and `routing_tag = "host"`:
    each write of metric_batch_size (1,000) metrics as one record per host, keyed by it, its
    lines together; records end in RECORD_SEPARATOR, for kcat -P -K '\\t' -D."""
    lines = InfluxSerializer().serialize_each(metrics)
    records = []
    for start in range(0, len(metrics), WRITE_METRICS):
        by_host: dict[str, list[bytes]] = {}
        for metric, line in zip(
            metrics[start : start + WRITE_METRICS],
            lines[start : start + WRITE_METRICS],
            strict=True,
        ):
            by_host.setdefault(metric.tags["host"], []).append(line)
        records += [host.encode() + b"\t" + b"".join(group) for host, group in by_host.items()]
    path.write_bytes(RECORD_SEPARATOR.join(records))


def produce_command(
    ctx: Context, topic: str, path: Path, separator: str | None = None
) -> list[str]:
    """kcat -P of `path`: a record a line, or records ending in `separator` (kcat's -D)."""
    command = [
        "kcat", "-P", "-b", ctx.bootstrap, "-t", topic, "-K", "\t", "-X", "acks=all",
        "-X", "partitioner=murmur2_random",
    ]  # fmt: skip
    if separator is not None:
        command += ["-D", separator]
    return [*command, "-l", str(path)]


# -- PostgreSQL ------------------------------------------------------------------------------


def server_url() -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "postgres"), "up"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


@contextmanager
def new_database(server: str, purpose: str) -> Iterator[str]:
    """The URI of a new database on `server`, dropped afterwards."""
    name = f"bench_fleet_{purpose}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def table_size(connection: psycopg.Connection) -> int:
    """Bytes of the cpu table's heap (0 before it exists): cheap to ask often."""
    row = connection.execute("SELECT COALESCE(pg_relation_size(to_regclass('cpu')), 0)").fetchone()
    return int(row[0]) if row else 0


def rows(connection: psycopg.Connection, query: str = "SELECT count(*) FROM cpu") -> int:
    """The query's count over cpu; 0 while the table does not exist yet."""
    if connection.execute("SELECT to_regclass('cpu')").fetchone()[0] is None:
        return 0
    return int(connection.execute(query).fetchone()[0])


def wait_until_stored(url: str, expected: int, started: float, alive: Callable[[], None]) -> float:
    """Seconds from `started` until `cpu` held `expected` rows: the moment its heap last
    grew, confirmed by a count once it stopped growing. `alive` raises if the consumer died."""
    with psycopg.connect(url, autocommit=True) as connection:
        # A count must not take the other core from the consumers.
        connection.execute("SET max_parallel_workers_per_gather = 0")
        size, grown_at, counted_size = 0, started, -1
        while True:
            now = time.monotonic()
            current = table_size(connection)
            if current != size:
                size, grown_at = current, now
            elif size and size != counted_size and now - grown_at > QUIET_S:
                counted_size = size
                if rows(connection) >= expected:
                    return grown_at - started
            if now - started > STORE_TIMEOUT_S:
                raise RuntimeError(f"{url}: not {expected:,} rows after {STORE_TIMEOUT_S} s")
            alive()
            time.sleep(POLL_S)


def exactly_once_counts(url: str, expected: int) -> tuple[int, int, int]:
    """Rows in cpu, metrics missing (points not there), rows stored twice (beyond one
    per point)."""
    with psycopg.connect(url, autocommit=True) as connection:
        stored = rows(connection)
        points = rows(connection, "SELECT count(DISTINCT (time, tag_id)) FROM cpu")
    return stored, expected - points, stored - points


# -- consumers -------------------------------------------------------------------------------


@dataclass
class Consumer:
    """A consumer process (Telegraf, or agent sink and its workers), its own session, so
    that one signal reaches every process of it."""

    name: str
    command: list[str]
    log_path: Path
    group: str
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} ended early; its log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def kill(self) -> None:
        """SIGKILL to every process of it at once, as a power cut or the OOM killer's
        cgroup kill: nothing of it gets to finish anything."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_members(ctx: Context, consumer: Consumer, members: int) -> None:
    """Until the group is stable with `members` members holding every partition."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        consumer.alive()
        try:
            lag = group_lag([ctx.bootstrap], consumer.group, {})
            owners = {row.consumer_id for row in lag.partitions if row.consumer_id != "-"}
            held = [row for row in lag.partitions if row.consumer_id != "-"]
            if lag.state == "Stable" and len(owners) == members and len(held) == PARTITIONS:
                return
        except GroupError:
            pass  # not there yet
        if time.monotonic() > deadline:
            raise RuntimeError(f"{consumer.name}: group not ready; log:\n{consumer.log_tail()}")
        time.sleep(0.2)


def wait_for_lag_zero(ctx: Context, consumer: Consumer, topic_records: int) -> None:
    """Until the group has committed every record of the topic."""
    deadline = time.monotonic() + STORE_TIMEOUT_S
    while True:
        consumer.alive()
        try:
            lag = group_lag([ctx.bootstrap], consumer.group, {})
            committed = sum(row.current_offset or 0 for row in lag.partitions)
            if len(lag.partitions) == PARTITIONS and committed >= topic_records:
                return
        except GroupError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{consumer.name}: offsets not committed; {consumer.log_tail()}")
        time.sleep(0.5)


def telegraf_consumer(
    ctx: Context, binary: Path, topic: str, url: str, directory: Path
) -> Consumer:
    group = f"bench-fleet-telegraf-{uuid.uuid4().hex[:8]}"
    config = directory / f"{group}.conf"
    reader = telegraf.consumer_config(
        ctx.bootstrap, topic, group, TELEGRAF_UNDELIVERED, TELEGRAF_BUFFER_LIMIT
    )
    config.write_text(
        f"""{reader}
[[outputs.postgresql]]
  connection = "{url}"
  tags_as_foreign_keys = true
"""
    )
    command = [str(binary), "--config", str(config)]
    return Consumer("Telegraf", command, directory / f"{group}.log", group)


def sink_consumer(ctx: Context, topic: str, url: str, workers: int, directory: Path) -> Consumer:
    group = f"bench-fleet-sink-{uuid.uuid4().hex[:8]}"
    config = directory / f"{group}.toml"
    config.write_text(SINK_CONFIG)
    command = [
        str(AGENT), "sink", "-config", str(config), "--brokers", ctx.bootstrap,
        "--topic", topic, "--group", group, "--from-beginning", "--store", url,
        "--workers", str(workers),
    ]  # fmt: skip
    return Consumer(f"agent sink --workers {workers}", command, directory / f"{group}.log", group)


def timed_run(
    ctx: Context,
    make: Callable[[str, str], Consumer],
    members: int,
    lines: Path,
    count: int,
    server: str,
    purpose: str,
    separator: str | None = None,
) -> tuple[float, str]:
    """Metrics per second of one consumer over a fresh topic; and the topic, which then
    holds the `count` metrics (`separator`: records of many lines, see produce_command)."""
    topic = broker.create_topic(ctx.bootstrap, "fleet", partitions=PARTITIONS)
    with new_database(server, purpose) as url:
        consumer = make(topic, url)
        consumer.start()
        try:
            wait_for_members(ctx, consumer, members)
            started = time.monotonic()
            subprocess.run(produce_command(ctx, topic, lines, separator), check=True)
            seconds = wait_until_stored(url, count, started, consumer.alive)
        finally:
            consumer.stop()
        stored = exactly_once_counts(url, count)
    if stored != (count, 0, 0):
        raise RuntimeError(f"{consumer.name}: rows, missing, twice = {stored}")
    return count / seconds, topic


def killed_run(
    ctx: Context, consumer: Consumer, url: str, count: int, kills: int
) -> tuple[int, int, int]:
    """Start the consumer on a topic holding `count` metrics, kill it with SIGKILL at
    1/(kills+1), 2/(kills+1), … of them stored and start it again each time; its counts
    once it committed everything."""
    consumer.start()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("SET max_parallel_workers_per_gather = 0")
            for kill in range(1, kills + 1):
                threshold = count * kill // (kills + 1)
                while rows(connection) < threshold:
                    consumer.alive()
                    time.sleep(0.1)
                consumer.kill()
                say(f"fleet: {consumer.name} killed with SIGKILL at {threshold:,} rows")
                consumer.start()
        wait_for_lag_zero(ctx, consumer, count)
    finally:
        consumer.stop()
    return exactly_once_counts(url, count)


BATCHED_LABEL = ", batched records"
SHOWN_SINK = "agent sink --topic T --group G --from-beginning --store postgresql://…"


def compare(
    ctx: Context,
    found: telegraf.Telegraf | telegraf.Missing,
    path: Path,
    separator: str | None,
    label: str,
    count: int,
    server: str,
    directory: Path,
) -> tuple[list[Figure], str]:
    """Telegraf's and the sink's (1 and 2 workers) rates over one shape of topic (`label`:
    "" for one metric per record), with the ratios; and the last topic."""
    figures: list[Figure] = []
    telegraf_rate = None
    if isinstance(found, telegraf.Missing):
        figures.append(
            Figure(
                f"Telegraf kafka_consumer → outputs.postgresql{label}",
                None,
                "metrics/s",
                "telegraf --config fleet.conf",
                found.reason,
            )
        )
    else:
        say(f"fleet: Telegraf kafka_consumer → outputs.postgresql{label}")
        telegraf_rate, _ = timed_run(
            ctx,
            lambda topic, url: telegraf_consumer(ctx, found.path, topic, url, directory),
            1,
            path,
            count,
            server,
            "telegraf",
            separator,
        )
        figures.append(
            Figure(
                f"Telegraf kafka_consumer → outputs.postgresql{label}",
                telegraf_rate,
                "metrics/s",
                "telegraf --config fleet.conf",
            )
        )
    rates = {}
    topic = ""
    for workers in (1, 2):
        plural = "s" if workers > 1 else ""
        say(f"fleet: agent sink --workers {workers}{label}")
        rates[workers], topic = timed_run(
            ctx,
            lambda topic, url, w=workers: sink_consumer(ctx, topic, url, w, directory),
            workers,
            path,
            count,
            server,
            f"sink{workers}",
            separator,
        )
        figures.append(
            Figure(
                f"agent sink, {workers} worker{plural}{label}",
                rates[workers],
                "metrics/s",
                f"{SHOWN_SINK} --workers {workers}",
            )
        )
    for workers in (1, 2):
        ratio = rates[workers] / telegraf_rate if telegraf_rate else None
        plural = "s" if workers > 1 else ""
        figures.append(
            Figure(
                f"{workers} worker{plural} / Telegraf{label}",
                ratio,
                "×",
                "",
                "" if ratio is not None else "no Telegraf",
            )
        )
    return figures, topic


def run(ctx: Context) -> tuple[str, list[Figure]]:
    count = ctx.count(500_000, 50_000)
    directory = ctx.scratch("fleet")
    found = telegraf.find()
    server = server_url()
    say(f"fleet: {count:,} cpu metrics of {data.HOSTS} hosts, random values, keyed by host")
    metrics = fleet_metrics(count)
    lines = directory / "fleet.keyed"
    data.write_keyed_lines(lines, metrics)
    batched = directory / "fleet.batched"
    write_batched_records(batched, metrics)
    del metrics
    figures: list[Figure] = []
    topic = ""
    for label, path, separator in (
        ("", lines, None),
        (BATCHED_LABEL, batched, KCAT_SEPARATOR),
    ):
        shape_figures, shape_topic = compare(
            ctx, found, path, separator, label, count, server, directory
        )
        figures += shape_figures
        topic = topic or shape_topic
    say(f"fleet: exactly once, agent sink --workers 2 killed {KILLS} times")
    with new_database(server, "killed") as url:
        sink = sink_consumer(ctx, topic, url, 2, directory)
        stored, missing, twice = killed_run(ctx, sink, url, count, KILLS)
    killed_command = f"{SHOWN_SINK} --workers 2, SIGKILL {KILLS}× and started again"
    figures += [
        Figure(f"sink after {KILLS} SIGKILLs: rows", stored, "rows", killed_command),
        Figure(f"sink after {KILLS} SIGKILLs: missing", missing, "metrics", killed_command),
        Figure(f"sink after {KILLS} SIGKILLs: stored twice", twice, "metrics", killed_command),
        Figure(f"sink after {KILLS} SIGKILLs: missing or twice", missing + twice, "metrics", ""),
    ]
    if isinstance(found, telegraf.Telegraf):
        say("fleet: Telegraf killed once, for contrast")
        with new_database(server, "telegraf_killed") as url:
            consumer = telegraf_consumer(ctx, found.path, topic, url, directory)
            stored, missing, twice = killed_run(ctx, consumer, url, count, 1)
        command = "telegraf --config fleet.conf, SIGKILL once and started again"
        figures += [
            Figure("Telegraf after 1 SIGKILL: rows", stored, "rows", command),
            Figure("Telegraf after 1 SIGKILL: missing", missing, "metrics", command),
            Figure("Telegraf after 1 SIGKILL: stored twice", twice, "metrics", command),
        ]
    settings = (
        f"{count:,} cpu metrics (random values, {data.HOSTS} hosts) on a {PARTITIONS}-partition "
        "topic, keyed by host; PostgreSQL 15 on the same machine"
    )
    return settings, figures
