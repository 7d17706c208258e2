"""The influx serializer alone: lines per second, no Kafka."""

from __future__ import annotations

import random
import time

from agent.metric import Metric
from bench import data
from bench.context import Context
from bench.progress import say
from bench.report import Figure
from plugins.inputs.mem import Mem
from plugins.serializers.influx import InfluxSerializer

TITLE = "Serializer"
MEANING = """
Lines per second of the influx serializer (outputs.kafka's default settings: Telegraf's
influx format, fields in their order, unsigned integers clamped to `i`) as outputs.kafka
calls it, `serialize_each()` of batches of 1,000 metrics (metric_batch_size), and one
metric at a time with `serialize()`: in a loop over 10,000 cpu metrics (10 float fields
whose values never repeat, 400 tag sets) or over 1,000 mem metrics (this host's, 34 fields,
mostly unsigned integers, the values changed in each as between gathers), for a few
seconds; the µs figure is its inverse. *Values repeating* is the secondary cpu data (ratios
of small tick counts, four fields always 0).
"""

BATCH = 1_000


def lines_per_second(metrics: list[Metric], seconds: float, batched: bool) -> float:
    serializer = InfluxSerializer()
    serialize, serialize_each = serializer.serialize, serializer.serialize_each
    batches = [metrics[i : i + BATCH] for i in range(0, len(metrics), BATCH)]
    done = 0
    started = time.perf_counter()
    while True:
        if batched:
            for batch in batches:
                serialize_each(batch)
        else:
            for metric in metrics:
                serialize(metric)
        done += len(metrics)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def mem_metric() -> Metric:
    plugin = Mem()
    plugin.start()
    metric = next(iter(plugin.gather()))
    metric.tags["host"] = "host-0"
    return metric


def mem_metrics(count: int) -> list[Metric]:
    """This host's mem metric `count` times, each value changed as between gathers: the
    counters by up to a MB, the percentages to new 17-digit values."""
    rng = random.Random(2)
    first = mem_metric()
    metrics = []
    for _ in range(count):
        fields = {
            key: (
                rng.uniform(0, 100)
                if type(value) is float
                else type(value)(value + rng.randrange(2**20))
            )
            for key, value in first.fields.items()
        }
        metrics.append(Metric(first.name, dict(first.tags), fields, first.time_ns))
    return metrics


def run(ctx: Context) -> tuple[str, list[Figure]]:
    seconds = ctx.pick(5.0, 0.5)
    figures = []
    for name, metrics in (
        ("cpu metric (10 fields)", data.cpu_metrics(10_000)),
        (f"cpu metric, {data.REPEATING_LABEL}", data.cpu_metrics(10_000, repeating=True)),
        ("mem metric (34 fields)", mem_metrics(1_000)),
    ):
        for batched in (True, False):
            how = "in batches" if batched else "one at a time"
            say(f"serializer: {name}, {how}, {seconds:g} s")
            rate = lines_per_second(metrics, seconds, batched)
            if batched:
                label, command = name, f"InfluxSerializer().serialize_each({BATCH:,} metrics)"
            else:
                label, command = f"{name}, one at a time", "InfluxSerializer().serialize(metric)"
            figures += [
                Figure(label, rate, "lines/s", command),
                Figure(f"{label}: per line", 1e6 / rate, "µs", command),
            ]
    return f"{seconds:g} s per figure", figures
