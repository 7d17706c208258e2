"""Swap space and swap traffic, as Telegraf's `swap` input.

Measurement `swap`, no tags of its own, two metrics with the same timestamp (as Telegraf):
total, used, free (unsigned, bytes) and used_percent (float, 0–100; 0 without swap), from
SwapTotal/SwapFree of /proc/meminfo (the numbers the kernel's sysinfo() gives Telegraf);
then in, out (unsigned, bytes swapped in and out since boot: pswpin/pswpout of /proc/vmstat
times 4 KiB, the page size Telegraf assumes). HOST_PROC is honoured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from agent import host
from agent.metric import Metric, UInt
from agent.plugin import Input
from agent.registry import input
from plugins.inputs.mem import read_meminfo

SAMPLE_CONFIG = """\
# Swap space in bytes, and the bytes swapped in and out since boot
[[inputs.swap]]
  # no options
"""

# gopsutil multiplies the page counters of /proc/vmstat by 4 KiB whatever the page size.
SWAP_PAGE_BYTES = 4096


def read_vmstat() -> dict[str, int]:
    """/proc/vmstat as counters by name; a HostFileFormatError naming the line if one is
    not a name and a whole number."""
    path = host.proc("vmstat")
    counters = {}
    for number, line in enumerate(host.read_lines(path), 1):
        words = line.split()
        expected = "a name and a whole number"
        if len(words) != 2:
            raise host.HostFileFormatError(path, expected, number, host.quoted(line))
        counters[words[0]] = host.parse_integers(path, number, line, words[1:], expected)[0]
    return counters


@input("swap")
@dataclass
class Swap(Input):
    """Reports swap size and use in bytes and percent, and bytes swapped in and out."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    def gather(self) -> Iterator[Metric]:
        info = read_meminfo()
        if "SwapTotal" not in info or "SwapFree" not in info:
            expected = 'a "SwapTotal:" and a "SwapFree:" line'
            raise host.HostFileFormatError(host.proc("meminfo"), expected, found="no such line")
        vmstat = read_vmstat()
        now_ns = time.time_ns()
        total, free = info["SwapTotal"], info["SwapFree"]
        used = max(total - free, 0)
        used_percent = float(total - free) / float(total) * 100 if total else 0.0
        usage = {
            "free": UInt(free),
            "total": UInt(total),
            "used": UInt(used),
            "used_percent": used_percent,
        }
        traffic = {
            "in": UInt(vmstat.get("pswpin", 0) * SWAP_PAGE_BYTES),
            "out": UInt(vmstat.get("pswpout", 0) * SWAP_PAGE_BYTES),
        }
        yield Metric("swap", {}, usage, now_ns)
        yield Metric("swap", {}, traffic, now_ns)
