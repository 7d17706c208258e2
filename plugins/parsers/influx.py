"""InfluxDB line protocol, read as Telegraf's influx parser reads it.

`measurement,tag=value field=1.5,count=3i,ok=true,msg="hi" 1700000000000000000`, one metric
per line. The grammar is Telegraf's: spaces or tabs between the sections; `\\,` and `\\ ` escape
in the measurement, `\\,` `\\ ` `\\=` in tag keys, tag values and field keys; string fields in
double quotes with `\\"` and `\\\\`, which may span lines; integers `-12i` and unsigned `12u`
without leading zeros, floats with or without exponent (`1`, `-1.5`, `.5`, `1.`, `1e5`,
`1.5E-7`), booleans `t T true True TRUE f F false False FALSE`; an optional timestamp, in
nanoseconds unless `influx_timestamp_precision` says otherwise. Empty lines and `#` comments
are skipped.

One difference from Telegraf, so that this reads back exactly what
plugins/serializers/influx.py writes: a backslash escapes only a character that needs it
(`,` ` ` `=`); any other backslash is itself (the serializer, like Telegraf's, never escapes a
backslash outside string values). Control characters the serializer writes as `\\t` `\\n` are
not turned back into tabs and newlines, as in Telegraf.

A line that does not parse becomes a ParseError (line, column, what was expected); the other
lines of the same data are kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from agent.memo import Memo
from agent.metric import FieldValue, Metric, UInt
from agent.options import Duration
from agent.plugin import ParseError
from agent.registry import parser
from plugins.serializers.influx import format_field_value

MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1
MAX_TIMESTAMP_DIGITS = 19
SERIES_CACHE_SIZE = 4096
FIELD_VALUE_CACHE_SIZE = 8192  # at most about 1 MB
FIELD_SET_TEMPLATE_CACHE_SIZE = 4096
SHOWN_LINE_CHARS = 120

_BOOLEANS = {
    "t": True,
    "T": True,
    "true": True,
    "True": True,
    "TRUE": True,
    "f": False,
    "F": False,
    "false": False,
    "False": False,
    "FALSE": False,
}
_FLOAT_STARTS = frozenset("-.0123456789")
_FLOAT_ENDS = frozenset(".0123456789")
_NONZERO_DIGITS = frozenset("123456789")
_INFINITIES = (math.inf, -math.inf)
_WHITESPACE = " \t\v\f"
_LINE_END = "\r\n"
_NAME_STOPS = " ,\t\v\f\r\n"
_KEY_STOPS = " ,=\t\v\f\r\n"
_VALUE_STOPS = " ,\t\v\f\r\n"
_NAME_ESCAPABLE = ", "
_KEY_ESCAPABLE = ", ="
_PRECISIONS_NS = {1, 1_000, 1_000_000, 1_000_000_000}


def _needs_scanner(text: str) -> bool:
    """Whether `text` holds a backslash, quote, tab, vertical tab, form feed or carriage
    return; lines free of them split on plain spaces, commas and equal signs (the fast
    path). A character search each: several times quicker than a regular expression."""
    return (
        "\\" in text or '"' in text or "\t" in text or "\r" in text or "\v" in text or "\f" in text
    )


class _Invalid(Exception):
    """Raised inside the scanner; `position` is an index into the scanned text."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def _integer(text: str) -> int | None:
    """Telegraf's integer: an optional minus, then 0 or digits without a leading zero."""
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or not digits.isascii() or (digits[0] == "0" and len(digits) > 1):
        return None
    return int(text)


def _field_number(text: str) -> FieldValue | None:
    """`12i`, `12u` or a float; None if `text` is none of them (or out of range)."""
    last = text[-1]
    if last in _FLOAT_ENDS:
        # float() alone also takes "+1", "1_0", "nan", "inf", non-ASCII digits and spaces
        # around the number; the checks after it leave exactly Telegraf's float grammar.
        try:
            number = float(text)
        except ValueError:
            return None
        if text[0] not in _FLOAT_STARTS or "_" in text or not text.isascii():
            return None
        return None if number in _INFINITIES else number
    if last == "i":
        value = _integer(text[:-1])
        if value is None or not MIN_INT64 <= value <= MAX_INT64:
            return None
        return value
    if last == "u":
        digits = text[:-1]
        if digits[:1] == "-" or _integer(digits) is None:
            return None
        unsigned = int(digits)
        return UInt(unsigned) if unsigned <= MAX_UINT64 else None
    return None


def _timestamp(text: str) -> int | None:
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > MAX_TIMESTAMP_DIGITS:
        return None
    value = int(text)
    return value if MIN_INT64 <= value <= MAX_INT64 else None


def _parse_simple(line: str, default_time_ns: int, scale: int) -> Metric | None:
    """The fast path for one line: see _parse_simple_many."""
    (metric,), _ = _parse_simple_many([line], default_time_ns, scale)
    return None if metric is _SKIPPED else metric


_SKIPPED = object()  # an empty or comment line


def _parse_simple_many(
    lines: list[str], default_time_ns: int, scale: int
) -> tuple[list[Metric | None | object], int]:
    """The fast path: lines without backslash, quote or tab split on ' ', ',' and '='.

    For each line its metric, _SKIPPED for an empty or comment line, or None for anything
    irregular; the scanner then reads the line and says what is wrong, so this never
    accepts a line the scanner would refuse. Also how many metrics were made. One loop for
    all lines, with the memo of field values consulted once: a line costs a few
    microseconds, a function call a tenth of that.
    """
    memo = _FIELD_VALUES
    remembered = memo.use(0)
    memo_get = memo.__getitem__
    series_get = _SERIES.get
    templates_get = _FIELD_SET_TEMPLATES.get
    lookups = made = 0
    read: list[Metric | None | object] = []
    append = read.append
    for line in lines:
        if not line or line[0] == "#":
            append(_SKIPPED)
            continue
        parts = line.split(" ")
        if len(parts) == 3:
            head, field_set, stamp = parts
            if stamp.isdigit() and stamp.isascii() and len(stamp) <= MAX_TIMESTAMP_DIGITS:
                stamp_value = int(stamp)
                if stamp_value > MAX_INT64:
                    append(None)
                    continue
            else:
                stamp_value = _timestamp(stamp)  # a negative one, or None
                if stamp_value is None:
                    append(None)
                    continue
            time_ns = stamp_value * scale
        elif len(parts) == 2:
            head, field_set = parts
            time_ns = default_time_ns
        else:
            append(None)
            continue
        series = series_get(head)
        if series is None:
            series = _remember_series(head)
            if series is None:
                append(None)
                continue
        fields = fields_text = None
        if remembered:
            # One split for keys and values alike; whether they alternate as
            # "key=value,key=value" is checked by writing them back into the template of
            # these keys. Keys repeat, so their templates are remembered.
            tokens = field_set.replace("=", ",").split(",")
            if not len(tokens) % 2:
                keys = tuple(tokens[0::2])
                texts = tokens[1::2]
                template, keys = templates_get(keys) or _field_set_template(keys)
                if template and template % tuple(texts) == field_set:
                    lookups += len(texts)
                    values = list(map(memo_get, texts))
                    if _INVALID not in values:
                        fields = dict(zip(keys, values, strict=True))
                        # The field set's text goes along when the serializer would write
                        # exactly that text again from these fields: it need not format them.
                        if len(_REWRITTEN) < _REWRITTEN_SIZE and _REWRITTEN.isdisjoint(texts):
                            fields_text = (fields, field_set)
        if fields is None:
            fields = _simple_fields(field_set)
            if fields is None:
                append(None)
                continue
        append(Metric(series[0], dict(series[1]), fields, time_ns, fields_text))  # owns its tags
        made += 1
    if lookups:
        memo.use(lookups)
    return read, made


def _remember_series(head: str) -> tuple[str, dict[str, str]] | None:
    series = _simple_series(head)
    if series is not None:
        if len(_SERIES) >= SERIES_CACHE_SIZE:
            _SERIES.clear()
        _SERIES[head] = series
    return series


def _field_set_template(keys: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """`k1=%s,k2=%s` for field keys none of which is empty or there twice ("" otherwise),
    and the keys, remembered: every metric with these keys shares their strings."""
    if len(keys) != len(set(keys)) or "" in keys:
        return "", keys
    if len(_FIELD_SET_TEMPLATES) >= FIELD_SET_TEMPLATE_CACHE_SIZE:
        _FIELD_SET_TEMPLATES.clear()
    escaped = [key.replace("%", "%%") for key in keys]
    template = _FIELD_SET_TEMPLATES[keys] = ("=%s,".join(escaped) + "=%s", keys)
    return template


# Series read before, by their text: a host sends the same few over and over.
_SERIES: dict[str, tuple[str, dict[str, str]]] = {}


_INVALID = object()


def _value_or_invalid(text: str) -> FieldValue | object:
    value = _simple_value(text)
    if value is None:
        return _INVALID
    if format_field_value(value, uint_support=False) != text and len(_REWRITTEN) < _REWRITTEN_SIZE:
        _REWRITTEN.add(text)
    return value


# Field values by their text: float() of a 17-digit text costs more than the rest of a
# field. A text is checked as _simple_fields checks it the first time it is seen.
_FIELD_VALUES = Memo(_value_or_invalid, FIELD_VALUE_CACHE_SIZE, forget=_INVALID)
# Value texts the influx serializer writes otherwise ("1.50" → "1.5", "t" → "true", "1u" →
# "1i" by default); once this is full, no field set counts as written as read any more.
_REWRITTEN: set[str] = set()
_REWRITTEN_SIZE = 8192


# "k1=%s,k2=%s" by field keys (none empty, none twice): the shape of their field sets.
_FIELD_SET_TEMPLATES: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {}


def _simple_series(head: str) -> tuple[str, dict[str, str]] | None:
    """`cpu,cpu=cpu0,host=vm` → ("cpu", {"cpu": "cpu0", "host": "vm"})."""
    if "," not in head:
        return (head, {}) if head and head[0] != "#" else None
    name, *pairs = head.split(",")
    if not name or name[0] == "#" or head.count("=") - name.count("=") != len(pairs):
        return None  # also a tag without '=' or with two: the scanner says which
    tags = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key or not value:
            return None
        tags[key] = value
    return name, tags


def _simple_fields(field_set: str) -> dict[str, FieldValue] | None:
    """`a=1.5,b=2i,c=true` → {"a": 1.5, "b": 2, "c": True}, pair by pair."""
    pairs = field_set.split(",")
    if field_set.count("=") != len(pairs):
        return None
    fields: dict[str, FieldValue] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if not key or not text:
            return None
        value = _simple_value(text)
        if value is None:
            return None
        fields[key] = value
    return fields


def _simple_value(text: str) -> FieldValue | None:
    """A field value in Telegraf's grammar (not a string); None if `text` is not one."""
    if not text:
        return None
    last = text[-1]
    if last in _FLOAT_ENDS:
        try:
            value = float(text)
        except ValueError:
            return None
        if (
            text[0] not in _FLOAT_STARTS
            or "_" in text
            or value in _INFINITIES
            or not text.isascii()
        ):
            return None
        return value
    if last == "i" and text[0] in _NONZERO_DIGITS and text[:-1].isdigit() and text.isascii():
        value = int(text[:-1])
        return None if value > MAX_INT64 else value
    value = _BOOLEANS.get(text)
    if value is None:
        value = _field_number(text)
    return value


class _Scanner:
    """Reads one line character by character: escapes, quoted strings (which may run over
    several lines), tabs, and the exact place of a mistake."""

    def __init__(self, text: str, default_time_ns: int, scale: int) -> None:
        self.text = text
        self.end = len(text)
        self.default_time_ns = default_time_ns
        self.scale = scale

    def line(self, start: int) -> tuple[Metric | None, int]:
        """The metric of the line at `start` (None for an empty or comment line) and the index
        just past its end; raises _Invalid."""
        text = self.text
        pos = self._skip_whitespace(start)
        if pos >= self.end or text[pos] in _LINE_END or text[pos] == "#":
            return None, self._next_line(pos)
        name, pos = self._token(pos, _NAME_STOPS, _NAME_ESCAPABLE)
        if not name:
            raise _Invalid(pos, "expected measurement name")
        tags: dict[str, str] = {}
        while self._at(pos) == ",":
            key, pos = self._token(pos + 1, _KEY_STOPS, _KEY_ESCAPABLE)
            if not key:
                raise _Invalid(pos, "expected tag key")
            if self._at(pos) != "=":
                raise _Invalid(pos, "expected '=' after tag key")
            value, pos = self._token(pos + 1, _KEY_STOPS, _KEY_ESCAPABLE)
            if not value:
                raise _Invalid(pos, "expected tag value")
            tags[key] = value
        if self._at(pos) not in _WHITESPACE or pos >= self.end:
            found = self._at(pos)
            if found == "=":
                raise _Invalid(pos, "unescaped '=' in tag value (write \\=)")
            raise _Invalid(pos, "expected a space and the fields")
        pos = self._skip_whitespace(pos)
        fields: dict[str, FieldValue] = {}
        while True:
            key, pos = self._token(pos, _KEY_STOPS, _KEY_ESCAPABLE)
            if not key:
                raise _Invalid(pos, "expected field key")
            if self._at(pos) != "=":
                raise _Invalid(pos, "expected '=' after field key")
            fields[key], pos = self._field_value(pos + 1)
            if self._at(pos) != ",":
                break
            pos += 1
        time_ns = self.default_time_ns
        if pos < self.end and text[pos] in _WHITESPACE:
            pos = self._skip_whitespace(pos)
            if pos < self.end and text[pos] not in _LINE_END:
                stamp, stop = self._raw(pos)
                value = _timestamp(stamp)
                if value is None:
                    raise _Invalid(pos, f"expected timestamp (an integer), found {stamp!r}")
                time_ns = value * self.scale
                pos = self._skip_whitespace(stop)
        if pos < self.end and text[pos] not in _LINE_END:
            raise _Invalid(pos, "expected end of line")
        return Metric(name, tags, fields, time_ns), self._next_line(pos)

    def _at(self, pos: int) -> str:
        return self.text[pos] if pos < self.end else ""

    def _skip_whitespace(self, pos: int) -> int:
        while pos < self.end and self.text[pos] in _WHITESPACE:
            pos += 1
        return pos

    def _next_line(self, pos: int) -> int:
        newline = self.text.find("\n", pos)
        return self.end if newline < 0 else newline + 1

    def _token(self, pos: int, stops: str, escapable: str) -> tuple[str, int]:
        """A name or key up to the next unescaped stop character."""
        text, end = self.text, self.end
        chars = []
        while pos < end:
            char = text[pos]
            if char == "\\" and pos + 1 < end and text[pos + 1] in escapable:
                chars.append(text[pos + 1])
                pos += 2
                continue
            if char in stops:
                break
            chars.append(char)
            pos += 1
        return "".join(chars), pos

    def _raw(self, pos: int) -> tuple[str, int]:
        start = pos
        while pos < self.end and self.text[pos] not in _VALUE_STOPS:
            pos += 1
        return self.text[start:pos], pos

    def _field_value(self, pos: int) -> tuple[FieldValue, int]:
        if self._at(pos) == '"':
            return self._string(pos)
        raw, stop = self._raw(pos)
        if not raw:
            raise _Invalid(pos, "expected field value")
        value = _BOOLEANS.get(raw)
        if value is None:
            value = _field_number(raw)
        if value is None:
            raise _Invalid(pos, f"invalid field value {raw!r} ({_value_hint(raw)})")
        return value, stop

    def _string(self, start: int) -> tuple[str, int]:
        text, end = self.text, self.end
        chars = []
        pos = start + 1
        while pos < end:
            char = text[pos]
            if char == "\\" and pos + 1 < end and text[pos + 1] in '\\"':
                chars.append(text[pos + 1])
                pos += 2
            elif char == '"':
                return "".join(chars), pos + 1
            else:
                chars.append(char)
                pos += 1
        raise _Invalid(start, "unterminated string (no closing '\"')")


def _value_hint(raw: str) -> str:
    if raw[-1] in "iu":
        kind = "integer" if raw[-1] == "i" else "unsigned integer"
        return f"not a 64-bit {kind}: digits without leading zeros"
    if raw[:1].isdigit() or raw[:1] in "-.":
        return "not a number"
    return 'expected a number, 1i, 1u, true/false or a "string"'


def line_excerpt(line: str) -> str:
    """A line as error messages show it: without its line end, cut short if long."""
    line = line.rstrip("\r")
    return line if len(line) <= SHOWN_LINE_CHARS else line[:SHOWN_LINE_CHARS] + "…"


@parser("influx")
@dataclass
class InfluxParser:
    """Options are Telegraf's `influx_*` keys of the plugin that reads data_format "influx"."""

    influx_timestamp_precision: Duration = Duration(0)

    def __post_init__(self) -> None:
        scale = max(1, round(self.influx_timestamp_precision * 1e9))
        if scale not in _PRECISIONS_NS:
            raise ValueError('influx_timestamp_precision: expected "1ns", "1us", "1ms" or "1s"')
        self._scale = scale

    def parse(
        self, data: bytes | str, default_time_ns: int | None = None
    ) -> tuple[list[Metric], list[ParseError]]:
        """Every metric of `data` (one per line) and the lines that are not line protocol.

        A line without a timestamp gets `default_time_ns` (now, if not given)."""
        if default_time_ns is None:
            default_time_ns = time.time_ns()
        if isinstance(data, str):
            return self._parse_text(data, default_time_ns, 1)
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return self._parse_undecodable(bytes(data), default_time_ns)
        return self._parse_text(text, default_time_ns, 1)

    def _parse_text(
        self, text: str, default_time_ns: int, first_line: int
    ) -> tuple[list[Metric], list[ParseError]]:
        if not _needs_scanner(text):
            return self._parse_simple_lines(text, default_time_ns, first_line)
        return self._parse_scanned(text, default_time_ns, first_line)

    def _parse_simple_lines(
        self, text: str, default_time_ns: int, first_line: int
    ) -> tuple[list[Metric], list[ParseError]]:
        metrics: list[Metric] = []
        errors: list[ParseError] = []
        scale = self._scale
        lines = text.split("\n")
        if not lines[-1]:
            lines.pop()  # what follows the last newline
        read, made = _parse_simple_many(lines, default_time_ns, scale)
        if made == len(lines):
            return read, errors  # type: ignore[return-value]
        for number, line, metric in zip(
            range(first_line, first_line + len(lines)), lines, read, strict=True
        ):
            if metric is _SKIPPED:
                continue
            if metric is None:
                try:
                    metric, _ = _Scanner(line, default_time_ns, scale).line(0)
                except _Invalid as invalid:
                    errors.append(
                        ParseError(
                            number, invalid.position + 1, invalid.message, line_excerpt(line)
                        )
                    )
                    continue
                if metric is None:
                    continue
            metrics.append(metric)
        return metrics, errors

    def _parse_scanned(
        self, text: str, default_time_ns: int, first_line: int
    ) -> tuple[list[Metric], list[ParseError]]:
        """Line by line, through the scanner where a line needs it; a quoted string may carry
        a line on over newlines, so positions rather than split lines lead the way."""
        metrics: list[Metric] = []
        errors: list[ParseError] = []
        scanner = _Scanner(text, default_time_ns, self._scale)
        pos, number, end = 0, first_line, len(text)
        while pos < end:
            newline = text.find("\n", pos)
            line_end = end if newline < 0 else newline
            line = text[pos:line_end]
            if not _needs_scanner(line):
                metric = (
                    None
                    if not line or line[0] == "#"
                    else _parse_simple(line, default_time_ns, self._scale)
                )
                if metric is not None or not line or line[0] == "#":
                    if metric is not None:
                        metrics.append(metric)
                    pos, number = line_end + 1, number + 1
                    continue
            try:
                metric, stop = scanner.line(pos)
            except _Invalid as invalid:
                at = invalid.position
                line_start = text.rfind("\n", 0, at) + 1
                errors.append(
                    ParseError(
                        number + text.count("\n", pos, at),
                        at - line_start + 1,
                        invalid.message,
                        line_excerpt(line),
                    )
                )
                pos, number = line_end + 1, number + 1
                continue
            if metric is not None:
                metrics.append(metric)
            number += text.count("\n", pos, stop)
            pos = stop
        return metrics, errors

    def _parse_undecodable(
        self, data: bytes, default_time_ns: int
    ) -> tuple[list[Metric], list[ParseError]]:
        """Data that is not all UTF-8: each line on its own, the broken ones reported."""
        metrics: list[Metric] = []
        errors: list[ParseError] = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                column = len(raw[: error.start].decode("utf-8", "replace")) + 1
                shown = line_excerpt(raw.decode("utf-8", "replace"))
                errors.append(ParseError(number, column, "not UTF-8 text", shown))
                continue
            found, failed = self._parse_text(line, default_time_ns, number)
            metrics.extend(found)
            errors.extend(failed)
        return metrics, errors
