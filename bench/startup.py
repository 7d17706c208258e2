"""Start-up: from process start to the first gather, and a whole `--once` run."""

from __future__ import annotations

import statistics
import subprocess
import time

from bench import broker
from bench.context import AGENT, Context
from bench.progress import say
from bench.report import Figure

TITLE = "Start-up"
MEANING = """
*to the first gather*: from just before the agent's process is started (`Popen`) to the
timestamp of the first metric it gathered (inputs.mem, `round_interval = false` so the first
gather is due at once, `precision = "1ns"` so the timestamp is the gather's clock reading),
read back from Kafka once delivered. It covers the interpreter, the imports, the config and
the scheduler. *--once*: wall time of `agent -config … --once` with inputs.mem and
outputs.kafka: start, gather, connect, deliver, wait for the acknowledgement, exit. Median of
the runs.
"""

FIRST_RECORD_TIMEOUT_S = 30.0


def config(ctx: Context, topic: str) -> str:
    return f"""
[agent]
  interval = "10s"
  round_interval = false
  flush_interval = "1s"
  precision = "1ns"

[[outputs.kafka]]
  brokers = ["{ctx.bootstrap}"]
  topic = "{topic}"

[[inputs.mem]]
"""


def first_gather_ms(ctx: Context) -> float:
    topic = broker.create_topic(ctx.bootstrap, "startup")
    path = ctx.scratch("startup") / f"{topic}.toml"
    path.write_text(config(ctx, topic))
    started_ns = time.time_ns()
    agent = subprocess.Popen([str(AGENT), "-config", str(path)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + FIRST_RECORD_TIMEOUT_S
        while broker.record_count(ctx.bootstrap, topic) < 1:
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError("the agent delivered nothing")
            time.sleep(0.2)
    finally:
        agent.terminate()
        agent.wait(60)
    command = [*broker.kcat_consume_command(ctx.bootstrap, topic, "%s"), "-c", "1"]
    line = subprocess.run(command, check=True, capture_output=True).stdout
    return (int(line.split()[-1]) - started_ns) / 1e6


def once_ms(ctx: Context) -> float:
    topic = broker.create_topic(ctx.bootstrap, "startup-once")
    path = ctx.scratch("startup") / f"{topic}.toml"
    path.write_text(config(ctx, topic))
    started = time.perf_counter()
    subprocess.run([str(AGENT), "-config", str(path), "--once"], check=True)
    elapsed = time.perf_counter() - started
    if broker.record_count(ctx.bootstrap, topic) != 1:
        raise RuntimeError("--once did not deliver its one metric")
    return elapsed * 1000


def run(ctx: Context) -> tuple[str, list[Figure]]:
    runs = ctx.count(5, 2)
    say(f"startup: {runs} runs to the first gather, {runs} --once runs")
    gathers = [first_gather_ms(ctx) for _ in range(runs)]
    onces = [once_ms(ctx) for _ in range(runs)]
    figures = [
        Figure(
            "process start → first gather",
            statistics.median(gathers),
            "ms",
            "agent -config C (inputs.mem, round_interval = false, precision 1ns)",
            f"{min(gathers):.0f}–{max(gathers):.0f} ms",
        ),
        Figure(
            "agent --once (mem → Kafka, acknowledged, exited)",
            statistics.median(onces),
            "ms",
            "agent -config C --once",
            f"{min(onces):.0f}–{max(onces):.0f} ms",
        ),
    ]
    return f"median of {runs} runs each", figures
