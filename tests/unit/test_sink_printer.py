"""What `agent sink` prints: line protocol, Telegraf JSON, keys as the console consumer, tables."""

from __future__ import annotations

import io
import json
import os
import pty

from line_protocol_parser import parse_line

from agent.metric import Metric, UInt
from agent.sink.batch import Batch, Delivery
from agent.sink.printer import LinePrinter, TablePrinter, visible

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


# A topic's text that would act on a terminal: clear the screen, set the colour, write the
# clipboard (OSC 52).
HOSTILE = Metric(
    "\x1b[31mred", {"host": "vm", "t": "\x1b[2J"}, {"s": "\x1b]52;c;aGk=\x07", "v": 1.0}, T
)


def test_table_into_a_pipe_shows_control_characters_escaped():
    out = printed(TablePrinter(io.StringIO(), live=False), Delivery("m", 0, 0, None, [HOSTILE]))
    assert "\x1b" not in out and "\x07" not in out
    assert out.splitlines()[1].split() == [
        "01:10:40",
        "vm",
        "\\x1b[31mred",
        "t=\\x1b[2J",
        's="\\x1b]52;c;aGk=\\x07"',
        "v=1",
    ]


def test_table_on_a_terminal_sends_no_control_character_but_its_own_redraw():
    out = printed(TablePrinter(io.StringIO(), live=True), Delivery("m", 0, 0, None, [HOSTILE]))
    screen = out.replace("\x1b[H\x1b[J", "")
    assert "\x1b" not in screen and "\x07" not in screen
    assert "\\x1b[31mred" in screen and "t=\\x1b[2J" in screen


def test_visible_escapes_c0_del_and_c1_controls_and_nothing_else():
    assert (
        visible("a\tb\nc\rd\x00\x7f\x9b\x9fé€😀\\x") == "a\\tb\\nc\\rd\\x00\\x7f\\x9b\\x9fé€😀\\x"
    )


def test_line_format_into_a_pipe_keeps_the_bytes_as_the_topic_held_them():
    out = printed(LinePrinter(io.StringIO()), Delivery("m", 0, 0, None, [HOSTILE]))
    assert out == f'\x1b[31mred,host=vm,t=\x1b[2J s="\x1b]52;c;aGk=\x07",v=1 {T}\n'


def test_line_format_on_a_terminal_escapes_control_characters_but_keeps_the_key_separator():
    controller, terminal_fd = pty.openpty()
    with open(terminal_fd, "w", encoding="utf-8") as terminal:
        printer = LinePrinter(terminal, print_key=True)
        printer.write(batch(Delivery("m", 0, 0, b"\x1b[5mk", [HOSTILE])))
    shown = os.read(controller, 65536).decode()
    os.close(controller)
    assert (
        shown == f'\\x1b[5mk\t\\x1b[31mred,host=vm,t=\\x1b[2J s="\\x1b]52;c;aGk=\\x07",v=1 {T}\r\n'
    )


def test_json_format_on_a_terminal_escapes_what_json_leaves_as_it_is():
    printer = LinePrinter(io.StringIO(), "json", escape_controls=True)
    out = printed(printer, Delivery("m", 0, 0, None, [Metric("m", {}, {"s": "\x9b2J\x7f"}, T)]))
    assert "\x9b" not in out and "\x7f" not in out
    assert '"s":"\\x9b2J\\x7f"' in out
