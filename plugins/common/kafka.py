"""TLS and SASL settings for Kafka clients, with Telegraf's option names.

Shared by outputs.kafka and the sink, so both accept the same `tls_*` and `sasl_*` options
and turn them into the same kafka-python settings. Nothing here logs a password.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
TLS_PROBE_TIMEOUT_S = 5.0


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
    sasl_version: int = 1

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

    def probe_tls(self, brokers: list[str]) -> None:
        """A TLS handshake with the first broker that answers, to turn a certificate problem
        into one clear error (kafka-python only retries until its bootstrap times out)."""
        if not self.uses_tls:
            return
        context = self.ssl_context()
        for broker in brokers:
            host, _, port = broker.rpartition(":")
            try:
                with socket.create_connection((host, int(port)), TLS_PROBE_TIMEOUT_S) as raw:
                    server_name = self.tls_server_name or host
                    with context.wrap_socket(raw, server_hostname=server_name):
                        return
            except ssl.SSLError as error:
                raise ConnectionError(
                    f"TLS handshake with {broker} failed: {_reason(error)}"
                    + (f" (tls_ca = {self.tls_ca})" if self.tls_ca else "")
                ) from None
            except (OSError, ValueError):
                continue  # not reachable: the client reports that itself


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return getattr(error, "verify_message", None) or str(error.reason)
    return getattr(error, "strerror", None) or str(error)
