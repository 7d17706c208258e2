"""Sink throughput: metrics per second consumed, parsed and stored (or printed) by `agent sink`.

The sink runs as its own process, as users run it; its start-up (joining the group, the
first fetch) is measured on its own and taken out, so the figure is the steady rate.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench import broker, data, telegraf
from bench.context import AGENT, REPO, Context
from bench.progress import say
from bench.report import Figure

TITLE = "Sink throughput"
MEANING = """
Metrics per second through `agent sink` as a process: consumed in a consumer group from a
2-partition topic, parsed, and stored in SQLite (`--store`, one transaction per batch of
10,000, `synchronous=FULL`, offsets committed after each batch) or printed as line protocol
to /dev/null. The topic holds cpu metrics whose values never repeat, one per record keyed by
host as the agent (and Telegraf) write them with `routing_tag = "host"`, or 100 lines per
record without key (as `use_batch_format` writes them). Each figure is N metrics divided by
(time of the sink run that stops after the last record, `--max-messages`) minus (time of the
same run stopping after the first record: start-up, group join, first fetch). Every stored
run is checked: the database holds exactly N rows. kcat -C reads the same topic to its end
(`-e`), timed the same way (best of 3); the ratio is sink / kcat. Telegraf, in the same run
on the same one-per-record topic: its inputs.kafka_consumer (`version = "3.6.0"`, which
Kafka 4 needs, `offset = "oldest"`, a group of its own) writing to outputs.file (influx);
`max_undelivered_messages = 10000`, the sink's batch, as the metrics it may hold unwritten
(with its default of 1,000 it read about 10,000 metrics/s here while this benchmark was
written), `metric_buffer_limit` the topic's size, `flush_interval = "1s"`. Timed from the
moment its file holds a first line to the moment it holds N, so its start-up, group join and
first fetch are left out as the sink's are. The sink fetches and reads the record batches
itself (kafka-python's consumer keeps the group; its own record reader, pure Python, costs
about 7 µs a record here) and keeps each batch in a store thread while its main thread
reads the next; the SQLite store writes a batch with INSERT statements of about 2,700
points each (one statement per point waited for the GIL once per point, about 10 µs, while
the main thread read). *Bare Python* is bench/bare.py: the least any Python program does for
the same work with kafka-python's consumer (each line split into measurement, tag text,
fields with float values and timestamp, nothing checked; one SQLite row per metric keyed on
its identity, with the field set's text as it came; a transaction per 10,000 metrics,
`synchronous=FULL`, offsets committed after it), timed as the sink is: the ceiling for a
sink that does its per-line work in Python with kafka-python's records.
"""

LINES_PER_BATCHED_RECORD = 100


def bare_figure(mode: str) -> str:
    return f"bare Python --store, {mode}"


KCAT_SHOWN = "kcat -C -b BROKER -t T -o beginning -e -q > /dev/null"


def produce(ctx: Context, path: Path, delimiter: str | None = None, keyed: bool = False) -> str:
    """A fresh 2-partition topic holding the file's records (lines, or `delimiter`-separated;
    `keyed`: each line a key, a tab and the value, as data.write_keyed_lines writes them)."""
    topic = broker.create_topic(ctx.bootstrap, "sink", partitions=2)
    command = ["kcat", "-P", "-b", ctx.bootstrap, "-t", topic, "-X", "acks=all"]
    if delimiter is not None:
        command += ["-D", delimiter]
    if keyed:
        command += ["-K", "\\t"]
    subprocess.run([*command, "-l", str(path)], check=True)
    return topic


def sink_command(ctx: Context, topic: str, records: int, how: list[str]) -> list[str]:
    group = f"bench-sink-{uuid.uuid4().hex[:10]}"
    return [
        str(AGENT), "sink", "--brokers", ctx.bootstrap, "--topic", topic, "--group", group,
        "--from-beginning", "--max-messages", str(records), "--quiet", *how,
    ]  # fmt: skip


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900, cwd=REPO)
    return time.perf_counter() - started


def stored_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def rate_after_start_up(
    command: Callable[[int, Path], list[str]],
    directory: Path,
    records: int,
    metrics: int,
    table: str | None,
) -> float:
    """Metrics per second of `command(records, database)` over the whole topic, less the
    time of the same run stopping after the first record (start-up, group join, first
    fetch). When it stores (into `table`), checked: the table then holds every metric."""
    base = timed(command(1, directory / "first.db"))
    whole_run = command(records, directory / "all.db")
    whole = timed(whole_run)
    if table and (rows := stored_rows(directory / "all.db", table)) != metrics:
        raise RuntimeError(f"{' '.join(whole_run)}: {rows} metrics stored, expected {metrics}")
    return metrics / max(whole - base, 1e-6)


def bare_rate(ctx: Context, topic: str, records: int, metrics: int) -> float:
    """Metrics per second of bench/bare.py's sink over the whole topic, timed as the sink."""

    def command(count: int, database: Path) -> list[str]:
        return [
            sys.executable, "-m", "bench.bare", "sink", topic, str(count), ctx.bootstrap,
            str(database),
        ]  # fmt: skip

    directory = ctx.scratch(f"sink-bare-{uuid.uuid4().hex[:8]}")
    return rate_after_start_up(command, directory, records, metrics, "metrics")


def sink_rate(ctx: Context, topic: str, records: int, metrics: int, store: bool) -> float:
    """Metrics per second of one sink run over the whole topic, start-up taken out."""

    def command(count: int, database: Path) -> list[str]:
        how = ["--store", f"sqlite:{database}"] if store else ["--format", "line"]
        return sink_command(ctx, topic, count, how)

    directory = ctx.scratch(f"sink-{uuid.uuid4().hex[:8]}")
    return rate_after_start_up(command, directory, records, metrics, "cpu" if store else None)


def kcat_rate(ctx: Context, topic: str, metrics: int) -> float:
    """Records per second of kcat -C, start-up taken out, best of 3 (a run is short)."""
    command = broker.kcat_consume_command(ctx.bootstrap, topic)
    base = min(timed([*command, "-c", "1"]) for _ in range(3))
    return metrics / max(min(timed(command) for _ in range(3)) - base, 1e-6)


TELEGRAF_FIGURE = "Telegraf kafka_consumer → outputs.file, one per record"
# Metrics Telegraf's kafka_consumer may hold unwritten: the sink's batch of 10,000.
TELEGRAF_MAX_UNDELIVERED = 10_000


def telegraf_config(ctx: Context, topic: str, output: Path, metrics: int) -> str:
    group = f"bench-telegraf-{uuid.uuid4().hex[:10]}"
    reader = telegraf.consumer_config(
        ctx.bootstrap, topic, group, TELEGRAF_MAX_UNDELIVERED, metrics
    )
    return f"""{reader}
[[outputs.file]]
  files = ["{output}"]
  data_format = "influx"
"""


def telegraf_figure(ctx: Context, topic: str, metrics: int) -> Figure:
    """Metrics per second of Telegraf's kafka_consumer → outputs.file over the topic;
    checked: its file then holds every metric."""
    found = telegraf.find()
    if isinstance(found, telegraf.Missing):
        return Figure(TELEGRAF_FIGURE, None, "metrics/s", "", found.reason)
    directory = ctx.scratch(f"sink-telegraf-{uuid.uuid4().hex[:8]}")
    config = directory / "telegraf.conf"
    config.write_text(telegraf_config(ctx, topic, directory / "out.lp", metrics))
    written = telegraf.LineCounter(directory / "out.lp")
    try:
        rate = telegraf.steady_rate(found, config, directory / "telegraf.log", written, metrics)
        if (lines := written()) != metrics:
            raise RuntimeError(f"Telegraf wrote {lines} metrics, expected {metrics}")
    finally:
        written.close()
    command = f"telegraf --config C (inputs.kafka_consumer → outputs.file; {found.name})"
    return Figure(TELEGRAF_FIGURE, rate, "metrics/s", command)


def run(ctx: Context) -> tuple[str, list[Figure]]:
    count = ctx.count(500_000, 20_000)
    say(f"sink: producing {count:,} cpu metrics with kcat, one per record and batched")
    # A microsecond apart: the store keeps a point (tag set and time) to the microsecond.
    metrics = data.cpu_metrics(count, step_ns=1_000)
    lines = ctx.scratch("sink") / "cpu.lp"
    data.write_lines(lines, metrics)
    keyed_lines = ctx.scratch("sink") / "cpu-keyed.txt"
    data.write_keyed_lines(keyed_lines, metrics)
    single = produce(ctx, keyed_lines, keyed=True)
    text = lines.read_bytes().splitlines(keepends=True)
    batched_path = ctx.scratch("sink") / "cpu-batched.lp"
    step = LINES_PER_BATCHED_RECORD
    batched_path.write_bytes(
        b"\x1e".join(b"".join(text[i : i + step]) for i in range(0, count, step))
    )
    batched = produce(ctx, batched_path, "\\x1e")
    batched_records = -(-count // step)
    shown = "agent sink --topic T --group G --from-beginning --max-messages N"
    figures = []
    say(f"sink: storing {count:,} metrics, one per record")
    stored = sink_rate(ctx, single, count, count, store=True)
    figures.append(
        Figure(
            "agent sink --store, one per record",
            stored,
            "metrics/s",
            f"{shown} --store sqlite:PATH",
        )
    )
    say(f"sink: Telegraf kafka_consumer → outputs.file, {count:,} metrics, one per record")
    figures.append(telegraf_figure(ctx, single, count))
    say(f"sink: printing {count:,} metrics, one per record")
    printed = sink_rate(ctx, single, count, count, store=False)
    figures.append(
        Figure(
            "agent sink printing, one per record",
            printed,
            "metrics/s",
            f"{shown} --format line > /dev/null",
        )
    )
    say(f"sink: storing {count:,} metrics, {step} per record")
    stored_batched = sink_rate(ctx, batched, batched_records, count, store=True)
    figures.append(
        Figure(
            f"agent sink --store, {step} per record",
            stored_batched,
            "metrics/s",
            f"{shown} --store sqlite:PATH",
        )
    )
    for mode, topic, records, agent_rate in (
        ("one per record", single, count, stored),
        (f"{step} per record", batched, batched_records, stored_batched),
    ):
        say(f"sink: bare Python, {count:,} metrics, {mode}")
        bare = bare_rate(ctx, topic, records, count)
        figures += [
            Figure(
                bare_figure(mode),
                bare,
                "metrics/s",
                f"python -m bench.bare sink T {records} BROKER PATH",
            ),
            Figure(f"stored / bare Python, {mode}", agent_rate / bare, "×", ""),
        ]
    say(f"sink: kcat -C, {count:,} records")
    kcat = kcat_rate(ctx, single, count)
    figures += [
        Figure("kcat -C, one per record", kcat, "records/s", KCAT_SHOWN),
        Figure("stored / kcat", stored / kcat, "×", ""),
        Figure("printed / kcat", printed / kcat, "×", ""),
    ]  # fmt: skip
    return f"{count:,} cpu metrics, values never repeating, on a 2-partition topic", figures
