"""The disk buffer on a disk that fills up (a 1 MB tmpfs; root only): an add that does not
fit is refused whole and counted, what the buffer held stays and is delivered, the count
always equals the rows in the file, and adds are kept again once there is room."""

from __future__ import annotations

import logging
import sqlite3

import pytest

import agent.disk_buffer
from agent.buffer import BufferFullError
from agent.disk_buffer import DiskBuffer
from agent.metric import Metric
from agent.plugin import Output
from agent.running import OutputSettings, RunningOutput
from tests.conftest import fill_disk

# About 120 bytes a row: 3,000 of them fill a third of the 1 MB disk.
GATHER = 3000


def gathered(start: int, count: int = GATHER) -> list[Metric]:
    return [
        Metric("cpu", {"cpu": "cpu0", "host": "h"}, {"usage_idle": 99.5, "n": n}, 10**18 + n)
        for n in range(start, start + count)
    ]


def rows_in_file(buffer: DiskBuffer) -> int:
    with sqlite3.connect(buffer.path) as reader:
        return reader.execute("SELECT COUNT(*) FROM buffer").fetchone()[0]


def deliver_all(buffer: DiskBuffer) -> list[int]:
    delivered = []
    while len(buffer):
        batch = buffer.batch(1000)
        assert batch.metrics, "the buffer counts metrics it does not hand out"
        delivered += [metric.fields["n"] for metric in batch.metrics]
        buffer.accept(batch)
    return delivered


def test_an_add_the_full_disk_cannot_take_is_refused_whole_and_what_was_held_stays(
    small_tmpfs,
):
    buffer = DiskBuffer(small_tmpfs / "kafka.db", 100_000)
    buffer.add(gathered(0))
    fill_disk(small_tmpfs)
    with pytest.raises(BufferFullError) as refused:
        buffer.add(gathered(GATHER))
    assert refused.value.lost == GATHER
    assert str(refused.value).startswith(
        f"disk buffer {small_tmpfs}/kafka.db: no room left on its disk ("
    )
    assert len(buffer) == rows_in_file(buffer) == GATHER
    assert deliver_all(buffer) == list(range(GATHER))
    assert len(buffer) == rows_in_file(buffer) == 0


def test_delivery_removes_metrics_from_a_full_disk_and_adds_are_kept_once_there_is_room(
    small_tmpfs,
):
    buffer = DiskBuffer(small_tmpfs / "kafka.db", 100_000)
    buffer.add(gathered(0))
    filler = fill_disk(small_tmpfs)
    assert deliver_all(buffer) == list(range(GATHER))
    assert rows_in_file(buffer) == 0
    filler.unlink()
    buffer.add(gathered(GATHER))
    assert len(buffer) == rows_in_file(buffer) == GATHER


def test_when_sqlite_itself_finds_the_disk_full_the_add_is_rolled_back_and_counted(
    small_tmpfs, monkeypatch
):
    """The disk fills between the free-space check and the write (another process): SQLite
    fails, the add is undone whole, and the buffer goes on as before. (The add is larger
    than the first, so it cannot fit in the space the WAL file already has.)"""
    buffer = DiskBuffer(small_tmpfs / "kafka.db", 100_000)
    buffer.add(gathered(0))
    monkeypatch.setattr(agent.disk_buffer, "free_bytes", lambda directory: 1 << 40)
    filler = fill_disk(small_tmpfs)
    with pytest.raises(
        BufferFullError, match=r"no room left on its disk \(database or disk is full\)"
    ):
        buffer.add(gathered(GATHER, 2 * GATHER))
    assert len(buffer) == rows_in_file(buffer) == GATHER
    assert deliver_all(buffer) == list(range(GATHER))
    filler.unlink()
    buffer.add(gathered(GATHER, 10))
    assert len(buffer) == rows_in_file(buffer) == 10


class Discard(Output):
    plugin_name = "discard"


def test_the_output_says_once_that_the_disk_is_full_and_once_that_it_has_room_again(
    small_tmpfs, caplog
):
    running = RunningOutput(
        Discard(), OutputSettings(), 1000, DiskBuffer(small_tmpfs / "kafka.db", 100_000)
    )
    running.add(gathered(0))
    filler = fill_disk(small_tmpfs)
    with caplog.at_level(logging.INFO, logger=running.log_name):
        for turn in range(1, 4):
            running.add(gathered(turn * GATHER))
        filler.unlink()
        running.add(gathered(4 * GATHER, 10))
        running.add(gathered(5 * GATHER, 10))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert (
        messages[1]
        == f"disk buffer {small_tmpfs}/kafka.db: room on its disk again; new metrics are kept"
    )
    assert messages[0].startswith(f"disk buffer {small_tmpfs}/kafka.db: no room left on its disk (")
    assert messages[0].endswith("); new metrics are dropped and counted until it has room")
    assert running.stats.metrics_dropped == 3 * GATHER
    assert len(running.buffer) == GATHER + 20


def test_delivered_metrics_whose_deletion_fails_are_never_handed_out_again(tmp_path):
    """A deletion SQLite refuses (here another connection holds the write lock, as a full
    disk would refuse it) leaves the rows in the file, but out of the count and of every
    batch; the next write deletes them."""
    buffer = DiskBuffer(tmp_path / "kafka.db", 100)
    buffer.add(gathered(0, 5))
    buffer._db.execute("PRAGMA busy_timeout = 10")  # give up on the lock at once
    with sqlite3.connect(buffer.path, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")
        buffer.accept(buffer.batch(2))
        assert len(buffer) == 3
        assert [metric.fields["n"] for metric in buffer.batch(10).metrics] == [2, 3, 4]
        other.execute("ROLLBACK")
    assert rows_in_file(buffer) == 5
    buffer.add(gathered(5, 1))
    assert len(buffer) == rows_in_file(buffer) == 4
