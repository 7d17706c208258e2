"""Where the sink keeps metrics: the Store contract and its SQLite implementation.

Both stores keep metrics in Telegraf's outputs.postgresql layout (agent/sink/layout.py): a
point (measurement, tag set, time to the microsecond) is one row, whatever Kafka record it
came in; a metric that reached Kafka twice (a producer retry, an agent restart) or was
delivered twice (a sink killed before it committed) is kept once, and metrics of one point
delivered separately merge their fields.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from agent._native import PointTable
from agent.metric import Metric
from agent.private_file import create_owner_only
from agent.sink import layout
from agent.sink.batch import Batch, Delivery
from agent.sink.layout import POSITIONS_TABLE, TAG_ID_COLUMN, TAG_TABLE_SUFFIX, TIME_COLUMN

log = logging.getLogger("sink")

# Version 3: Telegraf's layout, a table per measurement (versions 1 and 2 kept every metric
# in one `metrics` table as JSON texts; such a file is moved to version 3 when opened).
SCHEMA_VERSION = 3
# SQLite's clock as the layout's time text (UTC, microseconds).
NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
POSITIONS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} (
    kafka_topic     TEXT    NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset     INTEGER NOT NULL,  -- the offset after the last record stored
    updated         TEXT    NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition)
)"""
_POSITION = (
    f"INSERT INTO {POSITIONS_TABLE} (kafka_topic, kafka_partition, next_offset, updated)"
    f" VALUES (?, ?, ?, {NOW}) ON CONFLICT (kafka_topic, kafka_partition) DO UPDATE SET"
    " next_offset = excluded.next_offset, updated = excluded.updated"
)
# Metrics read from a file of the old layout per transaction step when it is moved.
MIGRATION_CHUNK = 10_000
# Parameters a statement may take where Python cannot ask SQLite (its default before 3.32).
OLD_VARIABLE_LIMIT = 999


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


def _variable_limit(db: sqlite3.Connection) -> int:
    """The most parameters a statement may take: SQLite's setting (32,766 by default since
    SQLite 3.32), or 999, the old default, where Python cannot ask (before 3.11)."""
    getlimit = getattr(db, "getlimit", None)
    return getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else OLD_VARIABLE_LIMIT


class SqliteStore:
    """Metrics in one SQLite file (WAL mode), Telegraf's layout, one transaction per batch.

    Several sinks may share a file: each batch takes the file's write lock first (BEGIN
    IMMEDIATE), so the tables and columns a batch adds are seen and made under that lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.where = f"sqlite:{path}"
        self._columns: dict[str, dict[str, str]] = {}  # table → column → declared type
        self._known_tag_ids: dict[str, set[int]] = {}  # tag ids committed, per tag table
        self._new_tag_ids: list[tuple[str, set[int]]] = []  # written by this transaction
        try:
            if Path(path).parent != Path(""):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            create_owner_only(path)
            # The consumer's store thread and its rebalance listener write; never both at
            # once. isolation_level None: transactions are begun and ended explicitly.
            self._db = sqlite3.connect(
                path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._variable_limit = _variable_limit(self._db)
            # FULL: a batch is on disk before its offsets are committed, power loss included.
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self._db.close()
                raise StoreError(
                    f"{self.where}: written by a newer agent (schema {version}, "
                    f"this agent knows up to {SCHEMA_VERSION})"
                )
            if version == 0:  # a new file
                self._db.execute(POSITIONS_SCHEMA)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version < SCHEMA_VERSION:
                self._migrate(version)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{self.where}: {error}") from None

    def write(self, batch: Batch) -> int:
        try:
            tables = layout.point_tables(batch)
        except layout.LayoutError as error:
            raise StoreError(f"{self.where}: {error}") from None
        positions = [(t, p, offset) for (t, p), offset in batch.next_offsets.items()]
        return self._transaction(lambda: self._write(tables, positions))

    def positions(self) -> dict[tuple[str, int], int]:
        """The offset after the last stored record, per (topic, partition)."""
        query = f"SELECT kafka_topic, kafka_partition, next_offset FROM {POSITIONS_TABLE}"
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

    # -- one batch --------------------------------------------------------------------------

    def _transaction(self, work: Callable[[], int]) -> int:
        """`work` under the file's write lock, committed, or rolled back if it fails."""
        self._new_tag_ids = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite ends some on its own (a full disk)
                    self._db.execute("ROLLBACK")
                # What this transaction added is not in the file: read the tables again.
                self._columns.clear()
                raise
        except sqlite3.Error as error:
            raise StoreError(f"{self.where}: {error}") from None
        except layout.LayoutError as error:
            raise StoreError(f"{self.where}: {error}") from None
        for tag_table, ids in self._new_tag_ids:
            self._known_tag_ids.setdefault(tag_table, set()).update(ids)
        return result

    def _write(self, tables: list[PointTable], positions: list[tuple[str, int, int]]) -> int:
        stored = 0
        for table in tables:
            self._ensure_schema(table)
            self._write_tags(table)
            stored += self._write_points(table)
        self._db.executemany(_POSITION, positions)
        return stored

    def _ensure_schema(self, table: PointTable) -> None:
        """The tables and columns `table` needs exist (made here, under the write lock),
        with types its values fit."""
        for name, columns, key in layout.needed_tables(table):
            existing = self._columns.get(name)
            if existing is None or any(column not in existing for column in columns):
                existing = self._read_columns(name)
            if not existing:
                self._db.execute(_create_table(name, columns, key))
            else:
                for column, column_type in columns.items():
                    if column not in existing:
                        self._db.execute(
                            f"ALTER TABLE {_quote(name)} ADD COLUMN {_quote(column)} {column_type}"
                        )
            self._columns[name] = columns | existing  # an existing column keeps its type
        layout.check_types(table, self._columns[table.name])

    def _read_columns(self, name: str) -> dict[str, str]:
        rows = self._db.execute("SELECT name, type FROM pragma_table_info(?)", (name,))
        return {column: column_type.lower() for column, column_type in rows}

    def _write_tags(self, table: PointTable) -> None:
        tag_table = table.name + TAG_TABLE_SUFFIX
        known = self._known_tag_ids.get(tag_table, set())
        for keys, rows in layout.tag_rows(table, known).items():
            columns = ", ".join(map(_quote, (TAG_ID_COLUMN, *keys)))
            marks = ", ".join("?" * (len(keys) + 1))
            self._db.executemany(
                f"INSERT OR IGNORE INTO {_quote(tag_table)} ({columns}) VALUES ({marks})", rows
            )
            self._new_tag_ids.append((tag_table, {int(row[0]) for row in rows}))

    def _write_points(self, table: PointTable) -> int:
        """Upserts the points: a point already stored takes the batch's values of its fields
        (keeping the others); the count of points added or changed."""
        fields = sorted(table.value_types)
        columns = self._columns[table.name]
        names = ", ".join(map(_quote, (TIME_COLUMN, TAG_ID_COLUMN, *fields)))
        marks = ", ".join("?" * (len(fields) + 2))
        merged = [f"coalesce(excluded.{_quote(f)}, {_quote(f)})" for f in fields]
        if fields:
            assignments = ", ".join(
                f"{_quote(f)} = {m}" for f, m in zip(fields, merged, strict=True)
            )
            current = ", ".join(map(_quote, fields))
            conflict = f"DO UPDATE SET {assignments} WHERE ({current}) IS NOT ({', '.join(merged)})"
        else:
            conflict = "DO NOTHING"
        width = len(fields) + 2
        parameters = table.sqlite_parameters(fields, [columns[field] for field in fields])
        # Many points to a statement: Python's sqlite3 lets go of the GIL while SQLite runs
        # a statement and must get it back after, which with the sink's main thread busy
        # can take up to Python's switch interval (5 ms). A statement per point (executemany)
        # made the store wait that long per point.
        points_per_statement = max(1, self._variable_limit // width)
        before = self._db.total_changes
        for start in range(0, len(parameters), points_per_statement * width):
            chunk = parameters[start : start + points_per_statement * width]
            values = ", ".join([f"({marks})"] * (len(chunk) // width))
            self._db.execute(
                f"INSERT INTO {_quote(table.name)} ({names}) VALUES {values}"
                f" ON CONFLICT ({_quote(TIME_COLUMN)}, {_quote(TAG_ID_COLUMN)}) {conflict}",
                chunk,
            )
        return self._db.total_changes - before

    # -- the old layout ---------------------------------------------------------------------

    def _migrate(self, version: int) -> None:
        """Moves a file of schema 1 or 2 (one `metrics` table of JSON texts) to this layout,
        in one transaction: stopped midway, the file is as it was."""
        count = self._db.execute("SELECT count(*) FROM metrics").fetchone()[0]
        log.info(
            "%s: moving %d metrics from schema %d (one metrics table) to Telegraf's layout "
            "(a table per measurement); this happens once",
            self.where,
            count,
            version,
        )
        old_metrics, old_positions = "agent_sink_old_metrics", "agent_sink_old_positions"

        def move() -> int:
            # Renamed first: a measurement may be called metrics or positions.
            self._db.execute(f"ALTER TABLE metrics RENAME TO {old_metrics}")
            self._db.execute(f"ALTER TABLE positions RENAME TO {old_positions}")
            self._db.execute(POSITIONS_SCHEMA)
            self._db.execute(
                f"INSERT INTO {POSITIONS_TABLE} SELECT kafka_topic, kafka_partition,"
                f" next_offset, {NOW} FROM {old_positions}"
            )
            rows = self._db.execute(
                "SELECT measurement, tags, fields, time_ns, kafka_topic, kafka_partition,"
                f" kafka_offset FROM {old_metrics}"
            )
            while chunk := rows.fetchmany(MIGRATION_CHUNK):
                batch = Batch()
                for name, tags, fields, time_ns, topic, partition, offset in chunk:
                    metric = Metric(name, json.loads(tags), json.loads(fields), time_ns)
                    batch.add(Delivery(topic, partition, offset, None, [metric]))
                self._write(layout.point_tables(batch), [])
            self._db.execute(f"DROP TABLE {old_metrics}")
            self._db.execute(f"DROP TABLE {old_positions}")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return count

        self._transaction(move)


def _quote(name: str) -> str:
    """An SQL identifier, whatever characters the name holds."""
    return '"' + name.replace('"', '""') + '"'


def _create_table(name: str, columns: dict[str, str], key: tuple[str, ...]) -> str:
    definitions = ", ".join(f"{_quote(column)} {kind}" for column, kind in columns.items())
    primary = ", ".join(map(_quote, key))
    # WITHOUT ROWID: the rows live in the primary key's B-tree, one insert per point.
    return f"CREATE TABLE {_quote(name)} ({definitions}, PRIMARY KEY ({primary})) WITHOUT ROWID"


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
