"""Printing metrics on stdout: line protocol, Telegraf JSON, or a compact table.

Printers follow the Store contract: `write(batch)` returns once the batch is written and
flushed, so its offsets may be committed.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

from agent.metric import Metric
from agent.sink.batch import Batch
from plugins.serializers.influx import InfluxSerializer
from plugins.serializers.json import JsonSerializer

NO_KEY = "null"  # what kafka-console-consumer prints for a record without a key


class LinePrinter:
    """One metric per line, as line protocol (fields in their order, `u` for unsigned, so a
    line reads as it was written) or as Telegraf JSON. With `print_key`, the record's key (or
    `null`) and `key_separator` come first, as kafka-console-consumer prints them."""

    def __init__(
        self,
        stream: TextIO,
        data_format: str = "line",
        print_key: bool = False,
        key_separator: str = "\t",
    ) -> None:
        self.stream = stream
        if data_format == "json":
            self._format = JsonSerializer().format_object
        else:
            self._format = InfluxSerializer(influx_uint_support=True).format_line
        self.print_key = print_key
        self.key_separator = key_separator

    def write(self, batch: Batch) -> int:
        lines = []
        for delivery in batch.deliveries:
            prefix = ""
            if self.print_key:
                key = delivery.key
                shown = NO_KEY if key is None else key.decode("utf-8", "replace")
                prefix = shown + self.key_separator
            for metric in delivery.metrics:
                text = self._format(metric)
                if text:
                    lines.append(prefix + text)
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
    """A compact human view: host, measurement, the other tags, the fields.

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
        return self._columns((clock, host, metric.name, others or "-", fields))

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
