"""The broker processes: Java, free ports, starting, waiting until ready, stopping."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import (
    BROKER_LOG4J,
    DATA_DIR_PREFIX,
    HOST,
    LOGS,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
)

if TYPE_CHECKING:
    from kafkalocal.state import Node, State


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a pid, or None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[19])


def node_running(node: Node) -> bool:
    """True if node.pid is alive and still the process we started (a recycled pid is not).

    Identity is (pid, start time), not the command line: right after fork+exec the new
    process briefly shows an empty /proc/PID/cmdline.
    """
    if node.pid is None:
        return False
    stat = _proc_stat(node.pid)
    return stat is not None and stat[0] != "Z" and stat[1] == node.start_ticks


def stop_nodes(nodes: list[Node], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM all at once (so a cluster shuts down in parallel), then SIGKILL stragglers."""
    running = [n for n in nodes if node_running(n)]
    for n in running:
        assert n.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(n.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(node_running(n) for n in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    for n in running:
        if node_running(n):
            assert n.pid is not None
            info(f"node {n.node_id} (pid {n.pid}) ignored SIGTERM for {timeout:.0f}s; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, signal.SIGKILL)
    while any(node_running(n) for n in running):
        time.sleep(0.05)
    for n in nodes:
        n.pid = None
        n.start_ticks = None


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaError(
            "java not found: install a Java 17+ runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )
    return java


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like the JVM's server sockets: a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_ports_free(nodes: list[Node]) -> None:
    for n in nodes:
        for port in n.ports:
            if port_in_use(port):
                raise KafkaError(
                    f"port {HOST}:{port} is in use by a process not started by scripts/kafka "
                    f"(see: ss -ltnp 'sport = :{port}'); stop it first"
                )


def broker_java_opts(heap: str) -> list[str]:
    """Kafka's own defaults from kafka-run-class.sh, with a smaller heap."""
    return [
        f"-Xmx{heap}",
        "-Xms64m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={BROKER_LOG4J}",
        f"-Dkafka.logs.dir={LOGS}",
    ]


def captured() -> dict[str, object]:
    return {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}


def spawn_node(java: str, cp: str, node: Node, heap: str, truncate_log: bool) -> None:
    """Start one node detached (own session, stdin /dev/null) so it outlives this script."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(node.log, "wb" if truncate_log else "ab") as log:
        proc = subprocess.Popen(
            [java, *broker_java_opts(heap), "-cp", cp, "kafka.Kafka", str(node.config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=node.data_dir,
            start_new_session=True,
            close_fds=True,
        )
    node.pid = proc.pid
    stat = _proc_stat(proc.pid)
    node.start_ticks = stat[1] if stat else None


def wait_ready(state: State, nodes: list[Node], brokers_expected: int) -> None:
    """Until each node answers metadata listing itself and at least brokers_expected brokers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    pending = list(nodes)
    while pending:
        for n in list(pending):
            if not node_running(n):
                tail = tail_lines(n.log, 12)
                for line in tail:
                    info(f"  node{n.node_id}.log: {line}")
                raise KafkaError(f"node {n.node_id} exited during startup; see {n.log}")
            answer = n.answers()
            if answer is not None and answer.lists(n.node_id, brokers_expected):
                pending.remove(n)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(str(n.node_id) for n in pending)
            raise KafkaError(
                f"node(s) {names} did not answer within {START_TIMEOUT_S:.0f}s; see {LOGS}/"
            )
        time.sleep(0.25)


def tail_lines(path: Path, count: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return []


def remove_data_dir(path: str) -> None:
    """Delete only what `up` created: a mkdtemp directory with our prefix in the temp dir."""
    p = Path(path)
    if p.parent == Path(tempfile.gettempdir()) and p.name.startswith(DATA_DIR_PREFIX):
        shutil.rmtree(p, ignore_errors=True)
    else:
        info(f"not deleting unexpected data dir {p}")
