"""Fixtures shared by the unit tests."""

from __future__ import annotations

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
