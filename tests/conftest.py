"""Shared fixtures: where the repository and the recorded host trees are; a disk that fills."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOSTS = REPO / "tests" / "data" / "hosts"


@pytest.fixture
def host_step(monkeypatch: pytest.MonkeyPatch):
    """Point HOST_PROC (and HOST_SYS, HOST_VAR, HOST_RUN, HOST_DEV) at one step of a
    recorded host tree: host_step("case", 0)."""

    def use(case: str, step: int) -> Path:
        tree = HOSTS / case / f"step{step}"
        for variable in ("HOST_PROC", "HOST_SYS", "HOST_VAR", "HOST_RUN", "HOST_DEV"):
            monkeypatch.setenv(variable, str(tree / variable.removeprefix("HOST_").lower()))
        return tree

    return use


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 1 MB tmpfs mounted at tmp_path/tmpfs for the test, unmounted after it: a disk that
    fills up. Mounting needs root; the test is skipped, saying so, without it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MB tmpfs (a disk that fills up) needs root")
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill_disk(directory: Path) -> Path:
    """Take every free byte of directory's file system with a file; returns the file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler
