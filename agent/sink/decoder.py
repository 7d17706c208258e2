"""Kafka records → metrics, with the parser of the topic's data format.

A record may carry several lines, one metric each. A line that does not parse is counted,
logged with its topic, partition and offset and the parser's reason, and skipped; the other
lines of the record are kept. So is a metric no store or printer can hold (a timestamp past
64-bit nanoseconds): it is refused here, so the stores never see it, and its record's offset
is committed with the others (a restart does not meet it again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from agent import registry
from agent.metric import MAX_TIME_NS, MIN_TIME_NS, OUTSIDE_TIME_RANGE, Metric
from agent.options import Duration
from agent.sink.batch import Delivery

log = logging.getLogger("sink")


class Record(Protocol):
    """What the decoder reads of a Kafka record (kafka-python's ConsumerRecord)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None


def _record_time_ns(timestamp_ms: int | None) -> int:
    if timestamp_ms is not None and timestamp_ms >= 0:
        return timestamp_ms * 1_000_000
    return time.time_ns()


def _time_fits(metric: Metric) -> bool:
    """Whether the timestamp is within signed 64-bit nanoseconds: a parser may read wider
    (seconds past 2262 scaled to nanoseconds)."""
    return MIN_TIME_NS <= metric.time_ns <= MAX_TIME_NS


class RecordDecoder:
    """Decodes records with the registered parser named `data_format` ("influx", "json")."""

    def __init__(
        self,
        data_format: str = "influx",
        influx_timestamp_precision: float = 0.0,
        json_timestamp_units: float = 1.0,
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
        self.invalid_lines = 0
        self.invalid_records = 0

    def decode_all(self, records: Sequence[Record]) -> list[Delivery]:
        """decode() of each record. Records of one line of line protocol each (as the agent
        writes one metric per record) are parsed together: one parse call costs about as
        much as a line. Should any of them not give exactly its metric, each record is
        decoded on its own, which reports what is wrong."""
        together = self._one_line_records(records)
        if together is not None:
            return together
        return [
            self.decode(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            for r in records
        ]

    def _one_line_records(self, records: Sequence[Record]) -> list[Delivery] | None:
        """The deliveries of records of one valid line each, read in one call; None if they
        are not all such records."""
        if len(records) < 2 or self.data_format != "influx":
            return None
        metrics = self.parser.parse_each_undated([record.value for record in records])
        if metrics is None:
            return None
        deliveries = []
        for record, metric in zip(records, metrics, strict=True):
            if metric.time_ns is None:  # the line had no timestamp: its record's
                metric.time_ns = _record_time_ns(record.timestamp)
            elif not _time_fits(metric):
                return None
            deliveries.append(
                Delivery(record.topic, record.partition, record.offset, record.key, [metric])
            )
        return deliveries

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
        metrics, errors = self.parser.parse(value or b"", _record_time_ns(timestamp_ms))
        reasons = [f"not {self._format_name()}: {error}" for error in errors]
        if not all(map(_time_fits, metrics)):
            reasons += [
                f"metric {metric.name!r}: timestamp {metric.time_ns} ns {OUTSIDE_TIME_RANGE}"
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
