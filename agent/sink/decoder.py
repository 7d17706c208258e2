"""Kafka records → metrics, with the parser of the topic's data format.

A record may carry several lines, one metric each. A line that does not parse is counted,
logged with its topic, partition and offset and the parser's reason, and skipped; the other
lines of the record are kept.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agent import registry
from agent.options import Duration
from agent.sink.batch import Delivery

log = logging.getLogger("sink")


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
        if timestamp_ms is not None and timestamp_ms >= 0:
            default_time_ns = timestamp_ms * 1_000_000
        else:
            default_time_ns = time.time_ns()
        metrics, errors = self.parser.parse(value or b"", default_time_ns)
        if errors:
            self.invalid_records += 1
            self.invalid_lines += len(errors)
            for error in errors:
                log.error(
                    "topic %s partition %d offset %d: not %s: %s",
                    topic,
                    partition,
                    offset,
                    self._format_name(),
                    error,
                )
        return Delivery(topic, partition, offset, key, metrics)

    def _format_name(self) -> str:
        return "line protocol" if self.data_format == "influx" else self.data_format
