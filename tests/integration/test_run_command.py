"""The README's run command, `scripts/run`: the agent with conf/agent.toml sends cpu and mem to
the topic `metrics`, the console sink shows them arriving, and Ctrl-C stops both cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

REPO_ROOT = Path(__file__).resolve().parents[2]
# conf/agent.toml gathers and flushes every 10 s: the first lines come within about 20 s.
ARRIVAL_TIMEOUT_S = 90


def lines_of(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def test_run_shows_cpu_and_mem_arriving_and_ctrl_c_stops_it_cleanly(kafka_bootstrap):
    if kafka_bootstrap != "127.0.0.1:9092":
        pytest.skip("scripts/run uses the broker on 127.0.0.1:9092; KAFKA_BOOTSTRAP is another")
    run = subprocess.Popen(
        ["scripts/run"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C reaches the script and children
    )
    shown: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lines_of, args=(run.stdout, shown), daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(run.stderr), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        while time.monotonic() < deadline and not (
            any(line.startswith("cpu,cpu=cpu-total,") for line in seen)
            and any(line.startswith("mem,") for line in seen)
        ):
            try:
                line = shown.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        returncode = run.wait(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    log = "".join(stderr)
    assert any(line.startswith("cpu,cpu=cpu-total,") for line in seen), log
    assert any(line.startswith("mem,") for line in seen), log
    assert returncode == 0, log
    assert "Traceback" not in log
    # The agent stopped through its own SIGINT handling: it flushed and said what it did.
    assert "Metrics gathered:" in log and "dropped: 0" in log
