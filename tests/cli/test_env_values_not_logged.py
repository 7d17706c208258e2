"""The agent process never writes a value from the environment to its log: it writes the
variable's name, `${NAME}`, where the value would be."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import REPO

ENV = {
    "REDACT_OUT": "/nonexistent-secret-dir/secret-metrics.lp",
    "REDACT_DC": "secret-dc-7",
    "REDACT_HOST": "secret-host-9",
    "REDACT_ZONE": "secret-zone-3",
}
CONFIG = """\
[global_tags]
dc = "${REDACT_DC}"
[agent]
hostname = "${REDACT_HOST}"
interval = "1s"
flush_interval = "1s"
[[inputs.mem]]
[[outputs.file]]
files = ["${REDACT_OUT}"]
"""


def assert_no_secrets(text: str) -> None:
    for name, value in ENV.items():
        assert value not in text, f"the value of {name} was logged"
    assert "secret" not in text


def test_once_with_debug_writes_variable_names_never_their_values(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(config), "--once", "--debug"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, **ENV},
    )  # fmt: skip
    assert "[outputs.file] Write failed: cannot open ${REDACT_OUT}" in result.stderr
    assert_no_secrets(result.stderr)


class AgentProcess:
    """The agent as a service, its stderr read line by line as it comes."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent", "-config", str(config)],
            stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **ENV},
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, fragment: str, timeout_s: float = 30) -> str:
        """The first line with `fragment`; queue.Empty if none came within timeout_s (the
        agent keeps logging, so a line that never comes must not keep this waiting)."""
        deadline = time.monotonic() + timeout_s
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            self.seen.append(line)
            if fragment in line:
                return line

    def stop(self) -> str:
        """Everything it wrote to stderr, once it has stopped."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.wait_for("[agent] Stopped")
        return "".join(self.seen)


def test_service_start_up_and_reload_lines_write_variable_names(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG)
    agent = AgentProcess(config)
    try:
        tags = agent.wait_for("Tags on every metric:")
        settings = agent.wait_for("[agent] Settings: ")
        config.write_text(CONFIG.replace("[agent]", 'zone = "${REDACT_ZONE}"\n[agent]'))
        agent.process.send_signal(signal.SIGHUP)
        reloaded = agent.wait_for("Tags on every metric:")
    finally:
        stderr = agent.stop()
    assert tags.endswith("[agent] Tags on every metric: dc=${REDACT_DC} host=${REDACT_HOST}\n")
    assert "hostname '${REDACT_HOST}'" in settings
    assert reloaded.endswith(
        "[agent] Tags on every metric: dc=${REDACT_DC} host=${REDACT_HOST} zone=${REDACT_ZONE}\n"
    )
    assert_no_secrets(stderr)
