"""The SQLite store: Telegraf's layout (a table per measurement, a tag table, typed columns),
one row per point, positions, one transaction per batch, files of the old layout moved."""

from __future__ import annotations

import sqlite3

import pytest

from agent.metric import Metric, UInt
from agent.sink.batch import Batch, Delivery
from agent.sink.layout import tag_id
from agent.sink.store import SqliteStore, StoreError, open_store, redact_store, store_kind
from tests.unit.conftest import file_modes

T = 1_795_569_040_123_456_789  # 2026-11-25 01:10:40.123456789 UTC
T_TEXT = "2026-11-25 01:10:40.123456"
TAGS = {"host": "vm", "cpu": "cpu0"}


def batch(*deliveries: Delivery) -> Batch:
    result = Batch()
    for delivery in deliveries:
        result.add(delivery)
    return result


def cpu(idle: float = 98.5, time_ns: int = T, host: str = "vm") -> Metric:
    return Metric("cpu", {"host": host, "cpu": "cpu0"}, {"usage_idle": idle, "n": 3}, time_ns)


def one(*metrics: Metric, offset: int = 0, partition: int = 0) -> Batch:
    return batch(Delivery("metrics", partition, offset, None, list(metrics)))


@pytest.fixture
def store(tmp_path):
    opened = SqliteStore(str(tmp_path / "metrics.db"))
    yield opened
    opened.close()


def rows(store: SqliteStore, query: str) -> list[tuple]:
    return store._db.execute(query).fetchall()


def columns(store: SqliteStore, table: str) -> dict[str, str]:
    query = f"SELECT name, lower(type) FROM pragma_table_info('{table}')"
    return dict(rows(store, query))


def test_a_metric_is_a_row_of_its_measurements_table_and_its_tags_a_row_of_the_tag_table(store):
    assert store.write(one(cpu())) == 1
    assert rows(store, "SELECT time, tag_id, n, usage_idle FROM cpu") == [
        (T_TEXT, tag_id(TAGS), 3, 98.5)
    ]
    assert rows(store, "SELECT tag_id, cpu, host FROM cpu_tag") == [(tag_id(TAGS), "cpu0", "vm")]


def test_columns_take_telegrafs_types(store):
    metric = Metric(
        "types", {"host": "vm"}, {"f": 3.0, "i": 3, "u": UInt(5), "b": True, "s": "x"}, T
    )
    store.write(one(metric))
    assert columns(store, "types") == {
        "time": "timestamp without time zone",
        "tag_id": "bigint",
        "b": "boolean",
        "f": "double precision",
        "i": "bigint",
        "s": "text",
        "u": "numeric",
    }
    assert columns(store, "types_tag") == {"tag_id": "bigint", "host": "text"}
    query = "SELECT typeof(b), b, typeof(f), typeof(i), typeof(s), typeof(u), u FROM types"
    assert rows(store, query) == [("integer", 1, "real", "integer", "text", "integer", 5)]


def test_an_unsigned_value_beyond_64_bit_integers_is_kept_as_a_float(store):
    store.write(one(Metric("big", {}, {"u": UInt(2**64 - 1)}, T)))
    assert rows(store, "SELECT typeof(u), u FROM big") == [("real", float(2**64 - 1))]


def test_the_same_point_from_another_offset_or_partition_is_stored_once(store):
    assert store.write(one(cpu(), offset=5)) == 1
    assert store.write(one(cpu(), offset=9)) == 0
    assert store.write(one(cpu(), partition=1)) == 0
    assert rows(store, "SELECT count(*) FROM cpu") == [(1,)]


def test_metrics_of_one_point_merge_their_fields_and_a_field_again_takes_the_newer_value(store):
    first = Metric("cpu", TAGS, {"usage_idle": 1.0}, T)
    second = Metric("cpu", TAGS, {"usage_user": 2.0}, T)
    assert store.write(one(first)) == 1
    assert store.write(one(second, offset=1)) == 1  # a value added
    assert store.write(one(Metric("cpu", TAGS, {"usage_idle": 3.0}, T), offset=2)) == 1
    assert rows(store, "SELECT usage_idle, usage_user FROM cpu") == [(3.0, 2.0)]
    assert store.write(one(first, second, offset=3)) == 1  # idle back to 1.0
    assert store.write(one(first, second, offset=4)) == 0  # nothing changes


def test_a_batch_of_more_values_than_one_statement_takes_is_stored_whole(store):
    fields = {f"f{i}": float(i) for i in range(10)}  # 12 values a point with time and tag_id
    points = 32_766 // 12 + 500  # more than one statement's parameters (SQLite's default)
    metrics = [Metric("wide", TAGS, fields, T + i * 1000) for i in range(points)]
    assert store.write(one(*metrics)) == points
    assert rows(store, "SELECT count(*), count(DISTINCT time), sum(f9) FROM wide") == [
        (points, points, 9.0 * points)
    ]
    again = [Metric("wide", TAGS, {"f0": -1.0}, T + i * 1000) for i in range(points)]
    assert store.write(one(*again, offset=1)) == points  # each point's f0 replaced
    assert rows(store, "SELECT sum(f0), sum(f9) FROM wide") == [(-1.0 * points, 9.0 * points)]


def test_a_point_is_a_tag_set_at_a_time_to_the_microsecond(store):
    same_microsecond = cpu(time_ns=T + 1)
    different = [cpu(time_ns=T + 1000), cpu(host="other"), Metric("cpu2", TAGS, {"n": 1}, T)]
    assert store.write(one(cpu(), same_microsecond)) == 1
    assert store.write(one(*different, offset=1)) == 3


def test_times_are_utc_text_that_sorts_and_compares_as_time_does(store):
    times = [-1_000, 0, 86_400_000_000_000 * 366 + 1_500, T]
    store.write(one(*(Metric("t", {}, {"v": float(i)}, ns) for i, ns in enumerate(times))))
    assert rows(store, "SELECT time FROM t ORDER BY time") == [
        ("1969-12-31 23:59:59.999999",),
        ("1970-01-01 00:00:00.000000",),
        ("1971-01-02 00:00:00.000001",),
        (T_TEXT,),
    ]
    assert rows(store, "SELECT v FROM t WHERE time >= '1971-01-02' ORDER BY time") == [
        (2.0,),
        (3.0,),
    ]


def test_a_new_field_or_tag_adds_its_column_and_earlier_rows_leave_it_empty(store):
    store.write(one(cpu()))
    later = Metric("cpu", {**TAGS, "rack": "r1"}, {"usage_idle": 1.0, "steal": 0.5}, T + 1000)
    store.write(one(later, offset=1))
    assert rows(store, "SELECT steal FROM cpu ORDER BY time") == [(None,), (0.5,)]
    assert rows(store, "SELECT rack FROM cpu_tag ORDER BY rack") == [(None,), ("r1",)]


def test_two_stores_on_one_file_add_columns_the_other_has_not_seen(tmp_path):
    path = str(tmp_path / "shared.db")
    first, second = SqliteStore(path), SqliteStore(path)
    first.write(one(cpu()))
    second.write(one(cpu(time_ns=T + 1000)))
    first.write(one(Metric("cpu", TAGS, {"a": 1.0}, T + 2000)))
    second.write(one(Metric("cpu", TAGS, {"a": 2.0, "b": 1.0}, T + 3000)))
    first.write(one(Metric("cpu", TAGS, {"b": 2.0}, T + 4000)))
    assert rows(first, "SELECT count(*), count(a), count(b) FROM cpu") == [(5, 2, 2)]
    first.close()
    second.close()


def test_an_integer_is_taken_into_a_float_column_and_a_string_refused_naming_its_record(store):
    store.write(one(Metric("m", {}, {"v": 1.5}, T)))
    assert store.write(one(Metric("m", {}, {"v": 2}, T + 1000), offset=1)) == 1
    assert rows(store, "SELECT typeof(v), v FROM m ORDER BY time") == [("real", 1.5), ("real", 2.0)]
    with pytest.raises(StoreError) as refused:
        store.write(one(Metric("m", {"k": "v"}, {"v": "high"}, T + 2000), offset=7))
    assert str(refused.value) == (
        f"sqlite:{store.path}: table m column v is double precision, but topic metrics "
        "partition 0 offset 7 has a text value for it"
    )
    assert store.positions() == {("metrics", 0): 2}  # the refused batch left nothing
    assert store.write(one(Metric("m", {"k": "v"}, {"w": 1}, T), offset=7)) == 1
    # The refused batch's tag set was rolled back with it, and is written with this one.
    assert rows(store, "SELECT k FROM m_tag WHERE k IS NOT NULL") == [("v",)]


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (Metric("cpu", {}, {"time": 1.0}, T), 'has a field named "time"'),
        (Metric("cpu", {"tag_id": "x"}, {"v": 1.0}, T), 'has a tag named "tag_id"'),
        (Metric("agent_sink_positions", {}, {"v": 1.0}, T), "is the store's own table"),
    ],
)
def test_names_the_layout_cannot_hold_are_refused_in_one_line(store, metric, message):
    with pytest.raises(StoreError, match=message):
        store.write(one(metric))
    assert store.positions() == {}


def test_positions_hold_the_next_offset_of_each_partition(store):
    store.write(batch(Delivery("m", 0, 4, None, [cpu()]), Delivery("m", 1, 9, None, [])))
    store.write(batch(Delivery("m", 0, 5, None, [cpu(time_ns=1)])))
    assert store.positions() == {("m", 0): 6, ("m", 1): 10}


def test_a_record_without_metrics_still_advances_its_position(store):
    assert store.write(batch(Delivery("m", 0, 0, None, []))) == 0
    assert store.positions() == {("m", 0): 1}


def test_database_uses_wal_and_survives_reopening(tmp_path):
    path = str(tmp_path / "sub" / "dir" / "m.db")
    first = SqliteStore(path)
    first.write(one(cpu()))
    first.close()
    second = SqliteStore(path)
    assert second.write(one(cpu(), offset=1)) == 0
    assert second._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    second.close()
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM cpu").fetchone() == (1,)


def test_a_new_file_keys_each_measurement_table_on_time_and_tag_id(store):
    store.write(one(cpu()))
    assert store._db.execute("PRAGMA user_version").fetchone() == (3,)
    (sql,) = store._db.execute("SELECT sql FROM sqlite_master WHERE name = 'cpu'").fetchone()
    assert 'PRIMARY KEY ("time", "tag_id")' in sql
    assert sql.rstrip().endswith("WITHOUT ROWID")


OLD_LAYOUT = """
CREATE TABLE metrics (
    measurement TEXT NOT NULL, tags TEXT NOT NULL, field_names TEXT NOT NULL,
    fields TEXT NOT NULL, time_ns INTEGER NOT NULL, kafka_topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL{key}
){table_options};
{index}
CREATE TABLE positions (
    kafka_topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL, PRIMARY KEY (kafka_topic, kafka_partition)
);
PRAGMA user_version = {version};
"""
OLD_SCHEMAS = {
    1: OLD_LAYOUT.format(
        key="",
        table_options="",
        index="CREATE UNIQUE INDEX metrics_identity ON metrics"
        " (time_ns, measurement, tags, field_names);",
        version=1,
    ),
    2: OLD_LAYOUT.format(
        key=", PRIMARY KEY (time_ns, measurement, tags, field_names)",
        table_options=" WITHOUT ROWID",
        index="",
        version=2,
    ),
}


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_of_the_old_layout_is_moved_to_this_one_once_with_its_positions(tmp_path, version):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMAS[version])
        db.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, 'm', 0, ?)",
            [
                (
                    "cpu",
                    '{"cpu":"cpu0","host":"vm"}',
                    '["n","usage_idle"]',
                    '{"n":3,"usage_idle":98.5}',
                    T,
                    0,
                ),
                ("cpu", '{"cpu":"cpu0","host":"vm"}', '["usage_user"]', '{"usage_user":1.5}', T, 1),
                ("metrics", "{}", '["ok"]', '{"ok":true}', T, 2),
            ],
        )
        db.execute("INSERT INTO positions VALUES ('m', 0, 3, 0)")
    moved = SqliteStore(str(path))
    assert rows(moved, "SELECT time, tag_id, n, usage_idle, usage_user FROM cpu") == [
        (T_TEXT, tag_id(TAGS), 3, 98.5, 1.5)
    ]
    assert rows(moved, "SELECT ok FROM metrics") == [(1,)]  # a measurement named metrics
    assert moved.positions() == {("m", 0): 3}
    assert rows(moved, "PRAGMA user_version") == [(3,)]
    assert rows(moved, "SELECT name FROM sqlite_master WHERE name LIKE 'agent_sink_old%'") == []
    assert moved.write(one(cpu(), offset=3)) == 0
    moved.close()


def test_a_file_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 4")
    with pytest.raises(StoreError, match="newer agent .schema 4"):
        SqliteStore(str(path))


def test_open_store_takes_sqlite_urls_and_refuses_others(tmp_path):
    open_store(f"sqlite:{tmp_path / 'x.db'}").close()
    with pytest.raises(StoreError, match='expected "sqlite:PATH", "postgresql://'):
        open_store("mysql://db/metrics")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:m.db", "sqlite"),
        ("postgresql://agent@127.0.0.1:5432/metrics", "postgresql"),
        ("postgres://db/metrics", "postgresql"),
        ("host=127.0.0.1 port=5432 dbname=metrics user=agent", "postgresql"),
        ("sqlite:", None),
        ("metrics.db", None),
        ("mysql://db/metrics", None),
    ],
)
def test_store_kind_tells_sqlite_paths_from_postgresql_uris_and_keyword_dsns(url, kind):
    assert store_kind(url) == kind


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://agent:s3cr%40t@db:5432/m", "postgresql://agent:***@db:5432/m"),
        ("postgres://agent:pw@db/m?sslmode=require", "postgres://agent:***@db/m?sslmode=require"),
        ("host=db password=s3cret dbname=m", "host=db password=*** dbname=m"),
        ("host=db password = 'a b\\'c' dbname=m", "host=db password = *** dbname=m"),
        ("postgresql://agent@db/m", "postgresql://agent@db/m"),
    ],
)
def test_a_store_url_is_shown_without_its_password(url, shown):
    assert redact_store(url) == shown


def test_an_unwritable_path_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="sqlite:"):
        SqliteStore(str(tmp_path / "file" / "m.db"))


def test_the_store_and_its_wal_and_shm_files_are_readable_by_their_owner_only(
    tmp_path, usual_umask
):
    path = tmp_path / "metrics.db"
    store = SqliteStore(str(path))
    store.write(batch(Delivery("metrics", 0, 0, None, [cpu()])))
    assert file_modes(path) == {
        "metrics.db": 0o600,
        "metrics.db-wal": 0o600,
        "metrics.db-shm": 0o600,
    }
    store.close()
