"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.buffer import MemoryBuffer
from agent.disk_buffer import DiskBuffer


@pytest.fixture(params=["memory", "disk"])
def make_buffer(request, tmp_path):
    """Factory: ``make_buffer(limit)``, a memory buffer, then (second run) a disk buffer."""

    def make(limit: int):
        if request.param == "memory":
            return MemoryBuffer(limit)
        return DiskBuffer(tmp_path / "buffer" / "kafka.db", limit)

    return make


@pytest.fixture
def usual_umask():
    """The umask 022 most shells run with (files 0644 unless created otherwise)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def file_modes(database: Path) -> dict[str, int]:
    """The permission bits of a SQLite file and of the -wal and -shm files beside it."""
    paths = [database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))]
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in paths}
