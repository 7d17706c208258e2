"""Writes metrics to Apache Kafka, one metric per record, with Telegraf's outputs.kafka options.

Safe by default: the producer is idempotent and waits for all in-sync replicas (acks all),
so a retry after a lost acknowledgement cannot store a record twice in a partition.
A write is settled only when Kafka has acknowledged every record of the batch; the next
batch is sent meanwhile (up to three writes in flight), so preparing it overlaps the wait.
"""

from __future__ import annotations

import logging
import time
import uuid
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

from agent.metric import Metric
from agent.plugin import Output, WriteError
from agent.registry import output
from plugins.common.kafka import KafkaSecurity

log = logging.getLogger("outputs.kafka")

SAMPLE_CONFIG = """\
# Write metrics to Apache Kafka
[[outputs.kafka]]
  ## Brokers to bootstrap from, "host:port". The producer learns the rest of the
  ## cluster from them and then sends to each partition's leader.
  brokers = ["127.0.0.1:9092"]

  ## Topic the records go to (without this line: "telegraf").
  topic = "metrics"

  ## A tag whose value names the topic of the metric that carries it; metrics
  ## without the tag go to `topic`.
  # topic_tag = ""

  ## Leave topic_tag out of what is written.
  # exclude_topic_tag = false

  ## The producer's name in the brokers' logs and quotas.
  # client_id = "Telegraf"

  ## Add to the topic name a separator and the measurement ("measurement"), or
  ## a separator and each listed tag's value ("tags"; a tag the metric lacks adds
  ## nothing). Without this table the topic is used as it is.
  # [outputs.kafka.topic_suffix]
  #   method = "measurement"
  #   separator = "_"
  # [outputs.kafka.topic_suffix]
  #   method = "tags"
  #   keys = ["host"]
  #   separator = "__"

  ## Record key: this tag's value. Records with a key land on the partition of
  ## its murmur2 hash, as Kafka's Java producer puts them, so each host's metrics
  ## stay in order. Without a key, each write picks a random partition.
  # routing_tag = "host"

  ## Record key for metrics that routing_tag does not give one; "random" draws
  ## a new key for every record.
  # routing_key = ""

  ## Compression of record batches: 0 or "none", 1 "gzip", 2 "snappy", 3 "lz4",
  ## 4 "zstd".
  # compression_codec = 0

  ## The broker keeps one copy of a record the producer had to send again after
  ## a lost acknowledgement. On here by default; off by default in Telegraf.
  # idempotent_writes = true

  ## Acknowledgement a write waits for: 0 none, 1 the partition leader's, -1 all
  ## in-sync replicas' (the default here as in Telegraf; idempotent_writes
  ## needs it).
  # required_acks = -1

  ## With idempotent_writes = false: how often a record is sent again before the
  ## write fails and its metrics wait in the buffer for the next flush. The
  ## idempotent producer keeps trying until Kafka acknowledges.
  # max_retry = 3

  ## Largest record value in bytes; a metric that does not fit is dropped and
  ## logged. Keep it at or below the broker's message.max.bytes.
  # max_message_bytes = 1000000

  ## Record timestamp: "metric" (the metric's own time) or "now".
  # producer_timestamp = "metric"

  ## Kafka protocol version of the brokers, e.g. "3.6.0". Empty: ask the broker.
  # version = ""

  ## Producer batching, as the Java producer's linger.ms and batch.size.
  # linger_ms = 5
  # batch_size = 1048576

  ## Put all metrics of one write that share a topic and key into one record (lines
  ## joined, or a {"metrics":[...]} JSON batch), split so that no record exceeds
  ## max_message_bytes. Much faster; consumers read each line as its own metric.
  # use_batch_format = false

  ## TLS, on with enable_tls or any of the options below; files in PEM.
  # enable_tls = false
  # tls_ca = "/etc/agent/ca.pem"
  # tls_cert = "/etc/agent/cert.pem"
  # tls_key = "/etc/agent/key.pem"
  ## Encrypt, but accept any certificate and host name (for testing only).
  # insecure_skip_verify = false

  ## SASL login: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN when only a
  ## username is given). The password is best read from the environment.
  # sasl_mechanism = "SCRAM-SHA-512"
  # sasl_username = "agent"
  # sasl_password = "${KAFKA_PASSWORD}"

  ## Record format: "influx" (line protocol) or "json".
  data_format = "influx"
"""

# How long one write waits for acknowledgements before it reports the rest as pending.
WRITE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 10.0
SEND_BLOCK_MS = 2_000
BOOTSTRAP_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 7 * 24 * 3600 * 1000

# Room for a record's key, headers and framing beside a value of max_message_bytes.
RECORD_OVERHEAD_BYTES = 4096
# Bytes of `{"metrics":[` … `]}` plus a newline, around a JSON batch.
JSON_BATCH_OVERHEAD = 16

CODECS: dict[int, str | None] = {0: None, 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
CODEC_NAMES = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@dataclass(slots=True)
class Record:
    """One Kafka record and the indexes (in the written batch) of the metrics it carries."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    indexes: list[int]


def write_partitioner() -> Any:
    """A kafka-python partitioner that places records as its DefaultPartitioner does (by the
    murmur2 hash of the key; without a key, on a random partition that has a leader), but
    chooses once per write: one partition for all records of a write that have no key, one
    hash per key. The default chooses per record, which cost a fifth of sending one."""
    from kafka.partitioner import DefaultPartitioner

    class WritePartitioner(DefaultPartitioner):
        def __init__(self) -> None:
            self._chosen: dict[tuple[str, bytes | None], int] = {}

        def new_write(self) -> None:
            self._chosen.clear()

        def partition(
            self,
            topic: str,
            key: Any,
            serialized_key: bytes | None,
            value: Any,
            serialized_value: bytes | None,
            cluster: Any,
        ) -> int:
            chosen = self._chosen.get((topic, serialized_key))
            if chosen is None:
                chosen = super().partition(
                    topic, key, serialized_key, value, serialized_value, cluster
                )
                self._chosen[(topic, serialized_key)] = chosen
            return chosen

    return WritePartitioner()


@dataclass(slots=True)
class Sending:
    """One send() of a batch: the records handed to the producer with their futures, the
    indexes of metrics not handed over (the broker is away) and of those whose record from
    an earlier write is still pending."""

    metrics: list[Metric]
    awaited: list[int]
    sent: list[tuple[Record, Any]] = field(default_factory=list)
    not_sent: list[int] = field(default_factory=list)


@dataclass
class TopicSuffix:
    """`[outputs.kafka.topic_suffix]`: per-measurement or per-tag topics."""

    method: Literal["", "measurement", "tags"] = ""
    keys: list[str] = field(default_factory=list)
    separator: str = ""


@output("kafka")
@dataclass
class Kafka(KafkaSecurity, Output):
    """Produces each metric as one Kafka record on `topic` (plus routing and suffixes)."""

    SAMPLE_CONFIG = SAMPLE_CONFIG
    # The next batch is serialized while the one before travels and is acknowledged.
    writes_in_flight = 3

    brokers: list[str] = field(default_factory=lambda: ["localhost:9092"])
    topic: str = "telegraf"
    topic_tag: str = ""
    exclude_topic_tag: bool = False
    topic_suffix: TopicSuffix = field(default_factory=TopicSuffix)
    client_id: str = "Telegraf"
    routing_tag: str = ""
    routing_key: str = ""
    compression_codec: int | str = 0
    idempotent_writes: bool = True
    required_acks: int = -1
    max_retry: int = 3
    max_message_bytes: int = 1000000
    producer_timestamp: Literal["metric", "now"] = "metric"
    linger_ms: int = 5
    batch_size: int = 1048576
    # Sarama's protocol version in Telegraf; kafka-python negotiates it, so it is only accepted.
    version: str = ""
    use_batch_format: bool = False
    data_format: str = "influx"
    _producer: Any = field(default=None, init=False, repr=False)
    # Records sent and not yet acknowledged, by id() of the metric they carry.
    _pending: dict[int, tuple[Metric, Any]] = field(default_factory=dict, init=False, repr=False)
    _latest_sending: Sending | None = field(default=None, init=False, repr=False)
    _partitioner: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.compression_codec, str):
            name = self.compression_codec.lower()
            if name not in CODEC_NAMES:
                raise ValueError(
                    f'compression_codec: unknown codec "{self.compression_codec}" '
                    "(expected 0-4 or none, gzip, snappy, lz4, zstd)"
                )
            self.compression_codec = CODEC_NAMES[name]
        if self.compression_codec not in CODECS:
            raise ValueError(
                f"compression_codec: expected 0 (none), 1 (gzip), 2 (snappy), 3 (lz4) "
                f"or 4 (zstd), got {self.compression_codec}"
            )
        if self.required_acks not in (-1, 0, 1):
            raise ValueError(f"required_acks: expected -1, 0 or 1, got {self.required_acks}")
        if self.idempotent_writes and self.required_acks != -1:
            raise ValueError("idempotent_writes = true needs required_acks = -1")
        if not self.brokers:
            raise ValueError("brokers: at least one broker address is needed")
        self.check_security()

    def producer_config(self) -> dict[str, Any]:
        """kafka-python settings that carry out the options."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.brokers,
            "client_id": self.client_id,
            "acks": "all" if self.required_acks == -1 else self.required_acks,
            "enable_idempotence": self.idempotent_writes,
            "compression_type": CODECS[int(self.compression_codec)],
            # The limit applies to the value; the record adds its key and headers on top.
            "max_request_size": self.max_message_bytes + RECORD_OVERHEAD_BYTES,
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            # A record is never given up by the producer itself while the agent runs: the
            # idempotent producer's own retries keep their sequence numbers, so the broker
            # drops a repeat; a resend by the agent would be a new record (a duplicate).
            "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
            "retries": 2**31 - 1 if self.idempotent_writes else self.max_retry,
            "max_block_ms": SEND_BLOCK_MS,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        }
        config.update(self.client_config())
        if self.version:
            config["api_version"] = tuple(int(part) for part in self.version.split(".")[:3])
        return config

    def connect(self) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.probe(self.brokers)
        self._partitioner = write_partitioner()
        try:
            self._producer = KafkaProducer(**self.producer_config(), partitioner=self._partitioner)
        except KafkaError as error:
            raise ConnectionError(
                f"cannot reach Kafka at {','.join(self.brokers)}: {error}"
            ) from None

    def topic_for(self, metric: Metric) -> str:
        topic = self.topic
        if self.topic_tag and self.topic_tag in metric.tags:
            topic = metric.tags[self.topic_tag]
        suffix = self.topic_suffix
        if suffix.method == "measurement":
            topic += suffix.separator + metric.name
        elif suffix.method == "tags":
            for key in suffix.keys:
                if metric.tags.get(key):
                    topic += suffix.separator + metric.tags[key]
        return topic

    def key_for(self, metric: Metric) -> bytes | None:
        if self.routing_tag and self.routing_tag in metric.tags:
            return metric.tags[self.routing_tag].encode()
        if self.routing_key == "random":
            return str(uuid.uuid4()).encode()
        return self.routing_key.encode() if self.routing_key else None

    def routed(self, metric: Metric) -> tuple[str, bytes | None, bytes]:
        """Topic, key and serialized value of one metric."""
        assert self.serializer is not None
        topic = self.topic_for(metric)
        key = self.key_for(metric)
        if self.exclude_topic_tag and self.topic_tag in metric.tags:
            metric = metric.copy()
            del metric.tags[self.topic_tag]
        return topic, key, self.serializer.serialize(metric)

    def records(self, metrics: list[Metric], indexes: Sequence[int]) -> Iterator[Record]:
        """The records that carry the metrics at `indexes`: one per metric, or with
        use_batch_format as few as max_message_bytes allows per topic and key. Made as they
        are sent, so the producer's thread sends while the rest is serialized."""
        if self._routes_each_metric():
            yield from self._routed_records([(i, metrics[i]) for i in indexes])
        elif not self.use_batch_format:
            topic, timestamp_ms = self.topic, self.timestamp_ms
            for index, metric, value in self._serialized(metrics, indexes):
                yield Record(topic, None, value, timestamp_ms(metric), [index])
        elif self.data_format == "json":
            yield from self.batched(self.topic, None, self._serialized(metrics, indexes))
        else:
            yield from self._lines_in_records(metrics, indexes)

    def _routes_each_metric(self) -> bool:
        """Whether topic or key may differ between metrics (topic_tag, topic_suffix, routing)."""
        return bool(
            self.topic_tag or self.topic_suffix.method or self.routing_tag or self.routing_key
        )

    def _serialized(
        self, metrics: list[Metric], indexes: Sequence[int]
    ) -> Iterator[tuple[int, Metric, bytes]]:
        """(index, metric, value) of each metric that can be written and fits a record."""
        assert self.serializer is not None
        chosen = [metrics[index] for index in indexes]
        limit = self.max_message_bytes
        for index, metric, value in zip(
            indexes, chosen, self.serializer.serialize_each(chosen), strict=True
        ):
            if len(value) > limit:
                self._log_too_large(metric, value)
            elif value:
                yield index, metric, value

    def _lines_in_records(self, metrics: list[Metric], indexes: Sequence[int]) -> Iterator[Record]:
        """use_batch_format with line protocol, one topic, no key: what batched() makes,
        with the per-line work (serializing, sizes, where records split) done for all lines
        at once, in C where it can be."""
        assert self.serializer is not None
        chosen = metrics if len(indexes) == len(metrics) else [metrics[i] for i in indexes]
        values = self.serializer.serialize_each(chosen)
        if not values:
            return
        sizes = list(map(len, values))
        limit = self.max_message_bytes
        if min(sizes) == 0 or max(sizes) > limit:  # lines to leave out: one by one
            yield from self.batched(self.topic, None, self._serialized(metrics, indexes))
            return
        ends = list(accumulate(sizes))
        start, written = 0, 0
        while start < len(values):
            # A record takes lines while their total stays within the limit (at least one).
            stop = max(bisect_right(ends, written + limit, start), start + 1)
            value = values[start] if stop - start == 1 else b"".join(values[start:stop])
            timestamp_ms = self.timestamp_ms(chosen[start])
            yield Record(self.topic, None, value, timestamp_ms, list(indexes[start:stop]))
            written, start = ends[stop - 1], stop

    def _log_too_large(self, metric: Metric, value: bytes) -> None:
        self.report_rejected(
            f"Dropped metric {metric.name} of {len(value)} bytes: larger than "
            f"max_message_bytes ({self.max_message_bytes})"
        )

    def _routed_records(self, metrics: list[tuple[int, Metric]]) -> Iterator[Record]:
        groups: dict[tuple[str, bytes | None], list[tuple[int, Metric, bytes]]] = {}
        for index, metric in metrics:
            topic, key, value = self.routed(metric)
            if not value:
                continue
            if len(value) > self.max_message_bytes:
                self._log_too_large(metric, value)
                continue
            if not self.use_batch_format:
                yield Record(topic, key, value, self.timestamp_ms(metric), [index])
                continue
            group_key = (
                topic,
                None if self.routing_key == "random" and not self.routing_tag else key,
            )
            groups.setdefault(group_key, []).append((index, metric, value))
        for (topic, key), members in groups.items():
            yield from self.batched(topic, key, members)

    def batched(
        self, topic: str, key: bytes | None, members: Iterable[tuple[int, Metric, bytes]]
    ) -> Iterator[Record]:
        """Records of many metrics each, none over max_message_bytes (room is left for the
        JSON batch wrapper)."""
        assert self.serializer is not None
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
        self, topic: str, key: bytes | None, chunk: list[tuple[int, Metric, bytes]]
    ) -> Record:
        assert self.serializer is not None
        if self.data_format == "json":
            value = self.serializer.serialize_batch(metric for _, metric, _ in chunk)
        else:
            value = b"".join(value for _, _, value in chunk)
        if self.routing_key == "random" and not self.routing_tag:
            key = str(uuid.uuid4()).encode()
        indexes = [index for index, _, _ in chunk]
        return Record(topic, key, value, self.timestamp_ms(chunk[0][1]), indexes)

    def timestamp_ms(self, metric: Metric) -> int | None:
        return metric.time_ns // 1_000_000 if self.producer_timestamp == "metric" else None

    def write(self, metrics: list[Metric]) -> None:
        """Send each metric once and wait up to WRITE_TIMEOUT_S for the acknowledgements."""
        self.settle(self.send(metrics))

    def send(self, metrics: list[Metric]) -> Sending:
        """Hand each metric's record to the producer, whose thread sends it meanwhile.

        A metric whose record is still on its way from an earlier write is not sent again:
        its pending acknowledgement is awaited instead."""
        from kafka.errors import KafkaError

        assert self._producer is not None
        awaited: list[int] = []  # indexes of metrics whose earlier record is still pending
        unsent: Sequence[int] = range(len(metrics))
        if self._pending:
            unsent = []
            for index, metric in enumerate(metrics):
                if id(metric) in self._pending:
                    awaited.append(index)
                else:
                    unsent.append(index)
        sending = Sending(metrics, awaited)
        self._partitioner.new_write()
        records = self.records(metrics, unsent)
        for record in records:
            try:
                future = self._producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    timestamp_ms=record.timestamp_ms,
                )
            except KafkaError as error:  # no metadata for the topic: the broker is away
                sending.not_sent = [
                    *record.indexes,
                    *(i for later in records for i in later.indexes),
                ]
                log.debug("Send stopped after %d records: %s", len(sending.sent), error)
                break
            sending.sent.append((record, future))
        self._latest_sending = sending
        return sending

    def settle(self, sending: object, wait: bool = True) -> None:
        """Wait up to WRITE_TIMEOUT_S for the acknowledgements of a send(); raise WriteError
        naming the metrics not acknowledged (those still on their way stay pending)."""
        assert isinstance(sending, Sending)
        metrics = sending.metrics
        if wait:
            self._await(sending)
        failed = sorted(
            {
                *sending.not_sent,
                *self._settle(metrics, sending.sent),
                *self._unacknowledged(metrics, sending.awaited),
            }
        )
        if failed:
            pending = self._pending
            raise WriteError(
                f"{len(failed)} of {len(metrics)} metrics not acknowledged by Kafka "
                f"at {','.join(self.brokers)}",
                failed,
                [index for index in failed if id(metrics[index]) in pending],
            )

    def _await(self, sending: Sending) -> None:
        """Until the records of `sending` (and the earlier ones it awaits) are acknowledged,
        or WRITE_TIMEOUT_S has passed."""
        from kafka.errors import KafkaError

        assert self._producer is not None
        if sending is self._latest_sending:
            # Nothing was sent after it: flush() ends the producer's linger and waits.
            try:
                self._producer.flush(timeout=WRITE_TIMEOUT_S)
            except KafkaError as error:  # timed out: what is not acknowledged stays pending
                log.debug("Flush did not complete: %s", error)
            return
        # A later send is on its way too: wait for this one's records only, so the next
        # batch is prepared while the later one travels.
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        awaited = (
            self._pending.get(id(sending.metrics[i]), (None, None))[1] for i in sending.awaited
        )
        for future in (*(future for _, future in sending.sent), *awaited):
            if future is None or future.is_done:
                continue
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except KafkaError as error:  # failed, or timed out: _settle tells which
                log.debug("Record not acknowledged: %s", error)

    def _settle(self, metrics: list[Metric], sent: list[tuple[Record, Any]]) -> list[int]:
        """Indexes of metrics of this write's records that are not acknowledged. A record
        still on its way makes its metrics pending (never sent again while it is); a failed
        one is forgotten, so the next write sends its metrics again, unless sending them
        again cannot succeed. Checked per record: an acknowledged one needs no bookkeeping."""
        failed: list[int] = []
        for record, future in sent:
            if not future.is_done:
                for index in record.indexes:
                    self._pending[id(metrics[index])] = (metrics[index], future)
                failed.extend(record.indexes)
            elif future.failed():
                failed.extend(self._failed(metrics, record.indexes, future))
        return failed

    def _failed(self, metrics: list[Metric], indexes: list[int], future: Any) -> list[int]:
        """Of metrics whose record failed, those to send again (a retriable error); the others
        are dropped with an error, since keeping them would block the buffer."""
        if getattr(future.exception, "retriable", True):
            for index in indexes:
                log.debug("Record of %s failed: %s", metrics[index].name, future.exception)
            return indexes
        for index in indexes:
            log.error(
                "Dropped metric %s: Kafka refused it: %s", metrics[index].name, future.exception
            )
        return []

    def _unacknowledged(self, metrics: list[Metric], awaited: list[int]) -> list[int]:
        """Of the metrics that were pending from an earlier write (indexes `awaited`), those
        still not acknowledged; settled ones are no longer pending."""
        failed = []
        for index in awaited:
            metric = metrics[index]
            entry = self._pending.get(id(metric))
            if entry is None:  # the same metric twice in the batch: settled just above
                continue
            future = entry[1]
            if not future.is_done:
                failed.append(index)
                continue
            del self._pending[id(metric)]
            if future.failed():
                failed.extend(self._failed(metrics, [index], future))
        return failed

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=CLOSE_TIMEOUT_S)
            self._producer = None
        self._pending.clear()
        self._latest_sending = None
