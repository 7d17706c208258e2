"""The machinery every plugin shares, once: filters, naming, tags, timestamps, statistics.

RunningInput wraps an input plugin and turns what it gathers into finished metrics;
RunningOutput wraps an output plugin with its own filter and batch writing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from agent.filters import FilterOptions, MetricFilter
from agent.metric import Metric
from agent.options import Duration
from agent.plugin import Input, Output


@dataclass
class InputSettings(FilterOptions):
    """Options every `[[inputs.X]]` table takes besides the plugin's own."""

    interval: Duration | None = None
    collection_jitter: Duration | None = None
    precision: Duration | None = None
    name_override: str = ""
    name_prefix: str = ""
    name_suffix: str = ""
    alias: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class OutputSettings(FilterOptions):
    """Options every `[[outputs.X]]` table takes besides the plugin's own."""

    alias: str = ""
    flush_interval: Duration | None = None
    flush_jitter: Duration | None = None
    metric_batch_size: int | None = None
    metric_buffer_limit: int | None = None
    name_override: str = ""
    name_prefix: str = ""
    name_suffix: str = ""


def rename(metric: Metric, override: str, prefix: str, suffix: str) -> None:
    if override:
        metric.name = override
    if prefix or suffix:
        metric.name = prefix + metric.name + suffix


@dataclass
class InputStats:
    """Counters behind the agent's own metrics (inputs.internal)."""

    metrics_gathered: int = 0
    gather_time_ns: int = 0
    errors: int = 0


class RunningInput:
    """An input plugin with its settings applied: what it gathers comes out finished."""

    def __init__(
        self,
        plugin: Input,
        settings: InputSettings,
        default_tags: dict[str, str],
        precision_ns: int,
    ) -> None:
        self.plugin = plugin
        self.settings = settings
        self.filter = MetricFilter(settings)
        self.default_tags = default_tags
        self.precision_ns = precision_ns
        self.stats = InputStats()
        self.log = logging.getLogger(self.log_name)

    @property
    def log_name(self) -> str:
        name = f"inputs.{self.plugin.plugin_name}"
        return f"{name}::{self.settings.alias}" if self.settings.alias else name

    def gather(self) -> list[Metric]:
        """Run the plugin once; a failing plugin is logged and counted, never raised."""
        started = time.perf_counter_ns()
        try:
            gathered = list(self.plugin.gather())
        except Exception as error:  # a plugin's failure must not stop the other inputs
            self.stats.errors += 1
            self.log.error("Error in plugin: %s", error)
            gathered = []
        self.stats.gather_time_ns = time.perf_counter_ns() - started
        finished = [m for m in map(self.finish, gathered) if m is not None]
        self.stats.metrics_gathered += len(finished)
        return finished

    def finish(self, metric: Metric) -> Metric | None:
        """Filter, rename, tag and round one metric, in Telegraf's order; None if dropped."""
        if not self.filter.select(metric):
            return None
        settings = self.settings
        rename(metric, settings.name_override, settings.name_prefix, settings.name_suffix)
        for tags in (settings.tags, self.default_tags):
            for key, value in tags.items():
                metric.tags.setdefault(key, value)
        self.filter.modify(metric)
        if not metric.fields:
            return None
        if self.precision_ns > 1:
            half = self.precision_ns // 2
            metric.time_ns = (metric.time_ns + half) // self.precision_ns * self.precision_ns
        return metric


@dataclass
class OutputStats:
    metrics_written: int = 0
    metrics_dropped: int = 0
    metrics_filtered: int = 0
    write_time_ns: int = 0
    errors: int = 0


class RunningOutput:
    """An output plugin with its own filter; writes in batches of metric_batch_size."""

    def __init__(self, plugin: Output, settings: OutputSettings, batch_size: int) -> None:
        self.plugin = plugin
        self.settings = settings
        self.filter = MetricFilter(settings)
        self.batch_size = batch_size
        self.stats = OutputStats()
        self.log = logging.getLogger(self.log_name)

    @property
    def log_name(self) -> str:
        name = f"outputs.{self.plugin.plugin_name}"
        return f"{name}::{self.settings.alias}" if self.settings.alias else name

    def accept(self, metric: Metric) -> Metric | None:
        """This output's view of a metric (a copy if it changes it), or None if filtered out."""
        if not self.filter.select(metric):
            self.stats.metrics_filtered += 1
            return None
        settings = self.settings
        if (
            self.filter.modifies
            or settings.name_override
            or settings.name_prefix
            or (settings.name_suffix)
        ):
            metric = metric.copy()
            rename(metric, settings.name_override, settings.name_prefix, settings.name_suffix)
            self.filter.modify(metric)
            if not metric.fields:
                self.stats.metrics_filtered += 1
                return None
        return metric

    def write_batch(self, batch: list[Metric]) -> None:
        """Write one batch; raises what the plugin raises, so the caller can keep the batch."""
        started = time.perf_counter_ns()
        try:
            self.plugin.write(batch)
        except Exception:
            self.stats.errors += 1
            raise
        self.stats.write_time_ns = time.perf_counter_ns() - started
        self.stats.metrics_written += len(batch)
        self.log.debug(
            "Wrote batch of %d metrics in %.3fms", len(batch), self.stats.write_time_ns / 1e6
        )
