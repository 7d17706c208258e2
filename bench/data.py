"""The metrics the benchmarks move: cpu metrics as inputs.cpu makes them, many hosts.

The primary data are values that never repeat: each of the 10 fields a random float of 16
or 17 significant digits (37.454011884736254), as a fleet's usage values are at 10 s, where
no two readings share a text. A cache of texts already seen gains nothing on them, as on a
real fleet. `repeating=True` gives the secondary data: percentages of about 1,000 CPU ticks
split between states with small counts (ratios of small integers, four states always zero),
whose texts recur; figures made with them are labelled so.

Deterministic values (a fixed seed). Timestamps start at the start of the current hour and
are distinct per metric, so a sink stores each metric once, and Kafka's retention (7 days
by default) and Telegraf keep them as recent.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from agent.metric import Metric
from plugins.serializers.influx import InfluxSerializer

HOSTS = 50
CPUS_PER_HOST = 8
SECONDS_PER_HOUR = 3600
# inputs.cpu's field order.
CPU_FIELDS = (
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
)
REPEATING_LABEL = "values repeating (ratios of small tick counts)"


def start_of_hour_ns() -> int:
    """The start of the current hour (UTC), in nanoseconds since the epoch."""
    now_s = int(time.time())
    return (now_s - now_s % SECONDS_PER_HOUR) * 1_000_000_000


def never_repeating_fields(rng: random.Random) -> dict[str, float]:
    return {name: rng.uniform(0, 100) for name in CPU_FIELDS}


def repeating_fields(rng: random.Random) -> dict[str, float]:
    """A CPU's usage over about 1,000 ticks, most of them idle: few distinct texts."""
    ticks = rng.randint(990, 1010)
    user, system = rng.randint(0, 60), rng.randint(0, 30)
    nice, iowait, softirq = rng.choice((0, 0, 0, 1)), rng.randint(0, 5), rng.randint(0, 3)
    idle = ticks - user - system - nice - iowait - softirq
    states = (user, system, idle, nice, iowait, 0, softirq, 0, 0, 0)
    return {name: 100 * value / ticks for name, value in zip(CPU_FIELDS, states, strict=True)}


def cpu_metrics(
    count: int, seed: int = 1, repeating: bool = False, step_ns: int = 1
) -> list[Metric]:
    """`count` cpu metrics (10 float fields) over HOSTS hosts of CPUS_PER_HOST CPUs, the
    i-th at the start of the hour plus i × `step_ns`. Values never repeat unless
    `repeating`."""
    rng = random.Random(seed)
    make_fields = repeating_fields if repeating else never_repeating_fields
    first_time_ns = start_of_hour_ns()
    metrics = []
    for i in range(count):
        tags = {"cpu": f"cpu{i % CPUS_PER_HOST}", "host": f"host-{i // CPUS_PER_HOST % HOSTS}"}
        metrics.append(Metric("cpu", tags, make_fields(rng), first_time_ns + i * step_ns))
    return metrics


def write_lines(path: Path, metrics: list[Metric]) -> int:
    """The metrics as outputs.kafka serializes them (Telegraf's influx format), one per line;
    returns the number of bytes written."""
    serializer = InfluxSerializer()
    data = b"".join(serializer.serialize_each(metrics))
    path.write_bytes(data)
    return len(data)


# Between a record's key and its value in the files `kcat -P -K` reads: no line holds it.
KEY_SEPARATOR = b"\t"


def write_keyed_lines(path: Path, metrics: list[Metric], key_tag: str = "host") -> None:
    """One record a line for `kcat -P -K '\\t'`: the metric's `key_tag` value as the record's
    key (as routing_tag = "host" makes it), a tab, then the metric's line."""
    lines = InfluxSerializer().serialize_each(metrics)
    path.write_bytes(
        b"".join(
            metric.tags[key_tag].encode() + KEY_SEPARATOR + line
            for metric, line in zip(metrics, lines, strict=True)
        )
    )
