"""A buffer that survives restarts: metrics live in a SQLite file until delivered.

A metric counts as buffered only once its transaction is committed (WAL journal), and is
deleted only after the output acknowledged it, so a restart, a crash or SIGKILL replays what
was not yet delivered, in order. SQLite detects a torn last write (a power cut in the middle
of a transaction) from its WAL checksums and rolls that transaction back; what committed
before it stays. Bounded by metric_buffer_limit with the memory buffer's policy: an overflow
drops the oldest metrics that are not in flight.

A full disk loses only what could not be written: an add that does not fit is refused whole
(BufferFullError, nothing of it half-kept), what the buffer already holds stays and is
delivered. Three habits keep delivery going on a full disk. While the file system has less
than LOW_SPACE_BYTES free, each add is checkpointed from the WAL into the database file at
once, and the deletions before it just before it: inserts make the database file grow, and
a checkpoint that cannot grow it would leave them in the WAL, where no later write could
follow (checkpointed, the WAL's space is reused). An add is refused while the file system
has less free space than the add could take in the WAL and the database file plus
SPARE_BYTES for the deletions of delivered metrics. And delivered metrics whose deletion
fails are left out of batches and the count until a later deletion succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from agent.buffer import Batch, BufferFullError, InFlight
from agent.metric import Metric, UInt
from agent.private_file import create_owner_only

SCHEMA = """
CREATE TABLE IF NOT EXISTS buffer (
    sequence INTEGER PRIMARY KEY,
    metric   TEXT NOT NULL
)
"""


# What an add may take on disk, over-estimated: SQLite's default page, with the header of
# its WAL frame; rows fill about nine tenths of a page and cost a few bytes beside their text.
PAGE_BYTES = 4096 + 24
ROW_BYTES_PER_PAGE = 3600
ROW_OVERHEAD_BYTES = 16
# Kept free beside an add's own room: the WAL's header and shared-memory index, and the
# frames that deleting delivered metrics writes, so delivery goes on when the disk is full.
SPARE_BYTES = 128 * 1024
# Below this much free space each add is checkpointed; above it SQLite's own checkpoints
# (every 1,000 pages of WAL, 4 MB) always find room, and an add costs no extra fsync (a
# checkpoint made adding a gather of 40 metrics six times slower here: 7.7 ms, not 1.3 ms).
LOW_SPACE_BYTES = 64 * 1024 * 1024


def pages_needed(rows: list[tuple[str]]) -> int:
    row_bytes = sum(len(text) + ROW_OVERHEAD_BYTES for (text,) in rows)
    return row_bytes // ROW_BYTES_PER_PAGE + 2  # a partly filled page, a b-tree interior page


def free_bytes(directory: Path) -> int:
    usage = os.statvfs(directory)
    return usage.f_bavail * usage.f_frsize


def encode(metric: Metric) -> str:
    """A lossless text form: JSON keeps floats exact and bool apart from int; unsigned
    fields are listed by name, since JSON has one kind of integer."""
    unsigned = [key for key, value in metric.fields.items() if isinstance(value, UInt)]
    return json.dumps([metric.name, metric.tags, metric.fields, metric.time_ns, unsigned])


def decode(text: str) -> Metric:
    name, tags, fields, time_ns, unsigned = json.loads(text)
    for key in unsigned:
        fields[key] = UInt(fields[key])
    return Metric(name, tags, fields, time_ns)


class DiskBuffer:
    """The MemoryBuffer interface, kept in a SQLite file at `path`."""

    def __init__(self, path: Path, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"metric_buffer_limit must be at least 1, got {limit}")
        self.path = path
        self.limit = limit
        self.dropped = 0
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            create_owner_only(path)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a committed add survives any crash of the process; after a power cut
            # the last transactions may be rolled back, never half-applied.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            self._count = self._db.execute("SELECT COUNT(*) FROM buffer").fetchone()[0]
        except (OSError, sqlite3.Error) as error:
            raise OSError(f"cannot open the disk buffer {path}: {error}") from None
        self._in_flight = InFlight()
        # Delivered metrics whose rows could not be deleted yet (the disk was full).
        self._undeleted: set[int] = set()

    def __len__(self) -> int:
        return self._count

    def add(self, metrics: Iterable[Metric]) -> int:
        """Keep metrics; returns how many waiting ones were dropped to make room within the
        limit. BufferFullError if the disk has no room for them: none of them is kept,
        what the buffer held before stays."""
        rows = [(encode(metric),) for metric in metrics]
        if not rows:
            return 0
        with self._lock:
            self._delete_delivered()
            free = free_bytes(self.path.parent)
            low_on_space = free < LOW_SPACE_BYTES
            if low_on_space:
                # The deletions since the last add go into the database file (in place), so
                # the add's pages start the WAL afresh instead of growing it.
                self._checkpoint("PASSIVE")
            needed = self._room_needed(rows)
            if free < needed:
                reason = f"{free // 1024} kB free on its file system, {needed // 1024} kB needed"
                raise BufferFullError(self.name, len(rows), reason)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO buffer (metric) VALUES (?)", rows)
                dropped = max(0, self._count + len(rows) - self.limit)
                if dropped:
                    self._delete_oldest(dropped)
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._roll_back()
                self._checkpoint("TRUNCATE")  # gives back the space the refused add took
                raise BufferFullError(self.name, len(rows), str(error)) from None
            self._count += len(rows) - dropped
            self.dropped += dropped
            if low_on_space:
                self._checkpoint("PASSIVE")
        return dropped

    def _room_needed(self, rows: list[tuple[str]]) -> int:
        """Bytes the file system must have free before `rows` are added: their pages in the
        WAL beyond the space the WAL file already has, in the database file beyond its free
        pages, and the spare."""
        pages = pages_needed(rows)
        wal = self.path.with_name(self.path.name + "-wal")
        wal_pages = wal.stat().st_size // PAGE_BYTES if wal.exists() else 0
        free_pages = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        growth = max(0, pages - wal_pages) + max(0, pages - free_pages)
        return growth * PAGE_BYTES + SPARE_BYTES

    @property
    def name(self) -> str:
        return f"disk buffer {self.path}"

    def _delete_oldest(self, count: int) -> None:
        """Delete the oldest `count` metrics that are not in flight."""
        candidates = self._db.execute(
            "SELECT sequence FROM buffer ORDER BY sequence LIMIT ?",
            (count + len(self._in_flight) + len(self._undeleted),),
        )
        waiting = (row[0] for row in candidates if row[0] not in self._undeleted)
        doomed = self._in_flight.oldest_waiting(waiting, count)
        if self._in_flight or self._undeleted:
            self._db.executemany("DELETE FROM buffer WHERE sequence = ?", [(s,) for s in doomed])
        else:
            self._db.execute("DELETE FROM buffer WHERE sequence <= ?", (doomed[-1],))

    def batch(self, size: int, skip: int = 0) -> Batch:
        with self._lock:
            try:
                rows = self._rows(size, skip)
            except sqlite3.Error as error:
                raise OSError(f"{self.name}: cannot read: {error}") from None
            sequence = [sequence for sequence, _ in rows]
            self._in_flight.update(sequence)
        return Batch([decode(text) for _, text in rows], sequence)

    def _rows(self, size: int, skip: int) -> list[tuple[int, str]]:
        """Rows after the first `skip`, oldest first, leaving out those delivered already."""
        if not self._undeleted:
            query = "SELECT sequence, metric FROM buffer ORDER BY sequence LIMIT ? OFFSET ?"
            return self._db.execute(query, (size, skip)).fetchall()
        query = (
            "SELECT sequence, metric FROM buffer WHERE sequence NOT IN"
            " (SELECT value FROM json_each(?)) ORDER BY sequence LIMIT ? OFFSET ?"
        )
        undeleted = json.dumps(sorted(self._undeleted))
        return self._db.execute(query, (undeleted, size, skip)).fetchall()

    def accept(
        self, batch: Batch, failed: Iterable[int] = (), in_flight: Iterable[int] = ()
    ) -> None:
        keep = {batch.sequence[i] for i in failed}
        delivered = [s for s in batch.sequence if s not in keep]
        with self._lock:
            self._in_flight.release(batch, in_flight)
            # Delivered, whatever the disk says: no longer counted, never handed out again.
            self._undeleted.update(delivered)
            self._count -= len(delivered)
            self._delete_delivered()

    def _delete_delivered(self) -> None:
        """Delete the delivered metrics from the file; on failure (a full disk) they stay
        left out of batches and are deleted by a later call."""
        if not self._undeleted:
            return
        doomed = [(sequence,) for sequence in self._undeleted]
        for attempt in ("first", "after a checkpoint"):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM buffer WHERE sequence = ?", doomed)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._roll_back()
                if attempt == "first":
                    # Deletions are written in place: once the WAL is checkpointed they
                    # reuse its space instead of growing it.
                    self._checkpoint("TRUNCATE")
                continue
            self._undeleted.clear()
            return

    def _roll_back(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _checkpoint(self, mode: str) -> None:
        """Copy what the WAL holds into the database file. A failure (no room to grow the
        file) leaves the WAL as it is, whole; the next checkpoint tries again."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
