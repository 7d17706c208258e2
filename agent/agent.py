"""The agent: builds running plugins from a Config and runs them (test, once, daemon)."""

from __future__ import annotations

import logging
import sys
import time

from agent.buffer import MemoryBuffer
from agent.config import Config
from agent.metric import Metric
from agent.running import RunningInput, RunningOutput
from plugins.serializers.influx import InfluxSerializer

log = logging.getLogger("agent")

# Telegraf's --test waits this long between the two readings of a rate input such as cpu.
TEST_READING_GAP_S = 0.5


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
                MemoryBuffer(entry.settings.metric_buffer_limit or settings.metric_buffer_limit),
            )
            for entry in config.outputs
        ]

    def start_inputs(self) -> None:
        for running in self.inputs:
            running.plugin.start()

    def gather_once(self) -> list[Metric]:
        """One reading of every input; rate inputs get a first reading half a second before."""
        first_readers = [r for r in self.inputs if r.plugin.needs_two_readings]
        for running in first_readers:
            running.gather()
        if first_readers:
            time.sleep(TEST_READING_GAP_S)
        metrics: list[Metric] = []
        for running in self.inputs:
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
        return 0 if delivered and not any(r.stats.errors for r in self.inputs) else 1
