"""agent.host: the HOST_* roots, psutil's /proc, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import host


def test_roots_follow_telegrafs_variables_at_every_call(monkeypatch):
    for variable in ("HOST_PROC", "HOST_SYS", "HOST_ETC", "HOST_VAR", "HOST_RUN", "HOST_DEV"):
        monkeypatch.delenv(variable, raising=False)
    assert host.proc("stat") == Path("/proc/stat")
    assert host.sys_path("block") == Path("/sys/block")
    assert not host.is_redirected("proc")
    monkeypatch.setenv("HOST_PROC", "/hostfs/proc")
    monkeypatch.setenv("HOST_ETC", "/hostfs/etc")
    monkeypatch.setenv("HOST_VAR", "/hostfs/var")
    monkeypatch.setenv("HOST_RUN", "/hostfs/run")
    monkeypatch.setenv("HOST_DEV", "/hostfs/dev")
    assert host.proc("stat") == Path("/hostfs/proc/stat")
    assert host.is_redirected("proc")
    assert host.etc("os-release") == Path("/hostfs/etc/os-release")
    assert host.var("run", "utmp") == Path("/hostfs/var/run/utmp")
    assert host.run("udev") == Path("/hostfs/run/udev")
    assert host.dev("sda") == Path("/hostfs/dev/sda")


def test_mount_prefix_is_empty_unless_set(monkeypatch):
    monkeypatch.delenv("HOST_MOUNT_PREFIX", raising=False)
    assert host.mount_prefix() == ""
    monkeypatch.setenv("HOST_MOUNT_PREFIX", "/hostfs")
    assert host.mount_prefix() == "/hostfs"


def test_psutil_reads_the_proc_that_host_proc_names(monkeypatch, tmp_path):
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    procfs_path = host.psutil_module().PROCFS_PATH
    assert procfs_path == str(tmp_path)
    monkeypatch.delenv("HOST_PROC")
    procfs_path = host.psutil_module().PROCFS_PATH
    assert procfs_path == "/proc"


def test_an_unreadable_file_is_one_error_naming_it(tmp_path):
    with pytest.raises(host.HostFileError) as caught:
        host.read_text(tmp_path / "loadavg")
    assert str(caught.value) == f"cannot read {tmp_path}/loadavg: No such file or directory"
    assert isinstance(caught.value, OSError)
