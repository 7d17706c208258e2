"""Telegraf-style TOML configuration: `[global_tags]`, `[agent]`, `[[inputs.X]]`, `[[outputs.X]]`.

Every problem becomes one ConfigError whose text names the file, the line where it can be
found, the option, and what was expected.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent import registry
from agent.config_file import ConfigFile, read_config_file
from agent.errors import ConfigError, OptionError
from agent.options import (
    Duration,
    PositiveDuration,
    build,
    convert,
    ignored,
    ignored_in,
    option_types,
    unknown_option,
)
from agent.plugin import Input, Output, Parser, Serializer
from agent.running import InputSettings, OutputSettings

# A batch or a buffer of no metrics would never write anything.
COUNTS_OF_ONE_OR_MORE = ("metric_batch_size", "metric_buffer_limit")


def check_one_or_more(name: str, value: int) -> None:
    if value < 1:
        raise OptionError(name, f"{name}: expected 1 or more, got {value}")


@dataclass
class AgentSettings:
    """The `[agent]` table. Names, meanings and defaults are Telegraf's."""

    interval: PositiveDuration = PositiveDuration(10)
    round_interval: bool = True
    collection_jitter: Duration = Duration(0)
    collection_offset: Duration = Duration(0)
    flush_interval: PositiveDuration = PositiveDuration(10)
    flush_jitter: Duration = Duration(0)
    metric_batch_size: int = 1000
    metric_buffer_limit: int = 10000
    precision: Duration = Duration(0)
    hostname: str = ""
    omit_hostname: bool = False
    debug: bool = False
    quiet: bool = False
    logfile: str = ""
    buffer_strategy: Literal["memory", "disk"] = "memory"
    buffer_directory: str = ""
    # Accepted so that a telegraf.conf made by `telegraf config` loads unchanged; they have no
    # effect here (log rotation is left to journald or logrotate; logs go to stderr or
    # logfile, in UTC; there are no processors, aggregators or SNMP inputs).
    logtarget: str = ignored("")
    logfile_rotation_interval: Duration = ignored(Duration(0))
    logfile_rotation_max_size: str | int = ignored(0)
    logfile_rotation_max_archives: int = ignored(5)
    log_with_timezone: str = ignored("")
    snmp_translator: str = ignored("")
    statefile: str = ignored("")
    always_include_local_tags: bool = ignored(False)
    always_include_global_tags: bool = ignored(False)
    skip_processors_after_aggregators: bool = ignored(False)

    def __post_init__(self) -> None:
        for name in COUNTS_OF_ONE_OR_MORE:
            check_one_or_more(name, getattr(self, name))
        if self.buffer_strategy == "disk" and not self.buffer_directory:
            raise OptionError(
                "buffer_directory",
                'buffer_directory: needed with buffer_strategy = "disk" '
                '(e.g. "/var/lib/agent/buffer")',
            )

    def precision_ns(self, interval: float) -> int:
        """Telegraf's rule: an unset precision follows the interval's order, at most 1s."""
        if self.precision > 0:
            return max(1, round(self.precision * 1e9))
        for unit_ns in (1_000_000_000, 1_000_000, 1_000):
            if interval * 1e9 >= unit_ns:
                return unit_ns
        return 1


@dataclass
class InputConfig:
    """One `[[inputs.X]]` table: the plugin with its own options, and the shared settings."""

    name: str
    plugin: Input
    settings: InputSettings
    source: str


@dataclass
class OutputConfig:
    name: str
    plugin: Output
    settings: OutputSettings
    source: str


@dataclass
class Config:
    """A whole configuration, read from one file or several."""

    files: list[str] = field(default_factory=list)
    agent: AgentSettings = field(default_factory=AgentSettings)
    global_tags: dict[str, str] = field(default_factory=dict)
    inputs: list[InputConfig] = field(default_factory=list)
    outputs: list[OutputConfig] = field(default_factory=list)
    # Options set in the files that have no effect here, as `agent.statefile`,
    # `inputs.processes.use_sudo`: named in one warning at start-up.
    ignored_options: list[str] = field(default_factory=list)

    def hostname(self) -> str:
        return self.agent.hostname or socket.gethostname()

    def default_tags(self) -> dict[str, str]:
        """Tags every metric gets unless it has them already: global_tags, then host."""
        tags = dict(self.global_tags)
        if not self.agent.omit_hostname:
            tags.setdefault("host", self.hostname())
        return tags


# Short precision names some users write instead of Telegraf's durations.
_PRECISION_UNITS = {"ns": "1ns", "us": "1us", "ms": "1ms", "s": "1s"}
_UNSUPPORTED_SECTIONS = ("processors", "aggregators", "secretstores")


def load(paths: list[str | Path]) -> Config:
    """Read and check every file, in order; later files add plugins and override settings."""
    config = Config()
    for path in paths:
        _load_file(Path(path), config)
    return config


def _load_file(path: Path, config: Config) -> None:
    file = read_config_file(path)
    config.files.append(str(path))
    reader = _FileReader(file)
    for section, body in file.table.items():
        if section == "agent":
            config.agent = reader.agent(body, config.agent)
        elif section == "global_tags":
            config.global_tags.update(reader.string_table(body, "global_tags"))
        elif section in ("inputs", "outputs"):
            reader.plugins(section, body, config)
        elif section in _UNSUPPORTED_SECTIONS:
            raise ConfigError(
                f"{reader.where([section])}: [[{section}.*]] plugins are not supported"
            )
        else:
            raise reader.error(
                [section],
                f'unknown section "{section}" (expected agent, global_tags, inputs or outputs)',
            )
    config.ignored_options += reader.ignored


class _FileReader:
    """Turns the tables of one file into typed settings, naming its lines in errors."""

    def __init__(self, file: ConfigFile) -> None:
        self.file = file
        self.where = file.where
        self.ignored: list[str] = []  # options set here that have no effect

    def error(
        self, table: list[str], message: str, occurrence: int = 0, key: str | None = None
    ) -> ConfigError:
        return ConfigError(f"{self.where(table, occurrence, key)}: {message}")

    def option_error(self, table: list[str], occurrence: int, error: OptionError) -> ConfigError:
        name = ".".join(table)
        return self.error(table, f"{name}: {error.message}", occurrence, error.key)

    def agent(self, body: Any, current: AgentSettings) -> AgentSettings:
        if not isinstance(body, dict):
            raise self.error(["agent"], "[agent] must be a table")
        body = dict(body)
        if isinstance(body.get("precision"), str):
            body["precision"] = _PRECISION_UNITS.get(body["precision"], body["precision"])
        merged = {**_set_values(current), **body}
        try:
            settings = build(AgentSettings, merged)
        except OptionError as error:
            raise self.option_error(["agent"], 0, error) from None
        self.ignored += ignored_in(AgentSettings, body, "agent.")
        return settings

    def string_table(self, body: Any, name: str) -> dict[str, str]:
        if not isinstance(body, dict):
            raise self.error([name], f"[{name}] must be a table of strings")
        for key, value in body.items():
            try:
                convert(value, str, f"{name}.{key}")
            except OptionError as error:
                raise self.error([name], error.message, key=key) from None
        return dict(body)

    def plugins(self, kind: str, body: Any, config: Config) -> None:
        if not isinstance(body, dict):
            raise self.error([kind], f"{kind} must hold [[{kind}.NAME]] tables")
        for name, tables in body.items():
            if isinstance(tables, dict):  # the single-table form [inputs.cpu] is valid too
                tables = [tables]
            if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
                raise self.error([kind, name], f"{kind}.{name} must be a [[{kind}.{name}]] table")
            cls = registry.lookup(kind, name)
            if cls is None:
                known = ", ".join(registry.plugins(kind))
                raise self.error(
                    [kind, name], f'unknown plugin "{kind}.{name}" (available: {known})'
                )
            for occurrence, table in enumerate(tables):
                source = self.where([kind, name], occurrence)
                settings_cls = InputSettings if kind == "inputs" else OutputSettings
                plugin, settings = self._plugin(kind, name, cls, table, occurrence, settings_cls)
                if kind == "inputs":
                    config.inputs.append(InputConfig(name, plugin, settings, source))
                else:
                    config.outputs.append(OutputConfig(name, plugin, settings, source))

    def _plugin(
        self,
        kind: str,
        name: str,
        cls: type,
        table: dict[str, Any],
        occurrence: int,
        settings_cls: type,
    ) -> tuple[Any, Any]:
        """Split one plugin table among the shared settings, the plugin and its data format:
        the parser an input reads with, or the serializer an output writes with."""
        path = [kind, name]
        plugin_options = option_types(cls)
        settings_options = option_types(settings_cls)
        format_kind = "parsers" if kind == "inputs" else "serializers"
        format_cls = None
        if "data_format" in plugin_options:
            data_format = table.get("data_format", cls.__dataclass_fields__["data_format"].default)
            format_cls = (
                registry.lookup(format_kind, data_format) if isinstance(data_format, str) else None
            )
            if format_cls is None:
                known = ", ".join(registry.plugins(format_kind))
                raise self.error(
                    path,
                    f'{kind}.{name}: data_format: unknown format "{data_format}" '
                    f"(available: {known})",
                    occurrence,
                    "data_format",
                )
        format_options = option_types(format_cls) if format_cls else {}
        parts: dict[str, dict[str, Any]] = {"settings": {}, "plugin": {}, "format": {}}
        for key, value in table.items():
            if key in plugin_options:
                parts["plugin"][key] = value
            elif key in settings_options:
                parts["settings"][key] = value
            elif key in format_options:
                parts["format"][key] = value
            else:
                known = [*plugin_options, *settings_options, *format_options]
                raise self.option_error(path, occurrence, unknown_option(key, known))
        try:
            _check_agent_overrides(parts["settings"])
            settings = build(settings_cls, parts["settings"])
            plugin = build(cls, parts["plugin"])
            if format_cls is not None and kind == "inputs":
                parser: Parser = build(format_cls, parts["format"])
                plugin.parser = parser
            elif format_cls is not None:
                serializer: Serializer = build(format_cls, parts["format"])
                plugin.serializer = serializer
        except OptionError as error:
            raise self.option_error(path, occurrence, error) from None
        except ValueError as error:  # a plugin's own check of its options (__post_init__)
            raise self.error(path, f"{kind}.{name}: {error}", occurrence) from None
        prefix = f"{kind}.{name}."
        self.ignored += ignored_in(cls, parts["plugin"], prefix)
        self.ignored += ignored_in(settings_cls, parts["settings"], prefix)
        if format_cls is not None:
            self.ignored += ignored_in(format_cls, parts["format"], prefix)
        return plugin, settings


def _check_agent_overrides(table: dict[str, Any]) -> None:
    """A plugin's interval, flush_jitter, … stand in for the agent's: valid for one only if
    valid for the other (an interval of "0s" is refused in either place)."""
    agent_options = option_types(AgentSettings)
    for key, value in table.items():
        if key in agent_options:
            converted = convert(value, agent_options[key], key)
            if key in COUNTS_OF_ONE_OR_MORE:
                check_one_or_more(key, converted)


def _set_values(settings: AgentSettings) -> dict[str, Any]:
    """The values an earlier file gave, so a later file only overrides what it names."""
    defaults = AgentSettings()
    return {key: value for key, value in vars(settings).items() if value != getattr(defaults, key)}
