"""Record the kernel files the host inputs read, as a test case under tests/data/hosts/.

    .venv/bin/python tests/capture_host.py tests/data/hosts/my-host --steps 2 --gap 1

writes DIR/step0/, DIR/step1/, … each holding proc/, sys/ and var/ trees with only the files
the inputs read (cpu, mem, system, disk, diskio, net, swap, processes, kernel), plus
statvfs.json: the file system statistics of every mount point, which the disk input gets
from a system call rather than a file (the case tests replay them). Steps are taken `--gap`
seconds apart, like consecutive gathers.

What is left out on purpose: command names in /proc/PID/stat become "(process)" (the
processes input reads only the state and thread count, and names can say more about a
machine than a test needs); mounts under a `--skip-mount` path are dropped from the mount
table and from statvfs.json. Expected output is not written here: run the case tests with
UPDATE_HOST_CASES=1 once, then read the expected.lp files before trusting them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

PROC_FILES = (
    "stat", "meminfo", "loadavg", "uptime", "cpuinfo", "vmstat", "diskstats", "net/dev",
    "1/mountinfo", "sys/kernel/random/entropy_avail", "pressure/cpu", "pressure/memory",
    "pressure/io",
)  # fmt: skip
SYS_GLOBS = (
    "devices/system/cpu/cpu[0-9]*/topology/core_cpus_list",
    "devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list",
    "class/net/*/speed",
    "block/*/wwid",
    "block/*/dm/name",
    "kernel/mm/ksm/*",
)
VAR_FILES = ("run/utmp",)
STATVFS_FIELDS = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                  "f_ffree", "f_favail", "f_flag", "f_namemax")  # fmt: skip
_COMMAND = re.compile(rb"\(.*\)", re.DOTALL)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def copy(source: Path, target: Path, content: bytes | None = None) -> None:
    """Copy one kernel file; files the kernel refuses to read (EINVAL, EACCES) are skipped."""
    try:
        data = source.read_bytes() if content is None else content
    except OSError:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def mount_point(line: str) -> str:
    point = line.split(" - ")[0].split()[4]
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), point)


def skipped(point: str, skip: list[str]) -> bool:
    return any(point == prefix or point.startswith(prefix.rstrip("/") + "/") for prefix in skip)


def capture_step(step: Path, skip_mounts: list[str]) -> None:
    proc, sys_root, var = Path("/proc"), Path("/sys"), Path("/var")
    for name in PROC_FILES:
        copy(proc / name, step / "proc" / name)
    mountinfo = step / "proc" / "1" / "mountinfo"
    lines = mountinfo.read_text().splitlines()
    kept = [line for line in lines if not skipped(mount_point(line), skip_mounts)]
    mountinfo.write_text("".join(line + "\n" for line in kept))
    statvfs = {}
    for point in (mount_point(line) for line in kept):
        try:
            result = os.statvfs(point)
        except OSError:
            continue
        statvfs[point] = [getattr(result, name) for name in STATVFS_FIELDS]
    entries = [f"  {json.dumps(point)}: {json.dumps(values)}" for point, values in statvfs.items()]
    (step / "statvfs.json").write_text("{\n" + ",\n".join(entries) + "\n}\n")
    for stat in proc.glob("[0-9]*/stat"):
        try:
            data = stat.read_bytes()
        except OSError:
            continue  # the process ended
        copy(stat, step / "proc" / stat.parent.name / "stat", _COMMAND.sub(b"(process)", data))
    for pattern in SYS_GLOBS:
        for path in sys_root.glob(pattern):
            copy(path, step / "sys" / path.relative_to(sys_root))
    for name in VAR_FILES:
        copy(var / name, step / "var" / name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", type=Path, help="the case directory to create")
    parser.add_argument("--steps", type=int, default=2, help="readings to take (default 2)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--skip-mount", action="append", default=[], metavar="PATH",
                        help="leave mounts at or under PATH out of the recording")  # fmt: skip
    args = parser.parse_args(argv)
    if args.case.exists() and any(args.case.glob("step*")):
        parser.error(f"{args.case} already holds steps; remove them first")
    for number in range(args.steps):
        if number:
            time.sleep(args.gap)
        capture_step(args.case / f"step{number}", args.skip_mount)
    print(f"recorded {args.steps} steps in {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
