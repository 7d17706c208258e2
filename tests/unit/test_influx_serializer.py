"""Line protocol as Telegraf writes it, read back by an independent parser."""

from __future__ import annotations

import math

import pytest
from line_protocol_parser import parse_line

from agent.metric import Metric, UInt
from plugins.serializers.influx import InfluxSerializer, format_float

T = 1_700_000_000_123_456_789


def line(metric: Metric, **options) -> str:
    return InfluxSerializer(**options).serialize(metric).decode()


def test_writes_measurement_sorted_tags_fields_and_nanosecond_timestamp():
    metric = Metric("cpu", {"host": "h1", "cpu": "cpu0"}, {"usage_idle": 99.5}, T)
    assert line(metric) == f"cpu,cpu=cpu0,host=h1 usage_idle=99.5 {T}\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1i"),
        (-9223372036854775808, "-9223372036854775808i"),
        (UInt(18446744073709551615), "9223372036854775807i"),  # clamped without uint support
        (True, "true"),
        (False, "false"),
        (3.0, "3"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (123456789012345678.0, "123456789012345680"),
        ('he said "hi" \\o/', '"he said \\"hi\\" \\\\o/"'),
        ("", '""'),
    ],
)
def test_field_values_are_typed_like_telegraf(value, text):
    assert line(Metric("m", {}, {"f": value}, 1)) == f"m f={text} 1\n"


def test_unsigned_integers_keep_u_with_uint_support():
    metric = Metric("m", {}, {"f": UInt(18446744073709551615)}, 1)
    assert line(metric, influx_uint_support=True) == "m f=18446744073709551615u 1\n"


def test_floats_round_trip_exactly_without_exponent():
    for value in (5e-324, 1.7976931348623157e308, 1 / 3, 2.5e-310, 6.02214076e23, -1e-5):
        text = format_float(value)
        assert "e" not in text
        assert float(text) == value


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_fields_are_dropped(bad):
    assert line(Metric("m", {}, {"a": bad, "b": 1}, 1)) == "m b=1i 1\n"


def test_metric_with_only_unwritable_fields_is_not_written():
    assert line(Metric("m", {}, {"a": math.nan}, 1)) == ""


def test_escapes_commas_spaces_and_equals_where_line_protocol_needs_it():
    metric = Metric(
        "my,meas ure=x",
        {"tag key": "tag,val=ue", "t=k": "v v"},
        {"field k,e=y": 1},
        1,
    )
    assert line(metric) == (
        "my\\,meas\\ ure=x,t\\=k=v\\ v,tag\\ key=tag\\,val\\=ue field\\ k\\,e\\=y=1i 1\n"
    )


def test_control_characters_in_names_are_escaped():
    metric = Metric("a\tb", {"k": "x\ny"}, {"f\rg": 1}, 1)
    assert line(metric) == "a\\tb,k=x\\ny f\\rg=1i 1\n"


def test_empty_tags_are_left_out_and_trailing_backslashes_trimmed():
    metric = Metric("m", {"empty": "", "trail": "xyz\\", "": "v"}, {"f": 1}, 1)
    assert line(metric) == "m,trail=xyz f=1i 1\n"


def test_fields_keep_their_order_unless_sorting_is_asked_for():
    metric = Metric("m", {}, {"z": 1, "a": 2}, 1)
    assert line(metric) == "m z=1i,a=2i 1\n"
    assert line(metric, influx_sort_fields=True) == "m a=2i,z=1i 1\n"


def test_batch_is_one_line_per_metric():
    metrics = [Metric("a", {}, {"f": 1}, 1), Metric("b", {}, {"f": math.nan}, 2)]
    assert InfluxSerializer().serialize_batch(metrics) == b"a f=1i 1\n"


TRICKY = [
    Metric("cpu", {"host": "web 01", "dc": "eu,west"}, {"usage_idle": 99.25, "n": 3}, T),
    Metric("disk usage", {"path": "/mnt/a=b"}, {"free": UInt(12345), "ok": True}, T),
    Metric("log", {"app": "x"}, {"msg": 'quote " and \\ backslash', "level": "warn"}, T),
    Metric("uni", {"città": "Zürich✓"}, {"ключ": "значение", "v": -0.5}, T),
    Metric("big", {}, {"f": 1e20, "g": 1.5e-7, "i": -(2**63)}, T),
]


@pytest.mark.parametrize("metric", TRICKY, ids=[m.name for m in TRICKY])
def test_third_party_parser_reads_back_the_same_metric(metric):
    parsed = parse_line(line(metric, influx_uint_support=True).rstrip("\n"))
    assert parsed["measurement"] == metric.name
    assert parsed["tags"] == metric.tags
    assert parsed["fields"] == metric.fields
    assert parsed["time"] == metric.time_ns


FIELD_VALUES = [
    0.0, -0.0, 1.0, -3.0, 0.1, 98.49246231155779, 1e15, 1e16, 9999999999999998.0, 1e-4,
    9.9e-5, 5e-324, 1.7976931348623157e308, math.nan, math.inf, -math.inf,
    0, 7, -12, 2**63 - 1, UInt(0), UInt(5), UInt(2**63), UInt(2**64 - 1), True, False, "s", "",
]  # fmt: skip
FIELD_KEYS = ["usage_idle", "a.0", "b,c", "n%d", "e=1", "x y", "inf", "\\"]


def reference_value(value: object, uint_support: bool) -> str | None:
    """The line form of one value, written the plain way (a specification to test against)."""
    from decimal import Decimal

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        text = format(Decimal(repr(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, UInt):
        return f"{value}u" if uint_support else f"{min(int(value), 2**63 - 1)}i"
    if isinstance(value, int):
        return f"{value}i"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def reference_key(key: str) -> str:
    """A field key as Telegraf writes it: escaped, trailing backslashes kept."""
    for char, escaped in (("\t", "\\t"), ("\n", "\\n"), ("\f", "\\f"), ("\r", "\\r")):
        key = key.replace(char, escaped)
    return key.replace(",", "\\,").replace(" ", "\\ ").replace("=", "\\=")


@pytest.mark.parametrize("options", [{}, {"influx_uint_support": True}])
def test_field_sets_are_written_as_the_plain_specification_writes_them(options):
    import random

    rng = random.Random(7)
    serializer = InfluxSerializer(**options)
    metrics = []
    for _ in range(3000):
        keys = rng.sample(FIELD_KEYS, rng.randint(1, len(FIELD_KEYS)))
        values = FIELD_VALUES + [rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-30, 30)]
        metrics.append(Metric("m", {}, {key: rng.choice(values) for key in keys}, 0))
    for metric, written in zip(metrics, serializer.serialize_each(metrics), strict=True):
        uint_support = options.get("influx_uint_support", False)
        parts = [
            f"{reference_key(key)}={text}"
            for key, value in metric.fields.items()
            if reference_key(key) and (text := reference_value(value, uint_support)) is not None
        ]
        expected = f"m {','.join(parts)} 0\n" if parts else ""
        assert written.decode() == expected, metric.fields


def test_random_floats_are_written_exactly_and_without_exponent():
    import random

    rng = random.Random(3)
    values = [rng.uniform(0, 100) for _ in range(50_000)]
    values += [rng.random() * 10.0 ** rng.randint(-320, 308) for _ in range(50_000)]
    for value in values:
        text = format_float(value)
        assert float(text) == value
        assert text == reference_value(value, False), value


def read(text: str) -> Metric:
    from plugins.parsers.influx import InfluxParser

    (metric,), errors = InfluxParser().parse(text, 0)
    assert errors == []
    return metric


def test_a_line_read_and_written_again_is_the_same_line():
    text = "cpu,cpu=cpu0,host=h1 usage_idle=97.5,usage_user=2,count=3i,ok=true 1700000000\n"
    assert line(read(text)) == text


def test_values_read_in_another_form_are_written_in_the_serializers_form():
    metric = read("m a=1.50,b=t,c=1e3,d=7u,e=0.0 5")
    assert line(metric) == "m a=1.5,b=true,c=1000,d=7i,e=0 5\n"


def test_a_read_line_whose_tags_or_fields_changed_is_formatted_from_its_metric():
    metric = read("cpu,host=h1 usage_idle=97.5,usage_user=2.5 5")
    metric.tags["cpu"] = "cpu0"  # a tag added by the agent (default tags)
    assert line(metric) == "cpu,cpu=cpu0,host=h1 usage_idle=97.5,usage_user=2.5 5\n"
    metric.fields = {"usage_idle": 97.5}  # fields changed: a new dict (fieldinclude)
    assert line(metric) == "cpu,cpu=cpu0,host=h1 usage_idle=97.5 5\n"


def test_sorted_fields_are_formatted_even_for_a_line_read_as_it_is_written():
    metric = read("m b=1,a=2 5")
    assert line(metric) == "m b=1,a=2 5\n"
    assert line(metric, influx_sort_fields=True) == "m a=2,b=1 5\n"
