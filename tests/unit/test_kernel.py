"""inputs.kernel: /proc/stat counters, entropy, and the optional ksm and psi readings."""

from __future__ import annotations

import pytest

from agent.config import ConfigError, load
from agent.host import HostFileError
from agent.metric import UInt
from plugins.inputs.kernel import KSM_FILES, Kernel

# /proc/pressure lines reported: cpu has no `full` line in Telegraf's output.
PRESSURE_LINES = [("cpu", "some"), ("memory", "some"), ("memory", "full"), ("io", "some"),
                  ("io", "full")]  # fmt: skip


def test_recorded_counters_are_signed_integers_with_telegrafs_names(host_step):
    host_step("vm-2cpu", 0)
    (metric,) = Kernel().gather()
    assert metric.name == "kernel" and metric.tags == {}
    assert metric.fields == {
        "boot_time": 1795568615,
        "context_switches": 3515173,
        "entropy_avail": 256,
        "interrupts": 1403566,
        "processes_forked": 37438,
    }
    assert all(type(value) is int for value in metric.fields.values())


def test_ksm_adds_its_counters(host_step):
    host_step("vm-2cpu", 0)
    (metric,) = Kernel(collect=["ksm"]).gather()
    ksm = {name for name in metric.fields if name.startswith("ksm_")}
    assert ksm == {f"ksm_{name}" for name in (*KSM_FILES, "general_profit")}
    assert metric.fields["ksm_sleep_millisecs"] == 20


def test_psi_adds_pressure_metrics_without_cpu_full(host_step):
    host_step("vm-2cpu", 0)
    _, *pressure = Kernel(collect=["psi"]).gather()
    assert [(m.tags["resource"], m.tags["type"], list(m.fields)) for m in pressure] == [
        (resource, kind, fields)
        for resource, kind in PRESSURE_LINES
        for fields in (["total"], ["avg10", "avg300", "avg60"])
    ]
    cpu_total, cpu_averages = pressure[:2]
    assert cpu_total.fields == {"total": 206325746}
    assert isinstance(cpu_total.fields["total"], UInt)
    assert cpu_averages.fields == {"avg10": 0.55, "avg300": 3.1, "avg60": 1.09}


def test_an_old_kernels_page_line_gives_disk_pages(tmp_path, monkeypatch):
    stat = "cpu 1 2 3\npage 5741 1808\nctxt 10\nbtime 5\nintr 7 1 1\nprocesses 3\n"
    (tmp_path / "stat").write_text(stat)
    (tmp_path / "sys" / "kernel" / "random").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "random" / "entropy_avail").write_text("3000\n")
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    (metric,) = Kernel().gather()
    assert metric.fields == {
        "boot_time": 5, "context_switches": 10, "disk_pages_in": 5741, "disk_pages_out": 1808,
        "entropy_avail": 3000, "interrupts": 7, "processes_forked": 3,
    }  # fmt: skip


def test_a_missing_entropy_file_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / "stat").write_text("ctxt 10\nbtime 5\nintr 7\nprocesses 3\n")
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    with pytest.raises(HostFileError, match="random/entropy_avail"):
        list(Kernel().gather())


def test_ksm_without_kernel_support_is_an_error_naming_the_directory(host_step, monkeypatch):
    host_step("vm-2cpu", 0)
    monkeypatch.setenv("HOST_SYS", "/nonexistent")
    with pytest.raises(FileNotFoundError, match="/nonexistent/kernel/mm/ksm is missing"):
        list(Kernel(collect=["ksm"]).gather())


def test_collect_takes_only_ksm_and_psi(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('[[inputs.kernel]]\ncollect = ["psi", "kms"]\n')
    with pytest.raises(ConfigError, match=r"agent.toml:2: inputs.kernel: collect\[1\]"):
        load([config])
