"""Network interface counters, as Telegraf's `net` input, from /proc/net/dev.

Measurement `net`, one metric per interface (in /proc/net/dev order), tag `interface`.
Fields: bytes_sent, bytes_recv (bytes), packets_sent, packets_recv, err_in, err_out,
drop_in, drop_out (packets), all unsigned counters since the interface appeared; and speed
(signed integer, Mbit/s from /sys/class/net/NAME/speed, -1 where the driver reports none).

Without `interfaces`, only interfaces that are up and not loopback are reported; when
HOST_PROC is set that check is skipped (the interfaces the agent sees need not be the
host's), as Telegraf does. Like Telegraf 1.37, no protocol statistics (`interface=all`) are
emitted; `ignore_protocol_stats` is accepted and ignored (named in the start-up warning of
options that have no effect). /proc/net/dev (HOST_PROC honoured) shows the network namespace
of the process reading it; whether an interface is up comes from psutil.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from agent import host
from agent.filters import Glob
from agent.metric import Metric, UInt
from agent.options import ignored
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Traffic, error and drop counters of network interfaces
[[inputs.net]]
  ## Interfaces to report, by name or glob, whether up or down. Empty: the
  ## interfaces that are up, except loopback (all of them when HOST_PROC is set).
  # interfaces = ["eth*", "enp0s[0-1]", "lo"]
"""


# /proc/net/dev: two header lines, then `NAME: ` and 8 receive and 8 transmit counters.
NET_DEV_HEADER_LINES = 2
NET_DEV_COUNTERS = 16


class InterfaceCounters(NamedTuple):
    """The counters of /proc/net/dev that Telegraf reports, since the interface appeared."""

    bytes_recv: int
    packets_recv: int
    err_in: int
    drop_in: int
    bytes_sent: int
    packets_sent: int
    err_out: int
    drop_out: int


def read_net_dev() -> dict[str, InterfaceCounters]:
    """Counters by interface, in file order; a HostFileFormatError naming the line if one
    is damaged (psutil's reader would fail without naming the file)."""
    path = host.proc("net", "dev")
    lines = host.read_lines(path)
    if len(lines) < NET_DEV_HEADER_LINES:
        expected = f"{NET_DEV_HEADER_LINES} header lines"
        raise host.HostFileFormatError(path, expected, len(lines), host.quoted(lines[-1]))
    interfaces = {}
    for number, line in enumerate(lines[NET_DEV_HEADER_LINES:], NET_DEV_HEADER_LINES + 1):
        name, colon, rest = line.rpartition(":")
        expected = f"an interface name, a colon and {NET_DEV_COUNTERS} whole-number counters"
        values = rest.split()
        if not colon or not name.strip() or len(values) != NET_DEV_COUNTERS:
            raise host.HostFileFormatError(path, expected, number, host.quoted(line))
        counters = host.parse_integers(path, number, line, values, expected)
        interfaces[name.strip()] = InterfaceCounters(*counters[0:4], *counters[8:12])
    return interfaces


def interface_speed(name: str) -> int:
    """Mbit/s from sysfs; -1 if the file is missing or unreadable (down, virtual)."""
    try:
        return int(host.sys_path("class", "net", name, "speed").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return -1


def up_non_loopback_interfaces() -> set[str]:
    """Names of the interfaces this process sees that are up and are not loopback."""
    stats = host.psutil_module().net_if_stats()
    return {
        name for name, nic in stats.items() if nic.isup and "loopback" not in nic.flags.split(",")
    }


@input("net")
@dataclass
class Net(Input):
    """Reports traffic, error and drop counters of network interfaces."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    interfaces: list[str] = field(default_factory=list)
    # Deprecated in Telegraf 1.37 and ignored there: protocol stats are no longer emitted.
    ignore_protocol_stats: bool = ignored(False)

    def gather(self) -> Iterator[Metric]:
        counters = read_net_dev()
        now_ns = time.time_ns()
        pattern = Glob(self.interfaces)
        wanted = None
        if not self.interfaces and not host.is_redirected("proc"):
            wanted = up_non_loopback_interfaces()
        for name, io in counters.items():
            if self.interfaces and not pattern.match(name):
                continue
            if wanted is not None and name not in wanted:
                continue
            fields = {
                "bytes_recv": UInt(io.bytes_recv),
                "bytes_sent": UInt(io.bytes_sent),
                "drop_in": UInt(io.drop_in),
                "drop_out": UInt(io.drop_out),
                "err_in": UInt(io.err_in),
                "err_out": UInt(io.err_out),
                "packets_recv": UInt(io.packets_recv),
                "packets_sent": UInt(io.packets_sent),
                "speed": interface_speed(name),
            }
            yield Metric("net", {"interface": name}, fields, now_ns)
