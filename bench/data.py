"""The metrics the benchmarks move: cpu metrics as inputs.cpu makes them, many hosts.

Values are what a host reports: percentages of the CPU ticks of an interval, so most have
long decimal expansions (0.20040080160320642) and the idle states are zero. Deterministic
(a fixed seed) and with distinct timestamps, so every metric has its own identity and a sink
stores each one once.
"""

from __future__ import annotations

import random
from pathlib import Path

from agent.metric import Metric
from plugins.serializers.influx import InfluxSerializer

HOSTS = 50
CPUS_PER_HOST = 8
FIRST_TIME_NS = 1_795_569_040_000_000_000
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


def cpu_metrics(count: int, seed: int = 1, repeating: bool = True) -> list[Metric]:
    """`count` cpu metrics (10 float fields) over HOSTS hosts of CPUS_PER_HOST CPUs. With
    `repeating` false, the non-zero values are random floats that (practically) never repeat."""
    rng = random.Random(seed)
    metrics = []
    for i in range(count):
        ticks = rng.randint(990, 1010)
        user, system = rng.randint(0, 60), rng.randint(0, 30)
        nice, iowait, softirq = rng.choice((0, 0, 0, 1)), rng.randint(0, 5), rng.randint(0, 3)
        idle = ticks - user - system - nice - iowait - softirq
        states = (user, system, idle, nice, iowait, 0, softirq, 0, 0, 0)
        fields = {name: 100 * value / ticks for name, value in zip(CPU_FIELDS, states, strict=True)}
        if not repeating:
            fields = {name: rng.uniform(0, 100) if v else v for name, v in fields.items()}
        tags = {"cpu": f"cpu{i % CPUS_PER_HOST}", "host": f"host-{i // CPUS_PER_HOST % HOSTS}"}
        metrics.append(Metric("cpu", tags, fields, FIRST_TIME_NS + i))
    return metrics


def write_lines(path: Path, metrics: list[Metric]) -> int:
    """The metrics as outputs.kafka serializes them (Telegraf's influx format), one per line;
    returns the number of bytes written."""
    serializer = InfluxSerializer()
    data = b"".join(serializer.serialize(metric) for metric in metrics)
    path.write_bytes(data)
    return len(data)
