"""inputs.diskio: /proc/diskstats counters, Telegraf's rates from the second gather, device
selection, and the tags that come from udev and sysfs."""

from __future__ import annotations

import logging
import time

import pytest

from agent.host import HostFileError
from agent.metric import UInt
from plugins.inputs.diskio import DiskIO

COUNTERS = (
    "io_time", "iops_in_progress", "merged_reads", "merged_writes", "read_bytes", "read_time",
    "reads", "weighted_io_time", "write_bytes", "write_time", "writes",
)  # fmt: skip


def diskstats_line(name: str, reads=0, read_time=0, writes=0, write_time=0, io_time=0) -> str:
    #          major minor name reads merged sectors time writes merged sectors time
    #          in-flight io_time weighted
    return (
        f"   8 0 {name} {reads} 2 {reads * 8} {read_time} {writes} 3 {writes * 8} {write_time} "
        f"1 {io_time} {read_time + write_time} 0 0 0 0\n"
    )


@pytest.fixture
def host(tmp_path, monkeypatch):
    """Empty HOST_PROC, HOST_SYS, HOST_DEV, HOST_RUN under tmp_path."""
    for name in ("proc", "sys", "dev", "run"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(f"HOST_{name.upper()}", str(tmp_path / name))
    return tmp_path


def test_recorded_counters_with_telegrafs_names_and_unsigned_types(host_step):
    host_step("vm-2cpu", 0)
    (vda,) = DiskIO().gather()  # loop0-7 and zram0 have only zero counters: left out
    assert vda.name == "diskio"
    assert vda.tags == {"name": "vda"}
    assert list(vda.fields) == sorted(COUNTERS)
    assert all(isinstance(value, UInt) for value in vda.fields.values())
    assert vda.fields["reads"] == 127378
    assert vda.fields["read_bytes"] == 4882954 * 512  # sectors of 512 bytes
    assert vda.fields["write_bytes"] == 6920104 * 512
    assert vda.fields["weighted_io_time"] == 125563


def test_second_gather_adds_await_svctm_and_util_over_the_interval(host, monkeypatch):
    clock = iter([1_000_000_000_000, 1_010_000_000_000])  # 10 s apart
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))
    diskstats = host / "proc" / "diskstats"
    plugin = DiskIO()
    diskstats.write_text(diskstats_line("sda", reads=100, read_time=50, writes=100, io_time=200))
    (first,) = plugin.gather()
    assert "io_util" not in first.fields
    diskstats.write_text(
        diskstats_line("sda", reads=140, read_time=130, writes=160, write_time=120, io_time=1200)
    )
    (second,) = plugin.gather()
    # 100 requests took 80 + 120 ms in total; the device was busy 1000 ms of 10000 ms.
    assert second.fields["io_await"] == pytest.approx(2.0)
    assert second.fields["io_svctm"] == pytest.approx(10.0)
    assert second.fields["io_util"] == pytest.approx(10.0)
    assert list(second.fields) == sorted(second.fields)


def test_counters_that_went_backwards_give_no_rates(host):
    diskstats = host / "proc" / "diskstats"
    plugin = DiskIO()
    diskstats.write_text(diskstats_line("sda", reads=100, io_time=200))
    list(plugin.gather())
    diskstats.write_text(diskstats_line("sda", reads=5, io_time=300))
    (metric,) = plugin.gather()
    assert not {"io_await", "io_svctm", "io_util"} & set(metric.fields)
    assert metric.fields["reads"] == 5


def test_devices_selects_by_name_glob_or_dev_path(host):
    (host / "proc" / "diskstats").write_text(
        diskstats_line("sda", reads=1) + diskstats_line("sdb", reads=1) + diskstats_line("vda", 1)
    )
    (host / "dev" / "disk" / "by-id").mkdir(parents=True)
    (host / "dev" / "sdb").touch()
    (host / "dev" / "disk" / "by-id" / "ata-disk-2").symlink_to("../../sdb")

    def names(devices):
        return [m.tags["name"] for m in DiskIO(devices=devices).gather()]

    assert names([]) == ["sda", "sdb", "vda"]
    assert names(["vda"]) == ["vda"]
    assert names(["sd*"]) == ["sda", "sdb"]
    assert names(["/dev/disk/by-id/ata-disk-2"]) == ["sdb"]


def test_a_device_pattern_of_braces_alone_is_a_glob(host):
    (host / "proc" / "diskstats").write_text(
        diskstats_line("sda", reads=1) + diskstats_line("sdb", reads=1) + diskstats_line("sdc", 1)
    )
    assert [m.tags["name"] for m in DiskIO(devices=["sd{a,c}"]).gather()] == ["sda", "sdc"]


def udev_disk(host, name: str, udev_lines: str) -> None:
    """A device node (a regular file: st_rdev 0:0) and its udev database entry."""
    (host / "dev" / name).touch()
    (host / "run" / "udev" / "data").mkdir(parents=True, exist_ok=True)
    (host / "run" / "udev" / "data" / "b0:0").write_text(udev_lines)


def test_name_templates_and_device_tags_come_from_udev(host):
    (host / "proc" / "diskstats").write_text(diskstats_line("dm-0", reads=1))
    udev_disk(host, "dm-0", "S:mapper/vg-root\nE:DM_VG_NAME=vg\nE:DM_LV_NAME=root\n"
              "E:ID_FS_TYPE=ext4\n")  # fmt: skip
    plugin = DiskIO(
        name_templates=["$ID_FS_LABEL", "${DM_VG_NAME}/$DM_LV_NAME"],
        device_tags=["ID_FS_TYPE", "ID_FS_USAGE"],
    )
    (metric,) = plugin.gather()
    assert metric.tags == {"name": "vg/root", "ID_FS_TYPE": "ext4"}


def test_a_device_glob_also_matches_udev_links(host):
    (host / "proc" / "diskstats").write_text(diskstats_line("dm-0", reads=1))
    udev_disk(host, "dm-0", "S:disk/by-label/data\nE:ID_FS_TYPE=ext4\n")
    assert [m.tags["name"] for m in DiskIO(devices=["disk/by-label/*"]).gather()] == ["dm-0"]


def test_serial_tag_unless_skipped_and_wwid_from_sysfs(host):
    (host / "proc" / "diskstats").write_text(diskstats_line("sda", 1) + diskstats_line("sdb", 1))
    udev_disk(host, "sda", "E:ID_SERIAL=WDC_1234\n")
    (host / "sys" / "block" / "sdb").mkdir(parents=True)
    (host / "sys" / "block" / "sdb" / "wwid").write_text("naa.5000c500a1b2c3d4\n")
    assert [m.tags for m in DiskIO().gather()] == [
        {"name": "sda"},
        {"name": "sdb", "wwid": "naa.5000c500a1b2c3d4"},
    ]
    tags = [m.tags for m in DiskIO(skip_serial_number=False).gather()]
    assert [t["serial"] for t in tags] == ["WDC_1234", "unknown"]


def test_missing_udev_data_warns_once_per_device_and_keeps_the_kernel_name(host, caplog):
    (host / "proc" / "diskstats").write_text(diskstats_line("sda", reads=1))
    plugin = DiskIO(name_templates=["$ID_FS_LABEL"])
    with caplog.at_level(logging.WARNING):
        assert [m.tags["name"] for m in plugin.gather()] == ["sda"]
        list(plugin.gather())
    warnings = [r.getMessage() for r in caplog.records if r.name == "inputs.diskio"]
    assert len(warnings) == 1 and 'No udev data for device "sda"' in warnings[0]


def test_a_missing_diskstats_is_an_error_naming_it(host):
    with pytest.raises(HostFileError, match="diskstats"):
        list(DiskIO().gather())
