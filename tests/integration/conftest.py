"""Fixtures for tests that need a real Kafka broker, managed by scripts/kafka.

- ``kafka_bootstrap`` (session): bootstrap string of a running broker. Uses env KAFKA_BOOTSTRAP
  as is when set; otherwise runs ``scripts/kafka up`` (idempotent). A broker that cannot be
  started fails the test with the script's output: it is never a silent skip.
- ``create_topic`` (function): factory making a uniquely named topic and waiting for leaders.
- ``kafka_cluster`` (session): ``scripts/kafka down`` then ``up --nodes 3``; for tests marked
  ``cluster``, which are moved to the end of the run so single-node tests come first.
- ``make_topic`` (session): the same with an explicit bootstrap, for wider-scoped fixtures.
- ``kafka_script`` (session): ``kafka_script("stop-node", "1") -> CompletedProcess``
  (keyword ``input="..."`` feeds stdin, e.g. to the console producer).
- ``kafka_secure`` (session): ``scripts/kafka up --secure`` (a separate SASL_SSL node on
  127.0.0.1:9192 unless KAFKA_FIRST_PORT moves it, beside the plain one) -> ``KafkaSecure``
  with the bootstrap, CA/client/other-CA paths and the test user. Fails, never skips.
  Note: plain ``scripts/kafka down`` (and so ``kafka_cluster``) stops the secure node too;
  secure tests must not run after cluster tests.

And for tests that need a real PostgreSQL, managed by scripts/postgres:

- ``postgres_url`` (session): URI of a running server: env POSTGRES_URL as is when set;
  otherwise ``scripts/postgres up`` (idempotent). A server that cannot start fails the test
  with the script's output.
- ``postgres_database`` (function): URI of a new, empty database on that server (dropped after).
- ``postgres_script`` (session): ``postgres_script("stop") -> CompletedProcess``; the test is
  skipped, visibly, when POSTGRES_URL names a server that is not ours to stop.
- ``postgres_transport`` (function, parametrized "plain" and "tls"): the test runs twice, the
  second time with the server serving TLS (``scripts/postgres tls on``, off again after it),
  which clients then use (libpq's default sslmode, prefer, takes it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.broker import create_and_await_topic
from tests.integration.kafka_layout import SECURE_STATE_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka"
POSTGRES_SCRIPT = REPO_ROOT / "scripts" / "postgres"
SCRIPT_TIMEOUT_S = 600  # the first `up` may resolve the jars with Maven


KafkaScript = Callable[..., "subprocess.CompletedProcess[str]"]
CreateTopic = Callable[..., str]
MakeTopic = Callable[..., str]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs a running Kafka broker (scripts/kafka up)")
    config.addinivalue_line(
        "markers", "cluster: needs the three-node Kafka cluster (scripts/kafka up --nodes 3)"
    )
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (scripts/postgres up)")
    config.addinivalue_line(
        "markers", "disruptive: stops and restarts a broker node; run after the other kafka tests"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order: plain tests, then `disruptive`, then `cluster` (which replaces the single broker).

    sort() is stable, so the order within each group is kept.
    """

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("cluster"):
            return 2
        if item.get_closest_marker("disruptive"):
            return 1
        return 0

    items.sort(key=rank)
    if os.environ.get("KAFKA_BOOTSTRAP"):
        # An external broker is not ours to stop: these tests are skipped, visibly.
        skip = pytest.mark.skip(reason="KAFKA_BOOTSTRAP is set: its broker is not ours to stop")
        for item in items:
            if item.get_closest_marker("disruptive"):
                item.add_marker(skip)


def run_kafka_script(
    *args: str, input: str | None = None, timeout: float = SCRIPT_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run scripts/kafka ARGS; output captured as text; `input` goes to stdin (else /dev/null).

    Never raises on a nonzero exit: callers assert on returncode and show stdout/stderr.
    """
    return subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), *args],
        cwd=REPO_ROOT,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_postgres_script(*args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/postgres ARGS (output captured as text); never raises on a nonzero exit."""
    return subprocess.run(
        [sys.executable, str(POSTGRES_SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,  # the first `up` may install Debian's postgresql
        check=False,
    )


def _script_failure(result: subprocess.CompletedProcess[str]) -> str:
    command = " ".join([Path(result.args[1]).name, *result.args[2:]])
    command = f"scripts/{command}"
    return (
        f"`{command}` failed with exit code {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )


def _printed_address(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        pytest.fail(_script_failure(result), pytrace=False)
    return lines[-1]


@pytest.fixture(scope="session")
def kafka_script() -> KafkaScript:
    """``kafka_script("stop-node", "1")`` -> CompletedProcess (stdout/stderr as text)."""
    return run_kafka_script


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of a running broker: $KAFKA_BOOTSTRAP, or `scripts/kafka up`."""
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        return external
    return _printed_address(run_kafka_script("up"))


@pytest.fixture(scope="session")
def kafka_cluster() -> str:
    """Bootstrap servers of a fresh three-node cluster (left running at session end).

    $KAFKA_CLUSTER_BOOTSTRAP, when set, is used as is instead.
    """
    external = os.environ.get("KAFKA_CLUSTER_BOOTSTRAP")
    if external:
        return external
    down = run_kafka_script("down")
    if down.returncode != 0:
        pytest.fail(_script_failure(down), pytrace=False)
    return _printed_address(run_kafka_script("up", "--nodes", "3"))


def _make_topic(
    bootstrap: str,
    partitions: int = 1,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    name: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Create a topic (unique name) and wait until metadata shows a leader for every partition."""
    topic = f"{name or 'test'}-{uuid.uuid4().hex[:12]}"
    try:
        create_and_await_topic(
            bootstrap,
            topic,
            partitions=partitions,
            replication_factor=replication_factor,
            config=config,
            timeout=timeout,
            client_id="pytest-create-topic",
        )
    except RuntimeError as error:
        pytest.fail(str(error))
    return topic


@pytest.fixture(scope="session")
def make_topic() -> MakeTopic:
    """``make_topic(bootstrap, partitions=1, replication_factor=1, config=None, name=None)``:
    create_topic with an explicit bootstrap, usable from module/session-scoped fixtures.
    """
    return _make_topic


@pytest.fixture
def create_topic(request: pytest.FixtureRequest) -> CreateTopic:
    """Factory: ``create_topic(partitions=1, replication_factor=1, config=None, name=None,
    bootstrap=None) -> topic name``. The name is `name` (default "test") plus a uuid suffix.
    ``bootstrap`` defaults to ``kafka_bootstrap`` (only started when first needed); pass
    ``kafka_cluster`` for cluster tests.
    """

    def factory(
        partitions: int = 1,
        replication_factor: int = 1,
        config: dict[str, str] | None = None,
        name: str | None = None,
        bootstrap: str | None = None,
    ) -> str:
        boot = bootstrap or request.getfixturevalue("kafka_bootstrap")
        return _make_topic(boot, partitions, replication_factor, config, name)

    return factory


@dataclass(frozen=True)
class KafkaSecure:
    """The `scripts/kafka up --secure` node: SASL_SSL on `bootstrap`, files in its data dir."""

    bootstrap: str  # "127.0.0.1:9192"
    ca: str  # ca.pem: signed the broker and client certificates
    other_ca: str  # other-ca.pem: an unrelated CA (TLS handshake must fail when trusted)
    client_cert: str  # client.pem (CN=agent, clientAuth), signed by `ca`
    client_key: str  # client.key, unencrypted PKCS#8
    username: str  # "agent"
    password: str  # "agent-secret"
    mechanisms: tuple[str, ...]  # ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    client_properties: str  # for Java tools: `scripts/kafka tool ... --command-config PATH`

    def kafka_python_config(self, mechanism: str = "SCRAM-SHA-512", **overrides: Any) -> dict:
        """kafka-python keyword arguments for KafkaProducer/KafkaConsumer/KafkaAdminClient."""
        config = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "ssl_cafile": self.ca,
            "sasl_mechanism": mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }
        config.update(overrides)
        return config


@pytest.fixture(scope="session")
def kafka_secure() -> KafkaSecure:
    """`scripts/kafka up --secure` (idempotent; left running, stopped by `scripts/kafka down`)."""
    result = run_kafka_script("up", "--secure")
    bootstrap = _printed_address(result)
    try:
        raw = json.loads(SECURE_STATE_FILE.read_text())
        files = raw["files"]
        secure = KafkaSecure(
            bootstrap=bootstrap,
            ca=files["ca"],
            other_ca=files["other_ca"],
            client_cert=files["client_cert"],
            client_key=files["client_key"],
            username=raw["username"],
            password=raw["password"],
            mechanisms=tuple(raw["sasl_mechanisms"]),
            client_properties=files["client_properties"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        pytest.fail(
            f"`scripts/kafka up --secure` succeeded but {SECURE_STATE_FILE} is unusable: "
            f"{exc}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )
    missing = [
        path
        for path in (secure.ca, secure.other_ca, secure.client_cert, secure.client_key)
        if not Path(path).is_file()
    ]
    if missing:
        pytest.fail(f"`scripts/kafka up --secure`: missing {missing}", pytrace=False)
    return secure


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URI of a running PostgreSQL: $POSTGRES_URL, or `scripts/postgres up`."""
    external = os.environ.get("POSTGRES_URL")
    if external:
        return external
    return _printed_address(run_postgres_script("up"))


@pytest.fixture(scope="session")
def postgres_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``postgres_script("stop")``; skips (visibly) when the server is POSTGRES_URL's."""
    if os.environ.get("POSTGRES_URL"):
        pytest.skip("POSTGRES_URL is set: its server is not ours to stop")
    return run_postgres_script


@pytest.fixture(params=["plain", "tls"])
def postgres_transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test runs once over plain TCP ("plain"), once with the server serving TLS for its
    length ("tls"; skipped, visibly, when the server is POSTGRES_URL's: not ours to change)."""
    if request.param == "plain":
        yield "plain"
        return
    postgres_script = request.getfixturevalue("postgres_script")
    on = postgres_script("tls", "on")
    if on.returncode != 0:
        pytest.fail(_script_failure(on), pytrace=False)
    try:
        yield "tls"
    finally:
        off = postgres_script("tls", "off")
        if off.returncode != 0:
            pytest.fail(_script_failure(off), pytrace=False)


def database_url(server_url: str, database: str) -> str:
    """The URI of another database on the server of `server_url`."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """URI of a new empty database for one test; dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
