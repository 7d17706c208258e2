"""A file of line protocol read by inputs.file and written to a file or to Kafka with `--once`,
by the agent and by Telegraf in the same run, with the same config; kcat -P beside them."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import bare as bare_module
from bench import broker, data, procstat, telegraf
from bench.context import AGENT, REPO, Context
from bench.pipeline import kcat_produce_command
from bench.progress import say
from bench.report import Figure

TITLE = "From a file, to a file and to Kafka"
MEANING = """
500,000 cpu lines whose values never repeat (10 float fields, 50 hosts × 8 CPUs, 176 MB) in
a file, read by `inputs.file` with `--once` and written to a file by outputs.file, or to a
fresh Kafka topic by outputs.kafka (lz4, acks all, idempotent, `routing_tag = "host"`, so
each record's key is its host as in a fleet). The agent and Telegraf run one after the other
in the same run, on the same file, with the same config file (it is Telegraf's format:
`metric_buffer_limit = 500000` so nothing is dropped, `metric_batch_size` 1000, the default,
`omit_hostname = true`), each timed from process start to its exit, which comes after the
last line was written or the last record acknowledged; best of the runs. *Peak RSS* is the
most resident memory of the process (ru_maxrss of the reaped child), the largest of the
runs. Checked after each run: the output file or the topic holds every line. *Batched* is
the agent with `use_batch_format = true` (the lines of a write that share a key go in one
record); Telegraf's outputs.kafka has no such mode and writes one metric per record, so its
one-per-record run is what the batched agent is compared with. kcat -P sends the same file
(`-z lz4 -X acks=all -X enable.idempotence=true`, no key), timed from process start to exit
too. *kafka-python alone* sends the same lines with kafka-python's KafkaProducer and the
settings outputs.kafka gives its own producer (acks all, idempotence, lz4, linger 5 ms, 1 MiB
batches), in the benchmark's own process, without parsing or anything of the agent (one line
per record, and 100 per record as use_batch_format makes them): the ceiling of an agent
built on kafka-python's producer, which the agent used until it had its own. *Bare Python*
is bench/bare.py: the least any Python program does for the batched work (each line split
into measurement, tags, fields with float values and timestamp, nothing checked, no metric
objects, the lines sent as they are, 1,000 to a record, no key, with kafka-python's
producer and those settings), timed as the agent is. What limits the agent: parsing and
serializing (the *Line protocol in process* figures), with all 500,000 metrics alive at
once as Python objects (the peak RSS), and compressing the batches (lz4, about 2 ms a
megabyte in the producer's thread); one per record, the Python work of each record too
(its Record object, its partition, the bookkeeping of its delivery).
"""

BARE_FIGURE = "bare Python, batched: rate"
MB = 2**20


@dataclass(frozen=True)
class Route:
    """One way from the file: its label in figure names, and its output section of the config."""

    label: str
    to_kafka: bool
    batch_format: bool = False


FILE_TO_FILE = Route("file → file", to_kafka=False)
ONE_PER_RECORD = Route("file → Kafka, one per record", to_kafka=True)
BATCHED = Route("file → Kafka, batched", to_kafka=True, batch_format=True)


def rate_figure(program: str, route: Route) -> str:
    """The name of a rate figure, which the targets refer to."""
    return f"{program}, {route.label}: rate"


def rss_figure(program: str, route: Route) -> str:
    return f"{program}, {route.label}: peak RSS"


def config(ctx: Context, source: Path, lines: int, route: Route, destination: str) -> str:
    """The config both programs run: `destination` is an output file or a topic."""
    head = f"""
[agent]
  metric_buffer_limit = {lines}
  omit_hostname = true

[[inputs.file]]
  files = ["{source}"]
  data_format = "influx"
"""
    if not route.to_kafka:
        return head + f'\n[[outputs.file]]\n  files = ["{destination}"]\n  data_format = "influx"\n'
    return (
        head
        + f"""
[[outputs.kafka]]
  brokers = ["{ctx.bootstrap}"]
  topic = "{destination}"
  routing_tag = "host"
  compression_codec = 3
  required_acks = -1
  idempotent_writes = true
  data_format = "influx"
{"  use_batch_format = true" if route.batch_format else ""}
"""
    )


def lines_in(path: Path) -> int:
    with open(path, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


def run_once(
    ctx: Context, program: list[str], source: Path, lines: int, route: Route
) -> procstat.Finished:
    """One `--once` run of `program` (its command before the config) over the file; checked:
    every line reached the output file or the topic."""
    scratch = ctx.scratch("file")
    if route.to_kafka:
        destination = broker.create_topic(ctx.bootstrap, "file")
    else:
        destination = str(scratch / f"out-{time.monotonic_ns()}.lp")
    config_path = scratch / f"{time.monotonic_ns()}.conf"
    config_path.write_text(config(ctx, source, lines, route, destination))
    with open(scratch / "stderr.log", "wb") as log:
        finished = procstat.run_to_end(
            [*program, "--config", str(config_path), "--once", "--quiet"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    if route.to_kafka:
        written = broker.count_lines(ctx.bootstrap, destination)
    else:
        written = lines_in(Path(destination))
        Path(destination).unlink()
    if written != lines:
        raise RuntimeError(f"{' '.join(program)} ({route.label}): {written} lines of {lines}")
    return finished


def measure_route(
    ctx: Context, programs: dict[str, list[str]], source: Path, lines: int, route: Route, runs: int
) -> dict[str, tuple[float, int]]:
    """Each program's fastest seconds and largest peak RSS in bytes over `runs` runs, the
    programs taking turns so that a busy moment of the machine does not fall on one alone."""
    finished: dict[str, list[procstat.Finished]] = {name: [] for name in programs}
    for _ in range(runs):
        for name, program in programs.items():
            finished[name].append(run_once(ctx, program, source, lines, route))
    return {
        name: (min(f.seconds for f in each), max(f.peak_rss_bytes for f in each))
        for name, each in finished.items()
    }


def side_by_side(ctx: Context, source: Path, lines: int, runs: int) -> list[Figure]:
    """The agent and Telegraf on each route; Telegraf's rate is missing, with the reason,
    when it is not there."""
    found = telegraf.find()
    figures = []
    for route in (FILE_TO_FILE, ONE_PER_RECORD, BATCHED):
        programs = {"agent": [str(AGENT)]}
        commands = {"agent": f"agent -config C --once ({route.label})"}
        # Telegraf writes one metric per record: the batched agent is set against the
        # one-per-record run of Telegraf.
        if isinstance(found, telegraf.Telegraf) and not route.batch_format:
            programs["Telegraf"] = [str(found.path)]
            commands["Telegraf"] = f"telegraf --config C --once ({route.label}; {found.name})"
        say(f"file: {' and '.join(programs)} --once, {route.label}, {runs} run(s) each")
        measured = measure_route(ctx, programs, source, lines, route, runs)
        for name, (seconds, peak) in measured.items():
            figures += [
                Figure(rate_figure(name, route), lines / seconds, "metrics/s", commands[name]),
                Figure(rss_figure(name, route), peak / MB, "MB", commands[name]),
            ]
        if isinstance(found, telegraf.Missing) and not route.batch_format:
            figures.append(
                Figure(rate_figure("Telegraf", route), None, "metrics/s", "", found.reason)
            )
    return figures


KAFKA_PYTHON_LINES_PER_RECORD = 100


def kafka_python_rate(ctx: Context, path: Path, lines_per_record: int) -> float:
    """Lines per second of kafka-python's KafkaProducer alone sending the file's lines as
    they are (no parsing, no agent), with outputs.kafka's producer settings: the ceiling
    any agent built on it reaches here. Timed from the first send() to the last
    acknowledgement, connected and with the topic's metadata before."""
    from kafka import KafkaProducer

    topic = broker.create_topic(ctx.bootstrap, "file-kafka-python")
    lines = path.read_bytes().splitlines(keepends=True)
    values = [
        b"".join(lines[i : i + lines_per_record]) for i in range(0, len(lines), lines_per_record)
    ]
    producer = KafkaProducer(**broker.kafka_python_producer_config(ctx.bootstrap))
    try:
        producer.send(topic, b"first\n").get(timeout=30)
        started = time.perf_counter()
        for value in values:
            producer.send(topic, value)
        producer.flush(timeout=600)
        elapsed = time.perf_counter() - started
    finally:
        producer.close()
    delivered = broker.count_lines(ctx.bootstrap, topic)
    if delivered != len(lines) + 1:
        raise RuntimeError(f"{topic}: {delivered} lines delivered, expected {len(lines) + 1}")
    return len(lines) / elapsed


def bare_seconds(ctx: Context, path: Path, lines: int) -> float:
    """Seconds of bench/bare.py's file_to_kafka, from process start to exit."""
    topic = broker.create_topic(ctx.bootstrap, "file-bare")
    command = [sys.executable, "-m", "bench.bare", "file", str(path), topic, ctx.bootstrap]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if (delivered := broker.count_lines(ctx.bootstrap, topic)) != lines:
        raise RuntimeError(f"{topic}: {delivered} lines delivered, expected {lines}")
    return elapsed


def kcat_seconds(ctx: Context, path: Path) -> float:
    topic = broker.create_topic(ctx.bootstrap, "file-kcat")
    started = time.perf_counter()
    subprocess.run(kcat_produce_command(ctx.bootstrap, topic, "lz4", path), check=True)
    return time.perf_counter() - started


def run(ctx: Context) -> tuple[str, list[Figure]]:
    lines = ctx.count(500_000, 50_000)
    runs = ctx.count(2, 1)
    say(f"file: writing {lines:,} cpu lines whose values never repeat")
    source = ctx.scratch("file") / "cpu.lp"
    data.write_lines(source, data.cpu_metrics(lines))
    figures = side_by_side(ctx, source, lines, runs)
    bare_records = f"{bare_module.LINES_PER_RECORD:,} lines per record"
    say(f"file: bare Python, {bare_records}")
    bare = bare_seconds(ctx, source, lines)
    shown = f"python -m bench.bare file cpu.lp TOPIC BROKER ({bare_records})"
    figures.append(Figure(BARE_FIGURE, lines / bare, "metrics/s", shown))
    for per_record in (1, KAFKA_PYTHON_LINES_PER_RECORD):
        mode = "one per record" if per_record == 1 else f"{per_record} lines per record"
        say(f"file: kafka-python KafkaProducer alone, {mode}")
        rate = kafka_python_rate(ctx, source, per_record)
        shown = f"KafkaProducer.send() of the file's lines, {mode}, then flush()"
        figures.append(Figure(f"kafka-python alone, {mode}", rate, "lines/s", shown))
    say("file: kcat -P")
    kcat = kcat_seconds(ctx, source)
    kcat_command = " ".join(kcat_produce_command("BROKER", "TOPIC", "lz4", Path("cpu.lp")))
    figures.append(Figure("kcat -P", lines / kcat, "lines/s", kcat_command))
    return f"{lines:,} cpu lines, values never repeating; best of {runs} run(s) each", figures
