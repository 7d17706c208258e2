"""Block device I/O counters, as Telegraf's `diskio` input, from /proc/diskstats.

Measurement `diskio`, one metric per device with any non-zero counter (in /proc/diskstats
order), tag `name` (the kernel's device name, or the first `name_templates` entry whose udev
properties all exist), `wwid` where /sys/block/NAME/wwid exists, `serial` unless
skip_serial_number, and the `device_tags` asked for. Fields, all unsigned counters since boot:
reads, writes, merged_reads, merged_writes (requests), read_bytes, write_bytes (bytes, 512-byte
sectors), read_time, write_time, io_time, weighted_io_time (milliseconds) and
iops_in_progress (requests now in flight). From the second gather on, also the floats
io_await and io_svctm (milliseconds per request over the interval, if there were any) and
io_util (percent of the interval the device was busy), unless a counter went backwards.

HOST_PROC (diskstats), HOST_SYS (wwid, uevent, model/serial), HOST_DEV (device nodes) and
HOST_RUN (udev data) are honoured; Telegraf reads the udev data from /run and /dev as they are.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from agent import host
from agent.filters import Glob, is_glob
from agent.metric import FieldValue, Metric, UInt
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# I/O counters of each block device, from /proc/diskstats
[[inputs.diskio]]
  ## Devices to report, by kernel name or path; globs ("*", "?", "[...]") also
  ## match the device's udev links, such as "disk/by-id/nvme-eui.0123".
  ## Empty: every device with any I/O.
  # devices = ["*"]

  ## false adds the `serial` tag: the disk's serial number, or "unknown".
  # skip_serial_number = true

  ## udev properties to copy into tags, where the device has them. To see a
  ## device's properties: udevadm info -q property -n sda
  # device_tags = ["ID_FS_TYPE", "ID_FS_USAGE"]

  ## The `name` tag from udev properties instead of the kernel's name: the first
  ## template whose $NAME or ${NAME} properties all exist wins, else the kernel's
  ## name stays. Handy for LVM volumes, which the kernel calls dm-0, dm-1 ...
  # name_templates = ["$ID_FS_LABEL","$DM_VG_NAME/$DM_LV_NAME"]
"""

log = logging.getLogger("inputs.diskio")
SECTOR_BYTES = 512


class DiskCounters(NamedTuple):
    """One line of /proc/diskstats: counters since boot."""

    reads: int
    merged_reads: int
    read_sectors: int
    read_time: int
    writes: int
    merged_writes: int
    write_sectors: int
    write_time: int
    iops_in_progress: int
    io_time: int
    weighted_io_time: int


def read_diskstats() -> dict[str, DiskCounters]:
    """Counters by device name; devices whose counters are all zero are left out."""
    path = host.proc("diskstats")
    devices = {}
    # No block devices at all is an empty file, not a damaged one.
    for number, line in enumerate(host.read_lines(path, may_be_empty=True), 1):
        parts = line.split()
        expected = "major, minor, device name and at least 11 whole-number counters"
        if len(parts) < 14:
            raise host.HostFileFormatError(path, expected, number, host.quoted(line))
        values = host.parse_integers(path, number, line, parts[3:14], expected)
        counters = DiskCounters(*values)
        if any(counters):
            devices[parts[2]] = counters
    return devices


def device_numbers(name: str) -> tuple[int, int] | None:
    """Major and minor number of the device node HOST_DEV/NAME, if it exists."""
    try:
        rdev = os.stat(host.dev(name)).st_rdev
    except OSError:
        return None
    return os.major(rdev), os.minor(rdev)


def read_udev_data(path: Path) -> dict[str, str]:
    """udev's database entry: `E:KEY=value` properties and `S:` links (as DEVLINKS)."""
    info: dict[str, str] = {}
    links = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("S:") and len(line) > 2:
            links.append("/dev/" + line[2:])
        elif line.startswith("E:"):
            key, separator, value = line[2:].partition("=")
            if separator:
                info[key] = value
    if links:
        info["DEVLINKS"] = " ".join(links)
    return info


def disk_info(name: str) -> dict[str, str]:
    """udev properties of a device plus DEVNAME/DEVTYPE/DEVPATH from sysfs (OSError if none)."""
    numbers = device_numbers(name)
    if numbers is None:
        raise FileNotFoundError(f"no device node {host.dev(name)}")
    major, minor = numbers
    candidates = [
        host.run("udev", "data", f"b{major}:{minor}"),
        host.dev(".udev", "db", f"block:{name}"),
    ]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f"no udev data in {candidates[0]} or {candidates[1]}")
    info = read_udev_data(path)
    block = host.sys_path("class", "block", name)
    try:
        uevent = (block / "uevent").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return info
    for line in uevent.splitlines():
        key, separator, value = line.partition("=")
        if line.startswith("DEV") and separator:
            info[key.strip()] = value.strip()
    if "DEVNAME" in info and not info["DEVNAME"].startswith("/dev"):
        info["DEVNAME"] = "/dev/" + info["DEVNAME"]
    try:
        device_path = (block / "device").resolve(strict=True) / name
        info["DEVPATH"] = str(device_path).removeprefix(str(host.root("sys")))
    except OSError:
        pass
    return info


def apply_template(template: str, info: dict[str, str]) -> str | None:
    """`$VAR` / `${VAR}` replaced by udev properties; None if one is missing."""
    out: list[str] = []
    position = 0
    while position < len(template):
        dollar = template.find("$", position)
        if dollar == -1:
            out.append(template[position:])
            break
        out.append(template[position:dollar])
        braced = template.startswith("{", dollar + 1)
        start = dollar + 2 if braced else dollar + 1
        end = start
        while end < len(template) and (template[end].isalnum() or template[end] == "_"):
            end += 1
        if end == start or (braced and not template.startswith("}", end)):
            out.append("$")
            position = dollar + 1
            continue
        variable = template[start:end]
        if variable not in info:
            return None
        out.append(info[variable])
        position = end + 1 if braced else end
    return "".join(out)


def serial_number(name: str) -> str:
    """udev's ID_SERIAL, else sysfs model_serial of the whole disk; "" if neither."""
    numbers = device_numbers(name)
    if numbers is None:
        return ""
    major, minor = numbers
    try:
        serial = read_udev_data(host.run("udev", "data", f"b{major}:{minor}")).get("ID_SERIAL")
    except OSError:
        serial = None
    if serial:
        return serial
    device = host.sys_path("dev", "block", f"{major}:0", "device")
    try:
        model = (device / "model").read_text(encoding="utf-8")
        serial = (device / "serial").read_text(encoding="utf-8")
    except OSError:
        return ""
    return f"{model}_{serial}" if model and serial else ""


def read_wwid(name: str) -> str:
    try:
        return host.sys_path("block", name, "wwid").read_text(encoding="utf-8").removesuffix("\n")
    except OSError:
        return ""


def resolve_device_name(name: str) -> str:
    """A configured device (`sda`, `/dev/sda`, `/dev/disk/by-id/…`) as its kernel name."""
    relative = name.removeprefix("/dev/")
    for candidate in (host.dev(relative), Path(name)):
        try:
            return candidate.resolve(strict=True).name
        except OSError:
            continue
    return os.path.basename(name)


@input("diskio")
@dataclass
class DiskIO(Input):
    """Reports I/O counters of every block device, or of the devices asked for."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    devices: list[str] = field(default_factory=list)
    device_tags: list[str] = field(default_factory=list)
    name_templates: list[str] = field(default_factory=list)
    skip_serial_number: bool = True
    _last: dict[str, DiskCounters] = field(default_factory=dict, init=False, repr=False)
    _last_ns: int = field(default=0, init=False, repr=False)
    _warned: set[str] = field(default_factory=set, init=False, repr=False)

    def gather(self) -> Iterator[Metric]:
        counters = read_diskstats()
        now_ns = time.time_ns()
        pattern = Glob(self.devices) if any(map(is_glob, self.devices)) else None
        names = {resolve_device_name(d) for d in self.devices} if pattern is None else set()
        last, last_ns = self._last, self._last_ns
        self._last, self._last_ns = counters, now_ns
        for name, current in counters.items():
            if names and name not in names:
                continue
            info = self.udev_info(name) if self.needs_udev(pattern) else {}
            if pattern is not None and not self.matches(pattern, name, info):
                continue
            fields = counter_fields(current)
            previous = last.get(name)
            if previous is not None:
                fields.update(rate_fields(previous, current, (now_ns - last_ns) // 1_000_000))
            yield Metric("diskio", self.tags(name, info), dict(sorted(fields.items())), now_ns)

    def needs_udev(self, pattern: Glob | None) -> bool:
        return bool(self.name_templates or self.device_tags or pattern is not None)

    def udev_info(self, name: str) -> dict[str, str]:
        try:
            return disk_info(name)
        except OSError as error:
            if name not in self._warned:  # once per device, as Telegraf
                self._warned.add(name)
                log.warning(
                    'No udev data for device "%s", so it keeps its kernel name: %s', name, error
                )
            return {}

    @staticmethod
    def matches(pattern: Glob, name: str, info: dict[str, str]) -> bool:
        links = [link.removeprefix("/dev/") for link in info.get("DEVLINKS", "").split()]
        return pattern.match(name) or any(pattern.match(link) for link in links)

    def tags(self, name: str, info: dict[str, str]) -> dict[str, str]:
        shown = name
        for template in self.name_templates:
            applied = apply_template(template, info) if info else None
            if applied is not None:
                shown = applied
                break
        tags = {"name": shown}
        wwid = read_wwid(name)
        if wwid:
            tags["wwid"] = wwid
        for key in self.device_tags:
            if key in info:
                tags[key] = info[key]
        if not self.skip_serial_number:
            tags["serial"] = serial_number(name) or "unknown"
        return tags


def counter_fields(counters: DiskCounters) -> dict[str, FieldValue]:
    return {
        "io_time": UInt(counters.io_time),
        "iops_in_progress": UInt(counters.iops_in_progress),
        "merged_reads": UInt(counters.merged_reads),
        "merged_writes": UInt(counters.merged_writes),
        "read_bytes": UInt(counters.read_sectors * SECTOR_BYTES),
        "read_time": UInt(counters.read_time),
        "reads": UInt(counters.reads),
        "weighted_io_time": UInt(counters.weighted_io_time),
        "write_bytes": UInt(counters.write_sectors * SECTOR_BYTES),
        "write_time": UInt(counters.write_time),
        "writes": UInt(counters.writes),
    }


def rate_fields(previous: DiskCounters, current: DiskCounters, elapsed_ms: int) -> dict[str, float]:
    """io_await, io_svctm (ms per request) and io_util (percent busy) over the interval."""
    if any(
        getattr(current, counter) < getattr(previous, counter)
        for counter in ("reads", "writes", "read_time", "write_time", "io_time")
    ):
        return {}  # wrapped or reset: no rates this time
    requests = float(current.reads - previous.reads) + float(current.writes - previous.writes)
    request_ms = float(current.read_time - previous.read_time) + float(
        current.write_time - previous.write_time
    )
    busy_ms = float(current.io_time - previous.io_time)
    fields: dict[str, float] = {}
    if requests > 0:
        fields["io_await"] = request_ms / requests
        fields["io_svctm"] = busy_ms / requests
    if elapsed_ms > 0:
        fields["io_util"] = 100 * busy_ms / elapsed_ms
    return fields
