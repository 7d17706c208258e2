"""The PostgreSQL store against a real server (scripts/postgres): Telegraf's tables, points
stored once, fields merged, positions fenced, schema changes by several sinks at once."""

from __future__ import annotations

import threading

import psycopg
import pytest

from agent.metric import Metric, UInt
from agent.sink.batch import Batch, Delivery
from agent.sink.layout import tag_id
from agent.sink.postgres import MERGES_AFTER_A_REPEATED_POINT, PostgresStore
from agent.sink.store import PositionsMoved, StoreError, open_store

pytestmark = pytest.mark.postgres

T0 = 1_795_569_040_000_000_000


def batch(*deliveries: Delivery) -> Batch:
    kept = Batch()
    for delivery in deliveries:
        kept.add(delivery)
    return kept


def cpu(i: int = 0, **fields) -> Metric:
    return Metric(
        "cpu",
        {"host": f"h{i % 3}", "cpu": f"cpu{i % 2}"},
        fields or {"usage_idle": i + 0.5, "n": i},
        T0 + i * 1000,
    )


@pytest.fixture
def store(postgres_database):
    opened = PostgresStore(postgres_database)
    yield opened
    opened.close()


def query(url: str, text: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(text, params).fetchall()


def columns(url: str, table: str) -> list[tuple[str, str]]:
    return query(
        url,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = %s ORDER BY ordinal_position",
        (table,),
    )


def primary_key(url: str, table: str) -> list[str]:
    rows = query(
        url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey, a.attnum)",
        (table,),
    )
    return [name for (name,) in rows]


def test_tables_have_telegrafs_columns_and_types(store, postgres_database):
    metric = Metric(
        "sys",
        {"host": "vm"},
        {"load": 0.5, "n_users": 3, "uptime": UInt(2**64 - 1), "up": True, "name": "x"},
        T0,
    )
    store.write(batch(Delivery("m", 0, 0, None, [metric])))
    assert columns(postgres_database, "sys") == [
        ("time", "timestamp without time zone"),
        ("tag_id", "bigint"),
        ("load", "double precision"),
        ("n_users", "bigint"),
        ("name", "text"),
        ("up", "boolean"),
        ("uptime", "numeric"),
    ]
    assert columns(postgres_database, "sys_tag") == [("tag_id", "bigint"), ("host", "text")]
    assert primary_key(postgres_database, "sys_tag") == ["tag_id"]
    assert primary_key(postgres_database, "sys") == ["time", "tag_id"]
    ((uptime, up, moment),) = query(postgres_database, "SELECT uptime, up, time FROM sys")
    assert (uptime, up, moment.isoformat()) == (2**64 - 1, True, "2026-11-25T01:10:40")


def test_tag_id_is_telegrafs_fnv_1a_of_the_sorted_tags():
    # The value Go's hash/fnv New64a gives for cpu\0cpu0\0host\0a\0, as an int64.
    assert tag_id({"host": "a", "cpu": "cpu0"}) == 6518065002276796058
    assert tag_id({}) == -3750763034362895579  # the FNV-1a offset basis, as an int64


def test_a_join_on_tag_id_gives_each_metric_with_its_tags(store, postgres_database):
    store.write(batch(Delivery("m", 0, 0, None, [cpu(i) for i in range(6)])))
    rows = query(
        postgres_database,
        "SELECT t.host, t.cpu, c.usage_idle, c.n FROM cpu c JOIN cpu_tag t USING (tag_id)"
        " ORDER BY c.time",
    )
    assert rows == [(f"h{i % 3}", f"cpu{i % 2}", i + 0.5, i) for i in range(6)]


def test_a_field_appearing_mid_stream_adds_its_column(store, postgres_database):
    store.write(batch(Delivery("m", 0, 0, None, [cpu(0)])))
    store.write(batch(Delivery("m", 0, 1, None, [cpu(1, usage_idle=1.5, steal=0.25)])))
    names = [name for name, _ in columns(postgres_database, "cpu")]
    assert names == ["time", "tag_id", "n", "usage_idle", "steal"]
    rows = query(postgres_database, "SELECT usage_idle, n, steal FROM cpu ORDER BY time")
    assert rows == [(0.5, 0, None), (1.5, None, 0.25)]


def test_a_tag_appearing_mid_stream_adds_its_column_to_the_tag_table(store, postgres_database):
    store.write(batch(Delivery("m", 0, 0, None, [cpu(0)])))
    tagged = Metric("cpu", {"host": "h0", "cpu": "cpu0", "rack": "r1"}, {"n": 1}, T0)
    store.write(batch(Delivery("m", 0, 1, None, [tagged])))
    assert [name for name, _ in columns(postgres_database, "cpu_tag")] == [
        "tag_id",
        "cpu",
        "host",
        "rack",
    ]
    assert query(postgres_database, "SELECT count(*) FROM cpu") == [(2,)]


def test_the_same_records_delivered_twice_store_each_point_once(store, postgres_database):
    records = [Delivery("m", 0, i, None, [cpu(i)]) for i in range(50)]
    assert store.write(batch(*records)) == 50
    assert store.write(batch(*records)) == 0
    assert store.write(batch(*records[:10], *records)) == 0  # twice within one batch too
    assert query(postgres_database, "SELECT count(*) FROM cpu") == [(50,)]


def test_metrics_of_one_point_delivered_separately_merge_their_fields(store, postgres_database):
    store.write(batch(Delivery("m", 0, 0, None, [cpu(0, usage_idle=98.5)])))
    store.write(batch(Delivery("m", 0, 1, None, [cpu(0, usage_user=1.5)])))
    assert query(postgres_database, "SELECT usage_idle, usage_user FROM cpu") == [(98.5, 1.5)]


@pytest.mark.parametrize("batches_after", [1, MERGES_AFTER_A_REPEATED_POINT + 1])
def test_new_and_known_points_in_one_batch_count_only_the_new_and_merge_the_known(
    store, postgres_database, batches_after
):
    store.write(batch(*[Delivery("m", 0, i, None, [cpu(i)]) for i in range(10)]))
    mixed = [
        Delivery("m", 0, 10, None, [cpu(4, usage_user=2.5)]),
        Delivery("m", 0, 11, None, [cpu(10)]),
    ]
    assert store.write(batch(*mixed)) == 1
    # Later batches of new points: merged for a while after that batch, then copied again.
    for n in range(11, 11 + batches_after):
        assert store.write(batch(Delivery("m", 0, n + 1, None, [cpu(n)]))) == 1
    rows = query(postgres_database, "SELECT count(*), count(usage_user) FROM cpu")
    assert rows == [(11 + batches_after, 1)]
    assert query(postgres_database, "SELECT usage_idle FROM cpu WHERE usage_user = 2.5") == [(4.5,)]


def test_an_integer_value_goes_into_a_float_column(store, postgres_database):
    store.write(batch(Delivery("m", 0, 0, None, [cpu(0, usage=0.5)])))
    store.write(batch(Delivery("m", 0, 1, None, [cpu(1, usage=3)])))
    assert query(postgres_database, "SELECT usage FROM cpu ORDER BY time") == [(0.5,), (3.0,)]


def test_a_column_of_another_type_is_one_clear_error_and_nothing_is_kept(store, postgres_database):
    store.claim([("m", 0)])
    store.write(batch(Delivery("m", 0, 0, None, [cpu(0, usage=0.5)])))
    with pytest.raises(StoreError) as raised:
        store.write(batch(Delivery("m", 0, 1, None, [cpu(1, usage="high")])))
    assert str(raised.value).endswith(
        "table cpu column usage is double precision, but topic m partition 0 offset 1 has a "
        "text value for it"
    )
    assert query(postgres_database, "SELECT next_offset FROM agent_sink_positions") == [(1,)]


def test_positions_hold_each_claimed_partitions_next_offset_with_the_batch(store):
    assert store.claim([("m", 0), ("m", 1)]) == {}
    store.write(batch(Delivery("m", 0, 4, None, [cpu(0)]), Delivery("m", 1, 9, None, [])))
    assert store.positions() == {("m", 0): 5, ("m", 1): 10}
    assert store.claim([("m", 1), ("m", 2)]) == {("m", 1): 10}


def test_a_partition_not_claimed_leaves_the_positions_alone(store, postgres_database):
    store.claim([("m", 0)])
    store.write(batch(Delivery("m", 0, 0, None, [cpu(0)]), Delivery("m", 1, 7, None, [cpu(1)])))
    assert store.positions() == {("m", 0): 1}
    assert query(postgres_database, "SELECT count(*) FROM cpu") == [(2,)]


def test_a_partition_written_by_another_sink_since_it_was_claimed_is_refused(
    postgres_database,
):
    old_owner, new_owner = PostgresStore(postgres_database), PostgresStore(postgres_database)
    try:
        assert old_owner.claim([("m", 0)]) == {}
        old_owner.write(batch(Delivery("m", 0, 0, None, [cpu(0)])))
        assert old_owner.claim([("m", 0)]) == {("m", 0): 1}
        # A rebalance gives the partition to another sink, which stores the next records.
        assert new_owner.claim([("m", 0)]) == {("m", 0): 1}
        new_owner.write(batch(Delivery("m", 0, 1, None, [cpu(1)])))
        with pytest.raises(PositionsMoved) as moved:
            old_owner.write(
                batch(
                    Delivery("m", 0, 1, None, [cpu(1)]),
                    Delivery("m", 0, 2, None, [cpu(4)]),
                    Delivery("m", 1, 0, None, [cpu(2)]),
                )
            )
        assert moved.value.partitions == [("m", 0)]
        # Nothing of the refused batch is kept, not even its other partition.
        assert query(postgres_database, "SELECT count(*) FROM cpu") == [(2,)]
        assert new_owner.positions() == {("m", 0): 2}
        # The new owner goes on: its own last write is what it expects.
        new_owner.write(batch(Delivery("m", 0, 2, None, [cpu(3)])))
        assert new_owner.positions() == {("m", 0): 3}
    finally:
        old_owner.close()
        new_owner.close()


def test_a_partition_claimed_before_it_had_a_position_is_fenced_too(postgres_database):
    first, second = PostgresStore(postgres_database), PostgresStore(postgres_database)
    try:
        assert first.claim([("m", 0)]) == {}
        assert second.claim([("m", 0)]) == {}
        second.write(batch(Delivery("m", 0, 0, None, [cpu(0)])))
        with pytest.raises(PositionsMoved):
            first.write(batch(Delivery("m", 0, 0, None, [cpu(0)]), Delivery("m", 0, 1, None, [])))
    finally:
        first.close()
        second.close()


def test_four_sinks_adding_the_same_new_column_at_once_all_succeed(postgres_database):
    stores = [PostgresStore(postgres_database) for _ in range(4)]
    stores[0].write(batch(Delivery("m", 0, 0, None, [cpu(0)])))
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def add_a_field(index: int) -> None:
        metric = cpu(10 + index, usage_new=float(index))
        start.wait()
        try:
            stores[index].write(batch(Delivery("m", 1 + index, 0, None, [metric])))
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=add_a_field, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for opened in stores:
        opened.close()
    assert errors == []
    assert query(postgres_database, "SELECT count(usage_new) FROM cpu") == [(4,)]


def test_open_store_takes_a_keyword_dsn(postgres_database):
    parts = psycopg.conninfo.conninfo_to_dict(postgres_database)
    dsn = " ".join(f"{key}={value}" for key, value in parts.items())
    opened = open_store(dsn)
    try:
        opened.write(batch(Delivery("m", 0, 0, None, [cpu(0)])))
    finally:
        opened.close()
    assert query(postgres_database, "SELECT count(*) FROM cpu") == [(1,)]


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        (Metric("cpu", {}, {"time": 1.0}, T0), 'a field named "time"'),
        (Metric("cpu", {}, {"tag_id": 1.0}, T0), 'a field named "tag_id"'),
        (Metric("cpu", {"tag_id": "x"}, {"n": 1.0}, T0), 'a tag named "tag_id"'),
        (Metric("cpu", {}, {"f" * 64: 1.0}, T0), "longer than PostgreSQL's 63 bytes"),
    ],
)
def test_a_name_the_layout_cannot_hold_is_one_clear_error(
    store, postgres_database, metric, problem
):
    with pytest.raises(StoreError, match=problem):
        store.write(batch(Delivery("m", 0, 0, None, [metric])))


def test_values_are_written_as_their_columns_types(store, postgres_database):
    """The native core writes COPY's binary form of each column type itself: integers into
    float and numeric columns, numerics with zero digit groups, negatives, times before
    1970 (rounded down to the microsecond) and before 2000 (PostgreSQL counts from 2000),
    fields a point lacks as NULL."""
    first = Metric("v", {"k": "a"}, {"f": 0.25, "u": UInt(10**8), "n": -5, "s": "é"}, T0)
    store.write(batch(Delivery("m", 0, 0, None, [first])))
    numbers = [0, 10_000, 10**12 + 7, 2**63 - 1]
    later = [
        Metric("v", {"k": "b"}, {"f": 3, "u": UInt(u), "n": -(2**63)}, -1_500_000_000_123_456)
        for u in numbers
    ]
    later[1].time_ns = 946_684_799_999_999_000  # 1999-12-31T23:59:59.999999
    later[2].time_ns = 0
    later[3].time_ns = T0 + 1000
    store.write(batch(Delivery("m", 0, 1, None, later)))
    rows = query(postgres_database, "SELECT time, f, u, n, s FROM v ORDER BY u")
    assert [(t.isoformat(), f, int(u), n, s) for t, f, u, n, s in rows] == [
        ("1969-12-14T15:19:59.999876", 3.0, 0, -(2**63), None),
        ("1999-12-31T23:59:59.999999", 3.0, 10_000, -(2**63), None),
        ("2026-11-25T01:10:40", 0.25, 10**8, -5, "é"),
        ("1970-01-01T00:00:00", 3.0, 10**12 + 7, -(2**63), None),
        ("2026-11-25T01:10:40.000001", 3.0, 2**63 - 1, -(2**63), None),
    ]
