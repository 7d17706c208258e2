"""Tests of `scripts/kafka up --secure`: SASL_SSL with PLAIN and SCRAM, a fresh self-signed CA.

The secure node runs beside the plain one (127.0.0.1:9192, or KAFKA_FIRST_PORT + 100; own data
dir and state), so these tests never disturb the plain broker.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import kafka.errors as Errors
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from plugins.common.kafka_exchange import (
    KafkaExchange,
    SaslMechanismNotOffered,
    SaslRefused,
    sasl_login,
)
from tests.integration.conftest import KAFKA_SCRIPT

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaSecure

pytestmark = pytest.mark.kafka

KafkaScript = Callable[..., "subprocess.CompletedProcess[str]"]

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
TIMEOUT_S = 20.0
FAIL_BOOTSTRAP_MS = 2000  # kafka-python retries a failing bootstrap until this runs out


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    return host, int(port)


def sasl_authenticate(secure: KafkaSecure, mechanism: str, password: str) -> None:
    """One blocking SASL_SSL login (plugins/common/kafka_exchange.py, kafka-python's messages).

    Raises SaslRefused, whose `error` is the kafka.errors class of the broker's error code.
    Why not a KafkaProducer: kafka-python 3.0.12 drops a response that arrives together with
    the connection close (which is how the broker answers a failed login), so its clients
    mostly report "socket disconnected" and, after bootstrap_timeout_ms, a KafkaTimeoutError.
    """
    host, port = _host_port(secure.bootstrap)
    context = ssl.create_default_context(cafile=secure.ca)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        exchange = KafkaExchange(sock, client_id="pytest-secure")
        sasl_login(exchange, mechanism, secure.username, password, over_tls=True)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_produce_and_consume_over_sasl_ssl(kafka_secure: KafkaSecure, mechanism: str) -> None:
    """Right credentials deliver, with an idempotent acks=all producer (topic auto-created)."""
    topic = f"secure-{mechanism.lower()}-{uuid.uuid4().hex[:12]}"
    config = kafka_secure.kafka_python_config(mechanism)
    producer = KafkaProducer(enable_idempotence=True, acks="all", **config)
    try:
        sent = [f"{mechanism} #{i}".encode() for i in range(3)]
        for value in sent:
            producer.send(topic, value)
        producer.flush(timeout=TIMEOUT_S)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **config
    )
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        received: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(received) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received += [r.value for r in records]
    finally:
        consumer.close()
    assert received == sent


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password_is_an_authentication_error(
    kafka_secure: KafkaSecure, mechanism: str
) -> None:
    sasl_authenticate(kafka_secure, mechanism, kafka_secure.password)  # the helper itself works
    with pytest.raises(SaslRefused) as refused:
        sasl_authenticate(kafka_secure, mechanism, "not-" + kafka_secure.password)
    assert refused.value.error is Errors.SaslAuthenticationFailedError


def test_a_mechanism_the_broker_does_not_take_is_refused_with_the_ones_it_does(
    kafka_secure: KafkaSecure,
) -> None:
    with pytest.raises(SaslMechanismNotOffered) as refused:
        sasl_authenticate(kafka_secure, "OAUTHBEARER", kafka_secure.password)
    assert refused.value.error is Errors.UnsupportedSaslMechanismError
    assert sorted(refused.value.offered) == sorted(MECHANISMS)


def test_wrong_password_kafka_python_client_never_connects(kafka_secure: KafkaSecure) -> None:
    """What the agent sees: no connection; the error type depends on kafka-python's race."""
    config = kafka_secure.kafka_python_config(
        "SCRAM-SHA-512", sasl_plain_password="wrong", bootstrap_timeout_ms=FAIL_BOOTSTRAP_MS
    )
    with pytest.raises((Errors.KafkaTimeoutError, Errors.SaslAuthenticationFailedError)):
        KafkaProducer(**config).close()


def test_other_ca_fails_the_tls_handshake(
    kafka_secure: KafkaSecure, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = _host_port(kafka_secure.bootstrap)
    context = ssl.create_default_context(cafile=kafka_secure.other_ca)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname=host)

    config = kafka_secure.kafka_python_config(
        ssl_cafile=kafka_secure.other_ca, bootstrap_timeout_ms=FAIL_BOOTSTRAP_MS
    )
    with (
        caplog.at_level(logging.WARNING, logger="kafka"),
        pytest.raises((Errors.KafkaTimeoutError, Errors.KafkaConnectionError)),
    ):
        KafkaProducer(**config).close()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_ca_verifies_the_broker_by_ip_and_name(kafka_secure: KafkaSecure) -> None:
    host, port = _host_port(kafka_secure.bootstrap)
    context = ssl.create_default_context(cafile=kafka_secure.ca)
    for server_hostname in ("127.0.0.1", "localhost"):
        with (
            socket.create_connection((host, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=server_hostname) as sock,
        ):
            assert sock.version() in ("TLSv1.2", "TLSv1.3")


def test_client_certificate_is_signed_by_the_ca_only(kafka_secure: KafkaSecure) -> None:
    ssl.create_default_context().load_cert_chain(kafka_secure.client_cert, kafka_secure.client_key)
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed by scripts/kafka up --secure"

    def verify(cafile: str) -> subprocess.CompletedProcess[str]:
        cmd = [openssl, "verify", "-CAfile", cafile, "-purpose", "sslclient"]
        return subprocess.run(
            [*cmd, kafka_secure.client_cert], capture_output=True, text=True, check=False
        )

    good = verify(kafka_secure.ca)
    assert good.returncode == 0, good.stdout + good.stderr
    assert verify(kafka_secure.other_ca).returncode != 0


def test_status_secure_lists_the_files(
    kafka_secure: KafkaSecure, kafka_script: KafkaScript
) -> None:
    result = kafka_script("status", "--secure")
    assert result.returncode == 0, result.stdout + result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert fields["bootstrap"] == kafka_secure.bootstrap
    assert fields["ca"] == kafka_secure.ca
    assert fields["other ca"] == kafka_secure.other_ca
    assert fields["client cert"] == kafka_secure.client_cert
    assert fields["client key"] == kafka_secure.client_key
    assert (fields["username"], fields["password"]) == ("agent", "agent-secret")


def test_status_secure_before_the_venv_exists_needs_only_the_verified_tls_handshake(
    kafka_secure: KafkaSecure,
) -> None:
    result = subprocess.run(
        [sys.executable, "-S", str(KAFKA_SCRIPT), "status", "--secure"],
        env={**os.environ, "SCRIPTS_KAFKA_IN_VENV": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "node 1: up" in result.stdout
