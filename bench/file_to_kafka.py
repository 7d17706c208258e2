"""A file of line protocol into Kafka with inputs.file (issue 11), beside kcat -P."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agent import registry
from bench import bare as bare_module
from bench import broker, data
from bench.context import AGENT, REPO, Context
from bench.pipeline import kcat_produce_command
from bench.progress import say
from bench.report import Figure

TITLE = "File to Kafka"
MEANING = """
500,000 cpu lines (10 fields, 50 hosts, 125 MB) in a file, read by `inputs.file` and
written by outputs.kafka to a fresh topic (`compression_codec = "lz4"`, acks all,
idempotent, `metric_buffer_limit = 500000` so nothing is dropped, `metric_batch_size` 1000),
with `agent --once`: timed from process start to its exit, which comes after the last
record was acknowledged. Checked: the topic then holds every line. kcat -P sends the same
file (`-z lz4 -X acks=all -X enable.idempotence=true`), timed from process start to exit too.
*kafka-python alone* sends the same lines with kafka-python's KafkaProducer and
outputs.kafka's producer settings, in the benchmark's own process, without parsing or
anything of the agent (one line per record, and 100 per record as use_batch_format makes
them): the ceiling for any agent built on kafka-python on this machine. *Bare Python* is
bench/bare.py: the least any Python program does for the batched work (each line split into
measurement, tags, fields with float values and timestamp, nothing checked, no metric
objects, the lines sent as they are, 1,000 to a record, with outputs.kafka's producer
settings), timed as the agent is: the ceiling for any agent written in Python on this
machine, this one included. What limits the agent: parsing (about 6 µs a line, all 500,000
metrics alive at once), then what limits the pipeline (above); one per record,
kafka-python's own work per record.
"""


BARE_FIGURE = "bare Python, batched: rate"


def config(ctx: Context, topic: str, path: Path, lines: int, batch_format: bool) -> str:
    return f"""
[agent]
  metric_buffer_limit = {lines}

[[inputs.file]]
  files = ["{path}"]
  data_format = "influx"

[[outputs.kafka]]
  brokers = ["{ctx.bootstrap}"]
  topic = "{topic}"
  compression_codec = "lz4"
  use_batch_format = {"true" if batch_format else "false"}
"""


def delivery_seconds(ctx: Context, topic: str, command: list[str], lines: int) -> float:
    """Seconds from the start of `command` to its exit; checked: `topic` then holds `lines`."""
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    delivered = broker.count_lines(ctx.bootstrap, topic)
    if delivered != lines:
        raise RuntimeError(f"{topic}: {delivered} lines delivered, expected {lines}")
    return elapsed


def agent_seconds(ctx: Context, path: Path, lines: int, batch_format: bool) -> float:
    topic = broker.create_topic(ctx.bootstrap, "file")
    config_path = ctx.scratch("file") / f"{topic}.toml"
    config_path.write_text(config(ctx, topic, path, lines, batch_format))
    command = [str(AGENT), "-config", str(config_path), "--once", "--quiet"]
    return delivery_seconds(ctx, topic, command, lines)


KAFKA_PYTHON_LINES_PER_RECORD = 100


def kafka_python_rate(ctx: Context, path: Path, lines_per_record: int) -> float:
    """Lines per second of kafka-python's KafkaProducer alone sending the file's lines as
    they are (no parsing, no agent), with outputs.kafka's producer settings: the ceiling
    any agent built on it reaches here. Timed from the first send() to the last
    acknowledgement, connected and with the topic's metadata before."""
    from kafka import KafkaProducer

    from plugins.outputs.kafka import Kafka

    topic = broker.create_topic(ctx.bootstrap, "file-kafka-python")
    lines = path.read_bytes().splitlines(keepends=True)
    values = [
        b"".join(lines[i : i + lines_per_record]) for i in range(0, len(lines), lines_per_record)
    ]
    settings = Kafka(brokers=[ctx.bootstrap], topic=topic, compression_codec="lz4")
    producer = KafkaProducer(**settings.producer_config())
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
    """Seconds of bench/bare.py's file_to_kafka, timed as the agent is."""
    topic = broker.create_topic(ctx.bootstrap, "file-bare")
    command = [sys.executable, "-m", "bench.bare", "file", str(path), topic, ctx.bootstrap]
    return delivery_seconds(ctx, topic, command, lines)


def kcat_seconds(ctx: Context, path: Path) -> float:
    topic = broker.create_topic(ctx.bootstrap, "file-kcat")
    started = time.perf_counter()
    subprocess.run(kcat_produce_command(ctx.bootstrap, topic, "lz4", path), check=True)
    return time.perf_counter() - started


def run(ctx: Context) -> tuple[str, list[Figure]]:
    lines = ctx.count(500_000, 50_000)
    settings = f"{lines:,} cpu lines"
    command = "agent -config C --once (inputs.file → outputs.kafka, lz4){batch}"
    if registry.lookup("inputs", "file") is None:
        missing = "inputs.file is not in this build yet"
        say(f"file: skipped: {missing}")
        return settings, [Figure("agent, one per record", None, "s", command, missing)]
    say(f"file: writing {lines:,} cpu lines")
    path = ctx.scratch("file") / "cpu.lp"
    data.write_lines(path, data.cpu_metrics(lines))
    figures = []
    say("file: kcat -P")
    kcat = kcat_seconds(ctx, path)
    for batch_format in (False, True):
        mode = "batched" if batch_format else "one per record"
        say(f"file: agent --once, {mode}")
        seconds = agent_seconds(ctx, path, lines, batch_format)
        if batch_format:
            batched_seconds = seconds
        shown = command.format(batch=", use_batch_format = true" if batch_format else "")
        figures += [
            Figure(f"agent, {mode}", seconds, "s", shown),
            Figure(f"agent, {mode}: rate", lines / seconds, "metrics/s", shown),
            Figure(f"agent / kcat time, {mode}", seconds / kcat, "×", ""),
        ]
    bare_records = f"{bare_module.LINES_PER_RECORD:,} lines per record"
    say(f"file: bare Python, {bare_records}")
    bare = bare_seconds(ctx, path, lines)
    shown = f"python -m bench.bare file cpu.lp TOPIC BROKER ({bare_records})"
    figures += [
        Figure(BARE_FIGURE, lines / bare, "metrics/s", shown),
        Figure("agent / bare Python time, batched", batched_seconds / bare, "×", ""),
    ]
    for per_record in (1, KAFKA_PYTHON_LINES_PER_RECORD):
        mode = "one per record" if per_record == 1 else f"{per_record} lines per record"
        say(f"file: kafka-python KafkaProducer alone, {mode}")
        rate = kafka_python_rate(ctx, path, per_record)
        shown = f"KafkaProducer.send() of the file's lines, {mode}, then flush()"
        figures.append(Figure(f"kafka-python alone, {mode}", rate, "lines/s", shown))
    kcat_command = " ".join(kcat_produce_command("BROKER", "TOPIC", "lz4", Path("cpu.lp")))
    figures.append(Figure("kcat -P", kcat, "s", kcat_command, f"{lines / kcat:,.0f} lines/s"))
    return settings, figures
