"""Backlog drain: how long a full buffer takes to reach Kafka once the broker is reachable.

In process, as after an outage: the buffer is filled while nothing is connected, then one
`flush()` connects and delivers it all. The shared broker is never stopped for this.
"""

from __future__ import annotations

import time

from bench import broker, data
from bench.context import Context
from bench.pipeline import build_output
from bench.progress import say
from bench.report import Figure

TITLE = "Backlog drain"
MEANING = """
Seconds from the first `flush()` after an outage until a full buffer of 100,000 cpu metrics
(`metric_buffer_limit = 100000`) is delivered and acknowledged, connecting included: the
output has never connected before that flush, as when the broker comes back. The memory
buffer is the default; the disk buffer (`buffer_strategy = "disk"`, SQLite) reads each batch
back from its file and deletes it once acknowledged. Default output settings otherwise (no
compression, acks all, idempotent, `metric_batch_size` 1000). What limits the disk buffer:
reading its rows back (json.loads of each metric, about 10 µs) and deleting them.

What the disk buffer costs while the broker is up: "adding a gather" is the mean time of one
`add()` of 40 cpu metrics (one gather of a host with 39 CPUs and the total; the disk buffer
commits a transaction per add, WAL, synchronous=NORMAL), over 500 gathers, for each buffer;
"bytes a metric" is the disk buffer's file size (with its WAL) over the metrics it holds.
"""
GATHER_SIZE = 40
GATHERS = 500


def drain_seconds(ctx: Context, count: int, strategy: str, batch_format: bool) -> float:
    topic = broker.create_topic(ctx.bootstrap, f"drain-{strategy}")
    output = build_output(ctx, topic, "none", batch_format, count, strategy)
    try:
        output.add(data.cpu_metrics(count))
        if len(output.buffer) != count:
            raise RuntimeError(f"buffer holds {len(output.buffer)}, expected {count}")
        started = time.perf_counter()
        delivered = output.flush()
        elapsed = time.perf_counter() - started
        if not delivered or len(output.buffer):
            raise RuntimeError(f"flush left {len(output.buffer)} metrics in the buffer")
    finally:
        output.close()
        output.buffer.close()
    return elapsed


def gather_add_cost(ctx: Context, strategy: str) -> tuple[float, float]:
    """Mean microseconds of one add() of a gather, and bytes a metric on disk (0 for memory)."""
    topic = broker.create_topic(ctx.bootstrap, f"add-{strategy}")
    limit = GATHER_SIZE * GATHERS
    output = build_output(ctx, topic, buffer_limit=limit, buffer_strategy=strategy)
    gathers = [data.cpu_metrics(GATHER_SIZE, seed=n) for n in range(GATHERS)]
    try:
        started = time.perf_counter()
        for gather in gathers:
            output.add(gather)
        elapsed = time.perf_counter() - started
        files = list(ctx.scratch(f"output-{topic}").glob("*.db*"))
        size = sum(path.stat().st_size for path in files)
    finally:
        output.close()
        output.buffer.close()
    return elapsed / GATHERS * 1e6, round(size / limit)


def run(ctx: Context) -> tuple[str, list[Figure]]:
    count = ctx.count(100_000, 10_000)
    figures = []
    for strategy in ("memory", "disk"):
        say(f"drain: adding {GATHERS} gathers of {GATHER_SIZE} metrics to the {strategy} buffer")
        micros, size = gather_add_cost(ctx, strategy)
        command = f'buffer_strategy = "{strategy}", add() of one gather ({GATHER_SIZE} metrics)'
        figures.append(Figure(f"{strategy} buffer, adding a gather", micros, "µs", command))
        if strategy == "disk":
            figures.append(Figure("disk buffer, bytes a metric", size, "bytes", command))
    for strategy in ("memory", "disk"):
        for batch_format in (False, True):
            mode = "batched" if batch_format else "one per record"
            say(f"drain: {strategy} buffer, {mode}, {count:,} metrics")
            seconds = drain_seconds(ctx, count, strategy, batch_format)
            command = f'buffer_strategy = "{strategy}", flush() of a full buffer' + (
                ", use_batch_format = true" if batch_format else ""
            )
            figures += [
                Figure(f"{strategy} buffer, {mode}", seconds, "s", command),
                Figure(f"{strategy} buffer, {mode}: rate", count / seconds, "metrics/s", command),
            ]
    return f"a full buffer of {count:,} cpu metrics", figures
