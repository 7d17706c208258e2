"""The sink's reading of its partitions: Kafka fetch requests, their records read natively.

kafka-python's consumer keeps the group: membership, assignment, committed offsets and each
partition's position. Its record reader, though, spends about 7 µs of Python on every record
(varints, a ConsumerRecord), as long as Telegraf spends on a whole metric. So the sink pauses
every partition it is assigned, which keeps that consumer from fetching, and reads them
with this fetcher: one Fetch request per leader broker for the positions the consumer
holds, and the record batches of each partition read by the native core
(`read_record_batches`) into lists of offsets, timestamps, keys and values. The sink moves
the consumer's positions past what it takes.

The fetcher has a client of its own (kafka-python's network client, with the consumer's
connection and security settings) for metadata: which broker leads each partition, and
which Fetch versions it answers. On a plaintext cluster the fetches themselves go over a
plain socket per broker, each response read into one buffer with a few large reads: the
client reads 4 KB at a time and copies each response several times in Python, which cost
about 2 µs a record here against 0.4 µs for the socket. With TLS or SASL the fetches go
through that client, which speaks them.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kafka.errors as errors
from kafka import TopicPartition
from kafka.net.compat import KafkaNetClient
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse

from agent import _native
from agent.logs import Outage
from plugins.common.kafka import CODECS
from plugins.common.kafka_exchange import read_exactly

log = logging.getLogger("sink")

# Fetch v12 is the newest that names topics (v13 on names them by id); Kafka 2.7 and later
# answer it, older brokers are answered with the newest version they know.
FETCH_MAX_VERSION = 12
# Fetch v4 is the first with isolation levels and whole record batches (KIP-74).
FETCH_MIN_VERSION = 4
READ_UNCOMMITTED = 0
# The largest response accepted (kafka-python's consumer accepts as much).
RESPONSE_LIMIT_BYTES = 100_000_000
# How long a fetch may take beyond the time the broker may hold it.
REQUEST_TIMEOUT_MS = 30_000
METADATA_WAIT_MS = 5_000
# While no broker can be asked, wait this long between tries rather than spin.
RETRY_WAIT_MS = 100
# Fetch v12 is the first flexible version: its response header ends with tagged fields.
FIRST_FLEXIBLE_FETCH = 12
FRAME_SIZE = struct.Struct(">i")


class CorruptRecords(errors.KafkaError):
    """Bytes of a partition that are not record batches this reader knows."""


def decompress(codec: int, data: bytes) -> bytes:
    """The body of a compressed record batch, with kafka-python's codec functions."""
    known = CODECS.get(codec)
    if known is None:
        raise CorruptRecords(f"unknown compression codec {codec}")
    try:
        return bytes(known.decompress(data))
    except ImportError:
        raise CorruptRecords(
            f"a record batch is compressed with {known.name}, whose Python package is not installed"
        ) from None


@dataclass(slots=True)
class FetchedRecords:
    """The records one fetch gave of one partition, as parallel lists. `next_offset` is
    where the partition is read from next once all of them are taken (past control batches
    too); None when the fetch held no whole batch. `fetched_bytes`: what the broker sent."""

    partition: TopicPartition
    offsets: list[int]
    timestamps_ms: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    next_offset: int | None
    fetched_bytes: int


@dataclass(slots=True)
class Fetched:
    """What one round of fetches gave: records by partition, and the partitions whose
    position is outside the log (to be reset by the consumer's auto_offset_reset)."""

    records: list[FetchedRecords]
    out_of_range: list[TopicPartition]


class PlainBroker:
    """A plaintext connection to one broker that sends Fetch requests and reads each
    response whole: its size, then the rest into one buffer."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.address = (host, port)
        self.client_id = client_id
        self._socket: socket.socket | None = None
        self._correlation_id = 0

    def fetch(self, request: FetchRequest, version: int, timeout_s: float) -> Any:
        """The broker's FetchResponse; KafkaConnectionError when the connection fails (it
        is made again on the next fetch)."""
        try:
            connection = self._connect(timeout_s)
            connection.settimeout(timeout_s)
            self._correlation_id = (self._correlation_id + 1) % 2**31
            request.with_header(correlation_id=self._correlation_id, client_id=self.client_id)
            connection.sendall(request.encode(version=version, header=True, framed=True))
            (size,) = FRAME_SIZE.unpack(read_exactly(connection, FRAME_SIZE.size))
            if not 0 < size <= RESPONSE_LIMIT_BYTES:
                raise OSError(f"a response of {size} bytes")
            frame = memoryview(read_exactly(connection, size))
        except OSError as error:
            self.close()
            raise errors.KafkaConnectionError(
                f"{self.address[0]}:{self.address[1]}: {error}"
            ) from None
        (correlation_id,) = FRAME_SIZE.unpack_from(frame, 0)
        if correlation_id != self._correlation_id:
            self.close()
            raise errors.CorrelationIdError(
                f"sent {self._correlation_id}, received {correlation_id}"
            )
        start = FRAME_SIZE.size
        if version >= FIRST_FLEXIBLE_FETCH:
            start += self._tagged_fields_size(frame, start)
        return FetchResponse.decode(frame[start:], version=version)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _connect(self, timeout_s: float) -> socket.socket:
        if self._socket is None:
            self._socket = socket.create_connection(self.address, timeout=timeout_s)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._socket

    @staticmethod
    def _tagged_fields_size(frame: memoryview, start: int) -> int:
        """Bytes the response header's tagged fields take (brokers send none: one byte)."""
        count, at = _unsigned_varint(frame, start)
        for _ in range(count):
            _, at = _unsigned_varint(frame, at)  # the field's tag
            length, at = _unsigned_varint(frame, at)
            at += length
        return at - start


def _unsigned_varint(data: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


class PartitionFetcher:
    """Fetches records of given partitions from given offsets."""

    def __init__(self, client_config: Mapping[str, Any], partition_max_bytes: int) -> None:
        self.partition_max_bytes = partition_max_bytes
        self.client = KafkaNetClient(
            **{**client_config, "receive_message_max_bytes": RESPONSE_LIMIT_BYTES}
        )
        self._plain = client_config.get("security_protocol", "PLAINTEXT") == "PLAINTEXT"
        self._client_id = str(client_config.get("client_id", "metrics-agent-sink"))
        self._brokers: dict[int, PlainBroker] = {}
        self._topics: set[str] = set()
        self._rounds = 0
        self._outage = Outage(log, "fetching again")

    def close(self) -> None:
        for broker in self._brokers.values():
            broker.close()
        self.client.close()

    def fetch(
        self, positions: Mapping[TopicPartition, int], max_wait_ms: int, max_bytes: int
    ) -> Fetched:
        """Records of each partition from its position: at most about `max_bytes` in all
        (a partition's first batch comes whole whatever its size), waiting up to
        `max_wait_ms` for some to arrive. Partitions whose leader is unknown or away give
        nothing this time; their metadata is asked for again."""
        fetched = Fetched([], [])
        if not positions:
            return fetched
        by_leader = self._partitions_by_leader(positions)
        if self._plain:
            return self._fetch_plain(by_leader, max_wait_ms, max_bytes, fetched)
        futures = []
        for node, partitions in by_leader.items():
            if not self.client.ready(node):
                continue
            request = self._request(partitions, max_wait_ms, max_bytes)
            futures.append((node, partitions, self.client.send(node, request)))
        if not futures:
            # Leaders unknown or connecting: let the client work (connect, ask for
            # metadata) for a while rather than spin.
            self.client.poll(timeout_ms=min(max_wait_ms, RETRY_WAIT_MS) or RETRY_WAIT_MS)
            return fetched
        for node, partitions, future in futures:
            self.client.poll(timeout_ms=max_wait_ms + REQUEST_TIMEOUT_MS, future=future)
            if not future.is_done:
                self._outage.failed(f"broker {node} did not answer a fetch in time")
                continue
            if future.failed():
                self._outage.failed(f"fetching from broker {node}: {future.exception}")
                self.client.cluster.request_update()
                continue
            self._read_response(future.value, partitions, fetched)
            self._outage.recovered()  # a broker answered a fetch
        return fetched

    def _fetch_plain(
        self,
        by_leader: dict[int, dict[TopicPartition, int]],
        max_wait_ms: int,
        max_bytes: int,
        fetched: Fetched,
    ) -> Fetched:
        """One fetch per leader over a plain socket, one leader after the other (a single
        broker, here, most of the time)."""
        cluster = self.client.cluster
        answered = False
        for node, partitions in by_leader.items():
            broker = self._broker(node)
            if broker is None:
                continue
            request = self._request(partitions, max_wait_ms, max_bytes)
            timeout_s = (max_wait_ms + REQUEST_TIMEOUT_MS) / 1000
            try:
                response = broker.fetch(request, self._fetch_version(), timeout_s)
            except errors.KafkaError as error:
                self._outage.failed(f"fetching from broker {node}: {error}")
                cluster.request_update()
                continue
            answered = True
            self._read_response(response, partitions, fetched)
        # The client's own work (its metadata asked for again once it is five minutes old)
        # runs only while it is polled. A broker that lost a partition's leadership but
        # keeps a replica goes on answering its fetches, so no error would ask for it.
        self.client.poll(timeout_ms=0)
        if not answered or cluster.need_update:
            # Leaders unknown or moved, or brokers away: the client asks for metadata (its
            # polls are what send the request), and without an answer the next round waits
            # a while rather than spin.
            waited_from = time.monotonic()
            self.client.poll(timeout_ms=RETRY_WAIT_MS, future=cluster.request_update())
            if not answered:
                time.sleep(max(0.0, RETRY_WAIT_MS / 1000 - (time.monotonic() - waited_from)))
        if answered:
            self._outage.recovered()  # a broker answered a fetch
        return fetched

    def _broker(self, node: int) -> PlainBroker | None:
        """The plain connection to broker `node` (None while its address is not known)."""
        metadata = self.client.cluster.broker_metadata(node)
        if metadata is None:
            self.client.cluster.request_update()
            return None
        broker = self._brokers.get(node)
        if broker is None or broker.address != (metadata.host, metadata.port):
            if broker is not None:
                broker.close()
            broker = PlainBroker(metadata.host, metadata.port, self._client_id)
            self._brokers[node] = broker
        return broker

    def _fetch_version(self) -> int:
        """The newest Fetch version up to FETCH_MAX_VERSION that the brokers answer."""
        try:
            return int(self.client.api_version(FetchRequest, max_version=FETCH_MAX_VERSION))
        except errors.IllegalStateError:  # not bootstrapped yet: the fetch would wait anyway
            self.client.poll(timeout_ms=RETRY_WAIT_MS)
            return FETCH_MAX_VERSION

    def _partitions_by_leader(
        self, positions: Mapping[TopicPartition, int]
    ) -> dict[int, dict[TopicPartition, int]]:
        topics = {tp.topic for tp in positions}
        cluster = self.client.cluster
        if not topics <= self._topics:
            self._topics |= topics
            update = cluster.set_topics(sorted(self._topics))
            self.client.poll(timeout_ms=METADATA_WAIT_MS, future=update)
        by_leader: dict[int, dict[TopicPartition, int]] = {}
        for tp, offset in positions.items():
            leader = cluster.leader_for_partition(tp)
            if leader is None or leader == -1:
                cluster.request_update()
                continue
            by_leader.setdefault(leader, {})[tp] = offset
        return by_leader

    def _request(
        self, partitions: Mapping[TopicPartition, int], max_wait_ms: int, max_bytes: int
    ) -> FetchRequest:
        """A fetch of `partitions`. The broker fills a response in the order the request
        names partitions, up to max_bytes: the first partition named changes each time, so
        none waits behind a busier one."""
        order = sorted(partitions)
        self._rounds += 1
        start = self._rounds % len(order)
        by_topic: dict[str, list[Any]] = {}
        for tp in order[start:] + order[:start]:
            offset = partitions[tp]
            by_topic.setdefault(tp.topic, []).append(
                FetchRequest.FetchTopic.FetchPartition(
                    partition=tp.partition,
                    current_leader_epoch=-1,
                    fetch_offset=offset,
                    last_fetched_epoch=-1,
                    partition_max_bytes=min(max_bytes, self.partition_max_bytes),
                )
            )
        return FetchRequest(
            replica_id=-1,
            max_wait_ms=max_wait_ms,
            min_bytes=1,
            max_bytes=min(max_bytes, self.partition_max_bytes * len(partitions)),
            isolation_level=READ_UNCOMMITTED,
            session_id=0,  # no fetch session: each request names its partitions
            session_epoch=-1,
            topics=[
                FetchRequest.FetchTopic(topic=topic, partitions=parts)
                for topic, parts in by_topic.items()
            ],
            forgotten_topics_data=[],
            rack_id="",
            min_version=FETCH_MIN_VERSION,
            max_version=FETCH_MAX_VERSION,
        )

    def _read_response(
        self, response: Any, asked: Mapping[TopicPartition, int], fetched: Fetched
    ) -> None:
        for topic_data in response.responses:
            for data in topic_data.partitions:
                tp = TopicPartition(topic_data.topic, data.partition_index)
                offset = asked.get(tp)
                if offset is None:
                    continue
                error = errors.for_code(data.error_code)
                if error is errors.OffsetOutOfRangeError:
                    fetched.out_of_range.append(tp)
                elif error is not errors.NoError:
                    self._partition_error(tp, error)
                elif data.records:
                    fetched.records.append(self._records(tp, offset, data.records))

    def _records(self, tp: TopicPartition, offset: int, data: Any) -> FetchedRecords:
        try:
            offsets, timestamps, keys, values, next_offset = _native.read_record_batches(
                bytes(data), offset, decompress
            )
        except ValueError as error:
            raise CorruptRecords(f"{tp.topic}[{tp.partition}]: {error}") from None
        return FetchedRecords(tp, offsets, timestamps, keys, values, next_offset, len(data))

    def _partition_error(self, tp: TopicPartition, error: type[errors.KafkaError]) -> None:
        """A partition the broker did not serve: a leader that moved or a topic being made
        is waited out with fresh metadata; anything else stops the sink."""
        if not error.retriable:
            raise error(f"fetching {tp.topic}[{tp.partition}]")
        self._outage.failed(f"{tp.topic}[{tp.partition}]: {error.__name__}")
        self.client.cluster.request_update()
