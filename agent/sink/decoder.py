"""Kafka records → metrics, with the parser of the topic's data format.

A record may carry several lines, one metric each. A line that does not parse is counted,
logged with its topic, partition and offset and the parser's reason, and skipped; the other
lines of the record are kept. So is a metric no store or printer can hold (a timestamp past
64-bit nanoseconds): it is refused here, so the stores never see it, and its record's offset
is committed with the others (a restart does not meet it again).

For a sink that only stores (no printer), the records the sink fetches itself are read
straight into the stores' points (`into_points`, influx only): a run of records becomes one
PointRun, and no Python metric is made. A record that does not read cleanly ends the run and
is decoded on its own as above, which says what is wrong; the next run starts after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from agent import registry
from agent._native import PointRun
from agent.metric import MAX_TIME_NS, MIN_TIME_NS, OUTSIDE_TIME_RANGE, Metric
from agent.options import Duration
from agent.sink.batch import Delivery
from agent.sink.fetch import FetchedRecords

log = logging.getLogger("sink")


class Record(Protocol):
    """What the decoder reads of a Kafka record (kafka-python's ConsumerRecord); records
    the sink fetches itself come as FetchedRecords."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None


def _timestamp_ms(timestamp_ms: int | None) -> int:
    """A record's timestamp, -1 for none."""
    return -1 if timestamp_ms is None else timestamp_ms


def _record_time_ns(timestamp_ms: int | None) -> int:
    if timestamp_ms is not None and timestamp_ms >= 0:
        return timestamp_ms * 1_000_000
    return time.time_ns()


def _time_fits(metric: Metric) -> bool:
    """Whether the metric has a timestamp within signed 64-bit nanoseconds: a parser may
    read wider (seconds past 2262 scaled to nanoseconds), and a line left undated had a
    record time past them."""
    return metric.time_ns is not None and MIN_TIME_NS <= metric.time_ns <= MAX_TIME_NS


class RecordDecoder:
    """Decodes records with the registered parser named `data_format` ("influx", "json")."""

    def __init__(
        self,
        data_format: str = "influx",
        influx_timestamp_precision: float = 0.0,
        json_timestamp_units: float = 1.0,
        into_points: bool = False,
    ) -> None:
        parser_cls = registry.lookup("parsers", data_format)
        if parser_cls is None:
            known = ", ".join(registry.plugins("parsers"))
            raise ValueError(f'data_format: unknown format "{data_format}" (available: {known})')
        options: dict[str, Any] = {}
        if data_format == "influx":
            options["influx_timestamp_precision"] = Duration(influx_timestamp_precision)
        elif data_format == "json":
            options["json_timestamp_units"] = Duration(json_timestamp_units)
        self.data_format = data_format
        self.parser = parser_cls(**options)
        self.into_points = into_points and data_format == "influx"
        self.invalid_lines = 0
        self.invalid_records = 0

    def decode_all(self, records: Sequence[Record]) -> list[Delivery]:
        """decode() of each record (kafka-python's ConsumerRecords)."""
        if not records:
            return []
        together = self._one_line_records(
            [record.value for record in records],
            [_timestamp_ms(record.timestamp) for record in records],
        )
        if together is not None:
            return [
                Delivery(record.topic, record.partition, record.offset, record.key, [metric])
                for record, metric in zip(records, together, strict=True)
            ]
        return [
            self.decode(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            for r in records
        ]

    def decode_fetched(self, fetched: FetchedRecords) -> list[Delivery | PointRun]:
        """decode() of each record one fetch gave of one partition; with `into_points`,
        runs of them read as points."""
        if self.into_points:
            return self._point_runs(fetched)
        topic, partition = fetched.partition
        together = self._one_line_records(fetched.values, fetched.timestamps_ms)
        if together is not None:
            return [
                Delivery(topic, partition, offset, key, [metric])
                for offset, key, metric in zip(fetched.offsets, fetched.keys, together, strict=True)
            ]
        return [
            self.decode(topic, partition, offset, key, value, timestamp_ms)
            for offset, key, value, timestamp_ms in zip(
                fetched.offsets, fetched.keys, fetched.values, fetched.timestamps_ms, strict=True
            )
        ]

    def _point_runs(self, fetched: FetchedRecords) -> list[Delivery | PointRun]:
        topic, partition = fetched.partition
        decoded: list[Delivery | PointRun] = []
        for part in self.parser.read_point_runs(
            topic, partition, fetched.offsets, fetched.values, fetched.timestamps_ms
        ):
            if isinstance(part, int):  # a record that needs words
                decoded.append(
                    self.decode(
                        topic,
                        partition,
                        fetched.offsets[part],
                        fetched.keys[part],
                        fetched.values[part],
                        fetched.timestamps_ms[part],
                    )
                )
            else:
                decoded.append(part)
        return decoded

    def _one_line_records(
        self, values: list[bytes | None], timestamps_ms: list[int]
    ) -> list[Metric] | None:
        """The metric of each record when each holds exactly one valid line of line protocol
        (as the agent writes one metric per record): those are parsed in one call, which
        costs about as much as a line. None otherwise: each record is then decoded on its
        own, which reports what is wrong."""
        if len(values) < 2 or self.data_format != "influx":
            return None
        return self.parser.parse_each_dated(values, timestamps_ms)

    def decode(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
    ) -> Delivery:
        """The metrics of one record. A line without a timestamp takes the record's, so the
        same record always yields the same metrics (and the store's identity holds)."""
        record_time_ns = _record_time_ns(timestamp_ms)
        if self.data_format == "influx" and not MIN_TIME_NS <= record_time_ns <= MAX_TIME_NS:
            # Its lines without a timestamp cannot take the record's: read undated, refused below.
            metrics, errors = self.parser.parse_undated(value or b"")
        else:
            metrics, errors = self.parser.parse(value or b"", record_time_ns)
        reasons = [f"not {self._format_name()}: {error}" for error in errors]
        if not all(map(_time_fits, metrics)):
            reasons += [
                f"metric {metric.name!r}: timestamp "
                f"{record_time_ns if metric.time_ns is None else metric.time_ns} ns "
                f"{OUTSIDE_TIME_RANGE}"
                for metric in metrics
                if not _time_fits(metric)
            ]
            metrics = list(filter(_time_fits, metrics))
        if reasons:
            self.invalid_records += 1
            self.invalid_lines += len(reasons)
            for reason in reasons:
                log.error("topic %s partition %d offset %d: %s", topic, partition, offset, reason)
        return Delivery(topic, partition, offset, key, metrics)

    def _format_name(self) -> str:
        return "line protocol" if self.data_format == "influx" else self.data_format
