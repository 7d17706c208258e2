"""inputs.processes: processes by state from /proc/PID/stat, Telegraf's Linux fields."""

from __future__ import annotations

import pytest

from plugins.inputs.processes import Processes

TELEGRAF_LINUX_FIELDS = ["blocked", "dead", "idle", "paging", "running", "sleeping", "stopped",
                         "total", "total_threads", "unknown", "zombies"]  # fmt: skip


def write_processes(proc, states_and_threads) -> None:
    for pid, (state, threads) in enumerate(states_and_threads, start=1):
        (proc / str(pid)).mkdir()
        rest = " ".join(["0"] * 16)  # ppid … nice: 16 fields before num_threads
        # A command name with spaces and parentheses: only the last ")" ends it.
        (proc / str(pid) / "stat").write_text(f"{pid} (odd) name) {state} {rest} {threads} 0 0\n")


@pytest.fixture
def proc(tmp_path, monkeypatch):
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    (tmp_path / "self").mkdir()  # not a process directory
    return tmp_path


def test_every_state_is_counted_in_its_field(proc):
    write_processes(proc, [("R", 1), ("S", 4), ("S", 2), ("D", 1), ("Z", 1), ("T", 1),
                           ("t", 1), ("X", 1), ("W", 1), ("I", 1)])  # fmt: skip
    (metric,) = Processes().gather()
    assert metric.name == "processes" and metric.tags == {}
    assert metric.fields == {
        "blocked": 1, "dead": 1, "idle": 1, "paging": 1, "running": 1, "sleeping": 2,
        "stopped": 2, "total": 10, "total_threads": 14, "unknown": 0, "zombies": 1,
    }  # fmt: skip
    assert all(type(value) is int for value in metric.fields.values())


def test_parked_appears_only_when_some_process_is_parked_and_counts_them(proc):
    write_processes(proc, [("S", 1), ("P", 1), ("P", 1)])
    (metric,) = Processes().gather()
    assert metric.fields["parked"] == 2
    assert list(metric.fields) == sorted([*TELEGRAF_LINUX_FIELDS, "parked"])


def test_an_unknown_state_counts_only_in_the_total(proc):
    write_processes(proc, [("S", 1), ("K", 3)])
    (metric,) = Processes().gather()
    assert metric.fields["total"] == 2 and metric.fields["sleeping"] == 1
    assert metric.fields["unknown"] == 0 and metric.fields["total_threads"] == 4


def test_recorded_host_counts_all_its_processes(host_step):
    tree = host_step("vm-2cpu", 0)
    (metric,) = Processes().gather()
    assert list(metric.fields) == TELEGRAF_LINUX_FIELDS
    assert metric.fields["total"] == len(list((tree / "proc").glob("[0-9]*/stat")))


def test_a_directory_without_processes_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"no process directories in {tmp_path}"):
        list(Processes().gather())
