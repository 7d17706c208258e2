"""The verbs of the plain Kafka (one node or three): up, down, stop-node, start-node, status."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from kafkalocal.broker_config import prepare_support_files, random_cluster_id, server_properties
from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import (
    DATA_DIR_PREFIX,
    EXIT_NOT_UP,
    HOST,
    KAFKA_VERSION,
    LOGS,
    REPO_ROOT,
    STATE_FILE,
)
from kafkalocal.maven import classpath
from kafkalocal.processes import (
    check_ports_free,
    find_java,
    node_running,
    remove_data_dir,
    spawn_node,
    stop_nodes,
    wait_ready,
)
from kafkalocal.secure import cmd_down_secure
from kafkalocal.state import Node, State, load_state, locked, save_state
from kafkalocal.tools import format_storage


def heap_for(state: State) -> str:
    return "512m" if len(state.nodes) == 1 else "384m"


def cmd_up(nodes_wanted: int | None) -> int:
    with locked():
        state = load_state()
        if state is not None:
            running = [n for n in state.nodes if node_running(n)]
            size = len(state.nodes)
            if running and nodes_wanted not in (None, size):
                raise KafkaError(
                    f"a {size}-node Kafka is already up ({state.bootstrap}); "
                    "run `scripts/kafka down` first"
                )
            if (running or nodes_wanted in (None, size)) and Path(state.data_dir).is_dir():
                return resume(state, running)
            # Stale: processes gone and (data dir gone or a different size asked for).
            stop_nodes(state.nodes)
            remove_data_dir(state.data_dir)
            STATE_FILE.unlink(missing_ok=True)
        return fresh_up(nodes_wanted or 1)


def resume(state: State, running: list[Node]) -> int:
    """`up` when state exists: say so, restart any stopped node, wait for all."""
    stopped = [n for n in state.nodes if n not in running]
    if not stopped:
        info(f"Kafka is already up ({len(state.nodes)} node(s), data in {state.data_dir})")
    else:
        names = ", ".join(str(n.node_id) for n in stopped)
        info(f"restarting stopped node(s) {names} (data kept in {state.data_dir})")
        check_ports_free(stopped)
        java, cp = find_java(), classpath()
        prepare_support_files()
        for n in stopped:
            spawn_node(java, cp, n, heap_for(state), truncate_log=False)
        save_state(state)
    wait_ready(state, state.nodes, len(state.nodes))
    print(state.bootstrap, flush=True)
    return 0


def fresh_up(size: int) -> int:
    java = find_java()
    cp = classpath()
    prepare_support_files()
    data_dir = tempfile.mkdtemp(prefix=DATA_DIR_PREFIX)
    nodes = [Node(i, None, f"{data_dir}/node{i}") for i in range(1, size + 1)]
    state = State(data_dir, random_cluster_id(), nodes)
    try:
        check_ports_free(nodes)
        started = time.monotonic()
        info(f"starting {size}-node Kafka {KAFKA_VERSION} (KRaft) in {data_dir}, logs in {LOGS}/")
        for n in nodes:
            os.makedirs(n.data_dir)
            n.config.write_text(server_properties(state, n))
        format_storage(java, cp, state.cluster_id, {n.node_id: str(n.config) for n in nodes})
        for n in nodes:
            spawn_node(java, cp, n, heap_for(state), truncate_log=True)
        save_state(state)  # before waiting: `down` from another shell can clean up a hang
        wait_ready(state, nodes, size)
    except BaseException:
        # Leave nothing half-started behind (also on Ctrl-C).
        stop_nodes(nodes, timeout=5.0)
        remove_data_dir(data_dir)
        STATE_FILE.unlink(missing_ok=True)
        raise
    info(f"Kafka up in {time.monotonic() - started:.1f}s: " + describe_pids(state))
    print(state.bootstrap, flush=True)
    return 0


def describe_pids(state: State) -> str:
    return ", ".join(f"node {n.node_id} pid {n.pid} port {n.port}" for n in state.nodes)


def cmd_down() -> int:
    """Stop the plain Kafka (1 or 3 nodes) and then the --secure node, if either is up."""
    with locked():
        state = load_state()
        if state is None:
            info("Kafka is not up (nothing to stop)")
        else:
            pids = [n.pid for n in state.nodes if node_running(n)]
            stop_nodes(state.nodes)
            remove_data_dir(state.data_dir)
            STATE_FILE.unlink(missing_ok=True)
            stopped = ", ".join(str(p) for p in pids) or "none running"
            info(f"Kafka down (stopped pids: {stopped}; removed {state.data_dir})")
        # Lock order: plain, then secure (the --secure verbs take only the secure lock).
        cmd_down_secure(quiet_if_absent=True)
    return 0


def require_state() -> State:
    state = load_state()
    if state is None:
        raise KafkaError("Kafka is not up: run `scripts/kafka up` first", code=EXIT_NOT_UP)
    return state


def cmd_stop_node(node_id: int) -> int:
    with locked():
        state = require_state()
        node = state.node(node_id)
        if not node_running(node):
            info(f"node {node_id} is not running")
            node.pid, node.start_ticks = None, None
        else:
            pid = node.pid
            stop_nodes([node])
            info(f"node {node_id} stopped (pid {pid}; data kept in {node.data_dir})")
        save_state(state)
    return 0


def cmd_start_node(node_id: int) -> int:
    with locked():
        state = require_state()
        node = state.node(node_id)
        if node_running(node):
            info(f"node {node_id} is already running (pid {node.pid})")
        else:
            if not Path(node.data_dir).is_dir():
                raise KafkaError(f"node {node_id}'s data dir {node.data_dir} is gone; run down/up")
            check_ports_free([node])
            java, cp = find_java(), classpath()
            prepare_support_files()
            spawn_node(java, cp, node, heap_for(state), truncate_log=False)
            save_state(state)
        # Its own id in its own metadata: registered and unfenced, not just listening.
        wait_ready(state, [node], 1)
        info(f"node {node_id} answering on {HOST}:{node.port} (pid {node.pid})")
    return 0


def cmd_status() -> int:
    state = load_state()
    if state is None:
        print(f"Kafka is not up (no {STATE_FILE.relative_to(REPO_ROOT)})")
        return EXIT_NOT_UP
    all_up = True
    print(f"Kafka {KAFKA_VERSION}, {len(state.nodes)} node(s), cluster id {state.cluster_id}")
    print(f"data dir: {state.data_dir}")
    for n in state.nodes:
        running = node_running(n)
        answering = running and n.answers(timeout=1.0) is not None
        all_up = all_up and answering
        health = "up" if answering else ("running, not answering" if running else "stopped")
        pid = n.pid if running else "-"
        print(
            f"node {n.node_id}: {health:<22} pid {pid!s:<8} broker {HOST}:{n.port}  "
            f"controller {HOST}:{n.controller_port}  log {n.log}"
        )
    print(f"bootstrap: {state.bootstrap}")
    return 0 if all_up else EXIT_NOT_UP
