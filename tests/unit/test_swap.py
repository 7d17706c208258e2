"""inputs.swap: sizes from /proc/meminfo, traffic from /proc/vmstat, two metrics."""

from __future__ import annotations

import pytest

from agent.host import HostFileError
from agent.metric import UInt
from plugins.inputs.swap import Swap


def write_host(tmp_path, monkeypatch, meminfo: str, vmstat: str | None) -> None:
    (tmp_path / "meminfo").write_text(meminfo)
    if vmstat is not None:
        (tmp_path / "vmstat").write_text(vmstat)
    monkeypatch.setenv("HOST_PROC", str(tmp_path))


def test_usage_and_traffic_are_two_metrics_with_one_timestamp(host_step):
    host_step("meminfo-minimal", 0)
    usage, traffic = Swap().gather()
    assert (usage.name, traffic.name) == ("swap", "swap")
    assert usage.fields == {
        "free": 768000 * 1024,
        "total": 1024000 * 1024,
        "used": 256000 * 1024,
        "used_percent": 25.0,
    }
    assert traffic.fields == {"in": 100 * 4096, "out": 200 * 4096}
    assert usage.time_ns == traffic.time_ns
    assert all(isinstance(v, UInt) for k, v in usage.fields.items() if k != "used_percent")
    assert type(usage.fields["used_percent"]) is float
    assert all(isinstance(v, UInt) for v in traffic.fields.values())


def test_no_swap_is_zero_percent_not_a_division_by_zero(host_step):
    host_step("no-swap", 0)
    usage, traffic = Swap().gather()
    assert usage.fields == {"free": 0, "total": 0, "used": 0, "used_percent": 0.0}
    assert traffic.fields == {"in": 0, "out": 0}


def test_a_vmstat_without_swap_counters_reports_zero_traffic(tmp_path, monkeypatch):
    write_host(tmp_path, monkeypatch, "SwapTotal: 100 kB\nSwapFree: 100 kB\n", "pgpgin 5\n")
    _, traffic = Swap().gather()
    assert traffic.fields == {"in": 0, "out": 0}


def test_a_missing_vmstat_is_an_error_naming_it(tmp_path, monkeypatch):
    write_host(tmp_path, monkeypatch, "SwapTotal: 0 kB\nSwapFree: 0 kB\n", None)
    with pytest.raises(HostFileError, match=f"cannot read {tmp_path}/vmstat"):
        list(Swap().gather())


def test_a_meminfo_without_swap_lines_is_an_error_naming_it(tmp_path, monkeypatch):
    write_host(tmp_path, monkeypatch, "MemTotal: 100 kB\n", "pswpin 0\n")
    with pytest.raises(ValueError, match='meminfo: expected a "SwapTotal:" and a "SwapFree:" line'):
        list(Swap().gather())
