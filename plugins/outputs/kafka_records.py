"""outputs.kafka's records: which topic and key each metric goes to, and how a write's metrics
are cut into record values (one metric per record, or with use_batch_format as many as
max_message_bytes allows).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent.metric import Metric
from agent.plugin import Serializer

# Bytes of `{"metrics":[` … `]}` plus a newline, around a JSON batch.
JSON_BATCH_OVERHEAD = 16


@dataclass(slots=True)
class Record:
    """One Kafka record and the indexes (in the written batch) of the metrics it carries."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    indexes: list[int]


@dataclass
class TopicSuffix:
    """`[outputs.kafka.topic_suffix]`: per-measurement or per-tag topics."""

    method: Literal["", "measurement", "tags"] = ""
    keys: list[str] = field(default_factory=list)
    separator: str = ""


class RandomKey:
    """The key routing_key = "random" gives a metric: not one value but the rule that each
    record carrying such metrics draws a fresh key when it is made (drawn())."""


RANDOM_KEY = RandomKey()


def drawn(key: bytes | RandomKey | None) -> bytes | None:
    """The key a record gets from its metrics' key: a fresh random one for RANDOM_KEY."""
    return str(uuid.uuid4()).encode() if isinstance(key, RandomKey) else key


@dataclass(frozen=True, slots=True)
class RecordBuilder:
    """Makes the records of a write from outputs.kafka's routing and format options."""

    serializer: Serializer
    # Called with one line for each metric left out because it can never be written.
    report_rejected: Callable[[str], None]
    topic: str
    topic_tag: str
    exclude_topic_tag: bool
    topic_suffix: TopicSuffix
    routing_tag: str
    routing_key: str
    max_message_bytes: int
    producer_timestamp: Literal["metric", "now"]
    use_batch_format: bool
    data_format: str

    def topic_for(self, metric: Metric) -> str:
        topic = self.topic
        if self.topic_tag and (value := metric.get_tag(self.topic_tag)) is not None:
            topic = value
        suffix = self.topic_suffix
        if suffix.method == "measurement":
            topic += suffix.separator + metric.name
        elif suffix.method == "tags":
            for key in suffix.keys:
                if value := metric.get_tag(key):
                    topic += suffix.separator + value
        return topic

    def key_rule(self, metric: Metric) -> bytes | RandomKey | None:
        """The key routing gives a metric: its routing_tag value, else routing_key (RANDOM_KEY
        for "random": drawn per record), else none."""
        if self.routing_tag:
            value = metric.get_tag(self.routing_tag)
            if value is not None:
                return value.encode()
        return self.default_key()

    def default_key(self) -> bytes | RandomKey | None:
        """The key of a metric without routing_tag: routing_key's."""
        if self.routing_key == "random":
            return RANDOM_KEY
        return self.routing_key.encode() if self.routing_key else None

    def key_for(self, metric: Metric) -> bytes | None:
        """The key of a record that carries this metric alone."""
        return drawn(self.key_rule(metric))

    def routed(self, metric: Metric) -> tuple[str, bytes | None, bytes]:
        """Topic, key and serialized value of one metric."""
        return self.topic_for(metric), self.key_for(metric), self._value_of(metric)

    def timestamp_ms(self, metric: Metric) -> int | None:
        return metric.time_ns // 1_000_000 if self.producer_timestamp == "metric" else None

    def records(self, metrics: list[Metric], indexes: Sequence[int]) -> Iterator[Record]:
        """The records that carry the metrics at `indexes`: one per metric, or with
        use_batch_format as few as max_message_bytes allows per topic and key. Made as they
        are sent, so the producer's thread sends while the rest is serialized."""
        if self.use_batch_format and self._lines_to_one_topic():
            yield from self._lines_in_records(metrics, indexes)
        elif self._routes_each_metric():
            yield from self._routed_records([(i, metrics[i]) for i in indexes])
        elif not self.use_batch_format:
            topic, timestamp_ms = self.topic, self.timestamp_ms
            for index, metric, value in self._serialized(metrics, indexes):
                yield Record(topic, None, value, timestamp_ms(metric), [index])
        else:  # JSON batches, one topic without a key
            yield from self.batched(self.topic, None, self._serialized(metrics, indexes))

    def _routes_each_metric(self) -> bool:
        """Whether topic or key may differ between metrics (topic_tag, topic_suffix, routing)."""
        return bool(
            self.topic_tag or self.topic_suffix.method or self.routing_tag or self.routing_key
        )

    def _serialized(
        self, metrics: list[Metric], indexes: Sequence[int]
    ) -> Iterator[tuple[int, Metric, bytes]]:
        """(index, metric, value) of each metric that can be written and fits a record."""
        chosen = [metrics[index] for index in indexes]
        limit = self.max_message_bytes
        for index, metric, value in zip(
            indexes, chosen, self.serializer.serialize_each(chosen), strict=True
        ):
            if len(value) > limit:
                self._log_too_large(metric, len(value))
            elif value:
                yield index, metric, value

    def _lines_to_one_topic(self) -> bool:
        """Whether records take line protocol to one topic (keys may differ)."""
        return not (self.topic_tag or self.topic_suffix.method) and self.data_format != "json"

    def _lines_in_records(self, metrics: list[Metric], indexes: Sequence[int]) -> Iterator[Record]:
        """use_batch_format with line protocol to one topic: the lines of each key
        (routing_tag's value, else routing_key's, none without either) in records as
        batched() makes them, serialized, grouped and cut by the native core in one call."""
        chosen = metrics if len(indexes) == len(metrics) else [metrics[i] for i in indexes]
        records, too_large = self.serializer.serialize_routed(
            chosen, self.routing_tag, self.max_message_bytes
        )
        for position, size in too_large:
            self._log_too_large(chosen[position], size)
        for tag_value, value, positions in records:
            key = self.default_key() if tag_value is None else tag_value.encode()
            yield Record(
                self.topic,
                drawn(key),
                value,
                self.timestamp_ms(chosen[positions[0]]),
                [indexes[p] for p in positions],
            )

    def _log_too_large(self, metric: Metric, size: int) -> None:
        self.report_rejected(
            f"Dropped metric {metric.name} of {size} bytes: larger than "
            f"max_message_bytes ({self.max_message_bytes})"
        )

    def _routed_records(self, metrics: list[tuple[int, Metric]]) -> Iterator[Record]:
        values = self._values_of([metric for _, metric in metrics])
        groups: dict[tuple[str, bytes | RandomKey | None], list[tuple[int, Metric, bytes]]] = {}
        limit = self.max_message_bytes
        for (index, metric), value in zip(metrics, values, strict=True):
            if not value:
                continue
            if len(value) > limit:
                self._log_too_large(metric, len(value))
                continue
            topic = self.topic_for(metric)
            key = self.key_rule(metric)
            if not self.use_batch_format:
                yield Record(topic, drawn(key), value, self.timestamp_ms(metric), [index])
                continue
            groups.setdefault((topic, key), []).append((index, metric, value))
        for (topic, key), members in groups.items():
            yield from self.batched(topic, key, members)

    def _value_of(self, metric: Metric) -> bytes:
        """The serialized metric, without topic_tag if exclude_topic_tag says so."""
        return self._values_of([metric])[0]

    def _values_of(self, metrics: list[Metric]) -> list[bytes]:
        """The serialized metrics (all in one call: the serializer's work per call is more
        than per metric), without topic_tag if exclude_topic_tag says so."""
        if self.exclude_topic_tag:
            metrics = [self._without_topic_tag(metric) for metric in metrics]
        return self.serializer.serialize_each(metrics)

    def _without_topic_tag(self, metric: Metric) -> Metric:
        if metric.get_tag(self.topic_tag) is None:
            return metric
        metric = metric.copy()
        del metric.tags[self.topic_tag]
        return metric

    def batched(
        self,
        topic: str,
        key: bytes | RandomKey | None,
        members: Iterable[tuple[int, Metric, bytes]],
    ) -> Iterator[Record]:
        """Records of many metrics each, none over max_message_bytes (room is left for the
        JSON batch wrapper)."""
        limit = self.max_message_bytes - (JSON_BATCH_OVERHEAD if self.data_format == "json" else 0)
        chunk: list[tuple[int, Metric, bytes]] = []
        size = 0
        for member in members:
            if chunk and size + len(member[2]) > limit:
                yield self.batch_record(topic, key, chunk)
                chunk, size = [], 0
            chunk.append(member)
            size += len(member[2])
        if chunk:
            yield self.batch_record(topic, key, chunk)

    def batch_record(
        self, topic: str, key: bytes | RandomKey | None, chunk: list[tuple[int, Metric, bytes]]
    ) -> Record:
        if self.data_format == "json":
            value = self.serializer.serialize_batch(metric for _, metric, _ in chunk)
        else:
            value = b"".join(value for _, _, value in chunk)
        indexes = [index for index, _, _ in chunk]
        return Record(topic, drawn(key), value, self.timestamp_ms(chunk[0][1]), indexes)
