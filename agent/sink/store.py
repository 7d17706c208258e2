"""Where the sink keeps metrics: the Store contract and its SQLite implementation.

A metric is stored once per identity — measurement, tag set, field names and timestamp
(Metric.identity()) — whatever Kafka record it came in: a metric that reached Kafka twice
(a producer retry, an agent restart) or was delivered twice (a sink killed before it
committed) is kept once. The topic, partition and offset of the first copy are kept beside it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from agent._native import sqlite_rows
from agent.private_file import create_owner_only
from agent.sink.batch import Batch

SCHEMA_VERSION = 2

# Version 2: the identity is the table's primary key and the rows live in its B-tree
# (WITHOUT ROWID): one B-tree insert per metric rather than a table row plus an index entry,
# a quarter less time and space. Version 1 files (a rowid table with a unique index on the
# identity) are written as they are.
SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    measurement     TEXT    NOT NULL,
    tags            TEXT    NOT NULL,  -- JSON object, keys sorted: {"cpu":"cpu0","host":"vm"}
    field_names     TEXT    NOT NULL,  -- JSON array, sorted: ["usage_idle","usage_user"]
    fields          TEXT    NOT NULL,  -- JSON object, typed: {"usage_idle":98.5,"n":3,"ok":true}
    time_ns         INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
    kafka_topic     TEXT    NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    INTEGER NOT NULL,
    -- The identity: a metric delivered again (another offset, another record) is ignored.
    -- time_ns leads, so inserts land at the end and time ranges are quick.
    PRIMARY KEY (time_ns, measurement, tags, field_names)
) WITHOUT ROWID;
-- Per partition, the offset after the last record of the latest batch stored (what the
-- consumer group commits next).
CREATE TABLE IF NOT EXISTS positions (
    kafka_topic     TEXT    NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset     INTEGER NOT NULL,
    updated_ns      INTEGER NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition)
);
"""

_INSERT = (
    "INSERT OR IGNORE INTO metrics (measurement, tags, field_names, fields, time_ns,"
    " kafka_topic, kafka_partition, kafka_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_POSITION = (
    "INSERT INTO positions (kafka_topic, kafka_partition, next_offset, updated_ns)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (kafka_topic, kafka_partition) DO UPDATE SET"
    " next_offset = excluded.next_offset, updated_ns = excluded.updated_ns"
)

_encode_sorted = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False
).encode


class Store(Protocol):
    """Keeps batches of metrics. A printer is a Store too (it keeps them on stdout)."""

    def write(self, batch: Batch) -> int:
        """Keep every metric of `batch` durably before returning; the count newly kept."""
        ...

    def close(self) -> None: ...


class StoreError(Exception):
    """A store that cannot be opened or written, phrased for the user."""


class PositionsMoved(Exception):
    """A batch was not stored: another sink moved these partitions' positions since this
    one claimed them (it lost them in a rebalance). Nothing of the batch was kept."""

    def __init__(self, partitions: list[tuple[str, int]]) -> None:
        super().__init__(", ".join(f"{topic}[{partition}]" for topic, partition in partitions))
        self.partitions = partitions


@runtime_checkable
class DurableStore(Store, Protocol):
    """A store that keeps, with each batch, the offset after it per partition: a sink that
    is assigned partitions resumes where the store stopped."""

    def claim(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """These partitions are now this sink's: their stored next offsets (those that have
        one). A store that fences raises PositionsMoved from a later write() when another
        writer moved one of them meanwhile."""
        ...

    def interrupt(self) -> None:
        """Stop waiting for an unreachable server: the write in progress fails."""
        ...


class SqliteStore:
    """Metrics in one SQLite file (WAL mode), one transaction per batch."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if Path(path).parent != Path(""):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            create_owner_only(path)
            # The consumer's rebalance listener writes from the Kafka IO thread while the
            # main thread waits in poll(); the two never write at the same time.
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a batch is on disk before its offsets are committed, power loss included.
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:  # a new file (or one without the metrics table yet)
                    self._db.executescript(SCHEMA)
                    self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"sqlite:{path}: {error}") from None
        if version > SCHEMA_VERSION:
            self._db.close()
            raise StoreError(
                f"sqlite:{path}: written by a newer agent (schema {version}, "
                f"this agent knows up to {SCHEMA_VERSION})"
            )

    def write(self, batch: Batch) -> int:
        # The JSON texts of each row are made by the native core (Python's json spent more
        # time on a metric's floats than SQLite spends storing the row); it writes them as
        # _encode_sorted does, and hands it whatever it cannot write itself.
        rows = sqlite_rows(batch.deliveries, _encode_sorted)
        now_ns = time.time_ns()
        positions = [(t, p, offset, now_ns) for (t, p), offset in batch.next_offsets.items()]
        try:
            with self._db:
                before = self._db.total_changes
                self._db.executemany(_INSERT, rows)
                stored = self._db.total_changes - before
                self._db.executemany(_POSITION, positions)
        except sqlite3.Error as error:
            raise StoreError(f"sqlite:{self.path}: {error}") from None
        return stored

    def positions(self) -> dict[tuple[str, int], int]:
        """The offset after the last stored record, per (topic, partition)."""
        query = "SELECT kafka_topic, kafka_partition, next_offset FROM positions"
        return {(t, p): offset for t, p, offset in self._db.execute(query)}

    def claim(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The stored positions of `partitions`. One file serves one machine's sinks, which
        hand partitions over in their rebalance listener: no fence here."""
        stored = self.positions()
        return {partition: stored[partition] for partition in partitions if partition in stored}

    def interrupt(self) -> None:
        """Writes never wait here (a locked file times out on its own)."""

    def close(self) -> None:
        self._db.close()


STORE_FORMS = '"sqlite:PATH", "postgresql://USER@HOST:PORT/DBNAME" or "host=… dbname=…"'
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_KEYWORD_DSN = re.compile(r"^\s*[a-z_]+\s*=")


def store_kind(url: str) -> str | None:
    """Which store `--store` names: "sqlite" (sqlite:PATH), "postgresql" (a libpq URI or
    keyword DSN), or None."""
    kind, _, path = url.partition(":")
    if kind == "sqlite" and path:
        return "sqlite"
    if url.startswith(_POSTGRES_SCHEMES) or _KEYWORD_DSN.match(url):
        return "postgresql"
    return None


def open_store(url: str) -> DurableStore:
    """The store named by `--store` (see store_kind)."""
    kind = store_kind(url)
    if kind == "sqlite":
        return SqliteStore(url.partition(":")[2])
    if kind == "postgresql":
        from agent.sink.postgres import PostgresStore  # psycopg loads only when used

        return PostgresStore(url)
    raise StoreError(f"--store: expected {STORE_FORMS}, got {redact_store(url)!r}")


def redact_store(url: str) -> str:
    """`url` as errors may show it: a PostgreSQL password as ***."""
    hidden = re.sub(r"(postgres(?:ql)?://[^:/@?#]*:)[^@/?#]*(?=@)", r"\1***", url)
    return re.sub(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", hidden)
