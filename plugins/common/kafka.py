"""TLS and SASL settings for Kafka clients, with Telegraf's option names; broker addresses;
the compression codecs of record batches.

Shared by outputs.kafka and the sink, so both accept the same `tls_*` and `sasl_*` options
and turn them into the same kafka-python settings. Nothing here logs a password.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kafka.codec

from agent.options import ignored

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PROBE_TIMEOUT_S = 5.0
DEFAULT_KAFKA_PORT = 9092


@dataclass(frozen=True)
class Codec:
    """A compression codec of record batches (kafka-python's codec functions, whose Python
    packages are optional: `installed()` says whether this one's is)."""

    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    installed: Callable[[], bool]


# By the number a record batch's attributes (and outputs.kafka's compression_codec) give.
CODECS: dict[int, Codec] = {
    1: Codec("gzip", kafka.codec.gzip_encode, kafka.codec.gzip_decode, kafka.codec.has_gzip),
    2: Codec(
        "snappy", kafka.codec.snappy_encode, kafka.codec.snappy_decode, kafka.codec.has_snappy
    ),
    3: Codec("lz4", kafka.codec.lz4_encode, kafka.codec.lz4_decode, kafka.codec.has_lz4),
    4: Codec("zstd", kafka.codec.zstd_encode, kafka.codec.zstd_decode, kafka.codec.has_zstd),
}


def broker_address(text: str) -> tuple[str, int]:
    """(host, port) of a `brokers` entry: "host:port", "host" (port 9092, as Kafka's clients
    take it) or "[IPv6 address]:port". Raises ValueError naming the entry."""
    host, port = text, str(DEFAULT_KAFKA_PORT)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f'brokers: "{text}" is not [address]:port')
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'brokers: "{text}" is not host:port (a port from 1 to 65535)')
    return host, int(port)


@dataclass
class KafkaSecurity:
    """`tls_ca`, `tls_cert`, `tls_key`, `tls_key_pwd`, `insecure_skip_verify`, `enable_tls`,
    `tls_server_name`; `sasl_mechanism`, `sasl_username`, `sasl_password`, `sasl_version`."""

    enable_tls: bool = False
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_key_pwd: str = ""
    tls_server_name: str = ""
    insecure_skip_verify: bool = False
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    # Sarama's SASL handshake version in Telegraf; kafka-python negotiates it itself.
    sasl_version: int = ignored(1)

    def check_security(self) -> None:
        """Raise ValueError naming the option when the TLS/SASL settings do not fit together."""
        if self.sasl_mechanism and self.sasl_mechanism.upper() not in SASL_MECHANISMS:
            raise ValueError(
                f'sasl_mechanism: "{self.sasl_mechanism}" is not supported '
                f"(expected one of {', '.join(SASL_MECHANISMS)})"
            )
        if self.sasl_username and not self.sasl_mechanism:
            self.sasl_mechanism = "PLAIN"  # Telegraf's default when a username is set
        if self.sasl_mechanism and not self.sasl_username:
            raise ValueError("sasl_username: needed with sasl_mechanism")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key: give both or neither")
        if self.uses_tls:
            self.ssl_context()  # loads the files now, so a wrong path is a config error

    @property
    def uses_tls(self) -> bool:
        return bool(self.enable_tls or self.tls_ca or self.tls_cert or self.insecure_skip_verify)

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings as an SSLContext; raises ValueError naming a file that fails."""
        try:
            context = ssl.create_default_context(cafile=self.tls_ca or None)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"tls_ca {self.tls_ca}: cannot load: {_reason(error)}") from None
        if self.tls_cert:
            try:
                context.load_cert_chain(self.tls_cert, self.tls_key, self.tls_key_pwd or None)
            except (OSError, ssl.SSLError) as error:
                raise ValueError(
                    f"tls_cert {self.tls_cert} / tls_key {self.tls_key}: cannot load: "
                    f"{_reason(error)}"
                ) from None
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def client_config(self) -> dict[str, Any]:
        """kafka-python keyword arguments for the security settings."""
        config: dict[str, Any] = {}
        if self.uses_tls:
            config["ssl_context"] = self.ssl_context()
            config["ssl_check_hostname"] = not self.insecure_skip_verify
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism.upper()
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password
        protocol = {
            (False, False): "PLAINTEXT",
            (True, False): "SSL",
            (False, True): "SASL_PLAINTEXT",
            (True, True): "SASL_SSL",
        }[(self.uses_tls, bool(self.sasl_mechanism))]
        config["security_protocol"] = protocol
        return config

    def open_exchange(self, host: str, port: int, timeout_s: float, client_id: str) -> Any:
        """A blocking connection (a KafkaExchange) to one broker, with TLS and the SASL login
        as the options say. Raises OSError (ssl.SSLError too) or a KafkaError when the
        broker refuses the login."""
        import kafka.errors as errors

        from plugins.common.kafka_exchange import KafkaExchange, SaslRefused, sasl_login

        raw = socket.create_connection((host, port), timeout_s)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = raw
            if self.uses_tls:
                sock = self.ssl_context().wrap_socket(
                    raw, server_hostname=self.tls_server_name or host
                )
            exchange = KafkaExchange(sock, client_id)
            if self.sasl_mechanism:
                try:
                    sasl_login(
                        exchange,
                        self.sasl_mechanism.upper(),
                        self.sasl_username,
                        self.sasl_password,
                        self.uses_tls,
                    )
                except SaslRefused as refusal:
                    raise errors.SaslAuthenticationFailedError(
                        f"SASL {self.sasl_mechanism.upper()} login as {self.sasl_username!r}: "
                        f"{refusal.reason}"
                    ) from None
        except BaseException:
            raw.close()
            raise
        return exchange

    def probe(self, brokers: list[str]) -> None:
        """Log in to the first broker that answers, as the client will, and raise one clear
        ConnectionError for a certificate or credential problem. kafka-python itself only
        retries until its bootstrap times out, and mostly loses the broker's reason."""
        if not (self.uses_tls or self.sasl_mechanism):
            return
        for broker in brokers:
            host, _, port = broker.rpartition(":")
            try:
                raw = socket.create_connection((host, int(port)), PROBE_TIMEOUT_S)
            except (OSError, ValueError):
                continue  # not reachable now: the client reports that itself
            with raw:
                sock = raw
                if self.uses_tls:
                    try:
                        sock = self.ssl_context().wrap_socket(
                            raw, server_hostname=self.tls_server_name or host
                        )
                    except ssl.SSLError as error:
                        where = f" (tls_ca = {self.tls_ca})" if self.tls_ca else ""
                        raise ConnectionError(
                            f"TLS handshake with {broker} failed: {_reason(error)}{where}"
                        ) from None
                    except OSError:
                        continue
                if self.sasl_mechanism:
                    self._sasl_login(sock, broker)
            return

    def _sasl_login(self, sock: socket.socket, broker: str) -> None:
        """Raise ConnectionError if the broker refuses the SASL mechanism or credentials.

        The probe only sharpens error messages: when it cannot speak to a broker (an older
        protocol, a dropped connection), it says nothing and the client's connection decides.
        """
        import kafka.errors as errors

        from plugins.common.kafka_exchange import (
            KafkaExchange,
            SaslMechanismNotOffered,
            SaslRefused,
            sasl_login,
        )

        mechanism = self.sasl_mechanism.upper()
        exchange = KafkaExchange(sock, client_id="metrics-agent-probe")
        try:
            sasl_login(exchange, mechanism, self.sasl_username, self.sasl_password, self.uses_tls)
        except SaslMechanismNotOffered as refusal:
            offered = ", ".join(refusal.offered) or "none"
            raise ConnectionError(
                f"{broker} does not offer SASL {mechanism} (it offers {offered})"
            ) from None
        except SaslRefused as refusal:
            raise ConnectionError(
                f"SASL {mechanism} login as {self.sasl_username!r} refused by {broker}: "
                f"{refusal.reason}"
            ) from None
        except (OSError, struct.error, errors.KafkaError, ValueError):
            return


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    return getattr(error, "strerror", None) or str(error)
