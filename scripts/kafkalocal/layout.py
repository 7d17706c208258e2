"""Version, host, ports and the place of every file scripts/kafka writes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

KAFKA_VERSION = "4.1.1"
HOST = "127.0.0.1"
DEFAULT_FIRST_PORT = 9092
NODE_CHOICES = (1, 3)
DATA_DIR_PREFIX = "metrics-agent-kafka-"
START_TIMEOUT_S = 90.0  # generous: two cores, three JVMs starting at once
STOP_TIMEOUT_S = 20.0  # SIGTERM grace (controlled shutdown) before SIGKILL
EXIT_NOT_UP = 3


def first_port_from_environment() -> int:
    """KAFKA_FIRST_PORT moves every port (a second harness beside a running one); 9092."""
    text = os.environ.get("KAFKA_FIRST_PORT", "") or str(DEFAULT_FIRST_PORT)
    if not text.isdigit() or not 1024 <= int(text) <= 65000:
        sys.exit(f"scripts/kafka: error: KAFKA_FIRST_PORT={text!r}: expected a port 1024-65000")
    return int(text)


FIRST_BROKER_PORT = first_port_from_environment()  # node N: + 2(N-1), controller one above

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "scripts" / "kafka-pom.xml"
CACHE = REPO_ROOT / ".cache" / "kafka"  # jars and log4j files: the same for every port
JARS = CACHE / "jars"
JARS_MARKER = JARS / ".resolved"
# State, locks and logs of the brokers on other ports live apart: each harness its own.
STATE_DIR = (
    CACHE if FIRST_BROKER_PORT == DEFAULT_FIRST_PORT else CACHE / f"port-{FIRST_BROKER_PORT}"
)
LOGS = STATE_DIR / "logs"
STATE_FILE = STATE_DIR / "state.json"
LOCK_FILE = STATE_DIR / "lock"
BROKER_LOG4J = CACHE / "broker-log4j2.properties"
TOOLS_LOG4J = CACHE / "tools-log4j2.properties"

# `up --secure`: one more node, beside the plain one, with its own ports, data dir, state, lock.
SECURE_DIR = STATE_DIR / "secure"
SECURE_STATE_FILE = SECURE_DIR / "state.json"
SECURE_LOCK_FILE = SECURE_DIR / "lock"
SECURE_DATA_DIR_PREFIX = DATA_DIR_PREFIX + "secure-"  # still removable by remove_data_dir()
SECURE_PORT = FIRST_BROKER_PORT + 100  # 9192: SASL_SSL, for clients
SECURE_CONTROLLER_PORT = SECURE_PORT + 1  # PLAINTEXT, KRaft controller
SECURE_INTERNAL_PORT = SECURE_PORT + 2  # PLAINTEXT, inter-broker only
SECURE_HEAP = "384m"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_USER = "agent"  # test credentials only
SASL_PASSWORD = "agent-secret"
STORE_PASSWORD = "store-secret"  # broker keystore and truststore (PKCS12)
