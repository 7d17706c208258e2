"""`agent sink --workers N`: N sink processes in one consumer group on this machine.

Kafka spreads the topic's partitions over the group's members, whichever machine they run
on; each worker is one member (its own process, so N workers use N cores despite the GIL).
This process only starts them, passes SIGTERM and SIGINT on, and starts again a worker that
a signal it did not send killed (the store's positions make that safe). A worker that
fails (exit status 1: a permanent store error, a broker that never answers) stops the rest.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("sink")

RESTART_DELAY_S = 1.0  # between a worker's death and its replacement: no tight loop
POLL_S = 0.2
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _end_with_the_supervisor() -> None:
    """In a new worker: SIGTERM when the supervisor dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG), so no worker is left reading without it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The sink's own command line for one worker: the same flags with --workers 1 (which
    also overrides `workers` in a config file)."""
    kept: list[str] = []
    skip_value = False
    for word in argv:
        if skip_value:
            skip_value = False
            continue
        name, equals, _ = word.partition("=")
        if name in ("-workers", "--workers"):
            skip_value = not equals
            continue
        kept.append(word)
    return [sys.executable, "-m", "agent", "sink", *kept, "--workers", "1"]


class Workers:
    """Runs `count` copies of the sink and supervises them until they end or are stopped."""

    def __init__(self, argv: Sequence[str], count: int) -> None:
        self.command = worker_argv(argv)
        self.count = count
        self.processes: dict[int, subprocess.Popen] = {}
        self._stopping = False

    def request_stop(self, signum: int = signal.SIGTERM, frame: Any = None) -> None:
        self._stopping = True
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        for number in range(1, self.count + 1):
            self._start(number)
        status = 0
        while self.processes:
            time.sleep(POLL_S)
            for number, process in list(self.processes.items()):
                code = process.poll()
                if code is None:
                    continue
                del self.processes[number]
                if code < 0 and not self._stopping:
                    name = signal.Signals(-code).name
                    log.warning(
                        "worker %d (pid %d) was killed by %s; starting it again",
                        number,
                        process.pid,
                        name,
                    )
                    time.sleep(RESTART_DELAY_S)
                    self._start(number)
                elif code > 0 and not self._stopping:
                    log.error(
                        "worker %d (pid %d) failed (exit status %d); stopping the others",
                        number,
                        process.pid,
                        code,
                    )
                    status = 1
                    self.request_stop(signal.SIGTERM)
                elif code > 0:
                    status = 1
        return status

    def _start(self, number: int) -> None:
        process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, preexec_fn=_end_with_the_supervisor
        )
        self.processes[number] = process
        log.info("worker %d started (pid %d)", number, process.pid)
