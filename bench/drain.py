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
"""


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


def run(ctx: Context) -> tuple[str, list[Figure]]:
    count = ctx.count(100_000, 10_000)
    figures = []
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
