"""InfluxDB line protocol, read as Telegraf's influx parser reads it.

`measurement,tag=value field=1.5,count=3i,ok=true,msg="hi" 1700000000000000000`, one metric
per line. The grammar is Telegraf's (its parser was run on the same lines to settle each
case; scripts/telegraf-check repeats that on thousands of generated lines):

- spaces, tabs, vertical tabs or form feeds between the sections; `\\r\\n` or `\\n` ends a
  line, and so does a carriage return that is the last byte of the data; a carriage return
  anywhere else refuses its line;
- the measurement may not start with `#` (such lines are comments); a backslash joins the
  next character to it (`\\,` and `\\ ` are unescaped, `\\\\` stays two backslashes);
- in tag keys and values, a backslash joins the next character, even after another
  backslash (`a\\\\,b` is one text); in field keys `\\\\` is a pair. Keys and values are
  unescaped (`\\,` `\\ ` `\\=` `\\"`) only when they hold a space, comma or equals sign;
- string values in double quotes may span lines; inside, a backslash may only precede
  `\\` or `"`;
- integers `-12i` and unsigned `12u` without leading zeros, within 64 bits; floats with or
  without exponent (`1`, `-1.5`, `.5`, `1.`, `1e5`, `1.5E-7`), finite; booleans
  `t T true True TRUE f F false False FALSE`;
- an optional timestamp of at most 19 digits, in nanoseconds unless
  `influx_timestamp_precision` says otherwise; a tag or field key given twice keeps the last
  value.

Where this parser deliberately differs from Telegraf's:
- a line that does not parse is a ParseError (line, column, what was expected) and only that
  line is lost; Telegraf drops the whole input;
- bytes that are not UTF-8 refuse their line, named by its number; Telegraf passes them on;
- a timestamp whose nanoseconds leave the 64-bit range (a line dated past 2262 read with
  precision "1s") refuses its line; Telegraf's arithmetic wraps around to a wrong date.

The per-line work is done by the native core (agent._native, native/src/line_protocol.rs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from agent import _native
from agent._native import PointRun
from agent.metric import Metric
from agent.options import Duration
from agent.plugin import ParseError
from agent.registry import parser

MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1
SHOWN_LINE_CHARS = 120
_PRECISIONS_NS = {1, 1_000, 1_000_000, 1_000_000_000}


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
        return self._parse(data, default_time_ns)

    def parse_undated(self, data: bytes | str) -> tuple[list[Metric], list[ParseError]]:
        """parse(), but a metric whose line has no timestamp gets time_ns None, for a caller
        that dates such lines one by one (the sink: each by its Kafka record's time)."""
        return self._parse(data, None)

    def parse_each_dated(
        self, values: list[bytes | None], timestamps_ms: list[int]
    ) -> list[Metric] | None:
        """The one metric of each of `values`, a line without a timestamp dated with its
        `timestamps_ms` entry (milliseconds; now where it is negative); None when any value
        is not exactly one valid line or its date in nanoseconds is past 64 bits: the
        sink's records of one metric each, read in one call."""
        return _native.parse_influx_records(values, timestamps_ms, time.time_ns(), self._scale)

    def read_point_runs(
        self,
        topic: str,
        partition: int,
        offsets: list[int],
        values: list[bytes | None],
        timestamps_ms: list[int],
    ) -> list[PointRun | int]:
        """The sink's records of one partition, read straight into store points: runs of
        records and, between them, the index of each record that does not read cleanly
        (to be decoded on its own). Dated as parse_each_dated() dates."""
        return _native.read_point_runs(
            topic, partition, offsets, values, timestamps_ms, time.time_ns(), self._scale
        )

    def _parse(
        self, data: bytes | str, default_time_ns: int | None
    ) -> tuple[list[Metric], list[ParseError]]:
        if not isinstance(data, str | bytes):
            data = bytes(data)
        metrics, errors = _native.parse_influx(data, default_time_ns, self._scale)
        return metrics, [ParseError(*error) for error in errors]
