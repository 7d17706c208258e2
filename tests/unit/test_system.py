"""inputs.system on recorded and hand-made trees: Telegraf's three metrics, names and types."""

from __future__ import annotations

import struct

import pytest

from agent.host import HostFileError
from agent.metric import UInt
from plugins.inputs.system import System, format_uptime

UTMP = struct.Struct("<hxxi32s4s32s256s")  # the head of a 384-byte Linux utmp record


def utmp_record(kind: int, user: str) -> bytes:
    head = UTMP.pack(kind, 100, b"pts/0", b"ts/0", user.encode(), b"10.0.0.1")
    return head.ljust(384, b"\0")


@pytest.fixture
def recorded(host_step):
    host_step("vm-2cpu", 0)
    return list(System().gather())


def test_three_metrics_as_telegraf_with_one_timestamp(recorded):
    assert [m.name for m in recorded] == ["system"] * 3
    assert [list(m.fields) for m in recorded] == [
        ["load1", "load15", "load5", "n_cpus", "n_physical_cpus"],
        ["uptime"],
        ["uptime_format"],
    ]
    assert len({m.time_ns for m in recorded}) == 1
    assert all(m.tags == {} for m in recorded)


def test_values_and_types_come_from_the_recorded_files(recorded):
    load, uptime, formatted = recorded
    assert load.fields == {
        "load1": 0.37, "load15": 0.71, "load5": 0.5, "n_cpus": 2, "n_physical_cpus": 2,
    }  # fmt: skip
    assert type(load.fields["load1"]) is float and type(load.fields["n_cpus"]) is int
    assert uptime.fields == {"uptime": 1795}  # 1794.17 s, rounded up as sysinfo() does
    assert isinstance(uptime.fields["uptime"], UInt)
    assert formatted.fields == {"uptime_format": " 0:29"}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, " 0:00"), (59 * 60 + 59, " 0:59"), (10 * 3600, "10:00"), (86400 + 3660, "1 day,  1:01"),
     (2 * 86400 + 23 * 3600, "2 days, 23:00")],
)  # fmt: skip
def test_uptime_format_is_telegrafs(seconds, text):
    assert format_uptime(seconds) == text


def test_logged_in_users_come_from_utmp_user_processes(host_step, monkeypatch, tmp_path):
    host_step("vm-2cpu", 0)
    (tmp_path / "run").mkdir()
    records = [utmp_record(7, "alice"), utmp_record(7, "bob"), utmp_record(7, "alice"),
               utmp_record(8, "carol"), utmp_record(2, "reboot")]  # fmt: skip
    (tmp_path / "run" / "utmp").write_bytes(b"".join(records))
    monkeypatch.setenv("HOST_VAR", str(tmp_path))
    load, _, _ = System().gather()
    assert load.fields["n_users"] == 3
    assert load.fields["n_unique_users"] == 2


def test_without_utmp_the_user_fields_are_left_out(recorded):
    assert "n_users" not in recorded[0].fields
    assert "n_unique_users" not in recorded[0].fields


def test_physical_cpus_fall_back_to_cpuinfo_without_sysfs_topology(tmp_path, monkeypatch):
    sections = [f"processor\t: {n}\nphysical id\t: {n // 4}\ncpu cores\t: 2\n\n" for n in range(8)]
    (tmp_path / "cpuinfo").write_text("".join(sections))
    (tmp_path / "loadavg").write_text("1.00 2.00 3.00 1/100 42\n")
    (tmp_path / "uptime").write_text("90061.50 10.00\n")
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    monkeypatch.setenv("HOST_SYS", str(tmp_path / "no-sys"))
    load, uptime, formatted = System().gather()
    assert load.fields["n_cpus"] == 8
    assert load.fields["n_physical_cpus"] == 4  # two packages of two cores
    assert uptime.fields["uptime"] == 90062
    assert formatted.fields["uptime_format"] == "1 day,  1:01"


def test_logical_cpus_fall_back_to_proc_stat_without_processor_lines(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text("Hardware\t: some board\n")
    (tmp_path / "stat").write_text("cpu  1 2 3\ncpu0 1 2 3\ncpu1 1 2 3\ncpu2 1 2 3\nintr 5\n")
    (tmp_path / "loadavg").write_text("0.00 0.00 0.00 1/1 1\n")
    (tmp_path / "uptime").write_text("5.00 1.00\n")
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    monkeypatch.setenv("HOST_SYS", str(tmp_path / "no-sys"))
    load, _, _ = System().gather()
    assert load.fields["n_cpus"] == 3


def test_a_missing_loadavg_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    with pytest.raises(HostFileError, match=f"cannot read {tmp_path}/loadavg"):
        list(System().gather())
