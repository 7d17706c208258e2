"""A buffer that survives restarts: metrics live in a SQLite file until delivered.

A metric counts as buffered only once its transaction is committed (WAL journal), and is
deleted only after the output acknowledged it, so a restart, a crash or SIGKILL replays what
was not yet delivered, in order. SQLite detects a torn last write (a power cut in the middle
of a transaction) from its WAL checksums and rolls that transaction back; what committed
before it stays. Bounded by metric_buffer_limit with the memory buffer's policy: an overflow
drops the oldest metrics that are not in flight.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path

from agent.buffer import Batch, InFlight
from agent.metric import Metric, UInt
from agent.private_file import create_owner_only

SCHEMA = """
CREATE TABLE IF NOT EXISTS buffer (
    sequence INTEGER PRIMARY KEY,
    metric   TEXT NOT NULL
)
"""


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
        import sqlite3  # here: an agent with the memory buffer never loads it (about 1 MB)

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
        # Metrics handed out in batches and not yet accepted, by sequence: the same objects
        # are handed out again, so an output can tell a retry from a new metric.
        self._handed_out: dict[int, Metric] = {}
        self._in_flight = InFlight()

    def __len__(self) -> int:
        return self._count

    def add(self, metrics: Iterable[Metric]) -> int:
        rows = [(encode(metric),) for metric in metrics]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO buffer (metric) VALUES (?)", rows)
            self._count += len(rows)
            dropped = max(0, self._count - self.limit)
            if dropped:
                self._drop_oldest(dropped)
            self._db.execute("COMMIT")
            self.dropped += dropped
        return dropped

    def _drop_oldest(self, count: int) -> None:
        candidates = self._db.execute(
            "SELECT sequence FROM buffer ORDER BY sequence LIMIT ?",
            (count + len(self._in_flight),),
        )
        doomed = self._in_flight.oldest_waiting((row[0] for row in candidates), count)
        if self._in_flight:
            self._db.executemany("DELETE FROM buffer WHERE sequence = ?", [(s,) for s in doomed])
        else:
            self._db.execute("DELETE FROM buffer WHERE sequence <= ?", (doomed[-1],))
        for sequence in doomed:
            self._handed_out.pop(sequence, None)
        self._count -= count

    def batch(self, size: int, skip: int = 0) -> Batch:
        with self._lock:
            rows = self._db.execute(
                "SELECT sequence, metric FROM buffer ORDER BY sequence LIMIT ? OFFSET ?",
                (size, skip),
            ).fetchall()
            metrics = []
            for sequence, text in rows:
                metric = self._handed_out.get(sequence)
                if metric is None:
                    metric = self._handed_out[sequence] = decode(text)
                metrics.append(metric)
                self._in_flight.add(sequence)
        return Batch(metrics, [sequence for sequence, _ in rows])

    def accept(
        self, batch: Batch, failed: Iterable[int] = (), in_flight: Iterable[int] = ()
    ) -> None:
        keep = {batch.sequence[i] for i in failed}
        delivered = [(s,) for s in batch.sequence if s not in keep]
        with self._lock:
            self._in_flight.settle(batch, in_flight)
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany("DELETE FROM buffer WHERE sequence = ?", delivered)
            self._count -= self._db.total_changes - before
            self._db.execute("COMMIT")
            for (sequence,) in delivered:
                self._handed_out.pop(sequence, None)

    def close(self) -> None:
        with self._lock:
            self._db.close()
