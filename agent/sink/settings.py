"""What a sink does, from command-line flags or from a TOML file (`agent sink -config FILE`).

The file holds the same options as the flags, with underscores (`from_beginning = true`);
flags given beside `-config` override the file. Every mistake is one SettingsError line
naming the file, the line and the option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.config_file import ConfigFile, read_config_file
from agent.errors import ConfigError, OptionError
from agent.options import (
    Duration,
    PositiveDuration,
    build,
    ignored_in,
    option_types,
    unknown_option,
)
from agent.sink.store import STORE_FORMS, redact_store, store_kind
from plugins.common.kafka import KafkaSecurity


class SettingsError(ConfigError):
    """A sink configuration problem, already phrased as the one line the user sees."""


@dataclass
class SinkSettings(KafkaSecurity):
    """Every option of `agent sink`; TOML keys and `--flags` share these names. The TLS and
    SASL options are outputs.kafka's (`tls_ca`, `sasl_mechanism`, `sasl_password`, …)."""

    brokers: list[str] = field(default_factory=lambda: ["127.0.0.1:9092"])
    topic: str = ""
    topics: list[str] = field(default_factory=list)
    group: str = ""
    from_beginning: bool = False
    format: Literal["", "line", "json", "table"] = ""
    print_key: bool = False
    key_separator: str = "\t"
    max_messages: int = 0
    timeout_ms: int = 0
    data_format: Literal["influx", "json"] = "influx"
    store: str = ""
    workers: int = 1
    batch_size: int = 10_000
    flush_interval: PositiveDuration = PositiveDuration(0.2)
    client_id: str = "agent-sink"
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_poll_interval_ms: int = 300_000
    influx_timestamp_precision: Duration = Duration(0)
    json_timestamp_units: Duration = Duration(1)
    debug: bool = False
    quiet: bool = False
    logfile: str = ""
    # Keys of the file that have no effect here: named in one warning at start-up.
    ignored_options: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.topic and self.topic not in self.topics:
            self.topics = [self.topic, *self.topics]
        if self.store and store_kind(self.store) is None:
            shown = redact_store(self.store)
            raise OptionError("store", f"store: expected {STORE_FORMS}, got {shown!r}")
        for name in ("max_messages", "timeout_ms"):
            if getattr(self, name) < 0:
                raise OptionError(name, f"{name}: must not be negative")
        if self.workers < 1:
            raise OptionError("workers", "workers: must be at least 1")
        if self.workers > 1 and not self.group:
            raise OptionError(
                "workers", "workers: several workers share partitions in a group: give a group too"
            )
        if self.batch_size < 1:
            raise OptionError("batch_size", "batch_size: must be at least 1")
        if not self.brokers or not all(self.brokers):
            raise OptionError("brokers", "brokers: expected at least one host:port")
        try:
            self.check_security()
        except ValueError as error:
            option = str(error).split(":")[0].split()[0]
            raise OptionError(option, str(error)) from None

    @property
    def prints(self) -> bool:
        """Metrics go to stdout: always without a store, and with one when a format is named."""
        return not self.store or bool(self.format)

    @property
    def print_format(self) -> str:
        return self.format or "line"


def load(config_path: str | None, overrides: dict[str, Any]) -> SinkSettings:
    """Settings from the file (if any) with `overrides` (the flags given) on top.

    Errors about a key of the file name its line; errors about a flag name the flag."""
    table: dict[str, Any] = {}
    file: ConfigFile | None = None
    if config_path:
        try:
            file = read_config_file(Path(config_path))
        except ConfigError as error:
            raise SettingsError(str(error)) from None
        table = file.table
        known = option_types(SinkSettings)
        for key, value in table.items():
            if key not in known:
                where = _where(file, key)
                hint = unknown_option(key, known).message
                if isinstance(value, dict):
                    hint = f'unknown table "[{key}]" (options are top-level keys)'
                raise SettingsError(f"{where}: sink: {hint}")
    merged = {**table, **overrides}
    try:
        settings: SinkSettings = build(SinkSettings, merged)
        settings.ignored_options = ignored_in(SinkSettings, table)
        return settings
    except OptionError as error:
        key = error.key
        if key in overrides or file is None:
            flag = "--" + key.replace("_", "-")
            raise SettingsError(f"{flag}: {error.message.removeprefix(key + ': ')}") from None
        raise SettingsError(f"{_where(file, key)}: sink: {error.message}") from None


def _where(file: ConfigFile, key: str) -> str:
    """`path:line` of top-level `key = …`, or of a `[key]` table written by mistake."""
    line = file.line_of([], key=key) or file.line_of([key])
    return f"{file.path}:{line}" if line else str(file.path)
