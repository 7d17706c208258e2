"""Processes by state, as Telegraf's `processes` input on Linux, from /proc/PID/stat.

Measurement `processes`, no tags of its own, one metric; every field is a signed integer
count of processes (not threads) in a state: running (R), sleeping (S), blocked (D,
uninterruptible sleep), zombies (Z), stopped (T, t), dead (X), paging (W), idle (I), plus
total (all processes, also those in a state not listed) and total_threads (the sum of
their thread counts). `unknown` is always 0 on Linux, as in Telegraf; `parked` appears only
while some process is parked (P), and counts them (Telegraf reports 1 however many there
are). HOST_PROC is honoured.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent import host
from agent.metric import Metric
from agent.options import ignored
from agent.plugin import Input
from agent.registry import input

SAMPLE_CONFIG = """\
# Number of processes in each state (running, sleeping, zombies, ...), Linux only
[[inputs.processes]]
  ## Telegraf runs ps with sudo on the BSDs; this agent reads /proc, so the
  ## option is accepted and has no effect.
  # use_sudo = false
"""

log = logging.getLogger("inputs.processes")
STATE_FIELDS = {
    "R": "running",
    "S": "sleeping",
    "D": "blocked",
    "Z": "zombies",
    "X": "dead",
    "T": "stopped",
    "t": "stopped",
    "W": "paging",
    "I": "idle",
    "P": "parked",
}
ALWAYS_REPORTED = (
    "blocked", "dead", "idle", "paging", "running", "sleeping", "stopped", "total",
    "total_threads", "unknown", "zombies",
)  # fmt: skip
# Fields of /proc/PID/stat after the command name: state is the first, num_threads the 18th.
_STATE, _THREADS = 0, 17
_READ_BYTES = 4096


def process_stat_paths(proc: Path) -> list[str]:
    """HOST_PROC/PID/stat of every process, in name order (Telegraf's glob `[0-9]*/stat`).

    Listed from the directory alone: whether each file is there is found out by reading it,
    which gathering does anyway (a glob would stat every one of them first)."""
    try:
        names = os.listdir(proc)
    except OSError:
        return []
    return [f"{proc}/{name}/stat" for name in sorted(names) if "0" <= name[:1] <= "9"]


def read_process_stat(path: str | Path) -> tuple[str, int] | None:
    """(state letter, thread count) of one process; None if it ended while we looked (or
    the name is not a process directory after all)."""
    try:
        data = read_small_file(path)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ESRCH, errno.ENOTDIR):
            return None
        raise host.HostFileError(Path(path), error) from None
    # The command name is in parentheses and may itself hold spaces and parentheses.
    end_of_name = data.rfind(b")")
    fields = data[end_of_name + 2 :].split(maxsplit=_THREADS + 1)
    cut_short = not data.endswith(b"\n")
    if cut_short or end_of_name < 0 or len(fields) <= _THREADS or not fields[_THREADS].isdigit():
        line = data.decode("ascii", "replace").rstrip("\n")
        expected = f"PID (command) state and at least {_THREADS + 1} numbers after the command"
        raise host.HostFileFormatError(Path(path), expected, 1, host.quoted(line))
    return fields[_STATE][:1].decode("ascii", "replace"), int(fields[_THREADS])


def read_small_file(path: str | Path) -> bytes:
    """The whole content of a small kernel file, in as few system calls as it takes (open,
    read, close): thousands of these are read per gather on a busy host."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _READ_BYTES)
        if len(data) == _READ_BYTES:  # never for a stat line, but do not cut one short
            chunks = [data]
            while chunk := os.read(fd, _READ_BYTES):
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data


@input("processes")
@dataclass
class Processes(Input):
    """Reports how many processes are in each state, and how many threads there are."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    use_sudo: bool = ignored(False)  # Telegraf's option for ps on the BSDs; Linux has /proc

    def gather(self) -> Iterator[Metric]:
        proc = host.proc()
        counts = dict.fromkeys(ALWAYS_REPORTED, 0)
        found = False
        for path in process_stat_paths(proc):
            reading = read_process_stat(path)
            if reading is None:
                continue
            found = True
            state, threads = reading
            name = STATE_FIELDS.get(state)
            if name is None:
                log.info("%s: state %r has no field of its own; counted in total only", path, state)
            else:
                counts[name] = counts.get(name, 0) + 1
            counts["total"] += 1
            counts["total_threads"] += threads
        if not found:
            raise FileNotFoundError(f"no process directories in {proc} (is it a /proc?)")
        yield Metric("processes", {}, dict(sorted(counts.items())), time.time_ns())
