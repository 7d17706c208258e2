"""The stores' layout: Telegraf's outputs.postgresql tables with `tags_as_foreign_keys`, the
same in PostgreSQL and in SQLite, so a query written for one runs against the other.

Per measurement, as Telegraf makes them, so queries and dashboards written for its tables work:

    cpu      (time timestamp without time zone, tag_id bigint, one column per field,
              PRIMARY KEY (time, tag_id))
    cpu_tag  (tag_id bigint PRIMARY KEY, one text column per tag key)

Field columns take Telegraf's types: float → double precision, int → bigint, unsigned →
numeric, bool → boolean, string → text. tag_id is Telegraf's: FNV-1a (64 bit) over the tags
sorted by key, each key and value followed by a zero byte, read as a signed integer.
Unlike Telegraf's table, `cpu` has a primary key: a point (measurement, tag set, time to the
microsecond, PostgreSQL's resolution) is one row, and metrics of one point delivered
separately merge their fields (a field delivered again takes the newer value).
`agent_sink_positions` holds, per partition, the offset after the last record stored.

In SQLite the column types are declared with the same names (their affinities: REAL,
INTEGER, NUMERIC, NUMERIC and TEXT), booleans are 0 and 1, and `time` is UTC text with six
fractional digits, `2026-12-07 06:20:00.000000`, which compares and sorts as PostgreSQL's
timestamps do (`WHERE time >= '2026-12-07'` means the same in both).
"""

from __future__ import annotations

from typing import NamedTuple

from agent import _native
from agent._native import PointTable
from agent.sink.batch import Batch

POSITIONS_TABLE = "agent_sink_positions"
TAG_TABLE_SUFFIX = "_tag"
TIME_COLUMN = "time"
TAG_ID_COLUMN = "tag_id"
TIME_TYPE = "timestamp without time zone"
TAG_ID_TYPE = "bigint"
TAG_TYPE = "text"

# Values another existing column type takes without loss: an integer field arriving for a
# column made for floats (a value written `3` in JSON, `3i` in line protocol).
ACCEPTED_INTO: dict[str, set[str]] = {
    "bigint": {"double precision", "numeric"},
    "numeric": {"double precision"},
}


class LayoutError(Exception):
    """A batch the layout cannot hold (a name or a value type); the store names itself."""


def tag_id(tags: dict[str, str]) -> int:
    """Telegraf's tag_id of a tag set (see the module docstring)."""
    return _native.telegraf_tag_id(tags)


def point_tables(batch: Batch) -> list[PointTable]:
    """The batch's points, tag sets and field types per measurement, read by the native
    core; LayoutError for a name the layout cannot hold."""
    tables = _native.point_tables(batch.deliveries, _check_measurement)
    for table in tables:
        _check_names(table)
    return tables


def _check_measurement(name: str, topic: str, partition: int, offset: int) -> None:
    if name == POSITIONS_TABLE:
        raise LayoutError(
            f"topic {topic} partition {partition} offset {offset}: measurement {name} is the "
            "store's own table"
        )


def column_type(value_types: dict[str, None]) -> str:
    """The type a new column gets for a field with values of `value_types` (an ordered set
    of column types): one that takes all of them, if any."""
    types = list(value_types)
    for candidate in types:
        if all(t == candidate or candidate in ACCEPTED_INTO.get(t, ()) for t in types):
            return candidate
    return types[0]


def _check_names(table: PointTable) -> None:
    """A field named time or tag_id, or a tag named tag_id, would be a column of the layout
    itself."""
    clashes = [(f, "field") for f in (TIME_COLUMN, TAG_ID_COLUMN) if f in table.value_types]
    clashes += [(TAG_ID_COLUMN, "tag")] if TAG_ID_COLUMN in table.tag_keys else []
    for name, kind in clashes:
        raise LayoutError(
            f'measurement {table.name} has a {kind} named "{name}", which is a column of '
            "the layout itself"
        )


class TableShape(NamedTuple):
    """A table as a batch needs it: its columns (name → type) and its primary key."""

    name: str
    columns: dict[str, str]
    key: tuple[str, ...]


def needed_tables(table: PointTable) -> list[TableShape]:
    """The two tables a measurement's batch writes: its points' and its tag sets'."""
    fields = {TIME_COLUMN: TIME_TYPE, TAG_ID_COLUMN: TAG_ID_TYPE}
    value_types = table.value_types  # made anew by each read: read once
    fields |= {name: column_type(value_types[name]) for name in sorted(value_types)}
    tags = {TAG_ID_COLUMN: TAG_ID_TYPE} | {key: TAG_TYPE for key in sorted(table.tag_keys)}
    return [
        TableShape(table.name, fields, (TIME_COLUMN, TAG_ID_COLUMN)),
        TableShape(table.name + TAG_TABLE_SUFFIX, tags, (TAG_ID_COLUMN,)),
    ]


def check_types(table: PointTable, columns: dict[str, str]) -> None:
    """Each field's values fit the type of its existing column (`columns`: name → type)."""
    for field, value_types in table.value_types.items():
        existing = columns[field]
        for value_type in value_types:
            if value_type != existing and existing not in ACCEPTED_INTO.get(value_type, ()):
                topic, partition, offset = table.first_record[(field, value_type)]
                raise LayoutError(
                    f"table {table.name} column {field} is {existing}, but topic "
                    f"{topic} partition {partition} offset {offset} "
                    f"has a {value_type} value for it"
                )


def tag_rows(
    table: PointTable, known: set[int]
) -> dict[tuple[str, ...], list[tuple[int | str, ...]]]:
    """The tag sets of `table` not in `known`, as rows (tag_id, *values) grouped by their
    tag keys (sorted)."""
    by_keys: dict[tuple[str, ...], list[tuple[int | str, ...]]] = {}
    for identity, tags in table.tag_sets.items():
        if identity in known:
            continue
        keys = tuple(sorted(tags))
        by_keys.setdefault(keys, []).append((identity, *(tags[k] for k in keys)))
    return by_keys
