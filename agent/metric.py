"""The one data type that flows through the agent: a named set of fields at a moment."""

from __future__ import annotations

from agent import _native


class UInt(int):
    """An unsigned integer field value (line protocol `123u`, Telegraf's uint64).

    Python has one integer type; this marker keeps the distinction Telegraf makes between
    gopsutil's uint64 counters and signed integers, so serializers can write either form.
    """

    __slots__ = ()


FieldValue = float | int | UInt | bool | str

# Timestamps are signed 64-bit nanoseconds, as Telegraf and line protocol count them: the
# sink's store holds no other, and readers of the lines it prints refuse them.
MIN_TIME_NS = -(2**63)
MAX_TIME_NS = 2**63 - 1
OUTSIDE_TIME_RANGE = "is outside what 64-bit nanoseconds count (1677-09-21 to 2262-04-11 UTC)"


# The class is written in Rust (native/src/metric.rs), so a metric parsed from line protocol
# keeps its tags and fields as the parser read them until Python code asks for them: a line
# that goes from a file or a topic to an output without a filter looking at it is never made
# into dicts. To Python it is the class it always was: Metric(name, tags, fields, time_ns)
# (time_ns defaults to now), attributes name, tags (dict of str), fields (dict), time_ns,
# copy(), identity(), ==, repr and pickle; add_missing_tags(pairs) and has_fields() spare a
# parsed metric its dicts.
Metric = _native.Metric
