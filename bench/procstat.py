"""What the kernel counts for a process: CPU time and peak resident memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True)
class ThreadTimes:
    """The CPU time of each live thread of a process, in nanoseconds (schedstat)."""

    ns_by_thread: dict[int, int]

    def seconds_since(self, earlier: ThreadTimes) -> float | None:
        """CPU seconds the process used since `earlier`; None when its threads changed
        meanwhile (an ended thread's time leaves the count)."""
        if self.ns_by_thread.keys() != earlier.ns_by_thread.keys():
            return None
        return (sum(self.ns_by_thread.values()) - sum(earlier.ns_by_thread.values())) / 1e9


def thread_times(pid: int) -> ThreadTimes:
    """Each live thread's time on a CPU, from /proc/PID/task/TID/schedstat (nanoseconds: a
    clock tick of /proc/PID/stat is 10 ms, more than an idle agent uses in a minute)."""
    times = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        path = f"/proc/{pid}/task/{task}/schedstat"
        with contextlib.suppress(FileNotFoundError, ProcessLookupError), open(path) as schedstat:
            times[int(task)] = int(schedstat.read().split()[0])
    return ThreadTimes(times)


def peak_rss_bytes(pid: int) -> int:
    """VmHWM of `pid`: the most resident memory it has had."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmHWM for pid {pid}")


@dataclass
class Finished:
    """What a process that ran to its end took: wall time, CPU time and peak memory."""

    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int


# How often a running process's VmHWM is read: its last reading comes at most this long
# before the exit, in the process's teardown, when its memory no longer grows.
PEAK_POLL_S = 0.01


def run_to_end(command: list[str], **popen_options: Any) -> Finished:
    """Run `command` to its exit (raising CalledProcessError if it fails); its wall time from
    start to exit, its CPU time (rusage of the reaped child) and its peak RSS (VmHWM, read
    while it runs). Not ru_maxrss: a child spawned by a large process (this one, holding the
    benchmark's data) keeps its parent's high-water mark through exec."""
    started = time.perf_counter()
    process = subprocess.Popen(command, **popen_options)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        # A process that exited between the two calls has no VmHWM: it is reaped next round.
        with contextlib.suppress(OSError, ValueError):
            peak = max(peak, peak_rss_bytes(process.pid))
        time.sleep(PEAK_POLL_S)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return Finished(seconds, usage.ru_utime + usage.ru_stime, peak)
