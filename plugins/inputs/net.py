"""Network interface counters, as Telegraf's `net` input, from /proc/net/dev.

Measurement `net`, one metric per interface (in /proc/net/dev order), tag `interface`.
Fields: bytes_sent, bytes_recv (bytes), packets_sent, packets_recv, err_in, err_out,
drop_in, drop_out (packets), all unsigned counters since the interface appeared; and speed
(signed integer, Mbit/s from /sys/class/net/NAME/speed, -1 where the driver reports none).

Without `interfaces`, only interfaces that are up and not loopback are reported; when
HOST_PROC is set that check is skipped (the interfaces the agent sees need not be the
host's), as Telegraf does. Like Telegraf 1.37, no protocol statistics (`interface=all`) are
emitted; `ignore_protocol_stats` is accepted and ignored. Read through psutil, which follows
HOST_PROC; /proc/net/dev shows the network namespace of the process reading it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from agent import host
from agent.filters import Glob
from agent.metric import Metric, UInt
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Traffic, error and drop counters of network interfaces
[[inputs.net]]
  ## Interfaces to report, by name or glob, whether up or down. Empty: the
  ## interfaces that are up, except loopback (all of them when HOST_PROC is set).
  # interfaces = ["eth*", "enp0s[0-1]", "lo"]
"""

log = logging.getLogger("inputs.net")


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
    ignore_protocol_stats: bool = False

    def start(self) -> None:
        if self.ignore_protocol_stats:
            log.warning(
                'Option "ignore_protocol_stats" is deprecated since Telegraf 1.37.0 and is ignored'
            )

    def gather(self) -> Iterator[Metric]:
        psutil = host.psutil_module()
        try:
            counters = psutil.net_io_counters(pernic=True, nowrap=False)
        except OSError as error:
            raise host.HostFileError(host.proc("net", "dev"), error) from None
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
                "drop_in": UInt(io.dropin),
                "drop_out": UInt(io.dropout),
                "err_in": UInt(io.errin),
                "err_out": UInt(io.errout),
                "packets_recv": UInt(io.packets_recv),
                "packets_sent": UInt(io.packets_sent),
                "speed": interface_speed(name),
            }
            yield Metric("net", {"interface": name}, fields, now_ns)
