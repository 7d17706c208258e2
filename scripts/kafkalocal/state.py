"""The nodes started here, their state file, and the lock that serialises the verbs."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kafkalocal import probe
from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import (
    FIRST_BROKER_PORT,
    HOST,
    KAFKA_VERSION,
    LOCK_FILE,
    LOGS,
    SECURE_CONTROLLER_PORT,
    SECURE_INTERNAL_PORT,
    SECURE_PORT,
    STATE_FILE,
)
from kafkalocal.tls import TLS_FILES


@dataclass
class Node:
    node_id: int
    pid: int | None
    data_dir: str  # this node's directory: server.properties and data/
    start_ticks: int | None = None  # /proc/PID/stat start time: tells our pid from a reused one

    @property
    def port(self) -> int:
        return FIRST_BROKER_PORT + 2 * (self.node_id - 1)

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def config(self) -> Path:
        return Path(self.data_dir) / "server.properties"

    @property
    def log(self) -> Path:
        return LOGS / f"node{self.node_id}.log"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port)

    def answers(self, timeout: float = 2.0) -> probe.Answer | None:
        """What it answers (the broker ids its metadata lists), or None if nothing (yet)."""
        return probe.plain(self.port, timeout)


@dataclass
class SecureNode(Node):
    """The `up --secure` node: fixed ports, TLS files in its data dir, probed over SASL_SSL."""

    @property
    def port(self) -> int:
        return SECURE_PORT

    @property
    def controller_port(self) -> int:
        return SECURE_CONTROLLER_PORT

    @property
    def internal_port(self) -> int:
        return SECURE_INTERNAL_PORT

    @property
    def log(self) -> Path:
        return LOGS / "secure.log"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port, self.internal_port)

    def answers(self, timeout: float = 2.0) -> probe.Answer | None:
        return probe.secure(self.port, Path(self.data_dir) / TLS_FILES["ca"], timeout)


@dataclass
class State:
    data_dir: str
    cluster_id: str
    nodes: list[Node]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        known = ", ".join(str(n.node_id) for n in self.nodes)
        raise KafkaError(f"no node {node_id}: this Kafka has node(s) {known}", code=2)


def load_state(path: Path = STATE_FILE, node_class: type[Node] = Node) -> State | None:
    try:
        raw = json.loads(path.read_text())
        nodes = [
            node_class(n["node_id"], n["pid"], n["data_dir"], n.get("start_ticks"))
            for n in raw["nodes"]
        ]
        return State(raw["data_dir"], raw["cluster_id"], nodes)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise KafkaError(f"unreadable state file {path} ({exc}); delete it") from None


def save_state(
    state: State, path: Path = STATE_FILE, extra: dict[str, object] | None = None
) -> None:
    raw = {
        "kafka_version": KAFKA_VERSION,
        "data_dir": state.data_dir,
        "cluster_id": state.cluster_id,
        "bootstrap": state.bootstrap,
        "nodes": [
            {
                "node_id": n.node_id,
                "pid": n.pid,
                "start_ticks": n.start_ticks,
                "data_dir": n.data_dir,
                "port": n.port,
                "controller_port": n.controller_port,
                "log": str(n.log),
            }
            for n in state.nodes
        ],
        **(extra or {}),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2) + "\n")
    os.replace(tmp, path)  # atomic: another shell never reads half a file


@contextlib.contextmanager
def locked(lock_file: Path = LOCK_FILE) -> Iterator[None]:
    """Serialise verbs that change processes or state (two shells running `up` at once)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info("waiting for another scripts/kafka run to finish…")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
