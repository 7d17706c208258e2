"""One Kafka request at a time on a blocking socket, and the SASL login over it.

For probes that must see the broker's own answer: kafka-python's clients drop a response
that arrives together with the connection close, which is how a broker answers a refused
login, so they report a timeout instead of the reason. The messages themselves are
kafka-python's protocol classes; only the framing on the socket is done here.

Used by the Kafka security probe of outputs.kafka and the sink, by scripts/kafka to wait for
its brokers, and by the tests of the secured test broker.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import kafka.errors as errors
from kafka.net.sasl import get_sasl_mechanism
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

# SaslHandshake v1 and SaslAuthenticate v1: every broker since Kafka 1.0 takes them.
SASL_API_VERSION = 1


class KafkaExchange:
    """Requests sent one by one on `sock`, each answer read before the next is sent."""

    def __init__(self, sock: socket.socket, client_id: str) -> None:
        self.sock = sock
        self.client_id = client_id
        self.correlation = 0

    def call(self, request: Any, response_class: Any, version: int) -> Any:
        """Send `request` (a kafka-python request) as `version`; the decoded response.

        Raises ConnectionResetError if the broker closes the connection first, and
        CorrelationIdError if the answer is to another request."""
        self.send(request, version)
        return self.receive(response_class, version)

    def receive(self, response_class: Any, version: int) -> Any:
        """The answer to the request sent last, decoded as `response_class` `version`."""
        (size,) = struct.unpack(">i", self._read(4))
        response = response_class.decode(self._read(size), version=version, header=True)
        if response.header.correlation_id != self.correlation:
            answered = response.header.correlation_id
            raise errors.CorrelationIdError(
                f"sent request {self.correlation}, the answer is to {answered}"
            )
        return response

    def send(self, request: Any, version: int) -> None:
        """Send `request` without reading an answer (a Produce request with acks = 0 has
        none)."""
        self.correlation = (self.correlation + 1) % 2**31
        request.with_header(correlation_id=self.correlation, client_id=self.client_id)
        self.sock.sendall(request.encode(version=version, header=True, framed=True))

    def _read(self, size: int) -> bytearray:
        return read_exactly(self.sock, size)


def read_exactly(sock: socket.socket, size: int) -> bytearray:
    """`size` bytes from `sock`, read into one buffer; ConnectionResetError if the broker
    closes the connection first."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:], size - got)
        if not count:
            raise ConnectionResetError("the broker closed the connection")
        got += count
    return data


class SaslRefused(Exception):
    """The broker refused the login; `error` is the kafka.errors class of its error code."""

    def __init__(self, error: type[errors.KafkaError], reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


class SaslMechanismNotOffered(SaslRefused):
    """The broker does not take the mechanism; `offered` lists the ones it takes."""

    def __init__(self, error: type[errors.KafkaError], mechanism: str, offered: list[str]) -> None:
        super().__init__(error, f"SASL {mechanism} is not offered")
        self.offered = offered


def sasl_login(
    exchange: KafkaExchange, mechanism: str, username: str, password: str, over_tls: bool
) -> None:
    """Log in with PLAIN or SCRAM-SHA-256/512 as kafka-python's connections do.

    Raises SaslMechanismNotOffered or SaslRefused when the broker says no; OSError or
    struct.error when the conversation breaks off."""
    handshake = exchange.call(
        SaslHandshakeRequest(mechanism=mechanism), SaslHandshakeResponse, SASL_API_VERSION
    )
    if handshake.error_code:
        error = errors.for_code(handshake.error_code)
        raise SaslMechanismNotOffered(error, mechanism, list(handshake.mechanisms))
    client = get_sasl_mechanism(mechanism)(
        security_protocol="SASL_SSL" if over_tls else "SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=username,
        sasl_plain_password=password,
    )
    while not client.is_done():
        response = exchange.call(
            SaslAuthenticateRequest(client.auth_bytes()),
            SaslAuthenticateResponse,
            SASL_API_VERSION,
        )
        if response.error_code:
            error = errors.for_code(response.error_code)
            raise SaslRefused(error, response.error_message or error.__name__)
        client.receive(response.auth_bytes)
