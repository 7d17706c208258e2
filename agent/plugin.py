"""The contracts a plugin fulfils. A plugin is a dataclass of its options plus one method.

Everything plugins share (filters, tags, buffering, statistics) lives in agent.running,
so an input only gathers and an output only writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from agent.buffer import Batch
from agent.metric import Metric


@dataclass(frozen=True, slots=True)
class ParseError:
    """One line that could not be read: where (1-based line and column, in characters of the
    data given to parse()), what was expected, and the line itself (cut short if long)."""

    line: int
    column: int
    message: str
    text: str = ""

    def __str__(self) -> str:
        shown = f": {self.text!r}" if self.text else ""
        return f"line {self.line}, column {self.column}: {self.message}{shown}"


class Parser(Protocol):
    """Reads data in one `data_format` (plugins/parsers/) into metrics. Parsers are dataclasses
    of their options; an input with a `data_format` option is given one as `parser`."""

    def parse(
        self, data: bytes | str, default_time_ns: int | None = None
    ) -> tuple[list[Metric], list[ParseError]]:
        """Every metric of `data`, and a ParseError (line, column, what was expected) for each
        part that is not in the format; one bad line never costs the others. A metric without a
        timestamp gets `default_time_ns` (now, if not given)."""
        ...


class Input:
    """Gathers metrics. Subclasses are dataclasses whose fields are the plugin's options."""

    plugin_name: ClassVar[str]
    SAMPLE_CONFIG: ClassVar[str] = ""
    # An input whose values are rates between two readings (cpu usage) reports nothing on its
    # first gather; `--test` gathers such inputs twice, half a second apart, as Telegraf does.
    needs_two_readings: ClassVar[bool] = False
    parser: Parser | None = None

    def start(self) -> None:
        """Check options and acquire what gathering needs; raise ValueError on a bad option."""

    def gather(self) -> Iterable[Metric]:
        raise NotImplementedError

    def report_error(self, message: str) -> None:
        """Report a failure that spoils part of a gather (one file, one command) while the rest
        of its metrics still count; raising from gather() would lose them all. The running
        input replaces this with its own, which logs and counts the error; this one logs."""
        logging.getLogger(f"inputs.{self.plugin_name}").error("%s", message)


class Serializer:
    """Turns metrics into bytes (a `data_format`). Subclasses are dataclasses of options."""

    plugin_name: ClassVar[str]

    def serialize(self, metric: Metric) -> bytes:
        """One metric; empty bytes if nothing of it can be written (no serializable field)."""
        raise NotImplementedError

    def serialize_each(self, metrics: list[Metric]) -> list[bytes]:
        """serialize() of each metric; serializers that can do it faster for many override it."""
        return list(map(self.serialize, metrics))

    def serialize_batch(self, metrics: Iterable[Metric]) -> bytes:
        raise NotImplementedError


class WriteError(Exception):
    """A write that did not deliver everything. `failed` holds the indexes of the metrics to
    try again (None: all of them); the others were delivered or are beyond saving.
    `in_flight`, a subset of `failed`, names those already on their way (sent, awaiting the
    destination's acknowledgement): they may still arrive, so the buffer never drops them."""

    def __init__(
        self, message: str, failed: list[int] | None = None, in_flight: list[int] | None = None
    ) -> None:
        super().__init__(message)
        self.failed = failed
        self.in_flight = in_flight or []


class Output:
    """Writes metrics somewhere. An output implements write(); one that keeps several writes
    on their way implements send() and settle() instead, which are all the agent calls."""

    plugin_name: ClassVar[str]
    SAMPLE_CONFIG: ClassVar[str] = ""
    serializer: Serializer | None = None

    def connect(self) -> None:
        """Open connections; raise ConnectionError if the destination cannot be reached now."""

    def write(self, metrics: list[Metric]) -> None:
        """Deliver `metrics`, returning only once the destination has them; raise WriteError
        (or ConnectionError) for those to try again.

        A metric the destination can never take (too large, say) is logged and not raised,
        so it cannot block the buffer."""
        raise NotImplementedError

    # How many writes may be on their way at once. An output whose destination takes a
    # batch while the one before is still being acknowledged raises this and implements
    # send() and settle(); the agent then prepares the next batch meanwhile.
    writes_in_flight: ClassVar[int] = 1

    def report_rejected(self, message: str) -> None:
        """Report a metric the destination can never take, which write() leaves out; the
        running output replaces this with its own, which counts it (metrics_rejected)."""
        logging.getLogger(f"outputs.{self.plugin_name}").error("%s", message)

    def send(self, batch: Batch) -> object:
        """Start a write of the batch's metrics; settle() with what this returns completes it.

        `batch.sequence` names each metric for as long as it stays in the buffer: a metric
        that failed comes back in a later batch with the same number, though perhaps as
        another object (a disk buffer reads it from its file again)."""
        self.write(batch.metrics)
        return None

    def settle(self, sending: object, wait: bool = True) -> None:
        """Complete a write started by send(): raise WriteError for the metrics to try again,
        as write() does. Writes are settled in the order they were sent; `wait` False
        settles at once (a write still on its way counts as failed and in flight)."""

    def close(self) -> None:
        """Release connections after the last write."""
