"""Writes metrics to Apache Kafka, one metric per record, with Telegraf's outputs.kafka options.

Safe by default: the producer is idempotent and waits for all in-sync replicas (acks all),
so a retry after a lost acknowledgement cannot store a record twice in a partition.
A write is settled only when Kafka has acknowledged every record of the batch; the next
batch is sent meanwhile (up to three writes in flight), so preparing it overlaps the wait.

This module holds the options, the producer and the send()/settle() of a write; the records
are made by kafka_records.RecordBuilder, and kafka_deliveries.Deliveries tells which metrics
Kafka acknowledged and which are still on their way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka.errors import KafkaError

from agent.buffer import Batch
from agent.options import ignored
from agent.plugin import Output, WriteError
from agent.registry import output
from plugins.common.kafka import CODECS, KafkaSecurity, broker_address
from plugins.outputs.kafka_deliveries import Deliveries, Sending
from plugins.outputs.kafka_producer import (
    Producer,
    ProducerSettings,
    WritePartitions,
    check_codec,
)
from plugins.outputs.kafka_records import Record, RecordBuilder, TopicSuffix

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

  ## Telegraf's Kafka protocol version (e.g. "3.6.0"): accepted, with no effect;
  ## the producer asks each broker which versions it speaks.
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
CODEC_NUMBERS = {"none": 0} | {codec.name: number for number, codec in CODECS.items()}


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
    # Sarama's protocol version in Telegraf; the producer asks the brokers (ApiVersions).
    version: str = ignored("")
    use_batch_format: bool = False
    data_format: str = "influx"
    _producer: Any = field(default=None, init=False, repr=False)
    _deliveries: Deliveries = field(default_factory=Deliveries, init=False, repr=False)
    _latest_sending: Sending | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.compression_codec, str):
            name = self.compression_codec.lower()
            if name not in CODEC_NUMBERS:
                raise ValueError(
                    f'compression_codec: unknown codec "{self.compression_codec}" '
                    "(expected 0-4 or none, gzip, snappy, lz4, zstd)"
                )
            self.compression_codec = CODEC_NUMBERS[name]
        if self.compression_codec not in CODEC_NUMBERS.values():
            raise ValueError(
                f"compression_codec: expected 0 (none), 1 (gzip), 2 (snappy), 3 (lz4) "
                f"or 4 (zstd), got {self.compression_codec}"
            )
        check_codec(int(self.compression_codec))
        if self.required_acks not in (-1, 0, 1):
            raise ValueError(f"required_acks: expected -1, 0 or 1, got {self.required_acks}")
        if self.idempotent_writes and self.required_acks != -1:
            raise ValueError("idempotent_writes = true needs required_acks = -1")
        if not self.brokers:
            raise ValueError("brokers: at least one broker address is needed")
        for address in self.brokers:
            broker_address(address)
        self.check_security()

    def producer_settings(self) -> ProducerSettings:
        """What the options make of the agent's producer."""
        return ProducerSettings(
            bootstrap=[broker_address(address) for address in self.brokers],
            client_id=self.client_id,
            acks=self.required_acks,
            idempotent=self.idempotent_writes,
            codec=int(self.compression_codec),
            max_retry=self.max_retry,
            batch_size=self.batch_size,
            linger_ms=self.linger_ms,
            connect=self._open_exchange,
        )

    def _open_exchange(self, host: str, port: int, timeout_s: float) -> Any:
        return self.open_exchange(host, port, timeout_s, self.client_id)

    def connect(self) -> None:
        self.probe(self.brokers)
        producer = Producer(self.producer_settings())
        try:
            producer.start(BOOTSTRAP_TIMEOUT_MS / 1000)
        except KafkaError as error:
            raise ConnectionError(
                f"cannot reach Kafka at {','.join(self.brokers)}: {error}"
            ) from None
        self._producer = producer

    def record_builder(self) -> RecordBuilder:
        """What makes the records of a write, from the options as they are now (the agent sets
        the serializer and report_rejected after the options)."""
        assert self.serializer is not None
        return RecordBuilder(
            serializer=self.serializer,
            report_rejected=self.report_rejected,
            topic=self.topic,
            topic_tag=self.topic_tag,
            exclude_topic_tag=self.exclude_topic_tag,
            topic_suffix=self.topic_suffix,
            routing_tag=self.routing_tag,
            routing_key=self.routing_key,
            max_message_bytes=self.max_message_bytes,
            producer_timestamp=self.producer_timestamp,
            use_batch_format=self.use_batch_format,
            data_format=self.data_format,
        )

    def send(self, batch: Batch) -> Sending:
        """Hand the records of a write to the producer, a list per partition; its thread
        sends them meanwhile.

        A metric whose record is still on its way from an earlier write is not sent again:
        its pending acknowledgement is awaited instead."""
        assert self._producer is not None
        sending, unsent = self._deliveries.start(batch)
        partitions = WritePartitions(self._producer, SEND_BLOCK_MS / 1000)
        by_partition: dict[tuple[str, int], list[Record]] = {}
        records = self.record_builder().records(batch.metrics, unsent)
        for record in records:
            try:
                partition = partitions.of(record.topic, record.key)
            except KafkaError as error:  # no metadata for the topic: the broker is away
                sending.not_sent = [
                    *record.indexes,
                    *(i for later in records for i in later.indexes),
                ]
                log.debug("Send stopped before a record for %s: %s", record.topic, error)
                break
            by_partition.setdefault((record.topic, partition), []).append(record)
        now_ms = time.time_ns() // 1_000_000
        for (topic, partition), group in by_partition.items():
            delivery = self._producer.send(
                topic,
                partition,
                [record.key for record in group],
                [record.value for record in group],
                [now_ms if r.timestamp_ms is None else r.timestamp_ms for r in group],
            )
            sending.sent.extend((record, delivery) for record in group)
        self._latest_sending = sending
        return sending

    def settle(self, sending: object, wait: bool = True) -> None:
        """Wait up to WRITE_TIMEOUT_S for the acknowledgements of a send(); raise WriteError
        naming the metrics not acknowledged (those still on their way stay pending)."""
        assert isinstance(sending, Sending)
        if wait:
            self._await(sending)
        failed = self._deliveries.unacknowledged(sending)
        if failed:
            raise WriteError(
                f"{len(failed)} of {len(sending.batch.metrics)} metrics not acknowledged by "
                f"Kafka at {','.join(self.brokers)}",
                failed,
                self._deliveries.in_flight(sending, failed),
            )

    def _await(self, sending: Sending) -> None:
        """Until the records of `sending` (and the earlier ones it awaits) are acknowledged,
        or WRITE_TIMEOUT_S has passed."""
        assert self._producer is not None
        if sending is self._latest_sending:
            # Nothing was sent after it: flush() ends the producer's linger and waits.
            try:
                self._producer.flush(WRITE_TIMEOUT_S)
            except KafkaError as error:  # timed out: what is not acknowledged stays pending
                log.debug("Flush did not complete: %s", error)
            return
        # A later send is on its way too: wait for this one's records only, so the next
        # batch is prepared while the later one travels; they go without lingering.
        self._producer.send_now()
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        for future in self._deliveries.futures(sending):
            if future.is_done:
                continue
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except KafkaError as error:  # failed, or timed out: settle() tells which
                log.debug("Record not acknowledged: %s", error)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(CLOSE_TIMEOUT_S)
            self._producer = None
        self._deliveries.clear()
        self._latest_sending = None
