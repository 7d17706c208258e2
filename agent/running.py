"""The machinery every plugin shares, once: filters, naming, tags, timestamps, statistics.

RunningInput wraps an input plugin and turns what it gathers into finished metrics;
RunningOutput wraps an output plugin with its own filter and batch writing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from agent import _native
from agent.buffer import Batch, Buffer, BufferFullError
from agent.filters import FilterOptions, MetricFilter
from agent.metric import Metric
from agent.options import Duration
from agent.plugin import Input, Output, WriteError


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
    # Turns skipped because the gather before was still running (Telegraf's name).
    gather_timeouts: int = 0


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
        plugin.report_error = self.report_error  # type: ignore[method-assign]

    @property
    def log_name(self) -> str:
        name = f"inputs.{self.plugin.plugin_name}"
        return f"{name}::{self.settings.alias}" if self.settings.alias else name

    def report_error(self, message: str) -> None:
        """A failure in part of a gather (Input.report_error): logged and counted like a
        failed gather, while the metrics gathered beside it still go on."""
        self.stats.errors += 1
        self.log.error("Gather error: %s", message)

    def gather(self) -> list[Metric]:
        """Run the plugin once; a failing plugin is logged and counted, never raised."""
        started = time.perf_counter_ns()
        try:
            gathered = list(self.plugin.gather())
        except Exception as error:  # a plugin's failure must not stop the other inputs
            self.stats.errors += 1
            self.log.error("Gather error: %s", error)
            gathered = []
        self.stats.gather_time_ns = time.perf_counter_ns() - started
        try:
            finished = self.finish_all(gathered)
        except Exception as error:  # a plugin that handed over something other than metrics
            self.stats.errors += 1
            self.log.error("Gather error: %s", error)
            finished = []
        self.stats.metrics_gathered += len(finished)
        return finished

    def finish_all(self, metrics: list[Metric]) -> list[Metric]:
        """finish() of each metric, those dropped left out. Without filters or renames only
        tags and rounding apply: done in one loop (a gather may hold a whole file's lines)."""
        settings = self.settings
        renames = settings.name_override or settings.name_prefix or settings.name_suffix
        if self.filter.selects or self.filter.modifies or renames:
            return [m for m in map(self.finish, metrics) if m is not None]
        # The plugin's own tags first, then the global ones, as finish() adds them. Done in
        # the native core: no dict of a parsed metric's tags is made for it.
        added = list({**self.default_tags, **settings.tags}.items())
        return _native.finish_metrics(metrics, added, self.precision_ns)

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
    metrics_added: int = 0
    metrics_written: int = 0
    metrics_dropped: int = 0
    metrics_filtered: int = 0
    # Metrics the destination can never take (too large): dropped from the buffer, not written.
    metrics_rejected: int = 0
    write_time_ns: int = 0
    errors: int = 0
    # Failed attempts to connect (the destination not reachable yet).
    startup_errors: int = 0


@dataclass(slots=True)
class _Write:
    """A batch being written: sent with what the plugin's send() returned, not yet settled."""

    batch: Batch
    started_ns: int
    sending: object = None
    rejected: int = 0  # metrics of the batch the output rejected while sending it


class RunningOutput:
    """An output plugin with its own filter and buffer; writes in batches of metric_batch_size.

    `add()` is called by gathers, `flush()` by the flush schedule (or when a batch is ready);
    a flush writes what the buffer holds, batch by batch, until it is empty or a write fails.
    """

    def __init__(
        self,
        plugin: Output,
        settings: OutputSettings,
        batch_size: int,
        buffer: Buffer,
    ) -> None:
        self.plugin = plugin
        self.settings = settings
        self.filter = MetricFilter(settings)
        self.batch_size = batch_size
        self.buffer = buffer
        self.stats = OutputStats()
        self.log = logging.getLogger(self.log_name)
        self.connected = False
        self.healthy = True  # False while writes fail: retries then wait for the schedule
        self.buffer_full: BufferFullError | None = None  # the last add refused, until one is kept
        self._flush_lock = threading.Lock()
        plugin.report_rejected = self.report_rejected  # type: ignore[method-assign]

    @property
    def log_name(self) -> str:
        name = f"outputs.{self.plugin.plugin_name}"
        return f"{name}::{self.settings.alias}" if self.settings.alias else name

    def report_rejected(self, message: str) -> None:
        """A metric the destination can never take (Output.report_rejected): counted as
        rejected, logged, and not tried again."""
        self.stats.metrics_rejected += 1
        self.log.error("%s", message)

    def accept(self, metric: Metric) -> Metric | None:
        """This output's view of a metric (a copy if it changes it), or None if filtered out."""
        if not self.filter.select(metric):
            self.stats.metrics_filtered += 1
            return None
        settings = self.settings
        renames = settings.name_override or settings.name_prefix or settings.name_suffix
        if self.filter.modifies or renames:
            metric = metric.copy()
            rename(metric, settings.name_override, settings.name_prefix, settings.name_suffix)
            self.filter.modify(metric)
            if not metric.fields:
                self.stats.metrics_filtered += 1
                return None
        return metric

    def add(self, metrics: list[Metric]) -> bool:
        """Buffer this output's view of `metrics`; True when a full batch is waiting.

        Metrics the buffer cannot keep (its disk is full) are counted as dropped; that the
        buffer is full is logged once, and once more when it keeps metrics again."""
        settings = self.settings
        renames = settings.name_override or settings.name_prefix or settings.name_suffix
        if self.filter.selects or self.filter.modifies or renames:
            accepted = [m for m in map(self.accept, metrics) if m is not None]
        else:
            accepted = metrics  # this output takes every metric as it is
        self.stats.metrics_added += len(accepted)
        try:
            dropped = self.buffer.add(accepted)
        except BufferFullError as full:
            self.stats.metrics_dropped += full.lost
            if self.buffer_full is None:
                self.log.error("%s; new metrics are dropped and counted until it has room", full)
            self.buffer_full = full
            return len(self.buffer) >= self.batch_size
        if self.buffer_full is not None and accepted:
            self.log.info(
                "%s: room on its disk again; new metrics are kept", self.buffer_full.buffer_name
            )
            self.buffer_full = None
        if dropped:
            self.stats.metrics_dropped += dropped
            self.log.warning("Buffer full: dropped the %d oldest metrics", dropped)
        return len(self.buffer) >= self.batch_size

    def flush(self) -> bool:
        """Write the buffer out; True if it was emptied. Never raises: failures are logged
        once per flush and the metrics stay buffered, in order, for the next flush."""
        if not self._flush_lock.acquire(blocking=False):
            return False  # a flush is already writing; it goes on until the buffer is empty
        try:
            self.healthy = self._flush()
            return self.healthy
        finally:
            self._flush_lock.release()

    def _flush(self) -> bool:
        if not len(self.buffer):
            return True
        try:
            if not self.connected:
                try:
                    self.plugin.connect()
                except (ConnectionError, OSError):
                    self.stats.startup_errors += 1
                    raise
                self.connected = True
            self._write_all()
        except Exception as error:  # noqa: BLE001 - any plugin failure leaves the metrics buffered
            self.stats.errors += 1
            self.log.error("Write failed: %s; %d metrics stay buffered", error, len(self.buffer))
            return False
        return True

    def _write_all(self) -> None:
        """Write batch after batch until the buffer is empty, with up to the plugin's
        writes_in_flight batches sent and not yet settled; the first error ends the sending,
        the batches on their way are settled, then the error is raised."""
        window: deque[_Write] = deque()
        in_window = 0  # metrics of the batches in the window: the front of the buffer
        error: BaseException | None = None
        try:
            while True:
                if (
                    error is None
                    and len(window) < self.plugin.writes_in_flight
                    and len(self.buffer) > in_window
                ):
                    batch = self.buffer.batch(self.batch_size, skip=in_window)
                    if not batch.metrics:
                        # The buffer counts more than it hands out: a bug, which must end
                        # this flush rather than turn the loop into a spin.
                        error = error or OSError(f"{len(self.buffer)} metrics counted, none found")
                        continue
                    write = _Write(batch, time.perf_counter_ns())
                    window.append(write)
                    in_window += len(batch.metrics)
                    rejected_before = self.stats.metrics_rejected
                    refused: WriteError | None = None
                    try:
                        write.sending = self.plugin.send(batch)
                    except WriteError as failure:
                        refused = failure
                    write.rejected = self.stats.metrics_rejected - rejected_before
                    if refused is not None:
                        window.pop()
                        self._remove_delivered(write, refused)
                        error = refused
                    continue
                if not window:
                    break
                write = window[0]
                try:
                    self.plugin.settle(write.sending, wait=error is None)
                except WriteError as failure:
                    self._remove_delivered(write, failure)
                    error = error or failure
                else:
                    self._remove_delivered(write, None)
                window.popleft()
                in_window -= len(write.batch.metrics)
        except BaseException:
            for write in window:  # what was not settled stays in the buffer, nothing in flight
                self.buffer.accept(write.batch, range(len(write.batch.metrics)))
            raise
        if error is not None:
            raise error

    def _remove_delivered(self, write: _Write, failure: WriteError | None) -> None:
        """Remove from the buffer what a write delivered; count and log it."""
        batch = write.batch
        count = len(batch.metrics)
        if failure is not None:
            failed = failure.failed if failure.failed is not None else range(count)
            self.buffer.accept(batch, failed, failure.in_flight)
            self.stats.metrics_written += count - len(failed) - write.rejected
            return
        self.buffer.accept(batch)
        self.stats.write_time_ns = time.perf_counter_ns() - write.started_ns
        self.stats.metrics_written += count - write.rejected
        self.log.debug("Batch written: %d metrics in %.3fms", count, self.stats.write_time_ns / 1e6)
        self.log.debug("Buffer holds %d of at most %d metrics", len(self.buffer), self.buffer.limit)

    def close(self) -> None:
        if self.connected:
            self.plugin.close()
            self.connected = False
