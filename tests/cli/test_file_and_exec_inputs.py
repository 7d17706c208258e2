"""`agent --test` with inputs.file and inputs.exec: what the file holds and what the command
prints come out as line protocol; a bad line is one error naming where it is."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

T1 = 1_700_000_000_000_000_000


def agent_test(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(config), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def write_config(tmp_path: Path, data: str) -> Path:
    (tmp_path / "metrics.lp").write_text(data)
    command = tmp_path / "probe.sh"
    command.write_text(f'#!/bin/sh\necho "probe,zone=$ZONE ok=true {T1}"\n')
    command.chmod(0o755)
    config = tmp_path / "agent.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [agent]
              omit_hostname = true
            [[inputs.file]]
              files = ["{tmp_path}/*.lp"]
              file_tag = "source"
            [[inputs.exec]]
              commands = ["{command}"]
              environment = ["ZONE=eu"]
              timeout = "2s"
              data_format = "influx"
            """
        )
    )
    return config


def test_test_mode_prints_what_the_file_holds_and_what_the_command_prints(tmp_path):
    config = write_config(tmp_path, f"disk,mount=/ used=12i,free=3u {T1}\nload v=0.5 {T1}\n")
    result = agent_test(config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"disk,mount=/,source=metrics.lp free=3u,used=12i {T1}",
        f"load,source=metrics.lp v=0.5 {T1}",
        f"probe,zone=eu ok=true {T1}",
    ]


def test_a_bad_line_fails_the_test_run_naming_file_line_and_column_and_the_rest_is_printed(
    tmp_path,
):
    config = write_config(tmp_path, f"good v=1i {T1}\ngood v=2i,oops {T1}\n")
    result = agent_test(config)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"good,source=metrics.lp v=1i {T1}",
        f"probe,zone=eu ok=true {T1}",
    ]
    (error,) = result.stderr.splitlines()
    assert f"[inputs.file] Gather error: {tmp_path}/metrics.lp:2:15: expected '='" in error
