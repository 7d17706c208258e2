"""InfluxDB line protocol, as Telegraf's influx serializer writes it.

`measurement,tag=value field=1.5,count=3i 1700000000000000000` — tags sorted by key,
integers with `i`, unsigned integers with `u` (or clamped to a signed `i`, Telegraf's
default), floats in plain decimal form that parses back to the same value, strings quoted.
Fields that are NaN or infinite cannot be written and are left out; a metric left with
no field is not written at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from math import copysign
from typing import NamedTuple

from agent.memo import Memo
from agent.metric import Metric, UInt
from agent.plugin import Serializer
from agent.registry import serializer

MAX_INT64 = 2**63 - 1
HEAD_CACHE_SIZE = 4096
TEMPLATE_CACHE_SIZE = 1024
FLOAT_TEXT_CACHE_SIZE = 8192  # at most about 1 MB

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
        from decimal import Decimal  # rare: only here, and its module costs memory

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


class _FieldTemplate(NamedTuple):
    """A field set as a %-format (`usage_idle=%r,count=%di`) and what checks its output."""

    text: str
    letters_e: int  # "e" and "n" in the template itself
    letters_n: int
    clamps: bool  # holds unsigned values that must fit a signed 64-bit integer
    texts: str | None  # with %s for each field, when every value is a float


def _float_text(value: float) -> str | None:
    """A float's text; None for NaN and infinities, which are not written at all."""
    text = repr(value)
    if text[-2:] == ".0":
        return text[:-2]
    if "e" in text or "n" in text:
        if math.isnan(value) or math.isinf(value):
            return None
        return format_float(value)
    return text


# The text of floats by value: repr() of a 17-digit float costs more than the rest of a
# field. Only zero and positive values are looked up: -0.0 equals 0.0 as a key but is
# written "-0".
_FLOAT_TEXTS = Memo(_float_text, FLOAT_TEXT_CACHE_SIZE)
_ONES = repeat(1.0)


_NO_TEMPLATE = object()  # field names or types that only the field-by-field path writes


def _format_with_template(template: _FieldTemplate, values: tuple) -> str | None:
    """The field set through one %-format of a template made once per field names and value
    types: no Python code runs per field. None when the template cannot be trusted for these
    values (checked after formatting, at C speed): an exponent, NaN or infinity among the
    floats, or an unsigned value to clamp; the caller then formats field by field, which
    handles those."""
    text = template.text % values
    # A float's repr holds "e" only in exponent form and "n" only as nan or inf; the
    # template's own letters (the field keys) are counted once.
    if text.count("e") != template.letters_e or text.count("n") != template.letters_n:
        return None
    if template.clamps and max(values) > MAX_INT64:
        return None
    # "3.0" is written "3": a float ends where a comma follows (keys cannot hold an
    # unescaped comma) or at the end of the set.
    if ".0," in text:
        text = text.replace(".0,", ",")
    if text[-2:] == ".0":
        text = text[:-2]
    return text


@serializer("influx")
@dataclass
class InfluxSerializer(Serializer):
    """Options are Telegraf's `influx_*` keys of the output that uses this data_format."""

    influx_sort_fields: bool = False
    influx_uint_support: bool = False

    def __post_init__(self) -> None:
        # Escaped "measurement,tag=value…" by name and tag set: hosts repeat the same few.
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        # Field-set templates by field names and value types: inputs repeat the same few.
        self._templates: dict[tuple[tuple[str, ...], tuple[type, ...]], object] = {}

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
        return self.format_lines((metric,))[0]

    def format_lines(self, metrics: Sequence[Metric]) -> list[str]:
        """format_line() of each metric. The work per metric is inline in one loop and the
        memo of float texts is consulted once for all of them: a metric costs a few
        microseconds, and each function call a tenth of that."""
        if self.influx_sort_fields:
            return [self._format_sorted(metric) for metric in metrics]
        heads, templates = self._heads, self._templates
        memo = _FLOAT_TEXTS
        remembered = memo.use(0)
        memo_get = memo.__getitem__
        lookups = unserved = 0
        lines = []
        append = lines.append
        for metric in metrics:
            fields = metric.fields
            read_as = metric.fields_text
            if read_as is not None and read_as[0] is fields:
                text = read_as[1]  # the text a parser read these fields from, as written here
            elif not fields:
                append("")
                continue
            else:
                text = None
                values = tuple(fields.values())
                signature = (tuple(fields), tuple(map(type, values)))
                template = templates.get(signature)
                if template is None:
                    template = self._template_for(signature)
                if template is not _NO_TEMPLATE:
                    if template.texts is not None and remembered:  # all floats
                        lookups += len(values)
                        # None negative (copysign also tells -0.0 from 0.0): remembered texts.
                        if min(map(copysign, _ONES, values)) > 0.0:
                            texts = tuple(map(memo_get, values))
                            if None not in texts:
                                text = template.texts % texts
                        else:
                            unserved += len(values)
                    if text is None:
                        text = _format_with_template(template, values)
                if text is None:
                    text = self._format_fields_one_by_one(fields)
                if not text:
                    append("")
                    continue
            tags = metric.tags
            head = heads.get((metric.name, tuple(tags.items())))
            if head is None:
                head = self.head(metric.name, tags)
            append(f"{head} {text} {metric.time_ns}")
        if lookups:
            memo.use(lookups)
            memo.missed(unserved)
        return lines

    def _format_sorted(self, metric: Metric) -> str:
        text = self._format_fields_one_by_one(metric.fields) if metric.fields else ""
        return f"{self.head(metric.name, metric.tags)} {text} {metric.time_ns}" if text else ""

    def _template_for(self, signature: tuple[tuple[str, ...], tuple[type, ...]]) -> object:
        if len(self._templates) >= TEMPLATE_CACHE_SIZE:
            self._templates.clear()
        template = self._templates[signature] = self._make_template(*signature)
        return template

    def _make_template(
        self, keys: tuple[str, ...], kinds: tuple[type, ...]
    ) -> _FieldTemplate | object:
        parts, prefixes = [], []
        uint = "%du" if self.influx_uint_support else "%di"
        for key, kind in zip(keys, kinds, strict=True):
            placeholder = {float: "%r", int: "%di", UInt: uint}.get(kind)
            prefix = field_prefix(key)
            if placeholder is None or not prefix:
                return _NO_TEMPLATE  # bool, str, or a key that escapes to nothing
            prefixes.append(prefix.replace("%", "%%"))
            parts.append(prefixes[-1] + placeholder)
        text = ",".join(parts)
        clamps = UInt in kinds and not self.influx_uint_support
        floats_only = set(kinds) == {float}
        texts = ",".join(prefix + "%s" for prefix in prefixes) if floats_only else None
        return _FieldTemplate(text, text.count("e"), text.count("n"), clamps, texts)

    def _format_fields_one_by_one(self, fields: dict[str, object]) -> str:
        items = fields.items()
        if self.influx_sort_fields:
            items = sorted(items)
        field_parts = []
        for key, value in items:
            kind = type(value)
            # The common types first, inline: this loop runs for every field.
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
        return ",".join(field_parts)

    def serialize(self, metric: Metric) -> bytes:
        line = self.format_line(metric)
        return (line + "\n").encode() if line else b""

    def serialize_each(self, metrics: list[Metric]) -> list[bytes]:
        return [(line + "\n").encode() if line else b"" for line in self.format_lines(metrics)]

    def serialize_batch(self, metrics: Iterable[Metric]) -> bytes:
        lines = [line for line in self.format_lines(list(metrics)) if line]
        return ("\n".join(lines) + "\n").encode() if lines else b""
