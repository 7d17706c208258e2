"""outputs.kafka's producer: record batches written by the native core, sent in Produce
requests by one sender thread over a connection per broker.

kafka-python's KafkaProducer spends about 13 µs of Python on every record (its future, its
accumulator, its record writer and the callbacks of each acknowledgement), longer than
Telegraf takes for a whole metric. This producer takes the records of a write at once, a
list per partition; each partition's records go into one batch per request, which the
native core writes (`write_record_batch`), and the outcome is one Delivery per partition
and write, not one future per record.

It keeps what the agent relies on in Kafka's producer:
- Idempotence: a producer id and epoch from InitProducerId and a sequence number per
  partition. One batch per partition is on its way at a time; after a lost answer it is
  sent again as it was, so the broker keeps one copy, and retriable errors are retried
  until the broker takes it.
- acks, compression (kafka-python's codec packages), batch_size, linger_ms, and max_retry
  when idempotence is off.
- Keys placed by their murmur2 hash as Java's producer and kafka-python's place them.
- Metadata asked for again when a leader moves or a broker goes away, and every five
  minutes; the connection errors of one outage logged once.

Connections are blocking sockets with the TLS and SASL settings of KafkaSecurity. The
sender owns every connection; send() and flush() only hand work over and wait.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import kafka.errors as errors
from kafka.partitioner.default import murmur2
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)

from agent import _native
from agent.logs import Outage
from plugins.common.kafka import CODECS
from plugins.common.kafka_exchange import KafkaExchange

log = logging.getLogger("outputs.kafka")

# The newest versions asked for: Produce v13 names topics by id; the others are the newest
# kafka-python's messages and Kafka 4.1 share. The broker's own limits lower them.
PRODUCE_VERSIONS = (3, 12)  # v3: message format v2 and transactional ids (KIP-98)
METADATA_VERSIONS = (1, 12)
INIT_PRODUCER_ID_VERSIONS = (0, 4)
METADATA_MAX_AGE_S = 300.0
RETRY_BACKOFF_S = 0.1
REQUEST_TIMEOUT_S = 30.0
# A broker that does not take a connection within this is away: the sender tries another.
CONNECT_TIMEOUT_S = 5.0
# Bytes of batches in one Produce request (the broker's socket.request.max.bytes is 100 MB);
# the partitions past it go in the next request.
REQUEST_LIMIT_BYTES = 8 * 1024 * 1024
# A record batch's header, and the most a record adds to its key and value (its length,
# attributes, timestamp and offset deltas, key and value lengths, header count as varints):
# batch_size bounds the whole batch, which the broker's message.max.bytes also bounds.
BATCH_HEADER_BYTES = 61
RECORD_OVERHEAD_BYTES = 32
# How long close() waits for the sender thread once its sockets are shut.
CLOSE_JOIN_S = 5.0
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
MAX_SEQUENCE = 2**31 - 1

# Errors after which the broker no longer knows where this producer's sequences stand: the
# producer takes a new id and numbers its batches from 0 again.
# Errors of a batch over the broker's or the topic's size limit: split, it may go.
TOO_LARGE = (errors.MessageSizeTooLargeError, errors.RecordListTooLargeError)
SEQUENCE_LOST = (
    errors.OutOfOrderSequenceNumberError,
    errors.UnknownProducerIdError,
    errors.InvalidProducerEpochError,
)


def compress(codec: int, body: bytes) -> bytes:
    return bytes(CODECS[codec].compress(body))


def check_codec(codec: int) -> None:
    """Raise ValueError when the package of `codec` is not installed."""
    if codec and not CODECS[codec].installed():
        raise ValueError(
            f"compression_codec: {CODECS[codec].name} needs its Python package, which is not "
            "installed"
        )


class Delivery:
    """The outcome of the records one send() put on one partition: set by the sender thread
    once every batch that carries some of them is answered (a failure settles it at once).
    Answers as kafka-python's futures do: is_done, failed(), exception, get()."""

    __slots__ = ("_settled", "_parts", "exception")

    def __init__(self) -> None:
        self._settled = threading.Event()
        self._parts = 1  # the batches its records went into that are not answered yet
        self.exception: BaseException | None = None

    def split(self) -> None:
        """One more batch carries part of the records (called under the producer's lock)."""
        self._parts += 1

    @property
    def is_done(self) -> bool:
        return self._settled.is_set()

    def failed(self) -> bool:
        return self.exception is not None

    def get(self, timeout: float | None = None) -> None:
        if not self._settled.wait(timeout):
            raise errors.KafkaTimeoutError("the records were not acknowledged in time")
        if self.exception is not None:
            raise self.exception

    def succeed(self) -> None:
        """One part is stored (called under the producer's lock)."""
        self._parts -= 1
        if self._parts <= 0:
            self._settled.set()

    def fail(self, error: BaseException) -> None:
        self.exception = error
        self._settled.set()


def record_size(key: bytes | None, value: bytes) -> int:
    """The most bytes a record of `key` and `value` takes in a batch."""
    return len(value) + (len(key) if key else 0) + RECORD_OVERHEAD_BYTES


@dataclass(slots=True)
class Chunk:
    """Records of one send() for one partition (or the part of them left), whose outcome is
    `delivery`; `size` bounds the bytes they take in a batch."""

    keys: list[bytes | None]
    values: list[bytes]
    timestamps_ms: list[int]
    size: int
    delivery: Delivery
    queued_at: float

    def take(self, room: int, at_least_one: bool) -> Chunk | None:
        """The first records that fit `room` bytes (at least one if asked) as a chunk of
        their own, sharing this one's delivery; they leave this chunk. None if none fit."""
        taken, size = 0, 0
        for key, value in zip(self.keys, self.values, strict=True):
            grown = size + record_size(key, value)
            if grown > room and (taken or not at_least_one):
                break
            taken, size = taken + 1, grown
        if not taken:
            return None
        head = Chunk(
            self.keys[:taken],
            self.values[:taken],
            self.timestamps_ms[:taken],
            size,
            self.delivery,
            self.queued_at,
        )
        self.keys, self.values = self.keys[taken:], self.values[taken:]
        self.timestamps_ms = self.timestamps_ms[taken:]
        self.size -= size
        self.delivery.split()
        return head


@dataclass(slots=True)
class Batch:
    """The chunks one Produce request carries for a partition, and the bytes that carry them
    (kept, so that a retry sends the very batch the broker may already hold)."""

    chunks: list[Chunk]
    base_sequence: int
    count: int
    producer_id: int
    data: bytes = b""
    attempts: int = 0

    @property
    def size(self) -> int:
        return BATCH_HEADER_BYTES + sum(chunk.size for chunk in self.chunks)


@dataclass(slots=True)
class PartitionState:
    queue: deque[Chunk] = field(default_factory=deque)
    queued_bytes: int = 0
    batch: Batch | None = None  # on its way, or waiting to be sent again
    next_sequence: int = 0
    retry_at: float = 0.0
    # Lowered when the broker refuses a batch as too large (a topic's max.message.bytes).
    batch_limit: int = 0


@dataclass(frozen=True, slots=True)
class ProducerSettings:
    """What outputs.kafka's options make of the producer."""

    bootstrap: list[tuple[str, int]]
    client_id: str
    acks: int
    idempotent: bool
    codec: int
    max_retry: int
    batch_size: int
    linger_ms: int
    # Opens a connection to (host, port): kafka_exchange with the TLS/SASL settings done.
    connect: Callable[[str, int, float], KafkaExchange]


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the broker closed the connection. Between requests it sends nothing, so a
    connection with something to read is at its end: brokers close connections left idle for
    connections.max.idle.ms (10 minutes), and a request sent on one would be lost."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # closed here already
        return True
    return bool(readable)


class WritePartitions:
    """The partitions of one write's records: a keyed record goes where the murmur2 hash of
    its key puts it, as Java's producer and kafka-python's put it; the records without a key
    share one partition per topic, drawn among those with a leader."""

    def __init__(self, producer: Producer, metadata_wait_s: float) -> None:
        self.producer = producer
        self.metadata_wait_s = metadata_wait_s
        self._chosen: dict[tuple[str, bytes | None], int] = {}

    def of(self, topic: str, key: bytes | None) -> int:
        """Raises a KafkaError when the topic's metadata does not come in time."""
        chosen = self._chosen.get((topic, key))
        if chosen is None:
            count = self.producer.partition_count(topic, self.metadata_wait_s)
            if key is not None:
                chosen = (murmur2(key) & 0x7FFFFFFF) % count
            else:
                chosen = random.choice(self.producer.available_partitions(topic) or range(count))
            self._chosen[(topic, key)] = chosen
        return chosen


class BrokerAway(errors.KafkaConnectionError):
    """No connection to a broker, or it broke during a request."""


class Producer:
    """Sends records handed over by send(); settles their Deliveries as the brokers answer."""

    def __init__(self, settings: ProducerSettings) -> None:
        check_codec(settings.codec)
        self.settings = settings
        self._lock = threading.Condition()
        self._partitions: dict[tuple[str, int], PartitionState] = {}
        self._partition_counts: dict[str, int] = {}
        self._topics: set[str] = set()
        self._topic_errors: dict[str, type[errors.KafkaError]] = {}
        self._flushing = 0
        self._hurried = False  # someone waits for what is queued: no lingering until it went
        self._closing = False
        # The sender thread's own state: brokers, leaders, connections, producer id.
        self._brokers: dict[int, tuple[str, int]] = {}
        self._leaders: dict[tuple[str, int], int] = {}
        self._exchanges: dict[int, KafkaExchange] = {}
        # Per connection: the broker's (oldest, newest) version of each API it answers.
        self._versions: dict[int | str, dict[int, tuple[int, int]]] = {}
        self._metadata_at = 0.0
        self._metadata_retry_at = 0.0
        self._metadata_wanted = True
        self._producer_id = NO_PRODUCER_ID
        self._producer_epoch = NO_PRODUCER_EPOCH
        self._outage = Outage(log, "Kafka: sending again")
        self._thread: threading.Thread | None = None

    # The caller's side ----------------------------------------------------------------

    def start(self, timeout_s: float) -> None:
        """Ask a bootstrap broker for the cluster's metadata, then start the sender.
        Raises BrokerAway when none answers within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self._refresh_metadata(bootstrap=True)
                break
            except (errors.KafkaError, OSError) as error:
                last_error = error
                time.sleep(RETRY_BACKOFF_S)
        else:
            raise BrokerAway(f"no broker answered: {last_error}")
        self._thread = threading.Thread(target=self._run, name="kafka-producer", daemon=True)
        self._thread.start()

    def partition_count(self, topic: str, timeout_s: float) -> int:
        """How many partitions `topic` has, waiting up to `timeout_s` for its metadata (a
        new topic is created as the broker's auto.create.topics.enable allows)."""
        with self._lock:
            count = self._partition_counts.get(topic)
            if count is not None:
                return count
            self._topics.add(topic)
            self._metadata_wanted = True
            self._lock.notify_all()
            deadline = time.monotonic() + timeout_s
            while (count := self._partition_counts.get(topic)) is None:
                error = self._topic_errors.get(topic)
                if error is not None and not error.retriable:
                    self._topics.discard(topic)  # asked for again by the next write only
                    raise error(f"topic {topic}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.KafkaTimeoutError(
                        f"no metadata for topic {topic} after {timeout_s:.1f} s"
                    )
                self._lock.wait(left)
            return count

    def available_partitions(self, topic: str) -> list[int]:
        """The partitions of `topic` whose leader is known now."""
        leaders = self._leaders
        count = self._partition_counts.get(topic, 0)
        return [p for p in range(count) if leaders.get((topic, p), -1) >= 0]

    def send(
        self,
        topic: str,
        partition: int,
        keys: list[bytes | None],
        values: list[bytes],
        timestamps_ms: list[int],
    ) -> Delivery:
        """Queue records for one partition; their Delivery settles once the broker stored
        them all (they may go in several batches: each holds at most batch_size bytes)."""
        size = sum(map(len, values)) + RECORD_OVERHEAD_BYTES * len(values)
        size += sum(len(key) for key in keys if key)
        chunk = Chunk(keys, values, timestamps_ms, size, Delivery(), time.monotonic())
        with self._lock:
            state = self._partitions.get((topic, partition))
            if state is None:
                state = PartitionState(batch_limit=self.settings.batch_size)
                self._partitions[(topic, partition)] = state
                if topic not in self._topics:  # its leaders are asked for before it goes
                    self._topics.add(topic)
                    self._metadata_wanted = True
            state.queue.append(chunk)
            state.queued_bytes += size
            self._lock.notify_all()
        return chunk.delivery

    def send_now(self) -> None:
        """End the lingering of what is queued: the caller is about to wait for it."""
        with self._lock:
            if any(state.queue for state in self._partitions.values()):
                self._hurried = True
                self._lock.notify_all()

    def flush(self, timeout_s: float) -> None:
        """Send what is queued without lingering and wait until every record handed over so
        far is settled; KafkaTimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._flushing += 1
            self._lock.notify_all()
            try:
                while not self._all_settled():
                    left = deadline - time.monotonic()
                    if left <= 0 or (self._thread is not None and not self._thread.is_alive()):
                        raise errors.KafkaTimeoutError(
                            f"records not acknowledged after {timeout_s:.1f} s"
                        )
                    self._lock.wait(left)
            finally:
                self._flushing -= 1

    def close(self, timeout_s: float) -> None:
        """Flush for up to `timeout_s`, then stop the sender; what is still unsettled fails."""
        try:
            self.flush(timeout_s)
        except errors.KafkaTimeoutError:
            log.debug("Closing with records not acknowledged")
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        # A sender waiting on a broker that does not answer is woken by the shutdown.
        for exchange in list(self._exchanges.copy().values()):
            with contextlib.suppress(OSError):
                exchange.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(CLOSE_JOIN_S)
        with self._lock:
            for state in self._partitions.values():
                chunks = [*(state.batch.chunks if state.batch else []), *state.queue]
                for chunk in chunks:
                    if not chunk.delivery.is_done:
                        chunk.delivery.fail(errors.KafkaConnectionError("the producer closed"))
                state.queue.clear()
                state.batch = None
        for exchange in list(self._exchanges.copy().values()):
            exchange.sock.close()

    def _all_settled(self) -> bool:
        return all(not s.queue and s.batch is None for s in self._partitions.values())

    # The sender thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                ready = self._wait_for_work()
                if ready is None:
                    return
            try:
                self._send_round(ready)
            except Exception as error:  # noqa: BLE001 - the thread must go on: log, retry
                log.error("Kafka producer: %s", error, exc_info=log.isEnabledFor(logging.DEBUG))
                time.sleep(RETRY_BACKOFF_S)

    def _wait_for_work(self) -> list[tuple[str, int]] | None:
        """Under the lock: the partitions with a batch to send now (waiting until there are
        some), or None when the producer closes."""
        while not self._closing:
            now = time.monotonic()
            wake_at = now + METADATA_MAX_AGE_S
            ready = []
            for tp, state in self._partitions.items():
                due = self._due_at(state)
                if due is None:
                    continue
                if due <= now:
                    ready.append(tp)
                else:
                    wake_at = min(wake_at, due)
            if ready or self._metadata_due(now):
                return ready
            self._hurried = False  # what was queued when it was asked for has gone
            if self._metadata_wanted:  # wanted, but the last try failed just now
                wake_at = min(wake_at, self._metadata_retry_at)
            self._lock.wait(wake_at - now)
        return None

    def _due_at(self, state: PartitionState) -> float | None:
        """When a partition's next batch should go: at once for a batch to send again after
        its backoff, or when lingering ends (at once when flushing or batch_size is
        reached)."""
        if state.batch is not None:
            return state.retry_at
        if not state.queue:
            return None
        if self._flushing or self._hurried or state.queued_bytes >= state.batch_limit:
            return state.retry_at
        return max(state.retry_at, state.queue[0].queued_at + self.settings.linger_ms / 1000)

    def _metadata_due(self, now: float) -> bool:
        wanted = self._metadata_wanted or now - self._metadata_at > METADATA_MAX_AGE_S
        return wanted and now >= self._metadata_retry_at

    def _send_round(self, ready: list[tuple[str, int]]) -> None:
        if self._metadata_due(time.monotonic()):
            try:
                self._refresh_metadata()
            except (errors.KafkaError, OSError) as error:
                self._outage.failed(f"Kafka: asking for metadata: {error}")
                self._metadata_wanted = True
                self._metadata_retry_at = time.monotonic() + RETRY_BACKOFF_S
                self._retry_later(ready)
                return
        if self.settings.idempotent and self._producer_id == NO_PRODUCER_ID:
            try:
                self._init_producer_id()
            except (errors.KafkaError, OSError) as error:
                self._outage.failed(f"Kafka: asking for a producer id: {error}")
                self._retry_later(ready)
                return
        by_leader: dict[int, list[tuple[str, int]]] = {}
        for tp in ready:
            leader = self._leaders.get(tp)
            if leader is None or leader < 0:
                self._metadata_wanted = True
                self._retry_later([tp])
                continue
            by_leader.setdefault(leader, []).append(tp)
        for leader, partitions in by_leader.items():
            if self._closing:
                return
            if self.settings.idempotent and self._producer_id == NO_PRODUCER_ID:
                return  # lost in this round: no batch goes without an id; the next round asks
            batches: dict[tuple[str, int], Batch] = {}
            request_bytes = 0
            for tp in partitions:
                if request_bytes >= REQUEST_LIMIT_BYTES:
                    break  # the rest are still due: they go in the next round
                batch = self._batch_of(tp)
                if batch is not None:
                    batches[tp] = batch
                    request_bytes += len(batch.data)
            if batches:
                self._produce(leader, batches)

    def _batch_of(self, tp: tuple[str, int]) -> Batch | None:
        """The partition's batch to send: the one waiting to be sent again, or a new one of
        the records queued, up to its batch limit (at least one record). None when the new
        batch could not be written (its records then fail)."""
        with self._lock:
            state = self._partitions[tp]
            if state.batch is not None:
                return state.batch
            room = state.batch_limit - BATCH_HEADER_BYTES
            chunks: list[Chunk] = []
            size = 0
            while state.queue and size < room:
                head = state.queue[0]
                if size + head.size <= room:
                    chunks.append(state.queue.popleft())
                    size += chunks[-1].size
                    continue
                # Its first records fill the batch; the rest go in a later one.
                part = head.take(room - size, at_least_one=not chunks)
                if part is not None:
                    chunks.append(part)
                    size += part.size
                break
            state.queued_bytes -= size
            count = sum(len(chunk.values) for chunk in chunks)
            batch = Batch(chunks, NO_SEQUENCE, count, self._producer_id)
            if self.settings.idempotent:
                batch.base_sequence = state.next_sequence
                state.next_sequence = (state.next_sequence + count) % (MAX_SEQUENCE + 1)
            # Its records are on their way from now on: a flush waits for them.
            state.batch = batch
        try:
            batch.data = self._write(batch)
        except Exception as error:  # noqa: BLE001 - a bug or a codec failing: said, not lost
            log.error("Kafka: %s[%d]: a record batch could not be written: %s", *tp, error)
            with self._lock:
                state.batch = None
                if self.settings.idempotent:
                    state.next_sequence = batch.base_sequence
                for chunk in chunks:
                    chunk.delivery.fail(errors.KafkaError(f"batch not written: {error}"))
                self._lock.notify_all()
            return None
        return batch

    def _write(self, batch: Batch) -> bytes:
        if len(batch.chunks) == 1:
            only = batch.chunks[0]
            keys, values, timestamps = only.keys, only.values, only.timestamps_ms
        else:
            keys = [key for chunk in batch.chunks for key in chunk.keys]
            values = [value for chunk in batch.chunks for value in chunk.values]
            timestamps = [ts for chunk in batch.chunks for ts in chunk.timestamps_ms]
        return bytes(
            _native.write_record_batch(
                keys,
                values,
                timestamps,
                self._producer_id,
                self._producer_epoch,
                batch.base_sequence,
                self.settings.codec,
                compress,
            )
        )

    def _produce(self, leader: int, batches: dict[tuple[str, int], Batch]) -> None:
        by_topic: dict[str, list[Any]] = {}
        for (topic, partition), batch in batches.items():
            batch.attempts += 1
            by_topic.setdefault(topic, []).append(
                ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=partition, records=batch.data
                )
            )
        request = ProduceRequest(
            transactional_id=None,
            acks=self.settings.acks,
            timeout_ms=int(REQUEST_TIMEOUT_S * 1000),
            topic_data=[
                ProduceRequest.TopicProduceData(name=topic, partition_data=partitions)
                for topic, partitions in by_topic.items()
            ],
        )
        try:
            response = self._request(leader, request)
        except (errors.KafkaError, OSError) as error:
            self._drop_exchange(leader)
            self._outage.failed(f"Kafka: sending to broker {leader}: {error}")
            self._metadata_wanted = True
            self._after_failure(batches, errors.KafkaConnectionError(str(error)))
            return
        self._outage.recovered()
        if response is None:  # acks = 0: nothing comes back
            for tp in batches:
                self._settle(tp, None)
            return
        answered: dict[tuple[str, int], int] = {}
        lost: list[tuple[str, int]] = []
        for topic_response in response.responses:
            for partition in topic_response.partition_responses:
                answered[(topic_response.name, partition.index)] = partition.error_code
        for tp, batch in batches.items():
            code = answered.get(tp)
            if code is None:
                self._after_failure({tp: batch}, errors.UnknownError("no answer for the partition"))
                continue
            error = errors.for_code(code)
            if error in (errors.NoError, errors.DuplicateSequenceNumberError):
                self._settle(tp, None)
            elif error in SEQUENCE_LOST:
                log.warning(
                    "%s[%d]: %s; asking for a new producer id", tp[0], tp[1], error.__name__
                )
                lost.append(tp)
            elif error in TOO_LARGE and batch.count > 1:
                self._split(tp, batch)
            else:
                if error.invalid_metadata or error is errors.UnknownTopicOrPartitionError:
                    self._metadata_wanted = True
                self._after_failure({tp: batch}, error(f"{tp[0]}[{tp[1]}]"))
        if lost:  # after the other partitions' answers are settled, not before
            self._new_producer_id(lost)

    def _request(self, leader: int, request: ProduceRequest) -> Any:
        """The broker's answer to a Produce request (None with acks = 0, which has none)."""
        exchange = self._exchange(leader)
        version = self._version(leader, ProduceRequest, PRODUCE_VERSIONS)
        exchange.send(request, version)
        if self.settings.acks == 0:
            return None
        return exchange.receive(ProduceResponse, version)

    def _after_failure(
        self, batches: dict[tuple[str, int], Batch], error: errors.KafkaError
    ) -> None:
        """Batches the broker did not take: sent again later if the error is retriable
        (forever with idempotence, else up to max_retry times), else failed."""
        for tp, batch in batches.items():
            retriable = getattr(error, "retriable", False)
            if retriable and (
                self.settings.idempotent or batch.attempts <= self.settings.max_retry
            ):
                log.debug("%s[%d]: %s; sending again", tp[0], tp[1], error)
                self._retry_later([tp])
            else:
                self._settle(tp, error)

    def _settle(self, tp: tuple[str, int], error: errors.KafkaError | None) -> None:
        with self._lock:
            state = self._partitions[tp]
            batch = state.batch
            state.batch = None
            if batch is None:
                return
            if error is not None and self.settings.idempotent:
                self._release_sequence(state, batch)
            for chunk in batch.chunks:
                if error is None:
                    chunk.delivery.succeed()
                else:
                    chunk.delivery.fail(error)
            self._lock.notify_all()

    def _release_sequence(self, state: PartitionState, batch: Batch) -> None:
        """Under the lock, for a batch the broker refused: the next batch takes its sequence
        numbers when the broker cannot hold them, having answered its only send. After a
        lost answer the broker may hold them: the producer takes a new id instead."""
        if batch.producer_id != self._producer_id:
            return  # the id changed meanwhile: its partitions' sequences start again anyway
        if batch.attempts == 1:
            state.next_sequence = batch.base_sequence
        else:
            self._forget_producer_id()

    def _split(self, tp: tuple[str, int], batch: Batch) -> None:
        """The broker refused a batch as too large (a topic's max.message.bytes below
        batch_size): its records go again in batches of half its size."""
        log.info(
            "Kafka: %s[%d]: a batch of %d bytes is over the topic's limit; sending smaller ones",
            *tp,
            len(batch.data),
        )
        with self._lock:
            state = self._partitions[tp]
            state.batch = None
            state.batch_limit = max(BATCH_HEADER_BYTES + 1, min(state.batch_limit, batch.size) // 2)
            state.queue.extendleft(reversed(batch.chunks))
            state.queued_bytes += sum(chunk.size for chunk in batch.chunks)
            self._release_sequence(state, batch)

    def _retry_later(self, partitions: Sequence[tuple[str, int]]) -> None:
        retry_at = time.monotonic() + RETRY_BACKOFF_S
        with self._lock:
            for tp in partitions:
                self._partitions[tp].retry_at = retry_at

    def _new_producer_id(self, lost: list[tuple[str, int]]) -> None:
        """The broker lost track of this producer's sequences on the `lost` partitions: their
        batches are written again for a new id, from sequence 0. Batches of other partitions
        still waiting for an answer keep the old id (the broker may hold them already)."""
        with self._lock:
            self._forget_producer_id()
            for tp in lost:
                state = self._partitions[tp]
                if state.batch is not None:
                    state.queue.extendleft(reversed(state.batch.chunks))
                    state.queued_bytes += sum(chunk.size for chunk in state.batch.chunks)
                    state.batch = None

    def _forget_producer_id(self) -> None:
        """Under the lock: the next round asks for a new producer id, and every partition's
        next batch starts at sequence 0 under it."""
        self._producer_id = NO_PRODUCER_ID
        for state in self._partitions.values():
            state.next_sequence = 0

    def _init_producer_id(self) -> None:
        """A producer id and epoch from the first broker that gives one."""
        request = InitProducerIdRequest(
            transactional_id=None,
            transaction_timeout_ms=-1,
            producer_id=NO_PRODUCER_ID,
            producer_epoch=NO_PRODUCER_EPOCH,
        )
        last: Exception | None = None
        for node in list(self._brokers):
            try:
                exchange = self._exchange(node)
                version = self._version(node, InitProducerIdRequest, INIT_PRODUCER_ID_VERSIONS)
                response = exchange.call(request, InitProducerIdResponse, version)
            except (errors.KafkaError, OSError) as error:
                self._drop_exchange(node)
                last = error
                continue
            error = errors.for_code(response.error_code)
            if error is not errors.NoError:
                last = error("InitProducerId")
                continue
            self._producer_id = response.producer_id
            self._producer_epoch = response.producer_epoch
            return
        self._metadata_wanted = True  # the brokers may have changed
        raise BrokerAway(f"no broker gave a producer id: {last}")

    def _refresh_metadata(self, bootstrap: bool = False) -> None:
        """Brokers and the leader of each partition of the topics in use."""
        with self._lock:
            topics = sorted(self._topics)
            self._metadata_wanted = False
        response = self._metadata(topics, bootstrap)
        brokers = {b.node_id: (b.host, b.port) for b in response.brokers}
        leaders: dict[tuple[str, int], int] = {}
        counts: dict[str, int] = {}
        topic_errors: dict[str, type[errors.KafkaError]] = {}
        for topic in response.topics:
            error = errors.for_code(topic.error_code)
            if error is not errors.NoError:
                topic_errors[topic.name] = error
                continue
            counts[topic.name] = len(topic.partitions)
            for partition in topic.partitions:
                leaders[(topic.name, partition.partition_index)] = partition.leader_id
        for node in list(self._exchanges):
            if self._brokers.get(node) != brokers.get(node):
                self._drop_exchange(node)
        self._brokers = brokers
        self._leaders = leaders
        self._metadata_at = time.monotonic()
        with self._lock:
            self._partition_counts = counts
            self._topic_errors = topic_errors
            if set(topic_errors) & set(topics):
                self._metadata_wanted = True
                self._metadata_retry_at = time.monotonic() + RETRY_BACKOFF_S
            self._lock.notify_all()

    def _metadata(self, topics: list[str], bootstrap: bool) -> Any:
        """A MetadataResponse from the first broker that answers: known brokers first, then
        the bootstrap list."""
        request_topics = [MetadataRequest.MetadataRequestTopic(name=topic) for topic in topics]
        request = MetadataRequest(
            topics=request_topics,
            allow_auto_topic_creation=True,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )
        candidates: list[tuple[int | str, tuple[str, int]]] = []
        if not bootstrap:
            candidates += list(self._brokers.items())
        for host, port in self.settings.bootstrap:
            candidates.append((f"{host}:{port}", (host, port)))
        last: Exception | None = None
        for node, (host, port) in candidates:
            try:
                exchange = self._exchange(node, (host, port))
                version = self._version(node, MetadataRequest, METADATA_VERSIONS)
                return exchange.call(request, MetadataResponse, version)
            except (errors.KafkaError, OSError) as error:
                self._drop_exchange(node)
                last = error
        raise BrokerAway(f"no broker answered a metadata request: {last}")

    def _exchange(self, node: int | str, address: tuple[str, int] | None = None) -> KafkaExchange:
        """The connection to `node`: the open one, or a new one (to `address` when the node
        is a bootstrap address)."""
        exchange = self._exchanges.get(node)  # type: ignore[call-overload]
        if exchange is not None and closed_by_peer(exchange.sock):
            self._drop_exchange(node)
            exchange = None
        if exchange is None:
            if address is None:
                address = self._brokers.get(node)  # type: ignore[call-overload]
                if address is None:
                    raise BrokerAway(f"broker {node} is not in the cluster's metadata")
            exchange = self.settings.connect(address[0], address[1], CONNECT_TIMEOUT_S)
            # A Produce with acks all may wait up to its timeout_ms for the replicas.
            exchange.sock.settimeout(REQUEST_TIMEOUT_S + CONNECT_TIMEOUT_S)
            try:
                response = exchange.call(ApiVersionsRequest(), ApiVersionsResponse, 0)
            except BaseException:
                exchange.sock.close()
                raise
            self._versions[node] = {
                key.api_key: (key.min_version, key.max_version) for key in response.api_keys
            }
            self._exchanges[node] = exchange  # type: ignore[index]
        return exchange

    def _version(self, node: int | str, request: Any, wanted: tuple[int, int]) -> int:
        broker_min, broker_max = self._versions[node].get(request.API_KEY, (-1, -1))
        version = min(wanted[1], broker_max)
        if version < max(wanted[0], broker_min):
            raise errors.UnsupportedVersionError(
                f"the broker answers {request.__name__} v{broker_min}-v{broker_max}; "
                f"v{wanted[0]}-v{wanted[1]} is needed"
            )
        return version

    def _drop_exchange(self, node: int | str) -> None:
        exchange = self._exchanges.pop(node, None)  # type: ignore[call-overload]
        if exchange is not None:
            exchange.sock.close()
