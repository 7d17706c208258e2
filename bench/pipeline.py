"""Pipeline throughput: metrics per second from an output's buffer into Kafka.

In process: the agent's own RunningOutput (built from a config, as the daemon builds it)
with a buffer already full, and `flush()` timed until the buffer is empty, every record
acknowledged (acks all, idempotent producer). Beside it kcat sends the same lines.
"""

from __future__ import annotations

import gc
import subprocess
import time
from pathlib import Path

from agent.agent import Agent
from agent.config import load
from agent.metric import Metric
from agent.running import RunningOutput
from bench import broker, data
from bench.context import Context
from bench.progress import say
from bench.report import Figure

TITLE = "Pipeline throughput"
MEANING = """
Metrics per second from a full buffer into Kafka: `RunningOutput.flush()` of the agent's
own output (config loaded as the daemon loads it; `metric_batch_size` 1000, the default;
acks all, idempotent producer; up to three writes on their way, each settled only when
acknowledged), timed from the
call until the buffer is empty, after a first flush of 1,000 metrics that connected and
fetched the topic's metadata. The metrics are cpu metrics (10 float fields, 50 hosts × 8
CPUs, values that never repeat, 350 bytes as a line). *one per record* is the agent's
default (one metric per Kafka
record, as Telegraf); *batched* is `use_batch_format = true` (the metrics of a write share
records of up to `max_message_bytes`). kcat sends the same serialized lines, one per record
(`-X acks=all -X enable.idempotence=true`, same codec), timed as a process minus the time
kcat takes for one line (start-up, connection, metadata), best of 3. The ratio is agent /
kcat. What limits it: batched, serializing takes about 1 µs a metric (the *parsing and
serializing* figures), the rest is the buffer, the record batches and kafka-python's
producer; the wait for acknowledgements is hidden behind the next batches (measured with
py-spy before the native core, when serializing took 5 of the 6 to 7 µs a metric). One
per record, kafka-python's
`send()` takes about 10 µs per record and its sender thread, under the same GIL, a few
more: a bare KafkaProducer loop of `send()` calls reaches about 80,000 records/s here.
"""

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
WARMUP_METRICS = 1_000
KCAT_RUNS = 3


def build_output(
    ctx: Context,
    topic: str,
    codec: str = "none",
    batch_format: bool = False,
    buffer_limit: int = 10_000,
    buffer_strategy: str = "memory",
) -> RunningOutput:
    """The Kafka output exactly as the daemon builds it from a config file."""
    directory = ctx.scratch(f"output-{topic}")
    path = directory / "agent.toml"
    path.write_text(
        f"""
[agent]
  metric_buffer_limit = {buffer_limit}
  buffer_strategy = "{buffer_strategy}"
  buffer_directory = "{directory}"

[[outputs.kafka]]
  brokers = ["{ctx.bootstrap}"]
  topic = "{topic}"
  compression_codec = "{codec}"
  use_batch_format = {"true" if batch_format else "false"}
"""
    )
    return Agent(load([path])).outputs[0]


def timed_flush(output: RunningOutput, metrics: list[Metric]) -> float:
    """Buffer `metrics` (not timed), then seconds until flush() has delivered them all."""
    output.add(metrics)
    gc.collect()
    started = time.perf_counter()
    delivered = output.flush()
    elapsed = time.perf_counter() - started
    if not delivered or len(output.buffer):
        raise RuntimeError(f"flush left {len(output.buffer)} metrics in the buffer")
    return elapsed


def agent_rate(
    ctx: Context, warm: list[Metric], metrics: list[Metric], codec: str, batch_format: bool
) -> float:
    """Metrics per second of one flush of `metrics`, after a flush of `warm` that connected."""
    topic = broker.create_topic(ctx.bootstrap, f"pipe-{codec}")
    output = build_output(ctx, topic, codec, batch_format, len(warm) + len(metrics))
    try:
        timed_flush(output, warm)
        elapsed = timed_flush(output, metrics)
    finally:
        output.close()
        output.buffer.close()
    expected = len(warm) + len(metrics)
    records = broker.record_count(ctx.bootstrap, topic)
    if not batch_format and records != expected:
        raise RuntimeError(f"{topic}: {records} records, expected {expected}")
    return len(metrics) / elapsed


def kcat_produce_command(bootstrap: str, topic: str, codec: str, path: Path) -> list[str]:
    return [
        "kcat", "-P", "-b", bootstrap, "-t", topic, "-z", codec,
        "-X", "acks=all", "-X", "enable.idempotence=true", "-l", str(path),
    ]  # fmt: skip


def kcat_seconds(ctx: Context, codec: str, path: Path) -> float:
    """Wall time of `kcat -P` sending the file, to a fresh topic."""
    topic = broker.create_topic(ctx.bootstrap, f"kcat-{codec}")
    started = time.perf_counter()
    subprocess.run(kcat_produce_command(ctx.bootstrap, topic, codec, path), check=True)
    return time.perf_counter() - started


def kcat_rate(ctx: Context, codec: str, lines: Path, one_line: Path, count: int) -> float:
    """Lines per second of kcat -P, its start-up (the time for one line) taken out; the best
    of KCAT_RUNS runs, since one run takes a fraction of a second."""
    base = min(kcat_seconds(ctx, codec, one_line) for _ in range(KCAT_RUNS))
    best = min(kcat_seconds(ctx, codec, lines) for _ in range(KCAT_RUNS))
    return count / max(best - base, 1e-6)


def run(ctx: Context) -> tuple[str, list[Figure]]:
    count = ctx.count(200_000, 20_000)
    say(f"pipeline: generating {count:,} cpu metrics")
    metrics = data.cpu_metrics(count + WARMUP_METRICS)
    warm, timed = metrics[:WARMUP_METRICS], metrics[WARMUP_METRICS:]
    lines = ctx.scratch("pipeline") / "cpu.lp"
    data.write_lines(lines, timed)
    one_line = ctx.scratch("pipeline") / "one.lp"
    data.write_lines(one_line, timed[:1])
    command = "RunningOutput.flush() of {n:,} buffered metrics, compression_codec = {codec}{batch}"
    figures = []
    for codec in CODECS:
        say(f"pipeline: {codec}: kcat -P, {count:,} lines")
        kcat = kcat_rate(ctx, codec, lines, one_line, count)
        for batch_format in (False, True):
            mode = "batched" if batch_format else "one per record"
            say(f"pipeline: {codec}: agent, {mode}, {count:,} metrics")
            rate = agent_rate(ctx, warm, timed, codec, batch_format)
            shown = command.format(
                n=count, codec=codec, batch=", use_batch_format = true" if batch_format else ""
            )
            figures += [
                Figure(f"agent, {mode}, {codec}", rate, "metrics/s", shown),
                Figure(f"agent / kcat, {mode}, {codec}", rate / kcat, "×", ""),
            ]
        figures.append(
            Figure(
                f"kcat -P, one line per record, {codec}",
                kcat,
                "lines/s",
                " ".join(kcat_produce_command("BROKER", "TOPIC", codec, Path("cpu.lp"))),
            )
        )
    settings = f"{count:,} cpu metrics per figure, metric_batch_size 1000"
    return settings, figures
