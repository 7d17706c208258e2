"""Recorded hosts: the real input plugins on recorded /proc and /sys trees give exactly the
line protocol written down next to each reading (tests/data/hosts/CASE/stepN/expected.lp).

A case is a directory with `case.toml` (the `[[inputs.X]]` tables to run) and steps
step0/, step1/, … that are gathered in order by the same plugin instances, like consecutive
gathers 10 s apart: HOST_PROC, HOST_SYS, HOST_VAR, HOST_RUN, HOST_DEV and HOST_ETC point into
the step, the clock reads 10 s more each step, and the disk input's statvfs() answers from
the step's statvfs.json. HOST_MOUNT_PREFIX and HOST_PROC_MOUNTINFO are unset unless the
case's environment.toml (`VARIABLE = "value"`) sets them, for every step. Lines are compared
as `agent --test` prints them (fields sorted, unsigned as `123u`), with the tag host=recorded
and without timestamps.

UPDATE_HOST_CASES=1 writes the expected files instead of comparing; read them before
committing them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

import plugins.inputs.disk
from agent.config import load
from agent.metric import Metric
from plugins.serializers.influx import InfluxSerializer
from tests.conftest import HOSTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

CASES = sorted(path.parent.name for path in HOSTS.glob("*/case.toml"))
HOST_ROOTS = {"HOST_PROC": "proc", "HOST_SYS": "sys", "HOST_VAR": "var", "HOST_RUN": "run",
              "HOST_DEV": "dev", "HOST_ETC": "etc"}  # fmt: skip
START_NS = 1_800_000_000 * 10**9
STEP_NS = 10 * 10**9
SERIALIZER = InfluxSerializer(influx_sort_fields=True, influx_uint_support=True)


def recorded_statvfs(step: Path):
    """statvfs() answering from the step's statvfs.json, as if the mounts were there."""
    path = step / "statvfs.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}

    def statvfs(mount_point: str) -> os.statvfs_result:
        if mount_point not in recorded:
            raise FileNotFoundError(2, "No such file or directory", mount_point)
        return os.statvfs_result(recorded[mount_point])

    return statvfs


def case_environment(directory: Path) -> dict[str, str]:
    """The variables the case's environment.toml sets (none without one)."""
    path = directory / "environment.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def use_step(
    step: Path, number: int, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, directory in HOST_ROOTS.items():
        monkeypatch.setenv(variable, str(step / directory))
    monkeypatch.delenv("HOST_MOUNT_PREFIX", raising=False)
    monkeypatch.delenv("HOST_PROC_MOUNTINFO", raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setattr(time, "time_ns", lambda: START_NS + number * STEP_NS)
    monkeypatch.setattr(plugins.inputs.disk, "statvfs", recorded_statvfs(step))


def as_line(metric: Metric) -> str:
    metric.tags.setdefault("host", "recorded")
    line = SERIALIZER.format_line(metric)
    return line.rsplit(" ", 1)[0]  # without the timestamp


@pytest.mark.parametrize("case", CASES)
def test_recorded_host_gives_the_expected_lines_at_every_step(case, monkeypatch):
    directory = HOSTS / case
    config = load([directory / "case.toml"])
    environment = case_environment(directory)
    steps = sorted(directory.glob("step*"), key=lambda path: int(path.name[4:]))
    assert steps, f"{case} has no step directories"
    for number, step in enumerate(steps):
        use_step(step, number, environment, monkeypatch)
        lines = [as_line(metric) for entry in config.inputs for metric in entry.plugin.gather()]
        expected_file = step / "expected.lp"
        if os.environ.get("UPDATE_HOST_CASES"):
            expected_file.write_text("".join(line + "\n" for line in lines))
            continue
        expected = expected_file.read_text().splitlines()
        assert lines == expected, f"{case}/{step.name}"
