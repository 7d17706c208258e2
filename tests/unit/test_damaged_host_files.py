"""Host inputs on damaged /proc files: a missing line, a word that is not a number, a line
with too few values, a file cut in the middle of a line, an empty file. Each gather fails
with one error that names the file, the line and what was expected there; no reading is
made up from what is left.

Every case starts from the recorded tree tests/data/hosts/vm-2cpu/step0 (copied, so the
recording stays whole) and damages one file of it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.host import HostFileFormatError
from agent.registry import lookup
from tests.conftest import HOSTS

RECORDED = HOSTS / "vm-2cpu" / "step0"


def drop_lines(prefix: str) -> Callable[[str], str]:
    def damage(text: str) -> str:
        return "".join(line for line in text.splitlines(True) if not line.startswith(prefix))

    return damage


def replace_line(number: int, new_line: str) -> Callable[[str], str]:
    def damage(text: str) -> str:
        lines = text.splitlines(True)
        lines[number - 1] = new_line + "\n"
        return "".join(lines)

    return damage


def replace_word(number: int, word: int, new_word: str) -> Callable[[str], str]:
    def damage(text: str) -> str:
        lines = text.splitlines(True)
        words = lines[number - 1].split()
        words[word] = new_word
        lines[number - 1] = " ".join(words) + "\n"
        return "".join(lines)

    return damage


def cut_in_line(number: int, keep_chars: int) -> Callable[[str], str]:
    """The file as a copy cut short would leave it: lines before `number`, and the start
    of that line without its newline."""

    def damage(text: str) -> str:
        lines = text.splitlines(True)
        return "".join(lines[: number - 1]) + lines[number - 1][:keep_chars]

    return damage


def empty(text: str) -> str:
    return ""


# input, damaged file (under proc/), damage, the error after the file name.
CASES = {
    "cpu-no-total-line": (
        "cpu", "stat", drop_lines("cpu "),
        ': expected a "cpu" line (all CPUs together), found none',
    ),
    "cpu-counter-not-a-number": (
        "cpu", "stat", replace_word(2, 4, "a"),
        ":2: expected cpu0 and at least 7 whole-number counters, found "
        "'cpu0 35011 0 6892 a 143 0 117 23 0 0'",
    ),
    "cpu-line-with-three-counters": (
        "cpu", "stat", replace_line(1, "cpu  75728 0 264097"),
        ":1: expected cpu and at least 7 whole-number counters, found 'cpu  75728 0 264097'",
    ),
    "cpu-stat-cut-mid-line": (
        "cpu", "stat", cut_in_line(3, 20),
        ":3: expected a line ending in a newline (the file was cut short), "
        "found 'cpu1 40717 0 8523 12'",
    ),
    "cpu-stat-empty": ("cpu", "stat", empty, ": expected the kernel's lines, found an empty file"),
    "mem-meminfo-cut-mid-line": (
        "mem", "meminfo", cut_in_line(12, 9),
        ":12: expected a line ending in a newline (the file was cut short), found 'Inactive('",
    ),
    "mem-meminfo-cut-at-a-number": (
        "mem", "meminfo", replace_line(2, "MemFree:        123"),
        ':2: expected "MemFree: N kB" with N a whole number, found \'MemFree:        123\'',
    ),
    "mem-size-not-a-number": (
        "mem", "meminfo", replace_word(1, 1, "x"),
        ':1: expected "MemTotal: N kB" with N a whole number, found \'MemTotal: x kB\'',
    ),
    "mem-no-memtotal": (
        "mem", "meminfo", drop_lines("MemTotal:"),
        ': expected a "MemTotal:" and a "MemFree:" line, found no such line',
    ),
    "mem-meminfo-empty": (
        "mem", "meminfo", empty, ": expected the kernel's lines, found an empty file"
    ),
    "swap-vmstat-value-not-a-number": (
        "swap", "vmstat", replace_word(1, 1, "many"),
        ":1: expected a name and a whole number, found 'nr_free_pages many'",
    ),
    "swap-vmstat-line-without-value": (
        "swap", "vmstat", replace_line(3, "nr_zone_inactive_anon"),
        ":3: expected a name and a whole number, found 'nr_zone_inactive_anon'",
    ),
    "swap-meminfo-without-swap-lines": (
        "swap", "meminfo", drop_lines("Swap"),
        ': expected a "SwapTotal:" and a "SwapFree:" line, found no such line',
    ),
    "system-loadavg-with-two-averages": (
        "system", "loadavg", replace_line(1, "0.52 0.58"),
        ":1: expected three load averages, runnable/total tasks and the last PID, "
        "found '0.52 0.58'",
    ),
    "system-uptime-not-a-number": (
        "system", "uptime", replace_line(1, "up 5.0"),
        ":1: expected seconds since boot and seconds idle, found 'up 5.0'",
    ),
    "system-cpuinfo-cut-mid-line": (
        "system", "cpuinfo", cut_in_line(3, 6),
        ":3: expected a line ending in a newline (the file was cut short), found 'cpu fa'",
    ),
    "system-loadavg-empty": (
        "system", "loadavg", empty, ": expected the kernel's lines, found an empty file"
    ),
    "kernel-no-ctxt-line": (
        "kernel", "stat", drop_lines("ctxt"), ': expected a "ctxt" line, found none'
    ),
    "kernel-btime-not-a-number": (
        "kernel", "stat", replace_line(6, "btime soon"),
        ":6: expected btime and a whole number, found 'btime soon'",
    ),
    "kernel-entropy-empty": (
        "kernel", "sys/kernel/random/entropy_avail", empty,
        ": expected the kernel's lines, found an empty file",
    ),
    "processes-stat-cut-before-thread-count": (
        "processes", "1/stat", replace_line(1, "1 (process) S 0 0 0"),
        ":1: expected PID (command) state and at least 18 numbers after the command, "
        "found '1 (process) S 0 0 0'",
    ),
    "net-dev-line-with-eight-counters": (
        "net", "net/dev", replace_line(3, "    lo: 116552027   48510    0    0    0     0  0  0"),
        ":3: expected an interface name, a colon and 16 whole-number counters, "
        "found '    lo: 116552027   48510    0    0    0     0  0  0'",
    ),
    "net-dev-counter-not-a-number": (
        "net", "net/dev", replace_word(6, 1, "lots"),
        ":6: expected an interface name, a colon and 16 whole-number counters, found 'eth0: lots",
    ),
    "net-dev-empty": (
        "net", "net/dev", empty, ": expected the kernel's lines, found an empty file"
    ),
    "disk-mountinfo-cut-short-line": (
        "disk", "1/mountinfo", replace_line(2, "23 27 0:22 / /sys"),
        ":2: expected IDs, major:minor, root, mount point, options, optional fields, '-', type, "
        "source, found '23 27 0:22 / /sys'",
    ),
    "disk-mountinfo-empty": (
        "disk", "1/mountinfo", empty, ": expected the kernel's lines, found an empty file"
    ),
    "diskio-line-with-too-few-counters": (
        "diskio", "diskstats", replace_line(1, "   7       0 loop0 0 0 0"),
        ":1: expected major, minor, device name and at least 11 whole-number counters, "
        "found '   7       0 loop0 0 0 0'",
    ),
    "diskio-counter-not-a-number": (
        "diskio", "diskstats", replace_word(2, 3, "-"),
        ":2: expected major, minor, device name and at least 11 whole-number counters, "
        "found '7 1 loop1 - 0",
    ),
}  # fmt: skip


def damaged_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str, damage) -> Path:
    proc = tmp_path / "proc"
    shutil.copytree(RECORDED / "proc", proc)
    target = proc / file
    target.write_text(damage(target.read_text()))
    monkeypatch.setenv("HOST_PROC", str(proc))
    for variable in ("HOST_SYS", "HOST_VAR", "HOST_RUN", "HOST_DEV"):
        monkeypatch.setenv(variable, str(RECORDED / variable.removeprefix("HOST_").lower()))
    monkeypatch.delenv("HOST_MOUNT_PREFIX", raising=False)
    monkeypatch.delenv("HOST_PROC_MOUNTINFO", raising=False)
    return target


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_file_is_one_error_naming_the_file_the_line_and_what_was_expected(
    case, tmp_path, monkeypatch
):
    plugin_name, file, damage, expected = CASES[case]
    damaged = damaged_tree(tmp_path, monkeypatch, file, damage)
    with pytest.raises(HostFileFormatError) as caught:
        gathering(plugin_name)
    message = str(caught.value)
    assert message.startswith(f"{damaged}{expected}"), message
    assert "\n" not in message


def gathering(plugin_name: str) -> list:
    # cpu reports usage only from its second reading; its raw seconds come at once.
    options = {"collect_cpu_time": True} if plugin_name == "cpu" else {}
    return list(lookup("inputs", plugin_name)(**options).gather())


# disk is left out: it measures the mount points with statvfs(), which the copy has not.
@pytest.mark.parametrize("plugin_name", sorted({case[0] for case in CASES.values()} - {"disk"}))
def test_the_undamaged_copy_gathers_without_error(plugin_name, tmp_path, monkeypatch):
    """The cases above fail because of their damage alone: the same tree, undamaged, gathers."""
    damaged_tree(tmp_path, monkeypatch, "stat", lambda text: text)
    assert gathering(plugin_name)


def test_a_long_damaged_line_is_quoted_cut_with_a_count_of_the_rest(tmp_path, monkeypatch):
    long_line = "cpu0 x " + "7 " * 200
    damaged_tree(tmp_path, monkeypatch, "stat", replace_line(2, long_line))
    with pytest.raises(HostFileFormatError) as caught:
        gathering("cpu")
    assert re.search(r"found 'cpu0 x 7 .{60,80}'… \(\d+ more characters\)$", str(caught.value))
