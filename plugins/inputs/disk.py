"""File system usage per mount point, as Telegraf's `disk` input.

Measurement `disk`, one metric per mounted file system (in mount table order), tags `path`
(the mount point), `device` (without `/dev/`), `fstype`, `mode` (`rw`, `ro` or `unknown`,
from the mount's own options) and `label` where udev or device-mapper knows one. Fields:
total, free, used (unsigned, bytes; free is what unprivileged users may still use, so
used + free can be less than total), used_percent (float, used / (used + free), 0–100),
inodes_total, inodes_free, inodes_used (unsigned) and inodes_used_percent (float, 0–100).
File systems of size 0 (proc, sysfs, cgroup…) and autofs placeholders are skipped.

The mount table is HOST_PROC/1/mountinfo (or HOST_PROC/self/…, or the directory of
HOST_PROC_MOUNTINFO); a mount whose root is not the file system's root counts as having
the option `bind`. With HOST_MOUNT_PREFIX (the host's / mounted at, say, /hostfs inside a
container) usage is read under the prefix and `path` is reported without it.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from agent import host
from agent.metric import Metric, UInt
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Size, use and inodes of each mounted file system
[[inputs.disk]]
  ## Report only these mount points (exact paths). Empty: every mount.
  # mount_points = ["/"]

  ## Leave out file systems of these types (autofs is always left out).
  ignore_fs = ["tmpfs", "devtmpfs", "devfs", "iso9660", "overlay", "aufs", "squashfs"]

  ## Leave out mounts that have any of these mount options, as the mount table
  ## lists them; "bind" matches a mount of a directory inside a file system.
  # ignore_mount_opts = []
"""

log = logging.getLogger("inputs.disk")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


class Mount(NamedTuple):
    """One line of the mount table."""

    device: str
    mount_point: str
    fstype: str
    options: list[str]
    device_number: str  # "major:minor"


def unescape_mount_path(text: str) -> str:
    """Mount tables write space, tab, newline and backslash as octal escapes (`\\040`)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), text)


def mount_table_files() -> list[Path]:
    """Where the mount table may be, in the order Telegraf (gopsutil) tries them."""
    explicit = os.environ.get("HOST_PROC_MOUNTINFO")
    directories = [Path(explicit).parent] if explicit else [host.proc("1"), host.proc("self")]
    return [directory / name for directory in directories for name in ("mountinfo", "mounts")]


def read_mounts() -> list[Mount]:
    """Every mount of the host, from the first readable mount table."""
    first_error: OSError | None = None
    for path in mount_table_files():
        try:
            lines = host.read_lines(path)
        except OSError as error:
            first_error = first_error or error  # names the file a user should provide
            continue
        parse = parse_mountinfo if path.name == "mountinfo" else parse_mounts
        return [parse(line, path, number) for number, line in enumerate(lines, 1) if line.strip()]
    assert first_error is not None
    raise first_error


def parse_mountinfo(line: str, path: Path, number: int) -> Mount:
    """`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`"""
    before, separator, after = line.partition(" - ")
    mount_fields, source_fields = before.split(), after.split()
    if not separator or len(mount_fields) < 6 or len(source_fields) < 2:
        expected = (
            "IDs, major:minor, root, mount point, options, optional fields, '-', type, source"
        )
        raise host.HostFileFormatError(path, expected, number, host.quoted(line))
    options = mount_fields[5].split(",")
    if mount_fields[3] != "/":
        options.append("bind")
    return Mount(
        device=source_fields[1],
        mount_point=unescape_mount_path(mount_fields[4]),
        fstype=source_fields[0],
        options=options,
        device_number=mount_fields[2],
    )


def parse_mounts(line: str, path: Path, number: int) -> Mount:
    """`/dev/sda1 / ext4 rw,relatime 0 0` (the older /proc/mounts format)."""
    parts = line.split()
    if len(parts) < 4:
        expected = "device, mount point, type, options, dump and pass"
        raise host.HostFileFormatError(path, expected, number, host.quoted(line))
    return Mount(parts[0], unescape_mount_path(parts[1]), parts[2], parts[3].split(","), "")


def real_device(mount: Mount) -> str:
    """The device behind /dev/mapper links and the /dev/root alias, as /dev/NAME."""
    device = mount.device
    if device.startswith("/dev/mapper/"):
        link = host.dev(device.removeprefix("/dev/"))
        try:
            resolved = link.resolve(strict=True)
            return "/dev/" + str(resolved.relative_to(host.root("dev").resolve()))
        except (OSError, ValueError):
            return device
    if device == "/dev/root" and mount.device_number:
        try:
            target = os.readlink(host.sys_path("dev", "block", mount.device_number))
        except OSError:
            return device
        return "/dev/" + posixpath.basename(target)
    return device


def device_label(name: str) -> str:
    """The file system label of a device: device-mapper's name, else udev's ID_FS_LABEL."""
    try:
        return host.sys_path("block", name, "dm", "name").read_text(encoding="utf-8").strip()
    except OSError:
        pass
    try:
        device = os.stat(host.dev(name))
    except (OSError, ValueError):
        return ""
    udev = host.run("udev", "data", f"b{os.major(device.st_rdev)}:{os.minor(device.st_rdev)}")
    try:
        lines = udev.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        key, separator, value = line.partition("=")
        if separator and key == "E:ID_FS_LABEL":
            return value
    return ""


def statvfs(path: str) -> os.statvfs_result:
    """The file system statistics of `path` (the one system call tests replace)."""
    return os.statvfs(path)


def mode(options: list[str]) -> str:
    if "rw" in options:
        return "rw"
    if "ro" in options:
        return "ro"
    return "unknown"


def percent(part: int, rest: int) -> float:
    """part / (part + rest) in percent, in Telegraf's float arithmetic and order."""
    if part + rest == 0:
        return 0.0
    return float(part) / (float(part) + float(rest)) * 100


@input("disk")
@dataclass
class Disk(Input):
    """Reports size, use and inodes of every mounted file system."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    mount_points: list[str] = field(default_factory=list)
    # Telegraf's default is no list; its sample config (ours too) sets the usual one.
    ignore_fs: list[str] = field(default_factory=list)
    ignore_mount_opts: list[str] = field(default_factory=list)

    def gather(self) -> Iterator[Metric]:
        now_ns = time.time_ns()
        mounts = read_mounts()
        prefix = host.mount_prefix()
        known_paths = {mount.mount_point for mount in mounts}
        for mount in mounts:
            if not self.selects(mount):
                continue
            stat_path = mount.mount_point
            if prefix and not stat_path.startswith(prefix):
                stat_path = posixpath.normpath(f"{prefix}/{stat_path}")
                if stat_path in known_paths:
                    continue  # the prefix's own mounts, seen once already without it
            try:
                usage = statvfs(stat_path)
            except OSError as error:
                log.debug("%s left out: statvfs failed: %s", stat_path, error)
                continue
            if usage.f_blocks == 0:
                continue  # proc, sysfs, cgroup…: nothing to report
            yield self.metric(mount, usage, prefix, now_ns)

    def selects(self, mount: Mount) -> bool:
        """Telegraf's filters: mount options, then mount points, then file system types."""
        if any(option in self.ignore_mount_opts for option in mount.options):
            return False
        if self.mount_points and mount.mount_point not in self.mount_points:
            return False
        return mount.fstype not in self.ignore_fs and mount.fstype != "autofs"

    def metric(self, mount: Mount, usage: os.statvfs_result, prefix: str, now_ns: int) -> Metric:
        device = real_device(mount)
        path = mount.mount_point.removeprefix(prefix) if prefix else mount.mount_point
        tags = {
            "path": posixpath.normpath("/" + path.lstrip("/")),
            "device": device.replace("/dev/", ""),
            "fstype": mount.fstype,
            "mode": mode(mount.options),
        }
        label = device_label(device.removeprefix("/dev/"))
        if label:
            tags["label"] = label
        block = usage.f_bsize
        total = usage.f_blocks * block
        free = usage.f_bavail * block
        used = (usage.f_blocks - usage.f_bfree) * block
        inodes_total, inodes_free = usage.f_files, usage.f_ffree
        inodes_used = inodes_total - inodes_free if inodes_total >= inodes_free else 0
        fields = {
            "free": UInt(free),
            "inodes_free": UInt(inodes_free),
            "inodes_total": UInt(inodes_total),
            "inodes_used": UInt(inodes_used),
            "inodes_used_percent": percent(inodes_used, inodes_free),
            "total": UInt(total),
            "used": UInt(used),
            "used_percent": percent(used, free),
        }
        return Metric("disk", tags, fields, now_ns)
