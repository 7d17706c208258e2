"""The systemd units, as scripts/install renders them, pass systemd-analyze verify."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

UNITS = ["agent.service", "agent-sink.service"]


@pytest.fixture
def rendered(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (scripts/test does)")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    os.symlink(os.path.join(os.path.dirname(sys.executable), "agent"), prefix / "bin" / "agent")
    units = tmp_path / "units"
    result = subprocess.run(
        [str(REPO / "scripts" / "install"), "--render-units", str(units), "--prefix", str(prefix)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return units, prefix


@pytest.mark.parametrize("unit", UNITS)
def test_unit_passes_systemd_analyze_verify(rendered, unit):
    units, prefix = rendered
    text = (units / unit).read_text()
    assert f"ExecStart={prefix}/bin/agent" in text
    result = subprocess.run(
        ["systemd-analyze", "verify", str(units / unit)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure_is_low(rendered, unit):
    units, _ = rendered
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(units / unit)],
        capture_output=True,
        text=True,
    )
    exposure = float(result.stdout.split("Overall exposure level for")[1].split(":")[1].split()[0])
    assert exposure <= 2.0, result.stdout[-500:]


def test_agent_unit_reloads_with_sighup_and_keeps_state_for_the_disk_buffer():
    text = (REPO / "systemd" / "agent.service").read_text()
    for line in (
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/default/agent",
        "StateDirectory=agent",
        "--config-directory /etc/agent/agent.d",
    ):
        assert line in text
