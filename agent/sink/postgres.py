"""The PostgreSQL store: Telegraf's outputs.postgresql tables (`tags_as_foreign_keys = true`,
agent/sink/layout.py), in the connection's current schema (`public` unless the DSN's options
say otherwise), each Kafka record stored exactly once.

Exactly once: a batch is copied (COPY, binary) into the measurement tables, or when some of
its points are there already, into a temporary staging table and merged into them with
INSERT … ON CONFLICT; the partitions' next offsets are
written to `agent_sink_positions` in the same transaction, for the partitions this sink
claimed on assignment (a sink without a group leaves positions alone). A claimed partition
is fenced: its position is only moved from the offset this sink read or wrote last, so a
sink that lost the partition to another cannot write it again.

New tables and columns are made in their own short transactions (CREATE TABLE / ALTER TABLE
… ADD COLUMN IF NOT EXISTS), so several sinks may add the same column at once, and no sink
holds a table's lock for the length of a batch.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from agent._native import PointTable
from agent.sink import layout
from agent.sink.batch import Batch
from agent.sink.layout import POSITIONS_TABLE, TAG_ID_COLUMN, TAG_TABLE_SUFFIX, TIME_COLUMN
from agent.sink.store import PositionsMoved, StoreError
from agent.sink.store import redact_store as redact

log = logging.getLogger("sink")

# What a connection gets unless the DSN (or libpq's environment variable beside it) says
# otherwise. A server that vanishes without closing the connection (its host down, the
# network cut) is noticed by TCP keepalives while the sink awaits an answer (10 s idle, then
# 3 probes 5 s apart: 25 s) and by TCP_USER_TIMEOUT while data it sent stays unacknowledged,
# as in a COPY (25 s); without them Linux gives up after about 15 minutes (tcp_retries2).
# A server that is alive answers both from its kernel, however long a statement runs; one
# that reads none of a COPY for 25 s (a stalled disk) counts as gone too (Linux 5.11 and
# later), and the batch is rolled back and tried again. libpq ignores them on Unix sockets.
CONNECTION_DEFAULTS = {
    "connect_timeout": "10",  # seconds
    "keepalives": "1",
    "keepalives_idle": "10",  # seconds
    "keepalives_interval": "5",  # seconds
    "keepalives_count": "3",
    "tcp_user_timeout": "25000",  # milliseconds
}
ENVIRONMENT_VARIABLES = {"connect_timeout": "PGCONNECT_TIMEOUT"}
# Retry after a lost connection: 0.25 s doubling to 15 s (Telegraf's outputs.postgresql
# waits up to 15 s between attempts too).
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 15.0
DDL_ATTEMPTS = 5  # concurrent CREATE TABLE of one name may fail once per competing sink
# After a batch held a point its table had already, this many of the table's next batches
# are merged without trying a plain COPY first.
MERGES_AFTER_A_REPEATED_POINT = 10

# SQLSTATEs that a later attempt may not meet: the server going down or starting up, lost
# connections, lack of resources, a deadlock, and the races of CREATE TABLE / ADD COLUMN
# between sinks (another sink made the same table or column first).
_TRANSIENT_CLASSES = ("08", "53", "57P", "40")
_TRANSIENT_CODES = {"23505", "42P07", "55P03", "58000", "58030"}
# libpq does not pass on the SQLSTATE of a login the server refused (28P01, 28000, 3D000,
# 42501), nor has one for a DSN it cannot use: those are told by their text (libpq's and
# the server's English). A connection lost under TLS says "SSL" too ("SSL error: unexpected
# eof while reading", "SSL SYSCALL error: EOF detected"): only TLS settings that cannot work
# are refusals here, not the word.
_REFUSALS = re.compile(
    "|".join(
        (
            "authentication failed",  # password, and ident, peer or cert methods
            "no pg_hba.conf entry",
            "pg_hba.conf rejects",
            "not permitted to log in",
            "password",  # none supplied, or a password file it cannot use
            "does not exist",  # the database, the role, a certificate file
            "permission denied",  # no CONNECT right on the database
            "does not support SSL",  # sslmode=require, a server without TLS
            "certificate",  # not trusted, or for another host name
            "private key",
            r"invalid \w+ value",  # an sslmode, port or timeout libpq cannot read
            "invalid port number",
        )
    )
)
# PostgreSQL keeps the first 63 bytes of a longer name (NAMEDATALEN - 1): two fields that
# differ only after those would be one column.
MAX_NAME_BYTES = 63


class PostgresStore:
    """Metrics in PostgreSQL, Telegraf's layout; one transaction per batch, retried while
    the server is unreachable."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.where = redact(dsn)
        try:
            psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as error:
            raise StoreError(f"--store {self.where}: {_first_line(error)}") from None
        self._connection: psycopg.Connection | None = None
        self._columns: dict[str, dict[str, str]] = {}  # table → column → type, as last read
        self._known_tag_ids: dict[str, set[int]] = {}  # tag ids committed, per tag table
        self._merges_left: dict[str, int] = {}  # table → batches to merge without a COPY
        # Claimed partitions → the position expected in the table (None: no row yet).
        self._expected: dict[tuple[str, int], int | None] = {}
        self._interrupted = threading.Event()
        self._outage_since: float | None = None
        self._call(self._prepare)

    # -- the Store contract -----------------------------------------------------------------

    def write(self, batch: Batch) -> int:
        try:
            tables = layout.point_tables(batch)
        except layout.LayoutError as error:
            raise StoreError(f"PostgreSQL {self.where}: {error}") from None
        return self._call(lambda: self._write(batch, tables))

    def claim(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """These partitions are now this sink's: their stored positions. Until claimed
        again, a write that would move one of them from another position than the one
        returned here (or last written) fails with PositionsMoved."""
        wanted = set(partitions)
        stored = self._call(self.positions)
        for partition in wanted:
            self._expected[partition] = stored.get(partition)
        return {partition: stored[partition] for partition in wanted if partition in stored}

    def positions(self) -> dict[tuple[str, int], int]:
        """The offset after the last stored record, per (topic, partition)."""
        connection = self._connect()
        with connection.transaction():
            rows = connection.execute(
                sql.SQL("SELECT kafka_topic, kafka_partition, next_offset FROM {}").format(
                    sql.Identifier(POSITIONS_TABLE)
                )
            ).fetchall()
        return {(topic, partition): offset for topic, partition, offset in rows}

    def interrupt(self) -> None:
        """Stop waiting for an unreachable server (SIGTERM): the write in progress fails."""
        self._interrupted.set()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- connection and retries -------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            # autocommit: every statement runs inside an explicit transaction() block.
            self._connection = psycopg.connect(
                self.dsn,
                autocommit=True,
                application_name="agent-sink",
                **connection_defaults(self.dsn),
            )
        return self._connection

    def _call(self, step: Any) -> Any:
        """Run `step` until it succeeds, waiting out transient errors with a backoff (one
        warning per outage); a permanent error is a StoreError."""
        backoff_s = FIRST_BACKOFF_S
        while True:
            try:
                result = step()
            except psycopg.Error as error:
                if not is_transient(error):
                    raise StoreError(f"PostgreSQL {self.where}: {_first_line(error)}") from None
                self._lost(error)
            else:
                if self._outage_since is not None:
                    log.info(
                        "PostgreSQL %s answers again after %.1f s",
                        self.where,
                        time.monotonic() - self._outage_since,
                    )
                    self._outage_since = None
                return result
            if self._interrupted.wait(backoff_s):
                raise StoreError(
                    f"PostgreSQL {self.where}: stopped while waiting for the server "
                    "(what was not stored is read again at the next start)"
                )
            backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)

    def _lost(self, error: psycopg.Error) -> None:
        if self._connection is not None and (
            self._connection.closed or self._connection.broken or _disconnected(error)
        ):
            self._connection.close()
            self._connection = None
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "PostgreSQL %s: %s; retrying (nothing is lost, nothing is stored twice)",
                self.where,
                _first_line(error),
            )
        # Another sink may have changed the tables meanwhile: read them again.
        self._columns.clear()

    # -- schema -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        connection = self._connect()
        with connection.transaction():
            connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (kafka_topic text NOT NULL,"
                    " kafka_partition integer NOT NULL, next_offset bigint NOT NULL,"
                    " updated timestamp with time zone NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (kafka_topic, kafka_partition))"
                ).format(sql.Identifier(POSITIONS_TABLE))
            )

    def _read_columns(self, connection: psycopg.Connection, names: list[str]) -> None:
        rows = connection.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)"
            " AND a.attnum > 0 AND NOT a.attisdropped",
            (names,),
        ).fetchall()
        for name in names:
            self._columns.pop(name, None)
        for table, column, column_type in rows:
            self._columns.setdefault(table, {})[column] = column_type

    def _ensure_schema(self, connection: psycopg.Connection, tables: list[PointTable]) -> None:
        """Every table and column the batch needs exists, with a type its values fit."""
        for table in tables:
            self._check_names(table)
        names = [n for t in tables for n in (t.name, t.name + TAG_TABLE_SUFFIX)]
        unknown = [name for name in names if name not in self._columns]
        if unknown:
            with connection.transaction():
                self._read_columns(connection, unknown)
        for attempt in range(DDL_ATTEMPTS):
            changes = [change for table in tables for change in self._changes(table)]
            if not changes:
                break
            try:
                with connection.transaction():
                    for statement in changes:
                        connection.execute(statement)
            except psycopg.errors.UniqueViolation:  # another sink created the same table
                if attempt == DDL_ATTEMPTS - 1:
                    raise
            with connection.transaction():
                self._read_columns(connection, names)
        for table in tables:
            self._check_types(table)

    def _changes(self, table: PointTable) -> list[sql.Composed]:
        changes = []
        for name, columns, key in layout.needed_tables(table):
            existing = self._columns.get(name)
            if existing is None:
                changes.append(_create_table(name, columns, key))
            elif missing := [column for column in columns if column not in existing]:
                changes.append(_add_columns(name, {c: columns[c] for c in missing}))
        return changes

    def _check_names(self, table: PointTable) -> None:
        """Names PostgreSQL would cut short (layout.point_tables refused those the layout
        cannot hold)."""
        names = [table.name + TAG_TABLE_SUFFIX, *table.value_types, *table.tag_keys]
        for name in names:
            if len(name.encode()) > MAX_NAME_BYTES:
                raise StoreError(
                    f"PostgreSQL {self.where}: measurement {table.name}: the name {name!r} is "
                    f"longer than PostgreSQL's {MAX_NAME_BYTES} bytes"
                )

    def _check_types(self, table: PointTable) -> None:
        try:
            layout.check_types(table, self._columns[table.name])
        except layout.LayoutError as error:
            raise StoreError(f"PostgreSQL {self.where}: {error}") from None

    # -- one batch --------------------------------------------------------------------------

    def _write(self, batch: Batch, tables: list[PointTable]) -> int:
        connection = self._connect()
        self._ensure_schema(connection, tables)
        new_tag_ids: list[tuple[str, set[int]]] = []
        stored = 0
        with connection.transaction():
            # Positions first: the fence fails before any row is written, and the row lock
            # makes a second writer of the same partition wait for this transaction.
            self._move_positions(connection, batch)
            for index, table in enumerate(tables):
                new_tag_ids.append(self._write_tags(connection, table))
                stored += self._write_points(connection, table, f"agent_stage_{index}")
        for tag_table, ids in new_tag_ids:
            self._known_tag_ids.setdefault(tag_table, set()).update(ids)
        for partition, offset in batch.next_offsets.items():
            if partition in self._expected:
                self._expected[partition] = offset
        return stored

    def _move_positions(self, connection: psycopg.Connection, batch: Batch) -> None:
        table = sql.Identifier(POSITIONS_TABLE)
        moved = []
        with connection.cursor() as cursor:
            for (topic, partition), offset in batch.next_offsets.items():
                if (topic, partition) not in self._expected:
                    # Not this sink's by assignment (a sink without a group reads what it
                    # likes): the group members' positions are not its to move.
                    continue
                expected = self._expected[(topic, partition)]
                # The position may also be the batch's own end already: this transaction
                # committed before the connection was lost and is being run again.
                if expected is None:
                    query = sql.SQL(
                        "INSERT INTO {} AS p (kafka_topic, kafka_partition, next_offset)"
                        " VALUES (%s, %s, %s) ON CONFLICT (kafka_topic, kafka_partition)"
                        " DO UPDATE SET updated = now()"
                        " WHERE p.next_offset = EXCLUDED.next_offset"
                    ).format(table)
                    cursor.execute(query, (topic, partition, offset))
                else:
                    query = sql.SQL(
                        "UPDATE {} SET next_offset = %s, updated = now()"
                        " WHERE kafka_topic = %s AND kafka_partition = %s"
                        " AND next_offset IN (%s, %s)"
                    ).format(table)
                    cursor.execute(query, (offset, topic, partition, expected, offset))
                if cursor.rowcount != 1:
                    moved.append((topic, partition))
        if moved:
            # Raised inside the transaction: nothing of the batch is kept.
            raise PositionsMoved(moved)

    def _write_tags(
        self, connection: psycopg.Connection, table: PointTable
    ) -> tuple[str, set[int]]:
        tag_table = table.name + TAG_TABLE_SUFFIX
        known = self._known_tag_ids.get(tag_table, set())
        by_keys = layout.tag_rows(table, known)
        with connection.cursor() as cursor:
            for keys, rows in by_keys.items():
                columns = sql.SQL(", ").join(map(sql.Identifier, (TAG_ID_COLUMN, *keys)))
                values = sql.SQL(", ").join(sql.Placeholder() * (len(keys) + 1))
                query = sql.SQL(
                    "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING"
                ).format(sql.Identifier(tag_table), columns, values, sql.Identifier(TAG_ID_COLUMN))
                cursor.executemany(query, rows)
        return tag_table, {row[0] for rows in by_keys.values() for row in rows}

    def _write_points(self, connection: psycopg.Connection, table: PointTable, stage: str) -> int:
        """The table's points, as new rows or merged into the rows of the same points; the
        number of new rows. Points are most often all new: they are copied straight into the
        table, and only when one is there already (the unique key refuses the COPY, which
        is undone to a savepoint) is the batch merged through a staging table. After such a
        refusal the next batches of the table go straight to the merge for a while: a
        stream that repeats points (read again after a restart, or fields of one point sent
        apart) would otherwise pay for both."""
        fields = sorted(table.value_types)
        columns = self._columns[table.name]
        names = [TIME_COLUMN, TAG_ID_COLUMN, *fields]
        data = table.copy_data(fields, [columns[name] for name in fields])
        merges_left = self._merges_left.get(table.name, 0)
        if merges_left:
            self._merges_left[table.name] = merges_left - 1
        else:
            try:
                with connection.transaction():  # a savepoint
                    self._copy(connection, table.name, names, data)
                return len(table)
            except psycopg.errors.UniqueViolation:
                self._merges_left[table.name] = MERGES_AFTER_A_REPEATED_POINT
        target, staging = sql.Identifier(table.name), sql.Identifier(stage)
        column_list = sql.SQL(", ").join(map(sql.Identifier, names))
        connection.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP").format(staging, target)
        )
        self._copy(connection, stage, names, data)
        merged = [
            sql.SQL("COALESCE(EXCLUDED.{0}, t.{0})").format(sql.Identifier(f)) for f in fields
        ]
        current = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(f)) for f in fields)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(f), m)
            for f, m in zip(fields, merged, strict=True)
        )
        if fields:
            on_conflict = sql.SQL("DO UPDATE SET {} WHERE ROW({}) IS DISTINCT FROM ROW({})").format(
                assignments, current, sql.SQL(", ").join(merged)
            )
        else:
            on_conflict = sql.SQL("DO NOTHING")
        query = sql.SQL(
            "WITH written AS (INSERT INTO {} AS t ({}) SELECT {} FROM {}"
            " ON CONFLICT ({}, {}) {} RETURNING xmax = 0 AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted) FROM written"
        ).format(
            target,
            column_list,
            column_list,
            staging,
            sql.Identifier(TIME_COLUMN),
            sql.Identifier(TAG_ID_COLUMN),
            on_conflict,
        )
        (inserted,) = connection.execute(query).fetchone() or (0,)
        return int(inserted)

    def _copy(
        self, connection: psycopg.Connection, table: str, names: list[str], data: bytes
    ) -> None:
        """COPY of `data` (the whole binary stream: header, rows, trailer, each value written
        as its column's type by the native core) into `table`."""
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.write(data)


def _create_table(name: str, columns: dict[str, str], key: tuple[str, ...]) -> sql.Composed:
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(column_type))
        for column, column_type in columns.items()
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        sql.Identifier(name), definitions, sql.SQL(", ").join(map(sql.Identifier, key))
    )


def _add_columns(name: str, columns: dict[str, str]) -> sql.Composed:
    additions = sql.SQL(", ").join(
        sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
            sql.Identifier(column), sql.SQL(column_type)
        )
        for column, column_type in columns.items()
    )
    return sql.SQL("ALTER TABLE {} {}").format(sql.Identifier(name), additions)


def connection_defaults(dsn: str) -> dict[str, str]:
    """CONNECTION_DEFAULTS less the options the DSN or the environment sets."""
    given = psycopg.conninfo.conninfo_to_dict(dsn)
    return {
        option: value
        for option, value in CONNECTION_DEFAULTS.items()
        if option not in given and not os.environ.get(ENVIRONMENT_VARIABLES.get(option, ""))
    }


def is_transient(error: psycopg.Error) -> bool:
    """Whether a later attempt may succeed: the server unreachable, restarting, recovering,
    full or busy; not a refused login, a missing right or a value of the wrong type."""
    code = error.sqlstate
    if code is None:
        # libpq's own failure (refused, reset, timed out, a TLS session cut short), or a
        # refusal at login, which no retry changes.
        return isinstance(error, psycopg.OperationalError) and not _REFUSALS.search(str(error))
    return code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_CLASSES)


def _disconnected(error: psycopg.Error) -> bool:
    return error.sqlstate is None or error.sqlstate.startswith(("08", "57P"))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return redact(text.splitlines()[0] if text else type(error).__name__)
