"""The verbs of the separate SASL_SSL node: up --secure, down --secure, status --secure."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from kafkalocal.broker_config import (
    client_properties,
    prepare_support_files,
    random_cluster_id,
    secure_server_properties,
)
from kafkalocal.failures import KafkaError, info
from kafkalocal.layout import (
    EXIT_NOT_UP,
    HOST,
    KAFKA_VERSION,
    REPO_ROOT,
    SASL_MECHANISMS,
    SASL_PASSWORD,
    SASL_USER,
    SECURE_DATA_DIR_PREFIX,
    SECURE_HEAP,
    SECURE_LOCK_FILE,
    SECURE_STATE_FILE,
    STORE_PASSWORD,
)
from kafkalocal.maven import classpath
from kafkalocal.processes import (
    captured,
    check_ports_free,
    find_java,
    node_running,
    remove_data_dir,
    spawn_node,
    stop_nodes,
    wait_ready,
)
from kafkalocal.state import SecureNode, State, load_state, locked, save_state
from kafkalocal.tls import TLS_FILES, finish_truststore, make_tls, secure_files
from kafkalocal.tools import storage_format_command


def secure_state_extra(state: State) -> dict[str, object]:
    """Extra keys of .cache/kafka/secure/state.json, read by the kafka_secure fixture."""
    node = state.nodes[0]
    assert isinstance(node, SecureNode)
    return {
        "secure": True,
        "internal_port": node.internal_port,
        "files": secure_files(state.data_dir),
        "username": SASL_USER,
        "password": SASL_PASSWORD,
        "sasl_mechanisms": list(SASL_MECHANISMS),
        "store_password": STORE_PASSWORD,
    }


def load_secure_state() -> State | None:
    return load_state(SECURE_STATE_FILE, SecureNode)


def save_secure_state(state: State) -> None:
    save_state(state, SECURE_STATE_FILE, secure_state_extra(state))


def cmd_up_secure() -> int:
    with locked(SECURE_LOCK_FILE):
        state = load_secure_state()
        if state is not None:
            node = state.nodes[0]
            if Path(state.data_dir).is_dir():
                if node_running(node):
                    info(f"secure Kafka is already up (data in {state.data_dir})")
                else:
                    info(f"restarting the secure node (data kept in {state.data_dir})")
                    check_ports_free([node])
                    java, cp = find_java(), classpath()
                    prepare_support_files()
                    spawn_node(java, cp, node, SECURE_HEAP, truncate_log=False)
                    save_secure_state(state)
                wait_ready(state, state.nodes, 1)
                describe_secure_files(state)
                print(state.bootstrap, flush=True)
                return 0
            stop_nodes(state.nodes)  # data dir gone (tmp cleaner?): start afresh
            SECURE_STATE_FILE.unlink(missing_ok=True)
        return fresh_up_secure()


def fresh_up_secure() -> int:
    java = find_java()
    cp = classpath()
    prepare_support_files()
    node = SecureNode(1, None, "")
    check_ports_free([node])
    data_dir = tempfile.mkdtemp(prefix=SECURE_DATA_DIR_PREFIX)
    node.data_dir = data_dir
    state = State(data_dir, random_cluster_id(), [node])
    try:
        started = time.monotonic()
        info(f"starting secure Kafka {KAFKA_VERSION} (SASL_SSL) in {data_dir}, log {node.log}")
        node.config.write_text(secure_server_properties(state, node))
        Path(data_dir, TLS_FILES["client_properties"]).write_text(client_properties(data_dir))
        # Format (a JVM, ~1.5 s) while openssl and keytool make the TLS files it does not read.
        cmd = storage_format_command(java, cp, state.cluster_id, str(node.config))
        for mechanism in SASL_MECHANISMS[1:]:  # SCRAM users live in the metadata log
            cmd += ["--add-scram", f"{mechanism}=[name={SASL_USER},password={SASL_PASSWORD}]"]
        storage = subprocess.Popen(cmd, cwd=data_dir, stdin=subprocess.DEVNULL, **captured())
        try:
            keytool = make_tls(data_dir)
            finish_truststore(keytool)
        finally:
            out, _ = storage.communicate()
        if storage.returncode != 0:
            for line in out.strip().splitlines()[-10:]:
                info(f"  kafka-storage: {line}")
            raise KafkaError(
                f"formatting the secure node's log dir failed (exit {storage.returncode})"
            )
        spawn_node(java, cp, node, SECURE_HEAP, truncate_log=True)
        save_secure_state(state)  # before waiting: `down --secure` elsewhere can clean up a hang
        wait_ready(state, [node], 1)
    except BaseException:
        stop_nodes([node], timeout=5.0)
        remove_data_dir(data_dir)
        SECURE_STATE_FILE.unlink(missing_ok=True)
        raise
    info(f"secure Kafka up in {time.monotonic() - started:.1f}s: pid {node.pid}")
    describe_secure_files(state)
    print(state.bootstrap, flush=True)
    return 0


def describe_secure_files(state: State) -> None:
    files = secure_files(state.data_dir)
    info(f"CA certificate: {files['ca']}")
    info(
        f"SASL user {SASL_USER!r} password {SASL_PASSWORD!r} "
        f"({', '.join(SASL_MECHANISMS)}); more: scripts/kafka status --secure"
    )


def cmd_down_secure(quiet_if_absent: bool = False) -> int:
    with locked(SECURE_LOCK_FILE):
        state = load_secure_state()
        if state is None:
            if not quiet_if_absent:
                info("secure Kafka is not up (nothing to stop)")
            return 0
        pids = [n.pid for n in state.nodes if node_running(n)]
        stop_nodes(state.nodes)
        remove_data_dir(state.data_dir)
        SECURE_STATE_FILE.unlink(missing_ok=True)
        stopped = ", ".join(str(p) for p in pids) or "none running"
        info(f"secure Kafka down (stopped pids: {stopped}; removed {state.data_dir})")
    return 0


def cmd_status_secure() -> int:
    state = load_secure_state()
    if state is None:
        print(f"secure Kafka is not up (no {SECURE_STATE_FILE.relative_to(REPO_ROOT)})")
        return EXIT_NOT_UP
    node = state.nodes[0]
    assert isinstance(node, SecureNode)
    running = node_running(node)
    answering = running and node.answers(timeout=1.0) is not None
    health = "up" if answering else ("running, not answering" if running else "stopped")
    files = secure_files(state.data_dir)
    print(f"secure Kafka {KAFKA_VERSION}, 1 node, cluster id {state.cluster_id}")
    print(f"data dir: {state.data_dir}")
    print(
        f"node 1: {health:<22} pid {node.pid if running else '-'!s:<8} "
        f"SASL_SSL {HOST}:{node.port}  controller {HOST}:{node.controller_port} (PLAINTEXT)  "
        f"inter-broker {HOST}:{node.internal_port} (PLAINTEXT)  log {node.log}"
    )
    print(f"bootstrap: {state.bootstrap}")
    print(f"sasl mechanisms: {','.join(SASL_MECHANISMS)}")
    print(f"username: {SASL_USER}")
    print(f"password: {SASL_PASSWORD}")
    labels = {
        "ca": "ca",
        "client_cert": "client cert",
        "client_key": "client key",
        "other_ca": "other ca",
        "ca_key": "ca key",
        "broker_cert": "broker cert",
        "keystore": "keystore",
        "truststore": "truststore",
        "client_properties": "client properties",
    }
    for key, label in labels.items():
        print(f"{label}: {files[key]}")
    print(f"store password: {STORE_PASSWORD}")
    return 0 if answering else EXIT_NOT_UP
