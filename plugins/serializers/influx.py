"""InfluxDB line protocol, as Telegraf's influx serializer writes it.

`measurement,tag=value field=1.5,count=3i 1700000000000000000`: tags sorted by key,
integers with `i`, unsigned integers with `u` (or clamped to a signed `i`, Telegraf's
default), floats in the shortest plain decimal form that reads back as the same value (never
an exponent), strings quoted with `\\` and `"` escaped. In names and keys, comma and space
(and `=` in keys) are escaped, tab, newline, form feed and carriage return are written as
`\\t` `\\n` `\\f` `\\r`; tag keys and values lose trailing backslashes (a tag left empty is
not written), field keys and names keep them (an empty field key is not written, nor a metric
without a name), as Telegraf does. Fields that are NaN or infinite cannot be written and
are left out; a metric left with no field is not written at all.

The per-line work is done by the native core (agent._native, native/src/influx_format.rs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent import _native
from agent.metric import Metric
from agent.plugin import Serializer
from agent.registry import serializer


def format_float(value: float) -> str:
    """Shortest decimal that reads back as `value`, never in exponent form (1e20 → 100000…)."""
    return _native.format_float(value)


@serializer("influx")
@dataclass
class InfluxSerializer(Serializer):
    """Options are Telegraf's `influx_*` keys of the output that uses this data_format."""

    influx_sort_fields: bool = False
    influx_uint_support: bool = False

    def format_line(self, metric: Metric) -> str:
        """One line without its newline; empty if the metric has no field that can be written."""
        return self.serialize(metric).decode().removesuffix("\n")

    def serialize(self, metric: Metric) -> bytes:
        return self.serialize_each((metric,))[0]

    def serialize_each(self, metrics: Sequence[Metric]) -> list[bytes]:
        return _native.format_influx_lines(
            metrics, self.influx_sort_fields, self.influx_uint_support
        )

    def serialize_routed(
        self, metrics: Sequence[Metric], routing_tag: str, limit: int
    ) -> tuple[list[tuple[str | None, bytes, list[int]]], list[tuple[int, int]]]:
        """outputs.kafka's use_batch_format, a write at once: the lines grouped by the value
        of tag `routing_tag` (one group if empty; None for metrics without it), in records
        of at most `limit` bytes as (tag value, value, positions of the metrics); and the
        lines over the limit as (position, size). Metrics with nothing to write are left out."""
        return _native.format_influx_records(
            metrics,
            self.influx_sort_fields,
            self.influx_uint_support,
            routing_tag or None,
            limit,
        )

    def serialize_batch(self, metrics: Iterable[Metric]) -> bytes:
        return _native.format_influx_joined(
            metrics, self.influx_sort_fields, self.influx_uint_support
        )
