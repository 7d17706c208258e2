"""Telegraf, run beside the agent in the same benchmark run: which binary, how it is found,
and how a Telegraf that never exits by itself (a consumer) is timed.

`$TELEGRAF` names a binary to use. Otherwise the benchmarks use the build scripts/telegraf-check
makes in .cache/telegraf/, if it holds every plugin they run; else they build it there the
same way (`go install` of Telegraf 1.37.2 from the Go module proxy, only the plugins named by
build tags, about a minute), with scripts/telegraf-check's plugins too so that either can
use the other's build. Without Go or a binary, the benchmarks still measure the agent and say
in Telegraf's place why it is missing.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bench.context import REPO
from bench.progress import say

VERSION = "v1.37.2"
# What the benchmarks run (inputs.file, inputs.kafka_consumer, outputs.file, outputs.kafka,
# outputs.postgresql for the fleet; inputs.cpu and inputs.mem for the idle comparison). A
# build made here serves scripts/telegraf-check too (its plugins are among these).
PLUGINS_RUN = (
    "inputs.cpu",
    "inputs.mem",
    "inputs.file",
    "inputs.kafka_consumer",
    "outputs.file",
    "outputs.kafka",
    "outputs.postgresql",
    "parsers.influx",
    "serializers.influx",
)
BUILD_DIR = REPO / ".cache" / "telegraf"
BUILT_BINARY = BUILD_DIR / "gopath" / "bin" / "telegraf"
BUILD_TIMEOUT_S = 1800
# How often a running Telegraf's output is looked at: a small part of a run of seconds.
POLL_S = 0.02


@dataclass(frozen=True)
class Telegraf:
    """A Telegraf binary that has every plugin in PLUGINS_RUN."""

    path: Path
    version: str  # "1.37.2", from the binary's Go build information

    @property
    def name(self) -> str:
        return f"Telegraf {self.version}"


@dataclass(frozen=True)
class Missing:
    """Why no Telegraf runs: shown where its figures would be."""

    reason: str


def missing_plugins(path: Path) -> list[str]:
    """The plugins of PLUGINS_RUN that the binary at `path` was built without."""
    listed = subprocess.run(
        [str(path), "plugins"], capture_output=True, text=True, timeout=60
    ).stdout.split()
    return [plugin for plugin in PLUGINS_RUN if plugin not in listed]


def module_version(path: Path) -> str:
    """Telegraf's module version recorded in the binary by the Go toolchain (`go version -m`),
    without its `v`; "of unknown version" when Go is not there to read it."""
    if shutil.which("go") is None:
        return "of unknown version"
    info = subprocess.run(
        ["go", "version", "-m", str(path)], capture_output=True, text=True, timeout=60
    ).stdout
    found = re.search(r"^\s*mod\s+github\.com/influxdata/telegraf\s+v(\S+)", info, re.M)
    return found.group(1) if found else "of unknown version"


def build() -> Missing | None:
    """`go install` Telegraf VERSION into BUILD_DIR as scripts/telegraf-check does; None
    when it worked, else why not."""
    if shutil.which("go") is None:
        return Missing("Go is not installed (or set TELEGRAF=/path/to/telegraf)")
    tags = ",".join(("custom", *PLUGINS_RUN))
    say(
        f"building Telegraf {VERSION} with Go into {BUILD_DIR.relative_to(REPO)} (a minute or more)"
    )
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "GOPATH": str(BUILD_DIR / "gopath"),
        "GOCACHE": str(BUILD_DIR / "gocache"),
        "GOFLAGS": "-modcacherw",  # so that `rm -rf .cache/telegraf` can delete the modules
    }
    command = [
        "go",
        "install",
        "-tags",
        tags,
        f"github.com/influxdata/telegraf/cmd/telegraf@{VERSION}",
    ]
    log = BUILD_DIR / "build.log"
    with open(log, "wb") as output:
        result = subprocess.run(
            command,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
        )
    if result.returncode != 0:
        return Missing(f"the Telegraf build failed (see {log.relative_to(REPO)})")
    return None


@functools.cache
def find() -> Telegraf | Missing:
    """The Telegraf to run beside the agent, found (or built) once per benchmark run."""
    named = os.environ.get("TELEGRAF")
    if named:
        path = Path(named)
        if not os.access(path, os.X_OK):
            return Missing(f"TELEGRAF={named} is not an executable file")
    else:
        path = BUILT_BINARY
        if not path.exists() or missing_plugins(path):
            failed = build()
            if failed is not None:
                return failed
    absent = missing_plugins(path)
    if absent:
        return Missing(f"{path} lacks {', '.join(absent)}")
    return Telegraf(path, module_version(path))


def consumer_config(
    bootstrap: str, topic: str, group: str, max_undelivered: int, buffer_limit: int
) -> str:
    """The `[agent]` and `[[inputs.kafka_consumer]]` of a Telegraf that reads `topic`'s line
    protocol from its start as consumer group `group`; the caller adds the output.
    `buffer_limit` must hold what `max_undelivered` records carry, or Telegraf drops
    metrics. Protocol version 3.6.0: Kafka 4 no longer speaks Telegraf's default."""
    return f"""[agent]
  omit_hostname = true
  flush_interval = "1s"
  metric_buffer_limit = {buffer_limit}

[[inputs.kafka_consumer]]
  brokers = ["{bootstrap}"]
  topics = ["{topic}"]
  consumer_group = "{group}"
  offset = "oldest"
  version = "3.6.0"
  max_undelivered_messages = {max_undelivered}
  data_format = "influx"
"""


def steady_rate(
    found: Telegraf,
    config: Path,
    log: Path,
    done: Callable[[], int],
    total: int,
    timeout_s: float = 600,
) -> float:
    """Metrics per second of Telegraf running `config` (a consumer: it never exits by itself),
    from the moment `done()` (how many metrics it has written so far) first shows any to the
    moment it reaches `total`: its start-up, group join and first fetch left out, as the
    sink's figures leave out the sink's. Telegraf is stopped (SIGTERM) at the end."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(found.path), "--config", str(config)], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout_s
        first: tuple[float, int] | None = None
        while (written := done()) < total:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Telegraf wrote {written} of {total} metrics; its log:\n"
                    + log.read_text(errors="replace")[-2000:]
                )
            if written and first is None:
                first = (time.perf_counter(), written)
            time.sleep(POLL_S)
        ended = time.perf_counter()
    finally:
        process.terminate()
        process.wait(60)
    if first is None:  # everything came in the first write
        raise RuntimeError(f"Telegraf wrote all {total} metrics at once: too few to time")
    return (total - first[1]) / (ended - first[0])


class LineCounter:
    """Lines written so far to a file another process appends to (0 while it does not exist)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self._file: BinaryIO | None = None

    def __call__(self) -> int:
        if self._file is None:
            if not self.path.exists():
                return 0
            self._file = open(self.path, "rb")  # noqa: SIM115 - read as it grows, closed below
        self.lines += self._file.read().count(b"\n")
        return self.lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
