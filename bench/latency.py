"""Latency: from a metric's timestamp to its arrival in the sink, agent and sink as processes."""

from __future__ import annotations

import math
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import IO

from bench import broker
from bench.context import AGENT, Context
from bench.progress import say
from bench.report import Figure

TITLE = "Latency"
MEANING = """
From a metric's timestamp to the moment the sink has stored it: the agent gathers cpu
(per CPU and total) and mem every second and flushes every second (`interval = "1s"`,
`flush_interval = "1s"`, `precision = "1ns"`, so the timestamp is the gather's own clock
reading, not rounded to the second); `agent sink --store sqlite:… --format line` stores
each batch (`synchronous=FULL`, its default 200 ms batching) and then prints it; the bench
reads the printed lines as they come and takes the arrival time there (same host, same
clock). Gathers fall on whole seconds (`round_interval`) and flushes every second from the
agent's start, so how long a metric waits for its flush depends on when the agent started:
the agent runs several times, each started at another fraction of a second (0, 1/4, 1/2,
3/4 s past a whole second), and the first 5 s of each run are left out. Most of the latency
is by design: a metric waits in the buffer for the next flush (up to 1 s) and in the sink
for its batch (up to 200 ms).
"""

WARMUP_S = 5.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def agent_config(ctx: Context, topic: str) -> str:
    return f"""
[agent]
  interval = "1s"
  flush_interval = "1s"
  precision = "1ns"

[[outputs.kafka]]
  brokers = ["{ctx.bootstrap}"]
  topic = "{topic}"

[[inputs.cpu]]
  percpu = true
  totalcpu = true

[[inputs.mem]]
"""


def wait_for(path: Path, text: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Until `text` appears in the log at `path`; an error if the process ends first."""
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} from the sink:\n{path.read_text()}")
        time.sleep(0.05)


def start_at_phase(phase_s: float) -> None:
    """Sleep until `phase_s` past a whole second of the wall clock."""
    now = time.time()
    time.sleep((phase_s - now % 1.0) % 1.0)


def run(ctx: Context) -> tuple[str, list[Figure]]:
    segments = ctx.count(4, 2)
    seconds = ctx.pick(30.0, 8.0)
    directory = ctx.scratch("latency")
    topic = broker.create_topic(ctx.bootstrap, "latency")
    sink_log = directory / "sink.stderr"
    latencies_ms: list[float] = []
    counted_from_ns = [0]  # metrics stamped before this (each segment's warm-up) are left out

    def read(stream: IO[bytes]) -> None:
        for line in stream:
            arrived_ns = time.time_ns()
            stamp_ns = int(line.rsplit(b" ", 1)[1])
            if counted_from_ns[0] and stamp_ns >= counted_from_ns[0]:
                latencies_ms.append((arrived_ns - stamp_ns) / 1e6)

    sink_command = [
        str(AGENT), "sink", "--brokers", ctx.bootstrap, "--topic", topic,
        "--group", f"bench-latency-{uuid.uuid4().hex[:8]}",
        "--store", f"sqlite:{directory / 'latency.db'}", "--format", "line",
    ]  # fmt: skip
    (directory / "agent.toml").write_text(agent_config(ctx, topic))
    with open(sink_log, "wb") as log:
        sink = subprocess.Popen(sink_command, stdout=subprocess.PIPE, stderr=log)
    reader = threading.Thread(target=read, args=(sink.stdout,), daemon=True)
    reader.start()
    try:
        wait_for(sink_log, "partitions assigned", sink)
        for segment in range(segments):
            phase_s = segment / segments
            say(f"latency: agent {segment + 1}/{segments} started {phase_s:.2f} s past a second, "
                f"{seconds:g} s")  # fmt: skip
            start_at_phase(phase_s)
            counted_from_ns[0] = time.time_ns() + int(WARMUP_S * 1e9)
            agent = subprocess.Popen(
                [str(AGENT), "-config", str(directory / "agent.toml"), "--quiet"],
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(WARMUP_S + seconds)
            finally:
                agent.terminate()
                agent.wait(60)
            counted_from_ns[0] = 0
    finally:
        sink.terminate()
        sink.wait(60)
        reader.join(10)
    if not latencies_ms:
        raise RuntimeError(f"no metric reached the sink:\n{sink_log.read_text()}")
    ordered = sorted(latencies_ms)
    command = "agent (interval 1s, flush_interval 1s, precision 1ns) → agent sink --store"
    figures = [
        Figure("p50", percentile(ordered, 0.50), "ms", command),
        Figure("p99", percentile(ordered, 0.99), "ms", command),
        Figure("max", ordered[-1], "ms", command),
        Figure("metrics measured", len(ordered), "metrics", command),
    ]
    settings = f"{segments} agent runs of {seconds:g} s (after {WARMUP_S:g} s each), cpu and mem"
    return settings, figures
