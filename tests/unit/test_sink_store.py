"""The SQLite store: one row per metric identity, typed JSON, positions, one transaction."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from agent.metric import Metric, UInt
from agent.sink.batch import Batch, Delivery
from agent.sink.store import SqliteStore, StoreError, open_store, redact_store, store_kind
from tests.unit.conftest import file_modes

T = 1_795_569_040_000_000_000


def batch(*deliveries: Delivery) -> Batch:
    result = Batch()
    for delivery in deliveries:
        result.add(delivery)
    return result


def cpu(idle: float = 98.5, time_ns: int = T, host: str = "vm") -> Metric:
    return Metric("cpu", {"host": host, "cpu": "cpu0"}, {"usage_idle": idle, "n": 3}, time_ns)


@pytest.fixture
def store(tmp_path):
    opened = SqliteStore(str(tmp_path / "metrics.db"))
    yield opened
    opened.close()


def rows(store: SqliteStore, query: str = "SELECT * FROM metrics") -> list[tuple]:
    return store._db.execute(query).fetchall()


def test_a_metric_is_stored_with_its_kafka_topic_partition_and_offset(store):
    assert store.write(batch(Delivery("metrics", 2, 17, None, [cpu()]))) == 1
    assert rows(store) == [
        (
            "cpu",
            '{"cpu":"cpu0","host":"vm"}',
            '["n","usage_idle"]',
            '{"n":3,"usage_idle":98.5}',
            T,
            "metrics",
            2,
            17,
        )
    ]


def test_the_same_metric_from_another_offset_is_stored_once(store):
    assert store.write(batch(Delivery("metrics", 0, 5, None, [cpu()]))) == 1
    assert store.write(batch(Delivery("metrics", 0, 9, None, [cpu()]))) == 0
    assert store.write(batch(Delivery("metrics", 1, 0, None, [cpu()]))) == 0
    assert rows(store, "SELECT kafka_partition, kafka_offset FROM metrics") == [(0, 5)]


def test_the_same_metric_twice_in_one_batch_is_stored_once(store):
    twice = batch(
        Delivery("metrics", 0, 1, None, [cpu()]), Delivery("metrics", 0, 2, None, [cpu()])
    )
    assert store.write(twice) == 1


def test_identity_ignores_field_values_and_order_but_not_names_tags_or_time(store):
    same = Metric("cpu", {"cpu": "cpu0", "host": "vm"}, {"n": 4, "usage_idle": 1.0}, T)
    assert store.write(batch(Delivery("m", 0, 0, None, [cpu(), same]))) == 1
    different = [
        cpu(time_ns=T + 1),
        cpu(host="other"),
        Metric("cpu", {"host": "vm", "cpu": "cpu0"}, {"usage_idle": 1.0}, T),
        Metric("cpu2", {"host": "vm", "cpu": "cpu0"}, {"usage_idle": 1.0, "n": 3}, T),
    ]
    assert store.write(batch(Delivery("m", 0, 1, None, different))) == 4


def test_fields_keep_their_types_in_json(store):
    metric = Metric(
        "types", {}, {"f": 3.0, "i": 3, "u": UInt(2**64 - 1), "b": True, "s": 'a "q"'}, T
    )
    store.write(batch(Delivery("m", 0, 0, None, [metric])))
    ((fields,),) = rows(store, "SELECT fields FROM metrics")
    decoded = json.loads(fields)
    assert decoded == {"b": True, "f": 3.0, "i": 3, "s": 'a "q"', "u": 2**64 - 1}
    assert [type(decoded[k]) for k in "bfisu"] == [bool, float, int, str, int]
    assert rows(store, "SELECT json_type(fields, '$.f'), json_type(fields, '$.i') FROM metrics")[
        0
    ] == ("real", "integer")


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
    first.write(batch(Delivery("m", 0, 0, None, [cpu()])))
    first.close()
    second = SqliteStore(path)
    assert second.write(batch(Delivery("m", 0, 1, None, [cpu()]))) == 0
    assert second._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    second.close()
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM metrics").fetchone() == (1,)


SCHEMA_VERSION_1 = """
CREATE TABLE metrics (
    measurement TEXT NOT NULL, tags TEXT NOT NULL, field_names TEXT NOT NULL,
    fields TEXT NOT NULL, time_ns INTEGER NOT NULL, kafka_topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL
);
CREATE UNIQUE INDEX metrics_identity ON metrics (time_ns, measurement, tags, field_names);
CREATE TABLE positions (
    kafka_topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL, PRIMARY KEY (kafka_topic, kafka_partition)
);
PRAGMA user_version = 1;
"""


def test_a_new_file_keys_its_rows_on_the_identity_itself(store):
    assert store._db.execute("PRAGMA user_version").fetchone() == (2,)
    (sql,) = store._db.execute("SELECT sql FROM sqlite_master WHERE name = 'metrics'").fetchone()
    assert "PRIMARY KEY (time_ns, measurement, tags, field_names)" in sql
    assert sql.rstrip().endswith("WITHOUT ROWID")


def test_a_file_of_the_first_schema_is_written_as_it_is(tmp_path):
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_VERSION_1)
    old = SqliteStore(str(path))
    assert old.write(batch(Delivery("m", 0, 0, None, [cpu(), cpu(idle=1.0)]))) == 1
    assert old.write(batch(Delivery("m", 0, 1, None, [cpu(), cpu(time_ns=T + 1)]))) == 1
    assert old._db.execute("PRAGMA user_version").fetchone() == (1,)
    assert old._db.execute("SELECT count(*) FROM metrics").fetchone() == (2,)
    old.close()


def test_a_file_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 3")
    with pytest.raises(StoreError, match="newer agent .schema 3"):
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


def canonical_json(value: object) -> str:
    """What the store's texts were before the native core wrote them, and must stay: rows of
    existing files are keyed on them."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Ratio(float):
    """A float of a type of its own, which the native core leaves to Python's json."""


class Name(str):
    """Likewise a str."""


def test_json_texts_are_exactly_what_python_json_writes_for_every_value_kind(store):
    floats = [0.0, -0.0, 1.0, 0.1, 1e-4, 1e-5, 1.5e-7, 1e15, 1e16, 2.5e300, 5e-324, 1 / 3]
    floats += [float("nan"), float("inf"), float("-inf"), 123456789.125, -0.20040080160320642]
    magnitudes = random.Random(7)
    floats += [magnitudes.uniform(-1, 1) * 10 ** magnitudes.uniform(-30, 30) for _ in range(300)]
    texts = ["", "plain", 'q"uote', "back\\slash", "new\nline\r\t", "\x00\x01\x1f\x7f", "é中😀"]
    fields: dict[str, object] = {f"f{i}": value for i, value in enumerate(floats)}
    fields |= {f"s{i}": value for i, value in enumerate(texts)}
    fields |= {"i": -(2**63), "u": UInt(2**64 - 1), "t": True, "b": False, "big": 10**30}
    fields |= {"é": 1, "Z": 2, "a\nkey": 3, "float subclass": Ratio(0.5), "str subclass": Name("x")}
    tags = {"host": 'h"ost', "zone": "é", "Cpu": "cpu\\0"}
    metric = Metric("m", tags, fields, T)
    store.write(batch(Delivery("m", 0, 0, None, [metric])))
    ((stored_tags, names, stored_fields),) = rows(
        store, "SELECT tags, field_names, fields FROM metrics"
    )
    assert stored_tags == canonical_json(tags)
    assert names == canonical_json(sorted(fields))
    assert stored_fields == canonical_json(fields)


def test_metrics_of_one_series_share_tag_and_field_name_texts_but_keep_their_values(store):
    metrics = [cpu(idle=float(i), time_ns=T + i, host=f"h{i % 3}") for i in range(9)]
    store.write(batch(Delivery("m", 0, 0, None, metrics)))
    stored = rows(store, "SELECT tags, field_names, fields, time_ns FROM metrics ORDER BY time_ns")
    assert [row[0] for row in stored] == [canonical_json(m.tags) for m in metrics]
    assert [row[2] for row in stored] == [canonical_json(m.fields) for m in metrics]
    assert {row[1] for row in stored} == {canonical_json(["n", "usage_idle"])}
