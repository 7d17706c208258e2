"""System load, CPU count, logged-in users and uptime, as Telegraf's `system` input.

Measurement `system`, no tags of its own, three metrics with the same timestamp (as Telegraf
emits them):

- load1, load5, load15 (float, run-queue averages over 1, 5, 15 minutes; /proc/loadavg),
  n_cpus (int, logical CPUs; /proc/cpuinfo), n_physical_cpus (int, cores; the distinct
  core_cpus_list of /sys/devices/system/cpu/cpu*/topology), and n_users, n_unique_users
  (int, login sessions and distinct user names in /var/run/utmp; both left out when utmp
  cannot be read, as in Telegraf);
- uptime (unsigned, whole seconds since boot, rounded up like the kernel's sysinfo();
  /proc/uptime);
- uptime_format (string, `"1 day,  2:03"`, `" 0:21"`).

HOST_PROC, HOST_SYS and HOST_VAR are honoured.
"""

from __future__ import annotations

import math
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from agent import host
from agent.metric import FieldValue, Metric, UInt
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Load averages, CPU count, logged-in users and uptime
[[inputs.system]]
  # no options
"""

# struct utmp on Linux (glibc, all 64-bit and 32-bit ABIs that keep 32-bit ut_tv):
# ut_type (short + 2 pad), ut_pid, ut_line[32], ut_id[4], ut_user[32], ut_host[256], …
UTMP_RECORD_BYTES = 384
UTMP_USER_PROCESS = 7
_UTMP_HEAD = struct.Struct("<hxxi32s4s32s")
_CPU_LINE = re.compile(r"cpu\d")


def read_load_averages() -> tuple[float, float, float]:
    """load1, load5, load15 from /proc/loadavg (`0.52 0.58 0.59 2/1190 12345`)."""
    path = host.proc("loadavg")
    (line, *_) = host.read_lines(path)
    words = line.split()
    expected = "three load averages, runnable/total tasks and the last PID"
    try:
        if len(words) != 5:
            raise ValueError
        return float(words[0]), float(words[1]), float(words[2])
    except ValueError:
        raise host.HostFileFormatError(path, expected, 1, host.quoted(line)) from None


def count_logical_cpus() -> int:
    """Processors listed in /proc/cpuinfo; the cpuN lines of /proc/stat if it lists none."""
    try:
        cpuinfo = host.read_lines(host.proc("cpuinfo"), may_be_empty=True)
    except OSError:
        cpuinfo = []
    count = 0
    for line in cpuinfo:
        key, _, value = line.partition(":")
        if key.strip().lower() == "processor" and value.strip().isdigit():
            count += 1
    if count:
        return count
    stat = host.read_lines(host.proc("stat"))
    return sum(1 for line in stat if _CPU_LINE.match(line))


def count_physical_cpus() -> int:
    """Cores: CPUs that share a core list the same siblings, so count distinct lists.

    Falls back to /proc/cpuinfo's "cpu cores" per "physical id" where sysfs has no topology.
    """
    cpus = host.sys_path("devices", "system", "cpu")
    for file_name in ("core_cpus_list", "thread_siblings_list"):
        lists = set()
        for path in sorted(cpus.glob(f"cpu[0-9]*/topology/{file_name}")):
            try:
                lines = path.read_text(encoding="ascii").splitlines()
            except OSError:
                continue
            if len(lines) == 1:
                lists.add(lines[0])
        if lists:
            return len(lists)
    cores_by_package: dict[int, int] = {}
    section: dict[str, int] = {}
    for line in [*host.read_lines(host.proc("cpuinfo"), may_be_empty=True), ""]:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if not key:
            if "physical id" in section and "cpu cores" in section:
                cores_by_package[section["physical id"]] = section["cpu cores"]
            section = {}
        elif key in ("physical id", "cpu cores") and value.strip().isdigit():
            section[key] = int(value)
    return sum(cores_by_package.values())


def read_login_users() -> list[str] | None:
    """User names of the login sessions in utmp; None if utmp cannot be read."""
    try:
        data = host.var("run", "utmp").read_bytes()
    except OSError:
        return None
    users = []
    for offset in range(0, len(data) - UTMP_RECORD_BYTES + 1, UTMP_RECORD_BYTES):
        kind, _pid, _line, _id, user = _UTMP_HEAD.unpack_from(data, offset)
        if kind == UTMP_USER_PROCESS:
            users.append(user.split(b"\0", 1)[0].decode("utf-8", "replace"))
    return users


def read_uptime_seconds() -> int:
    """Whole seconds since boot, rounded up as sysinfo() (Telegraf's source) rounds them."""
    path = host.proc("uptime")
    (line, *_) = host.read_lines(path)
    words = line.split()
    try:
        if len(words) != 2:
            raise ValueError
        return math.ceil(float(words[0]))
    except ValueError:
        expected = "seconds since boot and seconds idle"
        raise host.HostFileFormatError(path, expected, 1, host.quoted(line)) from None


def format_uptime(seconds: int) -> str:
    """Telegraf's uptime_format: `"2 days, 3:04"`, `" 0:21"` (hours padded to two places)."""
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest // 60 % 60
    prefix = f"{days} day{'s' if days > 1 else ''}, " if days else ""
    return f"{prefix}{hours:2d}:{minutes:02d}"


@input("system")
@dataclass
class System(Input):
    """Reports load averages, CPU counts, logged-in users and uptime."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    def gather(self) -> Iterator[Metric]:
        load1, load5, load15 = read_load_averages()
        fields: dict[str, FieldValue] = {
            "load1": load1,
            "load5": load5,
            "load15": load15,
            "n_cpus": count_logical_cpus(),
            "n_physical_cpus": count_physical_cpus(),
        }
        users = read_login_users()
        if users is not None:
            fields["n_users"] = len(users)
            fields["n_unique_users"] = len(set(users))
        uptime = read_uptime_seconds()
        now_ns = time.time_ns()
        yield Metric("system", {}, dict(sorted(fields.items())), now_ns)
        yield Metric("system", {}, {"uptime": UInt(uptime)}, now_ns)
        yield Metric("system", {}, {"uptime_format": format_uptime(uptime)}, now_ns)
