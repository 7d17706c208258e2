"""Memory: how the host's RAM is used, from /proc/meminfo (HOST_PROC honoured).

Measurement `mem`, no tags of its own. Sizes are unsigned integers in bytes (the kernel
reports kB); huge_pages_total/free are page counts; used_percent and available_percent are
floats, 0–100. The fields, their names and their arithmetic are Telegraf's on Linux:
cached includes SReclaimable, and used = total - available.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from agent import host
from agent.metric import Metric, UInt
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Memory: /proc/meminfo in bytes, with used and available in percent
[[inputs.mem]]
  # no options
"""

# Field name → /proc/meminfo key. A key the kernel does not report leaves its field out.
MEMINFO_FIELDS = {
    "active": "Active",
    "buffered": "Buffers",
    "commit_limit": "CommitLimit",
    "committed_as": "Committed_AS",
    "dirty": "Dirty",
    "free": "MemFree",
    "huge_page_size": "Hugepagesize",
    "huge_pages_free": "HugePages_Free",
    "huge_pages_total": "HugePages_Total",
    "inactive": "Inactive",
    "mapped": "Mapped",
    "page_tables": "PageTables",
    "shared": "Shmem",
    "slab": "Slab",
    "sreclaimable": "SReclaimable",
    "sunreclaim": "SUnreclaim",
    "swap_cached": "SwapCached",
    "swap_free": "SwapFree",
    "swap_total": "SwapTotal",
    "total": "MemTotal",
    "vmalloc_chunk": "VmallocChunk",
    "vmalloc_total": "VmallocTotal",
    "vmalloc_used": "VmallocUsed",
    "write_back": "Writeback",
    "write_back_tmp": "WritebackTmp",
}
# Only kernels built with highmem (32-bit) have these; Telegraf reports them as 0 elsewhere,
# and so do we, so dashboards see the same field set.
HIGHMEM_FIELDS = {
    "high_free": "HighFree",
    "high_total": "HighTotal",
    "low_free": "LowFree",
    "low_total": "LowTotal",
}
COUNT_KEYS = {"HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"}


def read_meminfo() -> dict[str, int]:
    """/proc/meminfo as bytes by key (page counts stay counts); a HostFileFormatError
    naming the line if one is not `Key: number kB` (`Key: number` for the page counts)."""
    path = host.proc("meminfo")
    values: dict[str, int] = {}
    for number, line in enumerate(host.read_lines(path), 1):
        key, colon, rest = line.partition(":")
        key = key.strip()
        # A size in kB, or a count of huge pages (no unit); words missing, the line was cut.
        form, unit, multiplier = ("N", [], 1) if key in COUNT_KEYS else ("N kB", ["kB"], 1024)
        expected = f'"{key or "Name"}: {form}" with N a whole number'
        parts = rest.split()
        if not colon or not key or not parts or parts[1:] != unit:
            raise host.HostFileFormatError(path, expected, number, host.quoted(line))
        (value,) = host.parse_integers(path, number, line, parts[:1], expected)
        values[key] = value * multiplier
    return values


@input("mem")
@dataclass
class Mem(Input):
    """Reports the host's memory use in bytes and percent."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    def gather(self) -> Iterator[Metric]:
        now_ns = time.time_ns()
        info = read_meminfo()
        if "MemTotal" not in info or "MemFree" not in info:
            expected = 'a "MemTotal:" and a "MemFree:" line'
            raise host.HostFileFormatError(host.proc("meminfo"), expected, found="no such line")
        fields: dict[str, float | UInt] = {
            name: UInt(info[key]) for name, key in MEMINFO_FIELDS.items() if key in info
        }
        fields.update({name: UInt(info.get(key, 0)) for name, key in HIGHMEM_FIELDS.items()})
        total = info["MemTotal"]
        cached = info.get("Cached", 0) + info.get("SReclaimable", 0)
        # Kernels before 3.14 have no MemAvailable; gopsutil then estimates it as free + cached.
        available = info.get("MemAvailable", info["MemFree"] + cached)
        used = total - available
        fields["cached"] = UInt(cached)
        fields["used"] = UInt(max(used, 0))
        fields["available"] = UInt(available)
        if total:
            fields["used_percent"] = 100 * used / total
            fields["available_percent"] = 100 * available / total
        yield Metric("mem", {}, dict(sorted(fields.items())), now_ns)
