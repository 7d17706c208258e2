"""`[agent] logfile`: the agent's log lines go to that file instead of stderr."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_logfile_receives_the_log_lines_and_stderr_stays_empty(tmp_path):
    logfile, out = tmp_path / "agent.log", tmp_path / "metrics.out"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\ndebug = true\nlogfile = "{logfile}"\n'  # debug: --once logs its flush
        f'[[inputs.mem]]\n[[outputs.file]]\nfiles = ["{out}"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(config), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("mem,")
    assert " D! [outputs.file] Batch written: 1 metrics" in logfile.read_text()
    assert result.stderr == ""
