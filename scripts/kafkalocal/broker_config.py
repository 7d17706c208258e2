"""What the brokers and tools read: server.properties, client.properties, log4j2 files."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from kafkalocal.layout import (
    BROKER_LOG4J,
    CACHE,
    HOST,
    LOGS,
    SASL_MECHANISMS,
    SASL_PASSWORD,
    SASL_USER,
    STORE_PASSWORD,
    TOOLS_LOG4J,
)
from kafkalocal.tls import secure_files

if TYPE_CHECKING:
    from kafkalocal.state import Node, SecureNode, State

# Broker output goes to stdout, which is redirected into .cache/kafka/logs/nodeN.log; that
# file then also catches JVM errors printed before log4j2 is up.
BROKER_LOG4J_TEXT = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

# Tools: warnings and errors only, on stderr, so their stdout stays parseable.
TOOLS_LOG4J_TEXT = """\
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
"""


def server_properties(state: State, node: Node) -> str:
    size = len(state.nodes)
    rf = min(size, 3)
    min_isr = 2 if size >= 3 else 1
    voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in state.nodes)
    props = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        # Static voters: every node is formatted with the same cluster id, no --standalone.
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": f"{node.data_dir}/data",
        # Fast tests: no join delay, small internal topics, replication that fits the size.
        "group.initial.rebalance.delay.ms": 0,
        "num.partitions": 1,
        "default.replication.factor": rf,
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": 3,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 3,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        # A restarted node is refused registration until its previous session expires
        # (default 9 s); a short session also makes a killed node fenced sooner.
        "broker.heartbeat.interval.ms": 500,
        "broker.session.timeout.ms": 3000,
        # Fewer threads than the defaults: two cores, up to three brokers.
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def random_cluster_id() -> str:
    """Same shape as Kafka's Uuid.randomUuid(): 16 bytes, URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like an option
            return text


def secure_server_properties(state: State, node: SecureNode) -> str:
    files = secure_files(node.data_dir)
    jaas_plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{SASL_USER}="{SASL_PASSWORD}";'
    )
    jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    lsn = "listener.name.sasl_ssl."
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": f"{node.node_id}@{HOST}:{node.controller_port}",
        # Clients: SASL_SSL only. Controller and inter-broker: PLAINTEXT on their own ports.
        "listeners": (
            f"SASL_SSL://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port},"
            f"INTERNAL://{HOST}:{node.internal_port}"
        ),
        "advertised.listeners": f"SASL_SSL://{HOST}:{node.port},INTERNAL://{HOST}:{node.internal_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": (
            "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT"
        ),
        # No authorizer: any authenticated user may do anything (idempotent producers too).
        f"{lsn}sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        f"{lsn}plain.sasl.jaas.config": jaas_plain,
        f"{lsn}scram-sha-256.sasl.jaas.config": jaas_scram,
        f"{lsn}scram-sha-512.sasl.jaas.config": jaas_scram,
        f"{lsn}ssl.keystore.type": "PKCS12",
        f"{lsn}ssl.keystore.location": files["keystore"],
        f"{lsn}ssl.keystore.password": STORE_PASSWORD,
        f"{lsn}ssl.key.password": STORE_PASSWORD,
        f"{lsn}ssl.truststore.type": "PKCS12",
        f"{lsn}ssl.truststore.location": files["truststore"],
        f"{lsn}ssl.truststore.password": STORE_PASSWORD,
        f"{lsn}ssl.client.auth": "none",
        "log.dirs": f"{node.data_dir}/data",
        "group.initial.rebalance.delay.ms": 0,
        "num.partitions": 1,
        "default.replication.factor": 1,
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 3,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 3,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "broker.heartbeat.interval.ms": 500,
        "broker.session.timeout.ms": 3000,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def client_properties(data_dir: str) -> str:
    """For Java tools: scripts/kafka tool kafka-topics --command-config client.properties ..."""
    files = secure_files(data_dir)
    return (
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{SASL_USER}" password="{SASL_PASSWORD}";\n'
        "ssl.truststore.type=PKCS12\n"
        f"ssl.truststore.location={files['truststore']}\n"
        f"ssl.truststore.password={STORE_PASSWORD}\n"
    )


def write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def prepare_support_files() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    write_if_changed(BROKER_LOG4J, BROKER_LOG4J_TEXT)
    write_if_changed(TOOLS_LOG4J, TOOLS_LOG4J_TEXT)
