"""What `agent sink` prints: line protocol, Telegraf JSON, keys as the console consumer, tables."""

from __future__ import annotations

import io
import json

from line_protocol_parser import parse_line

from agent.metric import Metric, UInt
from agent.sink.batch import Batch, Delivery
from agent.sink.printer import LinePrinter, TablePrinter

T = 1_795_569_040_000_000_000
CPU = Metric("cpu", {"host": "vm", "cpu": "cpu0"}, {"usage_idle": 98.5, "usage_user": 1.5}, T)
MEM = Metric("mem", {"host": "vm"}, {"total": UInt(8_000_000_000), "used_percent": 12.25}, T)


def batch(*deliveries: Delivery) -> Batch:
    result = Batch()
    for delivery in deliveries:
        result.add(delivery)
    return result


def printed(printer, *deliveries: Delivery) -> str:
    printer.write(batch(*deliveries))
    return printer.stream.getvalue()


def test_line_format_prints_each_metric_as_it_was_written():
    out = printed(LinePrinter(io.StringIO()), Delivery("m", 0, 0, None, [CPU, MEM]))
    assert out == (
        f"cpu,cpu=cpu0,host=vm usage_idle=98.5,usage_user=1.5 {T}\n"
        f"mem,host=vm total=8000000000u,used_percent=12.25 {T}\n"
    )
    assert parse_line(out.splitlines()[0])["fields"] == {"usage_idle": 98.5, "usage_user": 1.5}


def test_print_key_puts_the_key_and_separator_first_and_null_without_key():
    printer = LinePrinter(io.StringIO(), print_key=True, key_separator="-")
    out = printed(
        printer,
        Delivery("m", 0, 0, b"0", [CPU]),
        Delivery("m", 0, 1, None, [MEM]),
    )
    lines = out.splitlines()
    assert lines[0] == f"0-cpu,cpu=cpu0,host=vm usage_idle=98.5,usage_user=1.5 {T}"
    assert lines[1].startswith("null-mem,host=vm ")


def test_default_key_separator_is_a_tab_like_the_console_consumer():
    out = printed(LinePrinter(io.StringIO(), print_key=True), Delivery("m", 0, 0, b"k", [CPU]))
    assert out.startswith("k\tcpu,")


def test_every_line_of_a_record_carries_the_record_key():
    out = printed(LinePrinter(io.StringIO(), print_key=True), Delivery("m", 0, 0, b"k", [CPU, MEM]))
    assert [line.split("\t")[0] for line in out.splitlines()] == ["k", "k"]


def test_json_format_prints_telegraf_json_objects():
    out = printed(LinePrinter(io.StringIO(), "json"), Delivery("m", 0, 0, None, [CPU]))
    assert json.loads(out) == {
        "fields": {"usage_idle": 98.5, "usage_user": 1.5},
        "name": "cpu",
        "tags": {"cpu": "cpu0", "host": "vm"},
        "timestamp": T // 10**9,
    }


def test_write_returns_the_number_of_metrics_printed():
    printer = LinePrinter(io.StringIO())
    assert printer.write(batch(Delivery("m", 0, 0, None, [CPU, MEM]))) == 2


def test_table_without_terminal_prints_a_header_then_one_row_per_metric():
    printer = TablePrinter(io.StringIO(), live=False)
    out = printed(printer, Delivery("m", 0, 0, None, [CPU, MEM]))
    out = printed(printer, Delivery("m", 0, 1, None, [CPU]))
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "HOST", "MEASUREMENT", "TAGS", "FIELDS"]
    assert len(lines) == 4
    assert lines[1].split() == [
        "01:10:40",
        "vm",
        "cpu",
        "cpu=cpu0",
        "usage_idle=98.5",
        "usage_user=1.5",
    ]
    assert lines[2].split() == [
        "01:10:40",
        "vm",
        "mem",
        "-",
        "total=8000000000",
        "used_percent=12.25",
    ]


def test_table_on_a_terminal_redraws_one_row_per_host_measurement_and_tags():
    stream = io.StringIO()
    printer = TablePrinter(stream, live=True)
    printer.write(batch(Delivery("m", 0, 0, None, [CPU, MEM])))
    newer = Metric("cpu", dict(CPU.tags), {"usage_idle": 50.0, "usage_user": 50.0}, T)
    printer.write(batch(Delivery("m", 0, 1, None, [newer])))
    last_screen = stream.getvalue().split("\x1b[H\x1b[J")[-1].splitlines()
    assert len(last_screen) == 4  # header, cpu, mem, the count
    assert "usage_idle=50" in last_screen[1]
    assert last_screen[-1] == "3 metrics received"
