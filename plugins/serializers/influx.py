"""InfluxDB line protocol, as Telegraf's influx serializer writes it.

`measurement,tag=value field=1.5,count=3i 1700000000000000000` — tags sorted by key,
integers with `i`, unsigned integers with `u` (or clamped to a signed `i`, Telegraf's
default), floats in plain decimal form that parses back to the same value, strings quoted.
Fields that are NaN or infinite cannot be written and are left out; a metric left with
no field is not written at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from agent.metric import Metric, UInt
from agent.plugin import Serializer
from agent.registry import serializer

MAX_INT64 = 2**63 - 1
HEAD_CACHE_SIZE = 4096

_CONTROL_ESCAPES = {"\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
# Telegraf escapes no backslash outside string values; neither do we, so lines stay identical.
_NAME_ESCAPES = str.maketrans({**_CONTROL_ESCAPES, ",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({**_CONTROL_ESCAPES, ",": "\\,", " ": "\\ ", "=": "\\="})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


@lru_cache(maxsize=4096)
def escape_measurement(name: str) -> str:
    return name.rstrip("\\").translate(_NAME_ESCAPES)


@lru_cache(maxsize=16384)
def escape_key(text: str) -> str:
    """Tag keys, tag values and field keys share one rule. A trailing backslash would escape
    the separator after it, so it is trimmed (Telegraf trims it on tags too)."""
    return text.rstrip("\\").translate(_KEY_ESCAPES)


_FIELD_PREFIXES: dict[str, str] = {}


def field_prefix(key: str) -> str:
    """`escaped_key=`, remembered; empty for a key that escapes to nothing."""
    escaped = escape_key(key)
    prefix = f"{escaped}=" if escaped else ""
    if len(_FIELD_PREFIXES) < 16384:
        _FIELD_PREFIXES[key] = prefix
    return prefix


def format_float(value: float) -> str:
    """Shortest decimal that reads back as `value`, never in exponent form (1e20 → 100000…)."""
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    elif text.endswith(".0"):
        text = text[:-2]
    return text


def format_field_value(value: object, uint_support: bool) -> str | None:
    """The line-protocol text of a field value, or None for a value that cannot be written."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return format_float(value)
    if isinstance(value, UInt):
        return f"{value}u" if uint_support else f"{min(int(value), MAX_INT64)}i"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, str):
        return '"' + value.translate(_STRING_ESCAPES) + '"'
    return None


@serializer("influx")
@dataclass
class InfluxSerializer(Serializer):
    """Options are Telegraf's `influx_*` keys of the output that uses this data_format."""

    influx_sort_fields: bool = False
    influx_uint_support: bool = False

    def __post_init__(self) -> None:
        # Escaped "measurement,tag=value…" by name and tag set: hosts repeat the same few.
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def head(self, name: str, tags: dict[str, str]) -> str:
        key = (name, tuple(tags.items()))
        head = self._heads.get(key)
        if head is None:
            head = escape_measurement(name)
            for tag, value in sorted(tags.items()):
                tag, value = escape_key(tag), escape_key(value)
                if tag and value:
                    head += f",{tag}={value}"
            if len(self._heads) >= HEAD_CACHE_SIZE:
                self._heads.clear()
            self._heads[key] = head
        return head

    def format_line(self, metric: Metric) -> str:
        """One line without its newline; empty if the metric has no field that can be written."""
        fields = metric.fields.items()
        if self.influx_sort_fields:
            fields = sorted(fields)
        field_parts = []
        for key, value in fields:
            kind = type(value)
            # The common types first, inline: this loop runs for every field of every metric.
            if kind is float:
                text = repr(value)
                if text[-2:] == ".0":
                    text = text[:-2]
                elif "e" in text or "n" in text:  # exponent form, nan or inf
                    if math.isnan(value) or math.isinf(value):
                        continue
                    text = format_float(value)
            elif kind is int:
                text = f"{value}i"
            else:
                text = format_field_value(value, self.influx_uint_support)
                if text is None:
                    continue
            prefix = _FIELD_PREFIXES.get(key)
            if prefix is None:
                prefix = field_prefix(key)
            if prefix:
                field_parts.append(prefix + text)
        if not field_parts:
            return ""
        return f"{self.head(metric.name, metric.tags)} {','.join(field_parts)} {metric.time_ns}"

    def serialize(self, metric: Metric) -> bytes:
        line = self.format_line(metric)
        return (line + "\n").encode() if line else b""

    def serialize_batch(self, metrics: Iterable[Metric]) -> bytes:
        lines = [line for line in map(self.format_line, metrics) if line]
        return ("\n".join(lines) + "\n").encode() if lines else b""
