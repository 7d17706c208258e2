"""Kernel activity counters, as Telegraf's `kernel` input.

Measurement `kernel`, no tags of its own, signed integer fields: boot_time (seconds since
the epoch), context_switches, interrupts, processes_forked (counts since boot; /proc/stat),
entropy_avail (bits; /proc/sys/kernel/random/entropy_avail), and on old kernels whose
/proc/stat has a `page` line disk_pages_in, disk_pages_out.

`collect = ["ksm"]` adds ksm_* fields (kernel same-page merging, /sys/kernel/mm/ksm/*);
`collect = ["psi"]` adds measurement `pressure` (tags resource = cpu|memory|io,
type = some|full; cpu/full is left out, it is always zero): per resource and type one metric
with total (unsigned, microseconds stalled since boot) and one with avg10, avg60, avg300
(float, percent of time stalled over 10 s, 60 s, 300 s; /proc/pressure/*).

HOST_PROC and HOST_SYS are honoured (Telegraf reads /proc and /sys as they are here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent import host
from agent.metric import FieldValue, Metric, UInt
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Kernel counters from /proc/stat: boot time, context switches, interrupts,
# forks, and the entropy pool (Linux only)
[[inputs.kernel]]
  ## More to gather: "ksm" adds ksm_* fields (kernel same-page merging),
  ## "psi" adds the `pressure` measurement (pressure stall information).
  # collect = []
"""

# /proc/stat line name → field.
STAT_FIELDS = {
    "btime": "boot_time",
    "ctxt": "context_switches",
    "intr": "interrupts",
    "processes": "processes_forked",
}
KSM_FILES = (
    "full_scans", "max_page_sharing", "merge_across_nodes", "pages_shared", "pages_sharing",
    "pages_to_scan", "pages_unshared", "pages_volatile", "run", "sleep_millisecs",
    "stable_node_chains", "stable_node_chains_prune_millisecs", "stable_node_dups",
    "use_zero_pages",
)  # fmt: skip
KSM_OPTIONAL_FILES = ("general_profit",)  # only on recent kernels
PSI_RESOURCES = ("cpu", "memory", "io")


def read_integer(path: Path) -> int:
    (line, *_) = host.read_lines(path)
    return host.parse_integers(path, 1, line, [line.strip()], "one whole number")[0]


def read_stat_counters() -> dict[str, int]:
    """boot_time, context_switches, interrupts, processes_forked (and disk pages) by field;
    a HostFileFormatError naming the line if one is damaged, or the line that is missing."""
    path = host.proc("stat")
    fields = {}
    for number, line in enumerate(host.read_lines(path), 1):
        name, *values = line.split() or [""]
        if name in STAT_FIELDS:
            expected = f"{name} and a whole number"
            if not values:
                raise host.HostFileFormatError(path, expected, number, host.quoted(line))
            fields[STAT_FIELDS[name]] = host.parse_integers(
                path, number, line, values[:1], expected
            )[0]
        elif name == "page":
            expected = "page and two whole numbers (pages in, pages out)"
            if len(values) != 2:
                raise host.HostFileFormatError(path, expected, number, host.quoted(line))
            pages_in, pages_out = host.parse_integers(path, number, line, values, expected)
            fields["disk_pages_in"], fields["disk_pages_out"] = pages_in, pages_out
    for name, field_name in STAT_FIELDS.items():
        if field_name not in fields:
            raise host.HostFileFormatError(path, f'a "{name}" line', found="none")
    return fields


def read_ksm() -> dict[str, int]:
    directory = host.sys_path("kernel", "mm", "ksm")
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is missing: this kernel was built without KSM")
    fields = {f"ksm_{name}": read_integer(directory / name) for name in KSM_FILES}
    for name in KSM_OPTIONAL_FILES:
        try:
            fields[f"ksm_{name}"] = read_integer(directory / name)
        except OSError:
            continue
    return fields


def read_pressure(resource: str) -> dict[str, dict[str, float | int]]:
    """`some` and `full` lines of /proc/pressure/RESOURCE: avg10, avg60, avg300, total."""
    path = host.proc("pressure", resource)
    lines = {}
    for number, line in enumerate(host.read_lines(path), 1):
        kind, *pairs = line.split() or [""]
        values = dict(pair.partition("=")[::2] for pair in pairs)
        try:
            lines[kind] = {
                "avg10": float(values["avg10"]),
                "avg60": float(values["avg60"]),
                "avg300": float(values["avg300"]),
                "total": int(values["total"]),
            }
        except (KeyError, ValueError):
            expected = "some|full avg10=N avg60=N avg300=N total=N"
            raise host.HostFileFormatError(path, expected, number, host.quoted(line)) from None
    return lines


@input("kernel")
@dataclass
class Kernel(Input):
    """Reports boot time, context switches, interrupts, forks and available entropy."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    collect: list[Literal["ksm", "psi"]] = field(default_factory=list)

    def gather(self) -> Iterator[Metric]:
        now_ns = time.time_ns()
        fields: dict[str, FieldValue] = dict(read_stat_counters())
        fields["entropy_avail"] = read_integer(
            host.proc("sys", "kernel", "random", "entropy_avail")
        )
        if "ksm" in self.collect:
            fields.update(read_ksm())
        pressure = {r: read_pressure(r) for r in PSI_RESOURCES} if "psi" in self.collect else {}
        yield Metric("kernel", {}, dict(sorted(fields.items())), now_ns)
        yield from pressure_metrics(pressure, now_ns)


def pressure_metrics(
    readings: dict[str, dict[str, dict[str, float | int]]], now_ns: int
) -> Iterator[Metric]:
    """Telegraf's `pressure` metrics: per resource and type, the total, then the averages."""
    for resource, lines in readings.items():
        for kind in ("some", "full"):
            if (resource == "cpu" and kind == "full") or kind not in lines:
                continue  # cpu/full is always zero; old kernels lack some lines
            line = lines[kind]
            tags = {"resource": resource, "type": kind}
            yield Metric("pressure", tags, {"total": UInt(line["total"])}, now_ns)
            averages = {name: line[name] for name in ("avg10", "avg300", "avg60")}
            yield Metric("pressure", dict(tags), averages, now_ns)
