"""Whether a broker answers, and which brokers its metadata lists.

With the project's .venv (scripts/kafka runs itself with the venv's Python when there is
one), kafka-python's own request classes ask ApiVersions and Metadata, after TLS and a
SASL/PLAIN login for the secure node (plugins/common/kafka_exchange.py). Before the venv
exists (`scripts/kafka up` on a fresh machine, before scripts/setup) there is no Kafka
client to ask with: then a node counts as ready once its port takes a connection (and, for
the secure node, completes a TLS handshake verified against its CA), which is all that can
be known without one.
"""

from __future__ import annotations

import importlib.util
import socket
import ssl
import struct
from pathlib import Path
from typing import NamedTuple

from kafkalocal.failures import KafkaError
from kafkalocal.layout import HOST, SASL_PASSWORD, SASL_USER

CLIENT_ID = "scripts-kafka"
HAVE_KAFKA_PYTHON = importlib.util.find_spec("kafka") is not None
if HAVE_KAFKA_PYTHON:
    from kafka.errors import KafkaError as KafkaPythonError
    from kafka.protocol.metadata import (
        ApiVersionsRequest,
        ApiVersionsResponse,
        MetadataRequest,
        MetadataResponse,
    )

    from plugins.common.kafka_exchange import (
        KafkaExchange,
        SaslMechanismNotOffered,
        SaslRefused,
        sasl_login,
    )
else:

    class KafkaPythonError(Exception):  # type: ignore[no-redef]
        """Never raised: kafka-python is not installed yet."""


class Answer(NamedTuple):
    """A broker's answer: the broker ids its metadata lists; None when only its port was
    tried (no kafka-python yet)."""

    broker_ids: list[int] | None

    def lists(self, node_id: int, brokers_expected: int) -> bool:
        """True if the broker knows itself and at least brokers_expected brokers (always
        True for a port that merely answers: nothing more can be asked)."""
        ids = self.broker_ids
        return ids is None or (node_id in ids and len(ids) >= brokers_expected)


def plain(port: int, timeout: float = 2.0) -> Answer | None:
    """The answer of the PLAINTEXT broker on `port`, or None if it does not answer (yet)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            if not HAVE_KAFKA_PYTHON:
                return Answer(None)
            return Answer(broker_ids(KafkaExchange(sock, client_id=CLIENT_ID)))
    except (OSError, struct.error, ValueError, KafkaPythonError):
        return None


def secure(port: int, cafile: Path, timeout: float = 2.0) -> Answer | None:
    """plain() over TLS (verified against cafile, hostname 127.0.0.1) after SASL/PLAIN.

    Raises KafkaError for what waiting cannot cure: a certificate that does not verify or
    credentials the broker rejects.
    """
    try:
        context = ssl.create_default_context(cafile=str(cafile))
        connection = socket.create_connection((HOST, port), timeout=timeout)
        with connection, context.wrap_socket(connection, server_hostname=HOST) as sock:
            if not HAVE_KAFKA_PYTHON:
                return Answer(None)
            exchange = KafkaExchange(sock, client_id=CLIENT_ID)
            sasl_plain_login(exchange)
            return Answer(broker_ids(exchange))
    except ssl.SSLCertVerificationError as exc:
        raise KafkaError(f"TLS to {HOST}:{port} with CA {cafile}: {exc.verify_message}") from None
    except (OSError, struct.error, ValueError, KafkaPythonError):  # ssl.SSLError is an OSError
        return None


def broker_ids(exchange: KafkaExchange) -> list[int]:
    """ApiVersions, then Metadata for no topic at the highest version both sides speak."""
    versions = exchange.call(ApiVersionsRequest(), ApiVersionsResponse, 0)
    if versions.error_code:
        raise ValueError(f"ApiVersions error {versions.error_code}")
    ranges = {key.api_key: (key.min_version, key.max_version) for key in versions.api_keys}
    lowest, highest = ranges.get(MetadataRequest.API_KEY, (0, -1))
    version = min(highest, MetadataRequest.max_version)
    if version < lowest:
        raise ValueError(f"no Metadata version in common (broker: {lowest}..{highest})")
    # topics: empty (= none, not all); allow_auto_topic_creation: false
    request = MetadataRequest(topics=[], allow_auto_topic_creation=False)
    metadata = exchange.call(request, MetadataResponse, version)
    return [broker.node_id for broker in metadata.brokers]


def sasl_plain_login(exchange: KafkaExchange) -> None:
    try:
        sasl_login(exchange, "PLAIN", SASL_USER, SASL_PASSWORD, over_tls=True)
    except SaslMechanismNotOffered as refusal:
        raise KafkaError(
            f"SASL handshake for PLAIN refused (Kafka error {refusal.error.errno})"
        ) from None
    except SaslRefused as refusal:
        raise KafkaError(
            f"SASL/PLAIN as {SASL_USER!r} failed (Kafka error {refusal.error.errno}): "
            f"{refusal.reason}"
        ) from None
