"""JSON, as Telegraf's json serializer writes it.

`{"fields":{"usage_idle":99.5},"name":"cpu","tags":{"cpu":"cpu0"},"timestamp":1700000000}`:
keys sorted at every level, no spaces, timestamp an integer in `json_timestamp_units`
(seconds by default), numbers as Go's encoding/json prints them, NaN and infinite fields
left out. The batch form is `{"metrics":[…]}`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.metric import Metric
from agent.options import Duration
from agent.plugin import Serializer
from agent.registry import serializer
from plugins.serializers.influx import format_float

# Go's encoder escapes these for safe embedding in HTML; Telegraf's output carries them so.
_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_SHORT_EXPONENT = re.compile(r"e([+-])0(\d)$")


def json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).translate(_HTML_ESCAPES)


def json_float(value: float) -> str:
    """Go's encoding/json form: plain decimal for 1e-6 <= |x| < 1e21, exponent otherwise."""
    magnitude = abs(value)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        return format_float(value)
    return _SHORT_EXPONENT.sub(r"e\1\2", repr(value))


def json_value(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else json_float(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return json_string(value)
    return None


@serializer("json")
@dataclass
class JsonSerializer(Serializer):
    """Options are Telegraf's `json_*` keys of the output that uses this data_format."""

    json_timestamp_units: Duration = Duration(1.0)

    def __post_init__(self) -> None:
        units_ns = max(1, round(self.json_timestamp_units * 1e9))
        # Telegraf uses the largest power of ten that does not exceed the given unit.
        self._divisor = 10 ** (len(str(units_ns)) - 1)

    def format_object(self, metric: Metric) -> str:
        """One metric as a JSON object; empty if none of its fields can be written."""
        fields = []
        for key, value in sorted(metric.fields.items()):
            text = json_value(value)
            if text is not None:
                fields.append(f"{json_string(key)}:{text}")
        if not fields:
            return ""
        tags = ",".join(
            f"{json_string(key)}:{json_string(value)}" for key, value in sorted(metric.tags.items())
        )
        return (
            f'{{"fields":{{{",".join(fields)}}},"name":{json_string(metric.name)},'
            f'"tags":{{{tags}}},"timestamp":{metric.time_ns // self._divisor}}}'
        )

    def serialize(self, metric: Metric) -> bytes:
        text = self.format_object(metric)
        return (text + "\n").encode() if text else b""

    def serialize_batch(self, metrics: Iterable[Metric]) -> bytes:
        objects = [text for text in map(self.format_object, metrics) if text]
        return ('{"metrics":[' + ",".join(objects) + "]}\n").encode()
