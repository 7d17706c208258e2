"""Records → metrics: the JSON parser, and the decoder that counts and logs what is not valid."""

from __future__ import annotations

import logging
import time

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from agent._native import PointRun
from agent.metric import Metric, UInt
from agent.options import Duration
from agent.sink.batch import Batch, Delivery
from agent.sink.decoder import RecordDecoder
from agent.sink.fetch import FetchedRecords
from agent.sink.layout import column_type, point_tables
from plugins.parsers.json import JsonParser
from plugins.serializers.json import JsonSerializer

T = 1_795_569_040_000_000_000
NOW = 1


def test_json_reads_back_what_the_json_serializer_writes():
    metrics = [
        Metric("cpu", {"host": "vm", "cpu": "cpu0"}, {"usage_idle": 98.5, "n": 3}, T),
        Metric("mem", {"host": "vm"}, {"big": UInt(2**64 - 1), "ok": True, "s": "<x>"}, T),
    ]
    for metric in metrics:
        parsed, errors = JsonParser().parse(JsonSerializer().serialize(metric), NOW)
        assert errors == []
        assert parsed == [metric]
    assert type(parsed[0].fields["big"]) is UInt


def test_json_batch_form_gives_every_metric():
    metrics = [Metric("a", {}, {"v": 1.5}, T), Metric("b", {}, {"v": 2.5}, T)]
    parsed, errors = JsonParser().parse(JsonSerializer().serialize_batch(metrics), NOW)
    assert (parsed, errors) == (metrics, [])


def test_json_timestamp_units_follow_the_option():
    data = b'{"fields":{"v":1},"name":"m","tags":{},"timestamp":1700000000123}'
    parsed, _ = JsonParser(json_timestamp_units=Duration(0.001)).parse(data, NOW)
    assert parsed[0].time_ns == 1_700_000_000_123_000_000


@pytest.mark.parametrize(
    ("stamp", "time_ns"),
    # What Telegraf 1.37.2's JSON parser made of each (json_time_format = "unix"): the float's
    # exact value in nanoseconds, rounded down.
    [(-1.0000000005, -1000000001), (-2.7000000001, -2700000001), (1.0000000005, 1000000000)],
)
def test_json_timestamps_in_seconds_are_rounded_down_to_the_nanosecond_as_telegraf(stamp, time_ns):
    data = f'{{"name":"m","tags":{{}},"fields":{{"v":1}},"timestamp":{stamp!r}}}'
    (metric,), errors = JsonParser().parse(data, NOW)
    assert errors == []
    assert metric.time_ns == time_ns


def test_json_lines_one_object_each_and_a_bad_line_reported_with_its_number():
    data = (
        b'{"fields":{"v":1},"name":"a","tags":{},"timestamp":1}\n'
        b'{"fields":{"v":1},"name":"b",\n'
        b'{"fields":{},"name":"c","tags":{},"timestamp":1}\n'
        b'{"fields":{"v":1},"name":"d","tags":{},"timestamp":1}\n'
    )
    parsed, errors = JsonParser().parse(data, NOW)
    assert [m.name for m in parsed] == ["a", "d"]
    assert [e.line for e in errors] == [2, 3]
    assert errors[0].message.startswith("not JSON")
    assert "fields" in errors[1].message


def test_json_without_timestamp_takes_the_default_time():
    parsed, _ = JsonParser().parse('{"fields":{"v":1},"name":"m"}', 42)
    assert parsed[0].time_ns == 42


def test_decoder_logs_topic_partition_offset_and_position_and_keeps_valid_lines(caplog):
    decoder = RecordDecoder("influx")
    with caplog.at_level(logging.ERROR, logger="sink"):
        delivery = decoder.decode("metrics", 3, 41, b"k", b"a v=1 1\nnot line protocol\nb v=2 2", 0)
    assert [m.name for m in delivery.metrics] == ["a", "b"]
    assert (delivery.topic, delivery.partition, delivery.offset, delivery.key) == (
        "metrics",
        3,
        41,
        b"k",
    )
    assert decoder.invalid_lines == 1
    assert "topic metrics partition 3 offset 41: not line protocol: line 2, column" in caplog.text


def test_decoder_gives_lines_without_timestamp_the_record_timestamp():
    delivery = RecordDecoder("influx").decode("t", 0, 0, None, b"m v=1", 1_700_000_000_123)
    assert delivery.metrics[0].time_ns == 1_700_000_000_123_000_000


def record(offset: int, value: bytes | None, timestamp_ms: int = 5, partition: int = 0):
    """A record as kafka-python's consumer hands it over."""
    size = len(value) if value else 0
    return ConsumerRecord(
        "metrics", partition, -1, offset, timestamp_ms, 0, b"k", value, [], None, 1, size, -1
    )


def one_by_one(decoder: RecordDecoder, records: list) -> list:
    return [
        decoder.decode(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in records
    ]


def test_records_of_one_line_each_decode_together_as_each_would_alone():
    records = [
        record(7, b"cpu,host=a usage_idle=98.5,n=3i 1700000000000000000\n"),
        record(8, b"mem,host=a used=12u,ok=t 1700000000000000001", partition=1),
        record(9, b"swap,host=a free=1.5\n", timestamp_ms=1_700_000_000_123),
    ]
    decoder = RecordDecoder("influx")
    parse_calls = []
    parse_each = decoder.parser.parse_each_dated
    decoder.parser.parse_each_dated = lambda *args: parse_calls.append(args) or parse_each(*args)
    together = decoder.decode_all(records)
    assert len(parse_calls) == 1
    assert together == one_by_one(RecordDecoder("influx"), records)
    assert [d.offset for d in together] == [7, 8, 9]
    assert together[2].metrics[0].time_ns == 1_700_000_000_123_000_000  # its record's time


def test_a_bad_record_among_one_line_records_is_reported_with_its_offset_and_the_rest_kept(
    caplog,
):
    records = [record(1, b"a v=1 1\n"), record(2, b"not line protocol\n"), record(3, b"b v=2 2")]
    decoder = RecordDecoder("influx")
    with caplog.at_level(logging.ERROR, logger="sink"):
        deliveries = decoder.decode_all(records)
    assert [[m.name for m in d.metrics] for d in deliveries] == [["a"], [], ["b"]]
    assert decoder.invalid_lines == 1
    assert "partition 0 offset 2: not line protocol: line 1, column" in caplog.text


def test_an_open_quote_in_one_record_never_takes_in_the_next_records_line():
    records = [record(1, b'a s="open 1\n'), record(2, b'b v=1" 2\n'), record(3, b"c v=3 3\n")]
    deliveries = RecordDecoder("influx").decode_all(records)
    assert deliveries == one_by_one(RecordDecoder("influx"), records)
    assert [[m.name for m in d.metrics] for d in deliveries] == [[], [], ["c"]]


def test_records_of_several_lines_comments_or_none_decode_each_on_its_own():
    records = [
        record(1, b"a v=1 1\nb v=2 2\n"),
        record(2, b"# a comment\n"),
        record(3, None),
        record(4, b"c v=3"),
    ]
    deliveries = RecordDecoder("influx").decode_all(records)
    assert deliveries == one_by_one(RecordDecoder("influx"), records)
    assert [len(d.metrics) for d in deliveries] == [2, 0, 0, 1]


def test_decoder_reads_json_when_asked():
    data = b'{"fields":{"v":1.5},"name":"m","tags":{"host":"h"},"timestamp":2}'
    delivery = RecordDecoder("json").decode("t", 0, 0, None, data, 0)
    assert delivery.metrics == [Metric("m", {"host": "h"}, {"v": 1.5}, 2_000_000_000)]


def test_an_empty_record_yields_no_metric_and_no_error():
    decoder = RecordDecoder("influx")
    assert decoder.decode("t", 0, 0, None, None, 0).metrics == []
    assert decoder.invalid_lines == 0


def test_unknown_data_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        RecordDecoder("xml")


def test_json_nan_and_infinity_are_refused_as_field_values():
    parsed, errors = JsonParser().parse('{"fields":{"v":NaN},"name":"m"}', NOW)
    assert parsed == []
    assert "not a finite number" in errors[0].message


# -- records no store or printer can hold -----------------------------------------------------


def test_json_timestamp_past_64_bit_nanoseconds_is_an_invalid_line():
    data = '{"name":"y","tags":{},"fields":{"v":1},"timestamp":9300000000}'
    parsed, errors = JsonParser().parse(data, NOW)
    assert parsed == []
    assert errors[0].message == (
        '"timestamp": 9300000000 is outside what 64-bit nanoseconds count'
        " (1677-09-21 to 2262-04-11 UTC)"
    )


def test_json_timestamp_at_the_edges_of_64_bit_nanoseconds_is_read():
    data = (
        '{"name":"first","fields":{"v":1},"timestamp":-9223372036854775808}\n'
        '{"name":"last","fields":{"v":1},"timestamp":9223372036854775807}'
    )
    parsed, errors = JsonParser(json_timestamp_units=Duration(1e-9)).parse(data, NOW)
    assert errors == []
    assert [m.time_ns for m in parsed] == [-(2**63), 2**63 - 1]


@pytest.mark.parametrize("stamp", ["Infinity", "-Infinity", "NaN", "1e300"])
def test_json_timestamp_infinite_or_huge_is_an_invalid_line_not_an_exception(stamp):
    data = f'{{"name":"y","fields":{{"v":1}},"timestamp":{stamp}}}'
    parsed, errors = JsonParser().parse(data, NOW)
    assert parsed == []
    assert errors[0].message.startswith('"timestamp": ')


def test_json_nested_a_thousand_deep_is_an_invalid_line_and_the_lines_around_it_are_read():
    good = '{"name":"m","fields":{"v":1},"timestamp":1}'
    data = "\n".join([good, "[" * 1000 + "]" * 1000, good.replace(":1}", ":2}")])
    parsed, errors = JsonParser().parse(data, NOW)
    assert [m.time_ns for m in parsed] == [1_000_000_000, 2_000_000_000]
    assert [(e.line, e.message) for e in errors] == [
        (2, "not JSON this parser can read: nested too deep (a metric needs three levels)")
    ]


def test_json_document_nested_a_thousand_deep_alone_is_an_invalid_line():
    parsed, errors = JsonParser().parse(b"[" * 1000 + b"]" * 1000, NOW)
    assert parsed == [] and len(errors) == 1
    assert "nested too deep" in errors[0].message


@pytest.mark.parametrize(
    "where",
    [
        '"name":"\\ud800","fields":{"v":1}',
        '"name":"m","tags":{"\\udc00":"x"},"fields":{"v":1}',
        '"name":"m","tags":{"t":"a\\ud800"},"fields":{"v":1}',
        '"name":"m","fields":{"\\udfff":1}',
        '"name":"m","fields":{"s":"\\ud800"}',
    ],
)
def test_json_half_a_surrogate_pair_anywhere_is_an_invalid_line(where):
    parsed, errors = JsonParser().parse("{" + where + "}", NOW)
    assert parsed == []
    assert "half of a surrogate pair" in errors[0].message


def test_json_a_whole_surrogate_pair_is_the_character_it_encodes():
    parsed, errors = JsonParser().parse('{"name":"m","fields":{"s":"\\ud83d\\ude00"}}', NOW)
    assert errors == []
    assert parsed[0].fields["s"] == "\U0001f600"


def test_decoder_refuses_an_influx_metric_dated_2264_in_seconds_and_keeps_its_neighbours(caplog):
    decoder = RecordDecoder("influx", influx_timestamp_precision=1.0)
    value = b"a v=1 1700000000\nlate v=2 9300000000\nb v=3 1700000001"
    with caplog.at_level(logging.ERROR, logger="sink"):
        delivery = decoder.decode("metrics", 1, 8, None, value, 0)
    assert [m.name for m in delivery.metrics] == ["a", "b"]
    assert (decoder.invalid_records, decoder.invalid_lines) == (1, 1)
    assert (
        "topic metrics partition 1 offset 8: not line protocol: line 2, column 10: timestamp out"
        " of range: 64-bit nanoseconds count from 1677-09-21 to 2262-04-11 UTC" in caplog.text
    )


def test_decoder_refuses_an_out_of_range_one_line_record_among_others(caplog):
    records = [
        record(1, b"a v=1 1700000000\n"),
        record(2, b"late v=2 9300000000\n"),
        record(3, b"early v=3 -9300000000\n"),
        record(4, b"b v=4 1700000001\n"),
    ]
    decoder = RecordDecoder("influx", influx_timestamp_precision=1.0)
    with caplog.at_level(logging.ERROR, logger="sink"):
        deliveries = decoder.decode_all(records)
    assert [[m.name for m in d.metrics] for d in deliveries] == [["a"], [], [], ["b"]]
    assert [d.offset for d in deliveries] == [1, 2, 3, 4]  # their offsets are passed too
    assert decoder.invalid_lines == 2
    assert "offset 2: not line protocol: line 1, column 10: timestamp out of range" in caplog.text
    assert "offset 3: not line protocol: line 1, column 11: timestamp out of range" in caplog.text


@pytest.mark.parametrize(
    "odd_value",
    [b"", b"# a comment\n", b"a v=1 1\nb v=2 2\n", b"\n", None, b"a v=1 1\r\n"],
    ids=["empty", "comment", "two lines", "blank", "tombstone", "crlf"],
)
def test_records_read_together_only_when_each_is_exactly_one_line(odd_value):
    records = [record(1, b"x v=1 1\n"), record(2, odd_value), record(3, b"y v=3 3")]
    together = RecordDecoder("influx").decode_all(records)
    assert together == one_by_one(RecordDecoder("influx"), records)


# -- records the sink fetched itself ------------------------------------------------------------


def fetched(records: list) -> FetchedRecords:
    """The same records as the sink's fetcher hands them over: columns of one partition."""
    return FetchedRecords(
        TopicPartition("metrics", 0),
        [r.offset for r in records],
        [-1 if r.timestamp is None else r.timestamp for r in records],
        [r.key for r in records],
        [r.value for r in records],
        records[-1].offset + 1,
        1000,
    )


@pytest.mark.parametrize(
    "values",
    [
        [b"cpu,host=a v=1 1\n", b"cpu,host=b v=2\n", b"mem,host=a used=3u 3"],
        [b"cpu,host=a v=1 1\n", b"not line protocol\n", None, b"a v=1 1\nb v=2 2\n"],
    ],
    ids=["one line each", "odd records"],
)
def test_fetched_records_decode_as_the_consumers_records_would(values):
    records = [record(offset, value) for offset, value in enumerate(values, start=40)]
    assert RecordDecoder("influx").decode_fetched(fetched(records)) == one_by_one(
        RecordDecoder("influx"), records
    )


def test_a_fetched_line_without_a_timestamp_takes_its_records_or_else_now():
    records = [record(1, b"a v=1\n", timestamp_ms=1_700_000_000_123), record(2, b"b v=2\n")]
    columns = fetched(records)
    columns.timestamps_ms[1] = -1  # a record without a timestamp
    before_ns = time.time_ns()
    deliveries = RecordDecoder("influx").decode_fetched(columns)
    assert deliveries[0].metrics[0].time_ns == 1_700_000_000_123_000_000
    assert before_ns <= deliveries[1].metrics[0].time_ns <= time.time_ns()


def test_a_batch_extended_with_deliveries_equals_one_they_are_added_to_one_by_one():
    records = [record(offset, b"a v=1 1\nb v=2 2\n", partition=offset % 2) for offset in range(9)]
    deliveries = RecordDecoder("influx").decode_all(records)
    one_by_one_batch, extended = Batch(), Batch()
    for delivery in deliveries:
        one_by_one_batch.add(delivery)
    extended.extend(deliveries)
    assert extended.deliveries == one_by_one_batch.deliveries
    assert (
        extended.next_offsets
        == one_by_one_batch.next_offsets
        == {
            ("metrics", 0): 9,
            ("metrics", 1): 8,
        }
    )
    assert (extended.messages, extended.metric_count) == (9, 18)


# -- records read straight into points (a sink that only stores) ---------------------------------


def tables_of(batch: Batch) -> list[tuple]:
    """What the stores read of a batch's point tables: each table's name, columns, tag sets,
    the record that first brought each value type, and its rows as COPY and SQLite take them."""
    shapes = []
    for table in point_tables(batch):
        value_types = table.value_types
        fields = sorted(value_types)
        types = [column_type(value_types[field]) for field in fields]
        shapes.append(
            (
                table.name,
                value_types,
                table.tag_sets,
                table.first_record,
                table.copy_data(fields, types),
                table.sqlite_parameters(fields, types),
            )
        )
    return shapes


def batch_of(deliveries: list) -> Batch:
    batch = Batch()
    batch.extend(deliveries)
    return batch


ODD_RECORDS = [
    b"cpu,host=a,cpu=cpu0 usage_idle=98.5,n=3i 1700000000000000000\n",
    b"cpu,cpu=cpu0,host=a usage_user=1.5 1700000000000000000",  # the same point, tags reordered
    b'mem,host=a used=12u,ok=t,note="a \\"b\\"" 1700000000000000001\n',
    b"swap,host=a free=1.5\n",  # dated with its record's time
    b"not line protocol\n",
    None,
    b"# a comment\n\n",
    b"a,host=b v=1 1\r\nnot line protocol\nb v=2i 2\n",  # one bad line among good ones
    b"cpu,host=a,cpu=cpu0 usage_idle=97.5 1700000000000000000\n",  # a field again: the newer
    b"",
    b"m\\,x,k\\ y=z\\=w f\\ g=-1.5e-7 1700000000000000002",
]


@pytest.mark.parametrize("start", range(len(ODD_RECORDS)))
def test_records_read_into_points_give_the_stores_what_their_metrics_give(start):
    values = ODD_RECORDS[start:] + ODD_RECORDS[:start]
    records = [
        record(offset, value, timestamp_ms=1_700_000_000_000 + offset)
        for offset, value in enumerate(values, start=100)
    ]
    from_points = batch_of(
        RecordDecoder("influx", into_points=True).decode_fetched(fetched(records))
    )
    from_metrics = batch_of(one_by_one(RecordDecoder("influx"), records))
    assert tables_of(from_points) == tables_of(from_metrics)
    assert (from_points.next_offsets, from_points.messages, from_points.metric_count) == (
        from_metrics.next_offsets,
        from_metrics.messages,
        from_metrics.metric_count,
    )


def test_a_record_that_needs_words_ends_a_run_and_is_decoded_on_its_own(caplog):
    records = [
        record(1, b"a v=1 1\n"),
        record(2, b"a v=2 2\n"),
        record(3, b"b v=3 3\nnot line protocol\n"),
        record(4, b"c v=4 4\n"),
    ]
    decoder = RecordDecoder("influx", into_points=True)
    with caplog.at_level(logging.ERROR, logger="sink"):
        decoded = decoder.decode_fetched(fetched(records))
    assert [type(item) for item in decoded] == [PointRun, Delivery, PointRun]
    assert [(item.offset, item.next_offset, item.records) for item in decoded] == [
        (1, 3, 2),
        (3, 4, 1),
        (4, 5, 1),
    ]
    assert [m.name for m in decoded[1].metrics] == ["b"]
    assert decoder.invalid_lines == 1
    assert "topic metrics partition 0 offset 3: not line protocol: line 2, column 9" in caplog.text


def test_records_read_into_points_only_for_influx_and_a_sink_without_a_printer():
    records = [record(1, b'{"name":"a","fields":{"v":1},"tags":{},"timestamp":1}')]
    decoded = RecordDecoder("json", into_points=True).decode_fetched(fetched(records))
    assert [type(item) for item in decoded] == [Delivery]
    decoded = RecordDecoder("influx").decode_fetched(fetched([record(1, b"a v=1 1")]))
    assert [type(item) for item in decoded] == [Delivery]


def test_a_line_read_into_points_without_a_timestamp_takes_its_records_or_else_now():
    records = [record(1, b"a v=1\n", timestamp_ms=1_700_000_000_123), record(2, b"a v=2\n")]
    columns = fetched(records)
    columns.timestamps_ms[1] = -1  # a record without a timestamp
    before_us = time.time_ns() // 1000
    (run,) = RecordDecoder("influx", into_points=True).decode_fetched(columns)
    (table,) = point_tables(batch_of([run]))
    times = [table.sqlite_parameters([], [])[0], table.sqlite_parameters([], [])[2]]
    assert times[0] == "2023-11-14 22:13:20.123000"
    now_text = times[1]
    assert now_text >= time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(before_us / 1e6))


def test_a_record_dated_past_64_bit_nanoseconds_is_refused_alone_from_a_run(caplog):
    records = [
        record(1, b"a v=1 1"),
        record(2, b"b v=2", timestamp_ms=2**62),
        record(3, b"c v=3 3"),
    ]
    decoder = RecordDecoder("influx", into_points=True)
    with caplog.at_level(logging.ERROR, logger="sink"):
        decoded = decoder.decode_fetched(fetched(records))
    assert [type(item) for item in decoded] == [PointRun, Delivery, PointRun]
    assert decoded[1].metrics == []
    assert "offset 2: metric 'b': timestamp" in caplog.text


def test_records_that_need_words_first_last_and_side_by_side_are_each_decoded_alone():
    values = [b"bad\n", b"bad again\n", b"a v=1 1\n", b"b v=2 2\n", b"still bad\n"]
    records = [record(offset, value) for offset, value in enumerate(values)]
    decoded = RecordDecoder("influx", into_points=True).decode_fetched(fetched(records))
    assert [(type(item), item.offset, item.records) for item in decoded] == [
        (Delivery, 0, 1),
        (Delivery, 1, 1),
        (PointRun, 2, 2),
        (Delivery, 4, 1),
    ]
