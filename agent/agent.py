"""The agent: builds running plugins from a Config and runs them (test, once, daemon)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from agent.buffer import Buffer, MemoryBuffer
from agent.config import Config, OutputConfig
from agent.errors import ConfigError
from agent.metric import Metric
from agent.running import RunningInput, RunningOutput
from plugins.serializers.influx import InfluxSerializer

log = logging.getLogger("agent")

# Telegraf's --test waits this long between the two readings of a rate input such as cpu.
TEST_READING_GAP_S = 0.5


def buffer_names(outputs: list[OutputConfig]) -> list[str]:
    """A stable file name per output for the disk buffer: its alias, else its plugin name
    with a number from the second output of the same plugin on ("kafka", "kafka-2")."""
    names, seen = [], {}
    for entry in outputs:
        base = entry.settings.alias or entry.name
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


class Agent:
    """Running inputs and outputs for one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        settings = config.agent
        default_tags = config.default_tags()
        self.inputs = [
            RunningInput(
                entry.plugin,
                entry.settings,
                default_tags,
                settings.precision_ns(entry.settings.interval or settings.interval)
                if entry.settings.precision is None
                else max(1, round(entry.settings.precision * 1e9)),
            )
            for entry in config.inputs
        ]
        self.outputs = [
            RunningOutput(
                entry.plugin,
                entry.settings,
                entry.settings.metric_batch_size or settings.metric_batch_size,
                self.make_buffer(entry, buffer_name),
            )
            for entry, buffer_name in zip(config.outputs, buffer_names(config.outputs), strict=True)
        ]

        for running in self.inputs:
            attach = getattr(running.plugin, "attach_agent", None)
            if attach is not None:
                attach(self)

    def make_buffer(self, entry: OutputConfig, name: str) -> Buffer:
        settings = self.config.agent
        limit = entry.settings.metric_buffer_limit or settings.metric_buffer_limit
        if settings.buffer_strategy == "disk":
            from agent.disk_buffer import DiskBuffer  # only configs that ask for it load it

            return DiskBuffer(Path(settings.buffer_directory) / f"{name}.db", limit)
        return MemoryBuffer(limit)

    def start_inputs(self) -> None:
        """Let each input check its options and acquire what it needs (ConfigError if not)."""
        for running in self.inputs:
            try:
                running.plugin.start()
            except ValueError as error:
                raise ConfigError(f"{running.log_name}: {error}") from None

    def gather_once(self) -> list[Metric]:
        """One reading of every input; rate inputs get a first reading half a second before.

        A rate input whose first reading failed is not read again: its error is reported
        once, and a second reading would have no first one to compute rates from."""
        first_readers = [r for r in self.inputs if r.plugin.needs_two_readings]
        failed_first: list[RunningInput] = []
        for running in first_readers:
            errors_before = running.stats.errors
            running.gather()
            if running.stats.errors > errors_before:
                failed_first.append(running)
        if first_readers:
            time.sleep(TEST_READING_GAP_S)
        metrics: list[Metric] = []
        for running in self.inputs:
            if running not in failed_first:
                metrics.extend(running.gather())
        return metrics

    def test(self) -> int:
        """`--test`: gather once and print line protocol on stdout; no output is contacted."""
        self.start_inputs()
        serializer = InfluxSerializer(influx_sort_fields=True, influx_uint_support=True)
        out = sys.stdout
        for metric in self.gather_once():
            line = serializer.format_line(metric)
            if line:
                out.write(line + "\n")
        out.flush()
        return 1 if any(r.stats.errors for r in self.inputs) else 0

    def once(self) -> int:
        """`--once`: gather once, write everything to every output, exit."""
        self.start_inputs()
        metrics = self.gather_once()
        delivered = True
        for running in self.outputs:
            running.add(metrics)
            delivered = running.flush() and delivered
            running.close()
            running.buffer.close()
        return 0 if delivered and not any(r.stats.errors for r in self.inputs) else 1
