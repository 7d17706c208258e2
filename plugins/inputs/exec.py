"""Metrics printed by commands: every gather runs each command and parses what it prints.

Commands run in parallel, without a shell: each string is split as a POSIX shell splits
words (quotes, backslashes), and a glob in the program's path runs every match. Standard
output is parsed in `data_format` (json by default, as in Telegraf; or influx), so the
measurements, tags and fields are whatever the command prints; a line without a timestamp
gets the time of the gather.

A command that cannot start, exits non-zero or outlives `timeout` is an error naming it and
the last line of its standard error, and its output is dropped (unless `ignore_error`); a
line it prints that does not parse is an error naming the command, line and column, and its
other lines are kept. Either way the other commands' metrics arrive. Each command runs in a
session of its own; at the timeout the whole process group gets SIGTERM, and SIGKILL if it
is still there after KILL_GRACE_S, so no child of the command lives on.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from agent.filters import is_glob
from agent.metric import Metric
from agent.options import PositiveDuration
from agent.plugin import Input
from agent.registry import input
from plugins.common.globpath import match_paths
from plugins.common.parse_errors import parse_error_reports

SAMPLE_CONFIG = """\
# Run commands at every gather and read the metrics they print
[[inputs.exec]]
  ## Commands, each split into words as a shell would split it (no shell runs
  ## it). A glob in the program's path runs every program it matches.
  commands = []

  ## "NAME=value" pairs the commands get on top of the agent's environment,
  ## e.g. "LD_LIBRARY_PATH=/opt/tool/lib".
  # environment = []

  ## How long a command may run; then it is killed with all its children.
  # timeout = "5s"

  ## Appended to each measurement name, e.g. to tell two exec inputs apart.
  # name_suffix = ""

  ## A command that exits non-zero or times out is not an error, and what it
  ## printed is parsed all the same.
  # ignore_error = false

  ## What the commands print: "json" (the default, as in Telegraf) or "influx".
  # data_format = "json"
"""

# How long a timed-out command's process group has between SIGTERM and SIGKILL (Telegraf's).
KILL_GRACE_S = 5.0
# Standard error is shown in the error message up to this many characters of its last line.
MAX_STDERR_CHARS = 512


@dataclass(frozen=True)
class Command:
    """One command to run: `name` as the errors show it, `argv` as it is executed."""

    name: str
    argv: list[str]


@dataclass(frozen=True)
class CommandRun:
    """How one run of a command ended: its output, and why it failed ("" if it did not)."""

    command: Command
    stdout: bytes
    stderr: bytes
    failure: str = ""


def run_command(command: Command, timeout_s: float, env: dict[str, str] | None) -> CommandRun:
    """Run `command` in a session of its own with stdin from /dev/null and wait for it, at
    most `timeout_s`; then its process group is stopped. The command is always reaped."""
    try:
        process = subprocess.Popen(
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        program = command.argv[0]
        reason = error.strerror
        if isinstance(error, FileNotFoundError) and os.sep not in program:
            reason = "not found in PATH"
        return CommandRun(command, b"", b"", f"cannot run {program}: {reason}")
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        # Finished but for a child still holding its output open: as in Telegraf, the
        # group is stopped and the exit status of the command itself counts.
        finished = process.poll() is not None
        stdout, stderr = stop_process_group(process)
        if not finished:
            failure = f"timed out after {timeout_s:g}s; stopped with its children"
            return CommandRun(command, stdout, stderr, failure)
    return CommandRun(command, stdout, stderr, exit_failure(process.returncode))


def stop_process_group(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGTERM to the group `process` leads, SIGKILL after KILL_GRACE_S; what it printed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # the whole group has exited
            os.killpg(process.pid, sig)
        try:
            return process.communicate(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            continue
    # A descendant that left the group still holds the pipes: reap the command, not wait.
    process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    return b"", b""


def exit_failure(returncode: int) -> str:
    """Why a command with this exit status failed: "" for 0, else as a shell user reads it."""
    if returncode > 0:
        return f"exit status {returncode}"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:  # a real-time signal has no name
            return f"killed by signal {-returncode}"
    return ""


def stderr_tail(stderr: bytes) -> str:
    """The last non-empty line of standard error, shortened to MAX_STDERR_CHARS."""
    lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
    if not lines:
        return ""
    last = lines[-1].strip()
    return last if len(last) <= MAX_STDERR_CHARS else last[:MAX_STDERR_CHARS] + "…"


@input("exec")
@dataclass
class Exec(Input):
    """Runs commands in parallel at every gather and parses their standard output."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    commands: list[str] = field(default_factory=list)
    command: str = ""  # Telegraf's older single-command option, run after `commands`
    environment: list[str] = field(default_factory=list)
    timeout: PositiveDuration = PositiveDuration(5)
    ignore_error: bool = False
    data_format: str = "json"
    _argvs: list[tuple[str, list[str]]] = field(default_factory=list, init=False, repr=False)
    _environment: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for text in [*self.commands, self.command]:
            if not text.strip():
                continue
            try:
                argv = shlex.split(text)
            except ValueError as error:
                raise ValueError(f"commands: cannot split {text!r} into words: {error}") from None
            self._argvs.append((text, argv))
        for entry in self.environment:
            key, equals, value = entry.partition("=")
            if not key or not equals:
                raise ValueError(f'environment: expected "KEY=value", got {entry!r}')
            self._environment[key] = value

    def gather(self) -> list[Metric]:
        commands = self.expanded_commands()
        if not commands:
            return []
        env = {**os.environ, **self._environment} if self._environment else None
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            runs = list(pool.map(lambda command: run_command(command, self.timeout, env), commands))
        now_ns = time.time_ns()
        metrics: list[Metric] = []
        for run in runs:
            metrics.extend(self.metrics_of(run, now_ns))
        return metrics

    def expanded_commands(self) -> list[Command]:
        """The commands to run now: a glob in a program's path becomes each existing match;
        one that matches nothing runs as written (found on PATH, say)."""
        commands = []
        for text, argv in self._argvs:
            program, arguments = argv[0], argv[1:]
            matches = match_paths(program) if is_glob(program) else []
            if not matches:
                commands.append(Command(text, argv))
            for match in matches:
                commands.append(Command(shlex.join([match, *arguments]), [match, *arguments]))
        return commands

    def metrics_of(self, run: CommandRun, now_ns: int) -> list[Metric]:
        """What one run printed, parsed; its failure and the lines that do not parse reported."""
        assert self.parser is not None, "the config gives every inputs.exec its parser"
        name = f'command "{run.command.name}"'
        if run.failure and not self.ignore_error:
            tail = stderr_tail(run.stderr)
            self.report_error(f"{name}: {run.failure}" + (f": {tail}" if tail else ""))
            return []
        metrics, errors = self.parser.parse(run.stdout, now_ns)
        for message in parse_error_reports(f"{name} output", errors):
            self.report_error(message)
        return metrics
