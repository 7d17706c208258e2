"""inputs.mem on a recorded /proc/meminfo: Telegraf's field names, types and arithmetic."""

from __future__ import annotations

import pytest

from agent.metric import UInt
from plugins.inputs.mem import Mem

TELEGRAF_LINUX_FIELDS = {
    "active", "available", "available_percent", "buffered", "cached", "commit_limit",
    "committed_as", "dirty", "free", "high_free", "high_total", "huge_page_size",
    "huge_pages_free", "huge_pages_total", "inactive", "low_free", "low_total", "mapped",
    "page_tables", "shared", "slab", "sreclaimable", "sunreclaim", "swap_cached", "swap_free",
    "swap_total", "total", "used", "used_percent", "vmalloc_chunk", "vmalloc_total",
    "vmalloc_used", "write_back", "write_back_tmp",
}  # fmt: skip


@pytest.fixture
def mem(host_step):
    host_step("two-cpus-guest", 0)
    (metric,) = Mem().gather()
    return metric


def test_reports_telegrafs_linux_field_set(mem):
    assert mem.name == "mem"
    assert set(mem.fields) == TELEGRAF_LINUX_FIELDS


def test_sizes_are_unsigned_bytes_and_percentages_floats(mem):
    for name, value in mem.fields.items():
        if name.endswith("_percent"):
            assert type(value) is float, name
        else:
            assert isinstance(value, UInt), name
    assert mem.fields["total"] == 24684084 * 1024
    assert mem.fields["huge_pages_total"] == 0
    assert mem.fields["huge_page_size"] == 2048 * 1024


def test_cached_includes_sreclaimable_and_used_is_total_minus_available(mem):
    kib = 1024
    assert mem.fields["cached"] == (884416 + 250288) * kib
    assert mem.fields["used"] == (24684084 - 24117204) * kib
    used_share = mem.fields["used"] / mem.fields["total"]
    assert mem.fields["used_percent"] == pytest.approx(100 * used_share)
    assert mem.fields["available"] == 24117204 * kib
    assert mem.fields["available_percent"] == pytest.approx(100 * 24117204 / 24684084)


def test_kernel_without_memavailable_estimates_it_from_free_and_cached(tmp_path, monkeypatch):
    (tmp_path / "meminfo").write_text(
        "MemTotal: 1000 kB\nMemFree: 300 kB\nBuffers: 50 kB\nCached: 200 kB\nSReclaimable: 100 kB\n"
    )
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    (metric,) = Mem().gather()
    assert metric.fields["available"] == (300 + 200 + 100) * 1024
    assert metric.fields["used"] == (1000 - 600) * 1024
    assert "dirty" not in metric.fields
    assert metric.fields["high_free"] == 0


def test_meminfo_without_memtotal_is_an_error_naming_the_file(tmp_path, monkeypatch):
    (tmp_path / "meminfo").write_text("Cached: 200 kB\n")
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    with pytest.raises(ValueError, match="meminfo"):
        list(Mem().gather())
