"""Telegraf's JSON, as plugins/serializers/json.py (and Telegraf's json serializer) write it.

One object per line, `{"fields":{"usage_idle":99.5},"name":"cpu","tags":{"cpu":"cpu0"},
"timestamp":1700000000}`, or the batch form `{"metrics":[…]}`, possibly spread over several
lines. Timestamps count `json_timestamp_units` (seconds by default, as in Telegraf). Integers
above the signed 64-bit range are read as unsigned. JSON has one number type, so a float
written without a fraction (`3`) is read back as an integer, as in Telegraf.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from agent.metric import (
    MAX_TIME_NS,
    MIN_TIME_NS,
    OUTSIDE_TIME_RANGE,
    FieldValue,
    Metric,
    UInt,
)
from agent.options import Duration
from agent.plugin import ParseError
from agent.registry import parser
from plugins.parsers.influx import MAX_INT64, MAX_UINT64, MIN_INT64, line_excerpt


class _Invalid(ValueError):
    """A JSON document that is valid JSON but not a metric."""


@parser("json")
@dataclass
class JsonParser:
    """Options are Telegraf's `json_*` keys of the plugin that reads data_format "json"."""

    json_timestamp_units: Duration = Duration(1.0)

    def __post_init__(self) -> None:
        units_ns = max(1, round(self.json_timestamp_units * 1e9))
        # The serializer divides by the largest power of ten not above the unit; undo that.
        self._multiplier = 10 ** (len(str(units_ns)) - 1)

    def parse(
        self, data: bytes | str, default_time_ns: int | None = None
    ) -> tuple[list[Metric], list[ParseError]]:
        """Every metric of `data` and the documents (lines) that are not Telegraf JSON."""
        if default_time_ns is None:
            default_time_ns = time.time_ns()
        if not isinstance(data, str):
            try:
                data = bytes(data).decode("utf-8")
            except UnicodeDecodeError as error:
                line = bytes(data)[: error.start].count(b"\n") + 1
                return [], [ParseError(line, 1, "not UTF-8 text")]
        metrics: list[Metric] = []
        errors: list[ParseError] = []
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, RecursionError):
            pass  # several documents, one per line, or a broken one: read line by line
        else:
            self._add(document, 1, data, default_time_ns, metrics, errors)
            return metrics, errors
        for number, line in enumerate(data.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except json.JSONDecodeError as error:
                message = f"not JSON: {error.msg}"
                errors.append(ParseError(number, error.colno, message, line_excerpt(line)))
                continue
            except RecursionError:
                # Python's JSON reader recurses once per level; a metric needs three.
                errors.append(ParseError(number, 1, _TOO_DEEP, line_excerpt(line)))
                continue
            self._add(document, number, line, default_time_ns, metrics, errors)
        return metrics, errors

    def _add(
        self,
        document: Any,
        line: int,
        text: str,
        default_time_ns: int,
        metrics: list[Metric],
        errors: list[ParseError],
    ) -> None:
        if isinstance(document, dict) and "metrics" in document and "name" not in document:
            items = document["metrics"]
            if not isinstance(items, list):
                errors.append(ParseError(line, 1, '"metrics" must be a list', line_excerpt(text)))
                return
        else:
            items = [document]
        # Only a \u escape can put a lone surrogate (not text, not UTF-8) into a string.
        escaped = "\\u" in text
        for index, item in enumerate(items):
            try:
                metric = self._metric(item, default_time_ns)
                if escaped:
                    _check_surrogates(metric)
                metrics.append(metric)
            except _Invalid as error:
                where = f"metric {index + 1}: " if len(items) > 1 else ""
                errors.append(ParseError(line, 1, f"{where}{error}", line_excerpt(text)))

    def _metric(self, item: Any, default_time_ns: int) -> Metric:
        if not isinstance(item, dict):
            raise _Invalid("expected an object with name, tags, fields and timestamp")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise _Invalid('expected "name", a non-empty string')
        tags = item.get("tags", {})
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise _Invalid('expected "tags", an object of strings')
        raw_fields = item.get("fields")
        if not isinstance(raw_fields, dict) or not raw_fields:
            raise _Invalid('expected "fields", an object with at least one field')
        fields = {key: _field_value(key, value) for key, value in raw_fields.items()}
        stamp = item.get("timestamp")
        if stamp is None:
            time_ns = default_time_ns
        elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
            time_ns = self._time_ns(stamp)
        else:
            raise _Invalid('expected "timestamp", a number')
        return Metric(name, dict(tags), fields, time_ns)

    def _time_ns(self, stamp: float) -> int:
        if not math.isfinite(stamp):
            raise _Invalid(f'"timestamp": {stamp} is not a finite number')
        scaled = stamp * self._multiplier  # a float may overflow to infinity here
        if not MIN_TIME_NS <= scaled <= MAX_TIME_NS:
            raise _Invalid(f'"timestamp": {stamp} {OUTSIDE_TIME_RANGE}')
        # As Telegraf: the float's exact value in nanoseconds, rounded down (so -1.0000000005
        # seconds is -1000000001 ns), not the float product rounded to the nearest.
        numerator, denominator = stamp.as_integer_ratio()
        return numerator * self._multiplier // denominator


_TOO_DEEP = "not JSON this parser can read: nested too deep (a metric needs three levels)"


def _check_surrogates(metric: Metric) -> None:
    """Refuse strings holding half of a UTF-16 surrogate pair: no store or printer can
    encode them."""
    texts = [metric.name, *metric.tags, *metric.tags.values(), *metric.fields]
    texts += [value for value in metric.fields.values() if isinstance(value, str)]
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            half = ord(text[error.start])
            raise _Invalid(f"\\u{half:04x} is half of a surrogate pair, not a character") from None


def _field_value(key: str, value: Any) -> FieldValue:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(f"field {key!r}: {value} is not a finite number")
    if isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        if MIN_INT64 <= value <= MAX_INT64:
            return value
        if MAX_INT64 < value <= MAX_UINT64:
            return UInt(value)
        raise _Invalid(f"field {key!r}: {value} does not fit 64 bits")
    raise _Invalid(f"field {key!r}: expected a number, boolean or string")
