"""Printing metrics on stdout: line protocol, Telegraf JSON, or a compact table.

Printers follow the Store contract: `write(batch)` returns once the batch is written and
flushed, so its offsets may be committed.

Whatever a topic holds, no control character from it reaches a terminal as it is: one in a
measurement, tag or string field (ESC starting a sequence that clears the screen or, OSC 52,
writes the clipboard) is shown escaped (`\x1b`) in the table, and in line protocol or JSON
when stdout is a terminal. Into a pipe or a file, lines keep their bytes.
"""

from __future__ import annotations

import re
import shutil
import time
from typing import TextIO

from agent.metric import Metric
from agent.sink.batch import Batch
from plugins.serializers.influx import InfluxSerializer
from plugins.serializers.json import JsonSerializer

NO_KEY = "null"  # what kafka-console-consumer prints for a record without a key

# C0 controls, DEL and C1 controls (Unicode category Cc): what terminals act on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\x{ord(char):02x}"


def visible(text: str) -> str:
    """`text` with every control character written as an escape: `\\x1b`, `\\n`, `\\t`."""
    return _CONTROL.sub(_escape, text)


class LinePrinter:
    """One metric per line, as line protocol (fields in their order, `u` for unsigned, so a
    line reads as it was written) or as Telegraf JSON. With `print_key`, the record's key (or
    `null`) and `key_separator` come first, as kafka-console-consumer prints them. On a
    terminal (or with `escape_controls`), control characters are shown escaped."""

    def __init__(
        self,
        stream: TextIO,
        data_format: str = "line",
        print_key: bool = False,
        key_separator: str = "\t",
        escape_controls: bool | None = None,
    ) -> None:
        self.stream = stream
        self.escape_controls = stream.isatty() if escape_controls is None else escape_controls
        if data_format == "json":
            self._format = JsonSerializer().format_object
        else:
            self._format = InfluxSerializer(influx_uint_support=True).format_line
        self.print_key = print_key
        self.key_separator = key_separator

    def write(self, batch: Batch) -> int:
        lines = []
        escape = self.escape_controls
        for delivery in batch.deliveries:
            prefix = ""
            if self.print_key:
                key = delivery.key
                shown = NO_KEY if key is None else key.decode("utf-8", "replace")
                # The separator is the user's: a tab stays a tab.
                prefix = (visible(shown) if escape else shown) + self.key_separator
            for metric in delivery.metrics:
                text = self._format(metric)
                if text:
                    lines.append(prefix + (visible(text) if escape else text))
        if lines:
            self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        return len(lines)

    def close(self) -> None:
        self.stream.flush()


def format_value(value: object) -> str:
    """A field value, short: floats to 6 significant digits, strings quoted and cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, str):
        return '"' + (value if len(value) <= 24 else value[:23] + "…") + '"'
    return str(value)


class TablePrinter:
    """A compact human view: host, measurement, the other tags, the fields, with control
    characters escaped.

    On a terminal, one row per host, measurement and tag set, redrawn in place with the
    latest values. Elsewhere (a pipe, a file), one plain row per metric."""

    HEADER = ("TIME", "HOST", "MEASUREMENT", "TAGS", "FIELDS")
    WIDTHS = (8, 16, 12, 20)

    def __init__(self, stream: TextIO, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._latest: dict[tuple[str, str, str], Metric] = {}
        self._header_written = False
        self._count = 0

    def row(self, metric: Metric) -> str:
        clock = time.strftime("%H:%M:%S", time.gmtime(metric.time_ns // 1_000_000_000))
        host = metric.tags.get("host", "-")
        others = ",".join(f"{k}={v}" for k, v in sorted(metric.tags.items()) if k != "host")
        fields = " ".join(f"{k}={format_value(v)}" for k, v in metric.fields.items())
        cells = (host, metric.name, others or "-", fields)
        return self._columns((clock, *map(visible, cells)))

    def _columns(self, cells: tuple[str, ...]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], self.WIDTHS, strict=True)]
        return " ".join([*padded, cells[-1]])

    def write(self, batch: Batch) -> int:
        metrics = batch.metrics()
        self._count += len(metrics)
        if self.live:
            for metric in metrics:
                others = tuple(sorted((k, v) for k, v in metric.tags.items() if k != "host"))
                self._latest[(metric.tags.get("host", "-"), metric.name, str(others))] = metric
            self._redraw()
        else:
            lines = [self.row(metric) for metric in metrics]
            if not self._header_written:
                lines.insert(0, self._columns(self.HEADER))
                self._header_written = True
            self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        return len(metrics)

    def _redraw(self) -> None:
        size = shutil.get_terminal_size()
        room = max(1, size.lines - 3)
        rows = [self.row(self._latest[key]) for key in sorted(self._latest)]
        shown = rows[:room]
        if len(rows) > room:
            shown.append(f"… {len(rows) - room} more rows")
        lines = [self._columns(self.HEADER), *shown, f"{self._count} metrics received"]
        cut = [
            line if len(line) <= size.columns else line[: size.columns - 1] + "…" for line in lines
        ]
        # Cursor home, clear the screen below it, draw.
        self.stream.write("\x1b[H\x1b[J" + "\n".join(cut) + "\n")

    def close(self) -> None:
        self.stream.flush()


def make_printer(
    stream: TextIO, print_format: str, print_key: bool, key_separator: str
) -> LinePrinter | TablePrinter:
    if print_format == "table":
        return TablePrinter(stream)
    return LinePrinter(stream, print_format, print_key, key_separator)
