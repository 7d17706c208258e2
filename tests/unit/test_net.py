"""inputs.net: /proc/net/dev (HOST_PROC honoured), Telegraf's interface choice."""

from __future__ import annotations

from types import SimpleNamespace

import psutil
import pytest

import plugins.inputs.net
from agent.host import HostFileError
from agent.metric import UInt
from plugins.inputs.net import InterfaceCounters, Net

COUNTERS = ("bytes_recv", "bytes_sent", "drop_in", "drop_out", "err_in", "err_out",
            "packets_recv", "packets_sent")  # fmt: skip


def test_with_host_proc_every_interface_is_reported_as_telegraf_does(host_step):
    host_step("vm-2cpu", 0)
    metrics = list(Net().gather())
    assert [m.tags for m in metrics] == [
        {"interface": name} for name in ("lo", "ifb0", "ifb1", "eth0")
    ]
    eth0 = metrics[-1]
    assert eth0.name == "net"
    assert list(eth0.fields) == sorted([*COUNTERS, "speed"])
    assert all(isinstance(eth0.fields[name], UInt) for name in COUNTERS)
    assert eth0.fields["bytes_recv"] == 465199612 and eth0.fields["packets_sent"] == 21560
    assert eth0.fields["speed"] == -1 and type(eth0.fields["speed"]) is int


def test_interfaces_option_takes_globs(host_step):
    host_step("vm-2cpu", 0)
    plugin = Net(interfaces=["eth*", "lo"])
    assert [m.tags["interface"] for m in plugin.gather()] == ["lo", "eth0"]


def test_speed_is_read_from_sysfs(host_step, tmp_path, monkeypatch):
    host_step("vm-2cpu", 0)
    (tmp_path / "class" / "net" / "eth0").mkdir(parents=True)
    (tmp_path / "class" / "net" / "eth0" / "speed").write_text("10000\n")
    monkeypatch.setenv("HOST_SYS", str(tmp_path))
    speeds = {m.tags["interface"]: m.fields["speed"] for m in Net().gather()}
    assert speeds == {"lo": -1, "ifb0": -1, "ifb1": -1, "eth0": 10000}


def test_without_host_proc_only_up_non_loopback_interfaces_are_reported(monkeypatch):
    monkeypatch.delenv("HOST_PROC", raising=False)
    zero = InterfaceCounters(*[0] * len(InterfaceCounters._fields))
    counters = {"lo": zero, "eth0": zero, "eth1": zero, "gone0": zero}
    stats = {
        "lo": SimpleNamespace(isup=True, flags="up,loopback,running"),
        "eth0": SimpleNamespace(isup=True, flags="up,broadcast,running,multicast"),
        "eth1": SimpleNamespace(isup=False, flags="broadcast,multicast"),
    }
    monkeypatch.setattr(plugins.inputs.net, "read_net_dev", lambda: counters)
    monkeypatch.setattr(psutil, "net_if_stats", lambda: stats)
    assert [m.tags["interface"] for m in Net().gather()] == ["eth0"]
    named = Net(interfaces=["eth1", "lo"])  # named interfaces are reported whatever their state
    assert [m.tags["interface"] for m in named.gather()] == ["lo", "eth1"]


def test_a_missing_net_dev_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    with pytest.raises(HostFileError, match=f"cannot read {tmp_path}/net/dev"):
        list(Net().gather())
