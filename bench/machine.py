"""The machine a figure was measured on: CPUs usable, CPU model, RAM."""

from __future__ import annotations

import os


def cpu_count() -> int:
    """What `nproc` prints: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def ram_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def describe() -> str:
    """`2 × AMD EPYC, 23.5 GiB`: the machine column of the results."""
    return f"{cpu_count()} × {cpu_model()}, {ram_bytes() / 2**30:.1f} GiB"
