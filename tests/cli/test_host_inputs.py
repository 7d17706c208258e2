"""The host inputs on this machine, through `agent --test`: Telegraf's measurement, tag and
field names and types; HOST_PROC at a recorded tree; one input failing while others go on."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import HOSTS, REPO

# What Telegraf 1.37.2 emits on Linux (its --test on this kind of machine, and its source for
# what appears only sometimes). Types: u = unsigned, i = signed integer, f = float, s = string.
# Each metric shape: (tags always there, tags sometimes there, fields always, fields sometimes).
TELEGRAF = {
    "system": [
        (set(), set(), {"load1": "f", "load5": "f", "load15": "f", "n_cpus": "i",
                        "n_physical_cpus": "i"}, {"n_users": "i", "n_unique_users": "i"}),
        (set(), set(), {"uptime": "u"}, {}),
        (set(), set(), {"uptime_format": "s"}, {}),
    ],
    "disk": [
        ({"path", "device", "fstype", "mode"}, {"label"},
         {"total": "u", "free": "u", "used": "u", "used_percent": "f", "inodes_total": "u",
          "inodes_free": "u", "inodes_used": "u", "inodes_used_percent": "f"}, {}),
    ],
    "diskio": [
        ({"name"}, {"wwid", "serial"},
         {"reads": "u", "writes": "u", "read_bytes": "u", "write_bytes": "u", "read_time": "u",
          "write_time": "u", "io_time": "u", "weighted_io_time": "u", "iops_in_progress": "u",
          "merged_reads": "u", "merged_writes": "u"},
         {"io_await": "f", "io_svctm": "f", "io_util": "f"}),
    ],
    "net": [
        ({"interface"}, set(),
         {"bytes_sent": "u", "bytes_recv": "u", "packets_sent": "u", "packets_recv": "u",
          "err_in": "u", "err_out": "u", "drop_in": "u", "drop_out": "u", "speed": "i"}, {}),
    ],
    "swap": [
        (set(), set(), {"total": "u", "used": "u", "free": "u", "used_percent": "f"}, {}),
        (set(), set(), {"in": "u", "out": "u"}, {}),
    ],
    "processes": [
        (set(), set(),
         {"blocked": "i", "dead": "i", "idle": "i", "paging": "i", "running": "i",
          "sleeping": "i", "stopped": "i", "total": "i", "total_threads": "i", "unknown": "i",
          "zombies": "i"}, {"parked": "i"}),
    ],
    "kernel": [
        (set(), set(),
         {"boot_time": "i", "context_switches": "i", "entropy_avail": "i", "interrupts": "i",
          "processes_forked": "i"}, {"disk_pages_in": "i", "disk_pages_out": "i"}),
    ],
}  # fmt: skip
_TOKEN = re.compile(r'(?:[^ "\\]|\\.|"(?:[^"\\]|\\.)*")+')
_FIELD = re.compile(r'((?:[^=,\\]|\\.)+)=("(?:[^"\\]|\\.)*"|[^,]+)')
_TAG = re.compile(r"((?:[^=,\\]|\\.)+)=((?:[^,\\]|\\.)+)")


def field_type(text: str) -> str:
    if text.startswith('"'):
        return "s"
    if text in ("true", "false"):
        return "b"
    return text[-1] if text[-1] in "ui" else "f"


def shape(line: str) -> tuple[str, set[str], dict[str, str]]:
    """Measurement, tag keys and field types of one line of `agent --test`."""
    head, fields, _timestamp = _TOKEN.findall(line)
    name, _, tags = head.partition(",")
    tag_keys = {key for key, _ in _TAG.findall(tags)}
    return name, tag_keys, {key: field_type(value) for key, value in _FIELD.findall(fields)}


def agent_test(config_text: str, tmp_path, env: dict[str, str] | None = None):
    config = tmp_path / "agent.toml"
    config.write_text(config_text)
    return subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(config), "--test"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, **(env or {})},
    )  # fmt: skip


def matches(found_tags, found_fields, expected) -> bool:
    tags, optional_tags, fields, optional_fields = expected
    if not tags <= found_tags - {"host"} <= tags | optional_tags:
        return False
    if not set(fields) <= set(found_fields) <= set(fields) | set(optional_fields):
        return False
    return all({**fields, **optional_fields}[name] == kind for name, kind in found_fields.items())


@pytest.mark.parametrize("plugin", sorted(TELEGRAF))
def test_input_on_this_machine_has_telegrafs_names_and_types(plugin, tmp_path):
    result = agent_test(f"[[inputs.{plugin}]]\n", tmp_path)
    assert result.returncode == 0, result.stderr
    shapes = [shape(line) for line in result.stdout.splitlines()]
    assert shapes, f"inputs.{plugin} printed nothing"
    seen = set()
    for name, tags, fields in shapes:
        assert name == plugin
        fitting = [
            i for i, expected in enumerate(TELEGRAF[plugin]) if matches(tags, fields, expected)
        ]
        assert fitting, f"{name} tags {sorted(tags)} fields {fields} is not a Telegraf shape"
        seen.update(fitting)
    assert seen == set(range(len(TELEGRAF[plugin]))), "a metric Telegraf emits is missing"


def test_host_proc_at_a_recorded_tree_reports_the_recorded_memory(tmp_path):
    recorded = HOSTS / "meminfo-minimal" / "step0" / "proc"
    result = agent_test("[[inputs.mem]]\n[[inputs.swap]]\n", tmp_path, {"HOST_PROC": str(recorded)})
    assert result.returncode == 0, result.stderr
    mem = next(line for line in result.stdout.splitlines() if line.startswith("mem,"))
    assert ",total=2097152000u," in mem  # 2048000 kB, not this machine's memory
    assert "swap,host=" in result.stdout and "total=1048576000u" in result.stdout
    with open("/proc/meminfo") as meminfo:
        assert "2048000 kB" not in meminfo.readline()


# Each input with the /proc file it cannot do without, and another input that goes on.
MISSING_FILE = {
    "system": ("loadavg", "mem"),
    "cpu": ("stat", "mem"),
    "mem": ("meminfo", "cpu"),
    "swap": ("meminfo", "cpu"),
}
# cpu with collect_cpu_time prints lines even from a tree that does not change between readings.
OTHER_CONFIG = {"mem": "[[inputs.mem]]\n", "cpu": "[[inputs.cpu]]\n  collect_cpu_time = true\n"}


@pytest.mark.parametrize("plugin", sorted(MISSING_FILE))
def test_an_input_missing_its_file_reports_one_error_naming_it_and_the_others_go_on(
    plugin, tmp_path
):
    missing, other = MISSING_FILE[plugin]
    proc = tmp_path / "proc"
    proc.mkdir()
    recorded = HOSTS / "vm-2cpu" / "step0" / "proc"
    for name in ("cpuinfo", "loadavg", "meminfo", "stat", "uptime", "vmstat"):
        if name != missing:
            (proc / name).write_bytes((recorded / name).read_bytes())
    config = f"[[inputs.{plugin}]]\n{OTHER_CONFIG[other]}"
    result = agent_test(config, tmp_path, {"HOST_PROC": str(proc)})
    assert result.returncode == 1  # as Telegraf's --test: an input recorded an error
    assert {line.split(",")[0] for line in result.stdout.splitlines()} == {other}
    errors = [line for line in result.stderr.splitlines() if " E! " in line]
    assert len(errors) == 1, result.stderr
    assert f"[inputs.{plugin}]" in errors[0]
    assert f"cannot read {proc}/{missing}: No such file or directory" in errors[0]
    assert "Traceback" not in result.stderr


# A damaged file, the input that reads it, its content, and the error after the file's path.
DAMAGED_FILE = {
    "stat": (
        "[[inputs.cpu]]\n  collect_cpu_time = true\n",  # a line from the first gather on
        "cpu  75728 0 264097\n",
        ":1: expected cpu and at least 7 whole-number counters",
    ),
    "meminfo": (
        "[[inputs.mem]]\n",
        "MemTotal:       24684084 kB\nMemFree:  2313",
        ":2: expected a line ending in a newline (the file was cut short)",
    ),
}


@pytest.mark.parametrize("damaged", sorted(DAMAGED_FILE))
def test_a_damaged_file_gives_one_error_naming_its_line_and_the_others_go_on(damaged, tmp_path):
    config, content, expected = DAMAGED_FILE[damaged]
    proc = tmp_path / "proc"
    proc.mkdir()
    recorded = HOSTS / "vm-2cpu" / "step0" / "proc"
    for name in ("cpuinfo", "loadavg", "meminfo", "stat", "uptime"):
        (proc / name).write_bytes((recorded / name).read_bytes())
    (proc / damaged).write_text(content)
    result = agent_test(config + "[[inputs.system]]\n", tmp_path, {"HOST_PROC": str(proc)})
    assert result.returncode == 1
    assert {line.split(",")[0] for line in result.stdout.splitlines()} == {"system"}
    errors = [line for line in result.stderr.splitlines() if " E! " in line]
    assert len(errors) == 1, result.stderr
    assert f"Gather error: {proc}/{damaged}{expected}" in errors[0]
    assert "Traceback" not in result.stderr
