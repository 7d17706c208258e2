"""CPU usage: the share of time each CPU, and all of them together, spent in each state.

Measurement `cpu`, tag `cpu` = `cpu0` … `cpuN` or `cpu-total`. `usage_*` fields are percent
(0–100) of the time between this gather and the previous one, so the first gather of a
CPU reports none; `time_*` fields are seconds since boot. Guest time is counted inside
user and nice by the kernel; like Telegraf, usage_user and usage_nice leave it out, so
the usage fields add up to 100. Read from /proc/stat (HOST_PROC honoured).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from agent import host
from agent.metric import Metric
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# CPU time by state, per CPU and for the whole machine
[[inputs.cpu]]
  ## One metric per CPU, tagged cpu0, cpu1, ...
  percpu = true
  ## One metric for all CPUs together, tagged cpu-total.
  totalcpu = true
  ## Also the time_* fields (seconds spent in each state since boot), as a
  ## metric of their own beside the usage_* percentages.
  collect_cpu_time = false
  ## Add usage_active (and time_active): all time but idle, iowait included.
  report_active = false
"""


class CpuTimes(NamedTuple):
    """One CPU's counters from /proc/stat, in seconds. user and nice include guest time."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float
    irq: float
    softirq: float
    steal: float
    guest: float
    guest_nice: float

    @property
    def total(self) -> float:
        # guest and guest_nice are already inside user and nice.
        return (
            self.user + self.system + self.nice + self.iowait
            + self.irq + self.softirq + self.steal + self.idle
        )  # fmt: skip

    @property
    def active(self) -> float:
        return self.total - self.idle


# Since Linux 2.6.0 every cpu line of /proc/stat holds at least user, nice, system, idle,
# iowait, irq and softirq (steal, guest and guest_nice came later); one with fewer was cut.
MIN_CPU_COUNTERS = 7


def read_proc_stat(clock_ticks: float) -> dict[str, CpuTimes]:
    """Counters by CPU name ("cpu-total", "cpu0", …) from /proc/stat; a HostFileFormatError
    naming the line if one is damaged, or the file if it has no "cpu" line."""
    path = host.proc("stat")
    times: dict[str, CpuTimes] = {}
    for number, line in enumerate(host.read_lines(path), 1):
        if not line.startswith("cpu"):
            if times:
                break  # the cpu lines come first; the rest of the file is not needed
            continue
        name, *counters = line.split()
        expected = f"{name} and at least {MIN_CPU_COUNTERS} whole-number counters"
        if len(counters) < MIN_CPU_COUNTERS:
            raise host.HostFileFormatError(path, expected, number, host.quoted(line))
        ticks = host.parse_integers(path, number, line, counters[:10], expected)
        values = [tick / clock_ticks for tick in ticks]
        values += [0.0] * (10 - len(values))  # older kernels lack steal/guest columns
        times["cpu-total" if name == "cpu" else name] = CpuTimes(*values)
    if "cpu-total" not in times:
        raise host.HostFileFormatError(path, 'a "cpu" line (all CPUs together)', found="none")
    return times


@input("cpu")
@dataclass
class Cpu(Input):
    """Reports per-CPU and total CPU usage percent and, optionally, raw CPU seconds."""

    SAMPLE_CONFIG = SAMPLE_CONFIG
    needs_two_readings = True

    percpu: bool = True
    totalcpu: bool = True
    collect_cpu_time: bool = False
    report_active: bool = False
    _last: dict[str, CpuTimes] = field(default_factory=dict, init=False, repr=False)

    def gather(self) -> Iterator[Metric]:
        now_ns = time.time_ns()
        current = read_proc_stat(float(os.sysconf("SC_CLK_TCK")))
        total = current.pop("cpu-total")
        # Telegraf's order: each CPU, then the total.
        wanted = dict(current) if self.percpu else {}
        if self.totalcpu:
            wanted["cpu-total"] = total
        last, self._last = self._last, wanted
        for name, times in wanted.items():
            tags = {"cpu": name}
            # Raw seconds and usage percent are two metrics, as Telegraf emits them.
            if self.collect_cpu_time:
                yield Metric("cpu", tags, self.time_fields(times), now_ns)
            previous = last.get(name)
            usage = self.usage_fields(previous, times) if previous is not None else {}
            if usage:
                yield Metric("cpu", dict(tags), usage, now_ns)

    def time_fields(self, times: CpuTimes) -> dict[str, float]:
        fields = {f"time_{state}": value for state, value in times._asdict().items()}
        if self.report_active:
            fields["time_active"] = times.active
        return dict(sorted(fields.items()))

    def usage_fields(self, previous: CpuTimes, current: CpuTimes) -> dict[str, float]:
        """Percent of the elapsed CPU time per state; empty if no time passed or a counter
        went backwards (a CPU that went offline and came back, a counter reset)."""
        total_delta = current.total - previous.total
        went_back = any(now < before for now, before in zip(current, previous, strict=True))
        if total_delta <= 0 or went_back:
            return {}

        def percent(now: float, before: float) -> float:
            return 100 * (now - before) / total_delta

        fields = {
            "usage_user": percent(current.user - current.guest, previous.user - previous.guest),
            "usage_system": percent(current.system, previous.system),
            "usage_idle": percent(current.idle, previous.idle),
            "usage_nice": percent(
                current.nice - current.guest_nice, previous.nice - previous.guest_nice
            ),
            "usage_iowait": percent(current.iowait, previous.iowait),
            "usage_irq": percent(current.irq, previous.irq),
            "usage_softirq": percent(current.softirq, previous.softirq),
            "usage_steal": percent(current.steal, previous.steal),
            "usage_guest": percent(current.guest, previous.guest),
            "usage_guest_nice": percent(current.guest_nice, previous.guest_nice),
        }
        if self.report_active:
            fields["usage_active"] = percent(current.active, previous.active)
        return dict(sorted(fields.items()))
