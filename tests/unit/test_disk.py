"""inputs.disk: the mount table, Telegraf's filters and arithmetic, and HOST_MOUNT_PREFIX.

statvfs() is the system boundary; tests answer it from a table instead of the real mounts.
"""

from __future__ import annotations

import os

import pytest

import plugins.inputs.disk
from agent.config import load
from agent.host import HostFileError
from agent.metric import UInt
from plugins.inputs.disk import Disk

#                 bsize frsize blocks  bfree   bavail  files  ffree  favail flag namemax
ROOT_FS = (4096, 4096, 1000, 400, 300, 100, 60, 60, 0, 255)
BOOT_FS = (1024, 1024, 2000, 1000, 900, 50, 50, 50, 1, 255)


def mountinfo(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


ROOT = "26 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw"
BOOT = "27 26 8:2 / /boot ro,relatime - ext4 /dev/sda2 ro"
PROC = "21 26 0:20 / /proc rw,relatime - proc proc rw"


@pytest.fixture
def proc(tmp_path, monkeypatch):
    """A HOST_PROC with an empty proc/1/ for the test to fill; /dev and /sys empty too."""
    (tmp_path / "proc" / "1").mkdir(parents=True)
    for variable, name in (("HOST_PROC", "proc"), ("HOST_SYS", "sys"), ("HOST_DEV", "dev"),
                           ("HOST_RUN", "run")):  # fmt: skip
        monkeypatch.setenv(variable, str(tmp_path / name))
    monkeypatch.delenv("HOST_MOUNT_PREFIX", raising=False)
    monkeypatch.delenv("HOST_PROC_MOUNTINFO", raising=False)
    return tmp_path / "proc"


@pytest.fixture
def statvfs(monkeypatch):
    """Answer statvfs() from a dict the test fills; the paths asked are recorded."""
    answers: dict[str, tuple] = {}
    asked: list[str] = []

    def fake(path: str) -> os.statvfs_result:
        asked.append(path)
        if path not in answers:
            raise FileNotFoundError(2, "No such file or directory", path)
        return os.statvfs_result(answers[path])

    monkeypatch.setattr(plugins.inputs.disk, "statvfs", fake)
    fake.answers, fake.asked = answers, asked
    return fake


def test_fields_follow_telegrafs_arithmetic_and_types(proc, statvfs):
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT))
    statvfs.answers["/"] = ROOT_FS
    (metric,) = Disk().gather()
    assert metric.name == "disk"
    assert metric.tags == {"path": "/", "device": "sda1", "fstype": "ext4", "mode": "rw"}
    assert metric.fields == {
        "free": 300 * 4096,  # f_bavail: what unprivileged users can still use
        "inodes_free": 60,
        "inodes_total": 100,
        "inodes_used": 40,
        "inodes_used_percent": 40.0,
        "total": 1000 * 4096,
        "used": 600 * 4096,  # f_blocks - f_bfree
        "used_percent": pytest.approx(100 * 600 / 900),  # used / (used + free)
    }
    for name, value in metric.fields.items():
        expected_type = float if name.endswith("_percent") else UInt
        assert isinstance(value, expected_type), name
    assert list(metric.fields) == sorted(metric.fields)


def test_file_systems_of_size_zero_and_unreadable_mounts_are_skipped(proc, statvfs):
    (proc / "1" / "mountinfo").write_text(mountinfo(PROC, ROOT, BOOT))
    statvfs.answers.update({"/proc": (4096, 4096, 0, 0, 0, 0, 0, 0, 0, 255), "/": ROOT_FS})
    assert [m.tags["path"] for m in Disk().gather()] == ["/"]  # /boot: statvfs failed


def test_host_mount_prefix_reads_under_it_and_reports_paths_without_it(proc, statvfs, monkeypatch):
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT, BOOT))
    statvfs.answers.update({"/hostfs": ROOT_FS, "/hostfs/boot": BOOT_FS})
    monkeypatch.setenv("HOST_MOUNT_PREFIX", "/hostfs")
    metrics = list(Disk().gather())
    assert statvfs.asked == ["/hostfs", "/hostfs/boot"]
    assert [(m.tags["path"], m.fields["total"]) for m in metrics] == [
        ("/", 1000 * 4096),
        ("/boot", 2000 * 1024),
    ]


def test_host_mount_prefix_reports_the_prefixed_mount_once(proc, statvfs, monkeypatch):
    own_view = "40 26 8:1 / /hostfs rw,relatime - ext4 /dev/sda1 rw"
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT, own_view))
    statvfs.answers["/hostfs"] = ROOT_FS
    monkeypatch.setenv("HOST_MOUNT_PREFIX", "/hostfs")
    assert [m.tags["path"] for m in Disk().gather()] == ["/"]


def test_mount_points_option_keeps_only_those(proc, statvfs):
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT, BOOT))
    statvfs.answers.update({"/": ROOT_FS, "/boot": BOOT_FS})
    assert [m.tags["path"] for m in Disk(mount_points=["/boot"]).gather()] == ["/boot"]


def test_ignore_fs_and_ignore_mount_opts_drop_mounts(proc, statvfs):
    tmpfs = "29 26 0:45 / /run rw,nosuid - tmpfs tmpfs rw"
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT, BOOT, tmpfs))
    statvfs.answers.update({"/": ROOT_FS, "/boot": BOOT_FS, "/run": ROOT_FS})
    plugin = Disk(ignore_fs=["tmpfs"], ignore_mount_opts=["ro"])
    assert [m.tags["path"] for m in plugin.gather()] == ["/"]


def test_bind_mounts_can_be_ignored_with_the_bind_option(proc, statvfs):
    bind = "28 26 8:1 /srv/data /data rw,relatime - ext4 /dev/sda1 rw"
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT, bind))
    statvfs.answers.update({"/": ROOT_FS, "/data": ROOT_FS})
    assert [m.tags["path"] for m in Disk().gather()] == ["/", "/data"]
    assert [m.tags["path"] for m in Disk(ignore_mount_opts=["bind"]).gather()] == ["/"]


def test_old_kernels_mounts_file_is_read_when_mountinfo_is_missing(proc, statvfs):
    (proc / "1" / "mounts").write_text("/dev/sda1 / ext4 rw,relatime 0 0\n")
    statvfs.answers["/"] = ROOT_FS
    (metric,) = Disk().gather()
    assert metric.tags["device"] == "sda1" and metric.tags["mode"] == "rw"


def test_self_mountinfo_is_read_when_pid_1_is_not_visible(proc, statvfs):
    (proc / "1").rmdir()
    (proc / "self").mkdir()
    (proc / "self" / "mountinfo").write_text(mountinfo(ROOT))
    statvfs.answers["/"] = ROOT_FS
    assert [m.tags["path"] for m in Disk().gather()] == ["/"]


def test_no_mount_table_is_an_error_naming_the_file(proc, statvfs):
    with pytest.raises(HostFileError, match=f"cannot read {proc}/1/mountinfo"):
        list(Disk().gather())


def test_a_label_from_udev_data_becomes_a_tag(proc, statvfs, tmp_path):
    # A regular file stands in for the device node; its st_rdev is 0:0.
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "sda1").touch()
    (tmp_path / "run" / "udev" / "data").mkdir(parents=True)
    (tmp_path / "run" / "udev" / "data" / "b0:0").write_text("E:ID_FS_LABEL=system\n")
    (proc / "1" / "mountinfo").write_text(mountinfo(ROOT))
    statvfs.answers["/"] = ROOT_FS
    (metric,) = Disk().gather()
    assert metric.tags["label"] == "system"


def test_the_sample_config_leaves_out_tmpfs_and_overlay_mounts_that_the_default_reports(
    proc, statvfs, tmp_path
):
    (proc / "1" / "mountinfo").write_text(mountinfo(
        ROOT,
        "28 26 0:25 / /run rw,nosuid - tmpfs tmpfs rw",
        "29 26 0:26 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw",
    ))  # fmt: skip
    for path in ("/", "/run", "/var/lib/docker/overlay2/x/merged"):
        statvfs.answers[path] = ROOT_FS
    sample = tmp_path / "disk.conf"
    sample.write_text(Disk.SAMPLE_CONFIG)
    (configured,) = load([sample]).inputs

    def fstypes(plugin: Disk) -> list[str]:
        return [metric.tags["fstype"] for metric in plugin.gather()]

    assert fstypes(configured.plugin) == ["ext4"]
    assert fstypes(Disk()) == ["ext4", "tmpfs", "overlay"]
