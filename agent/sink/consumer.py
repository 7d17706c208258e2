"""The sink's consuming loop: Kafka records → decoder → batch → stores → offsets committed.

Offsets are committed only after the batch they cover is kept (stored in one transaction,
or printed and flushed), one explicit offset per partition; auto-commit is off. A batch is
kept by a thread of its own while the main thread reads and decodes the next one (a store
spends much of a batch waiting for its disk or its server); there is at most one batch in
that thread, and its offsets are committed by the main thread once it is kept. When a
rebalance takes partitions away, the rebalance listener waits for that batch, keeps the
pending one and commits both before they go, so the next owner starts where this one
stopped. A sink killed at any moment reads again at most what it had not committed; the
store's identity key makes that harmless.
A store keeps each partition's next offset with the batch: when partitions are assigned, the
sink asks the store (from the main thread, after the poll) and starts where the store stopped
if the group's committed offset is behind it. A store that fences them (PostgreSQL) refuses a
batch of partitions another member wrote meanwhile; that batch is read again from the store.

Without a group the sink reads every partition on its own and commits nothing.

A topic that does not exist yet is waited for, never created: the consumer's metadata
requests do not ask the broker to create topics (kafka-python asks by default, and a broker
then creates it with its default partition count, one). A member left without partitions
although a topic has as many partitions as the group has members, or more (its leader
assigned from metadata that did not show them yet), joins again, with fresh metadata.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from agent._native import PointRun
from agent.sink.batch import Batch, Delivery
from agent.sink.decoder import RecordDecoder
from agent.sink.fetch import PartitionFetcher
from agent.sink.settings import SinkSettings
from agent.sink.store import DurableStore, PositionsMoved, Store, StoreError

log = logging.getLogger("sink")

POLL_TIMEOUT_MS = 200
MAX_POLL_RECORDS = 5_000
BOOTSTRAP_TIMEOUT_MS = 10_000
CLOSE_TIMEOUT_MS = 5_000
TOPIC_WAIT_S = 1.0
# A member left without partitions it should have joins again after this, then after twice
# as long each time it is left without again, up to the longest wait.
REJOIN_FIRST_WAIT_S = 1.0
REJOIN_LONGEST_WAIT_S = 60.0
FIRST_METRICS_PER_RECORD_GUESS = 50.0
# Per partition and fetch (kafka-python's default is 1 MB): the consumer waits for each
# fetch it has no records for, so bigger fetches mean fewer waits (about 20% faster here).
PARTITION_FETCH_BYTES = 8 * 2**20
# A fetch asks for about as many bytes as the records that fit in the batch take, so that
# little of what it brings is left to fetch again; until records show their size, this many
# bytes a record, and never less than the smallest fetch.
FIRST_RECORD_BYTES_GUESS = 300
SMALLEST_FETCH_BYTES = 64 * 2**10


class SinkError(Exception):
    """A problem that keeps the sink from starting (no broker answers), for the user."""


def describe_partitions(partitions: Iterable[TopicPartition]) -> str:
    """`metrics[0,1] other[0]`: topics with their partition numbers."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}[{','.join(map(str, sorted(p)))}]" for t, p in sorted(by_topic.items()))


class _RebalanceListener(AsyncConsumerRebalanceListener):
    """Keeps and commits the pending batch before partitions go to another member.

    kafka-python runs listeners on its IO thread while the main thread waits in poll(); an
    async listener can await the commit there without blocking heartbeats."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.sink.joining = True
        offsets = self.sink.keep_pending()
        if offsets and self.sink.consumer is not None:
            try:
                await self.sink.consumer.commit_async(offsets)
            except KafkaError as error:
                log.warning("could not commit before the rebalance: %s", error)
            else:
                log.info("committed %s before the rebalance", _offsets_text(offsets))
        if revoked:
            log.debug("partitions revoked: %s", describe_partitions(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.sink.joining = False
        self.sink.assignment_changed(set(assigned))
        # The main thread asks the store where these partitions stopped, after this poll:
        # a store that is down must not hold up the heartbeats of this thread.
        self.sink.unclaimed |= set(assigned)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        # Membership is gone: keep what we hold (the store ignores what the next owner
        # stores again) but do not commit, the group no longer accepts it from us.
        self.sink.joining = True
        self.sink.keep_pending()
        log.warning("lost partitions %s (the group evicted this sink)", describe_partitions(lost))


@dataclass
class _Write:
    """A batch the stores are keeping in the sink's store thread."""

    batch: Batch
    done: Future[None]


def _offsets_text(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]={meta.offset}" for tp, meta in offsets.items())


class Sink:
    """Consumes `settings.topics` and hands each batch to every store (a printer is one)."""

    def __init__(self, settings: SinkSettings, stores: list[Store], decoder: RecordDecoder) -> None:
        self.settings = settings
        self.stores = stores
        self.decoder = decoder
        self.consumer: KafkaConsumer | None = None
        self.fetcher: PartitionFetcher | None = None
        self.pending = Batch()
        # The batch being kept; it and `pending` change hands under the lock (the rebalance
        # listener takes both from kafka-python's IO thread).
        self._in_flight: _Write | None = None
        self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-store")
        self._lock = threading.Lock()
        self._stop = False
        self._fatal: Exception | None = None
        self._assignment: set[TopicPartition] | None = None
        self._assignment_news = False
        self._assigned_at_s = 0.0
        self._metrics_per_record = 0.0
        self._bytes_per_record = 0.0
        self._rejoin_wait_s = REJOIN_FIRST_WAIT_S
        self._rejoin_at_s: float | None = None
        # The store that keeps positions (a printer does not), and the assigned partitions
        # it has not been asked about yet.
        self.durable: DurableStore | None = next(
            (store for store in stores if isinstance(store, DurableStore)), None
        )
        self.unclaimed: set[TopicPartition] = set()
        # Between a revocation and the next assignment, the group is joined again: that
        # takes the consumer's polls with time to wait (a poll that returns at once, as when
        # the fetcher reads, would never finish a join).
        self.joining = True
        self.messages = 0
        self.metrics_kept = 0
        self.metrics_new = 0

    # -- life -------------------------------------------------------------------------------

    def request_stop(self, signum: int = 0, frame: Any = None) -> None:
        self._stop = True
        if self.durable is not None:
            self.durable.interrupt()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop; what is held is kept and committed first.

        Installed explicitly: a process started in the background from a script inherits
        SIGINT as ignored."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def open(self) -> None:
        settings = self.settings
        config: dict[str, Any] = {
            "bootstrap_servers": settings.brokers,
            "client_id": settings.client_id,
            "group_id": settings.group or None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if settings.from_beginning else "latest",
            "max_poll_records": min(settings.batch_size, MAX_POLL_RECORDS),
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            "max_partition_fetch_bytes": PARTITION_FETCH_BYTES,
            "allow_auto_create_topics": False,
        }
        if settings.group:
            config |= {
                "session_timeout_ms": settings.session_timeout_ms,
                "heartbeat_interval_ms": settings.heartbeat_interval_ms,
                "max_poll_interval_ms": settings.max_poll_interval_ms,
            }
        config |= settings.client_config()
        try:
            settings.probe(settings.brokers)
        except ConnectionError as error:
            raise SinkError(str(error)) from None
        try:
            self.consumer = KafkaConsumer(**config)
        except KafkaTimeoutError:
            brokers = ",".join(settings.brokers)
            raise SinkError(f"no Kafka broker answers at {brokers}") from None
        except KafkaError as error:
            raise SinkError(f"cannot connect to Kafka: {error}") from None
        self.fetcher = PartitionFetcher(
            {
                "bootstrap_servers": settings.brokers,
                "client_id": settings.client_id,
                **settings.client_config(),
            },
            PARTITION_FETCH_BYTES,
        )
        where = f"as group {settings.group}" if settings.group else "without a group"
        log.info(
            "reading %s %s from %s", ", ".join(settings.topics), where, ",".join(settings.brokers)
        )

    def _start_reading(self, absent: set[str]) -> bool:
        """Once every topic exists: join the group, or without one, read every partition.
        Topics not there yet are added to `absent`. (partitions_for_topic asks the broker
        about all topics, which never creates one.)"""
        assert self.consumer is not None
        partitions = []
        for topic in self.settings.topics:
            numbers = self.consumer.partitions_for_topic(topic)
            if not numbers:
                absent.add(topic)
                return False
            partitions += [TopicPartition(topic, number) for number in sorted(numbers)]
        if self.settings.group:
            self._subscribe()
        else:
            self._assign_all_partitions(partitions, absent)
        return True

    def _subscribe(self) -> None:
        """Join the group on the next poll, with the topics' metadata fresh: kafka-python
        notes what a leader assigned from and joins again when the metadata it sees next
        differs, so metadata fetched before subscribing would cost a second rebalance."""
        assert self.consumer is not None
        self.consumer.subscribe(self.settings.topics, listener=_RebalanceListener(self))
        self.consumer.topics()  # a metadata request for all topics, which creates none

    def _assign_all_partitions(self, partitions: list[TopicPartition], absent: set[str]) -> None:
        """Without a group. Topics that were absent are read from their start, since all
        they hold is newer than the sink (not from their end at the moment they were seen)."""
        assert self.consumer is not None
        self.consumer.assign(partitions)
        appeared = [partition for partition in partitions if partition.topic in absent]
        if appeared:
            self.consumer.seek_to_beginning(*appeared)
        self.assignment_changed(set(partitions))

    def run(self) -> int:
        """Consume until stopped (signal, --max-messages, --timeout-ms); 0, or 1 on failure."""
        self.open()
        try:
            self._consume()
            self.flush(wait=True)
        except BrokenPipeError:
            _silence_stdout()
            log.info("stdout closed; stopping (the last batch is not committed)")
        except StoreError as error:
            log.error("%s; stopping (what was not stored is not committed)", error)
            return 1
        except KafkaError as error:
            log.error("Kafka: %s; stopping (what was not kept is not committed)", error)
            return 1
        finally:
            self.close()
        self._log_totals()
        return 0

    def _consume(self) -> None:
        settings = self.settings
        started = time.monotonic()
        idle_s = 0.0  # time spent waiting for records that did not come
        assigned_at_s = 0.0
        reading = False
        absent_topics: set[str] = set()
        while not self._stop:
            waiting_since = time.monotonic()
            if not reading:
                already_waiting = bool(absent_topics)
                reading = self._start_reading(absent_topics)
                if not reading:
                    if not already_waiting:
                        log.warning("topic(s) %s not found yet; waiting", ", ".join(absent_topics))
                    time.sleep(TOPIC_WAIT_S)
            if self._rejoin_at_s is not None and time.monotonic() >= self._rejoin_at_s:
                self._rejoin()
            if reading and self.poll(self._poll_timeout_ms()):
                idle_s = 0.0
            else:
                idle_s += time.monotonic() - waiting_since
            if self._fatal is not None:
                raise self._fatal
            if self._in_flight is not None and self._in_flight.done.done():
                self._settle()
            if self._assigned_at_s != assigned_at_s:
                assigned_at_s, idle_s = self._assigned_at_s, 0.0
            if self._batch_due():
                self.flush()
            if self._reached_max_messages():
                return
            if settings.timeout_ms and self._idle_too_long(started, idle_s):
                log.info("no message for %d ms; stopping", settings.timeout_ms)
                return

    def _batch_due(self) -> bool:
        pending = self.pending
        return bool(pending) and (
            pending.metric_count >= self.settings.batch_size
            or pending.age_s() >= self.settings.flush_interval
            or self._reached_max_messages()
        )

    def close(self) -> None:
        # A batch still being kept is kept (not committed: the next start resumes from the
        # store) before the stores close under it.
        self._store_thread.shutdown(wait=True)
        if self.fetcher is not None:
            self.fetcher.close()
            self.fetcher = None
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
            except KafkaError as error:
                log.warning("closing the consumer: %s", error)
            self.consumer = None
        for store in self.stores:
            try:
                store.close()
            except BrokenPipeError:
                _silence_stdout()

    # -- one step ---------------------------------------------------------------------------

    def poll(self, timeout_ms: int) -> int:
        """Fetch records into the pending batch; the number of records taken.

        The consumer's poll keeps the group going and hands over any records it fetched
        before the partitions they belong to were paused; the fetcher reads the rest."""
        assert self.consumer is not None
        max_records = self._records_that_fit()
        if self.settings.max_messages:
            max_records = min(max_records, self.settings.max_messages - self.messages)
            if max_records <= 0:
                return 0
        waited = not self._fetcher_reads()
        records = self.consumer.poll(
            timeout_ms=timeout_ms if waited else 0, max_records=max_records
        )
        self._report_assignment()
        if self.unclaimed:
            records = self._resume_from_store(records)
        taken = [record for batch in records.values() for record in batch][:max_records]
        metrics_before = self.pending.metric_count
        deliveries = self.decoder.decode_all(taken)
        if self._fetcher_reads() and len(taken) < max_records:
            wait_ms = 0 if taken or waited else timeout_ms
            deliveries += self._fetch(max_records - len(taken), wait_ms)
        with self._lock:
            self.pending.extend(deliveries)
        read = sum(delivery.records for delivery in deliveries)
        self.messages += read
        if read:
            ratio = (self.pending.metric_count - metrics_before) / read
            previous = self._metrics_per_record or ratio
            self._metrics_per_record = (previous + ratio) / 2
        return read

    def _fetcher_reads(self) -> bool:
        """Whether the fetcher has partitions to read and the group is not being joined."""
        assert self.consumer is not None
        return bool(self.consumer.paused()) and not (self.settings.group and self.joining)

    def _fetch(self, max_records: int, wait_ms: int) -> list[Delivery | PointRun]:
        """The deliveries of up to `max_records` records the fetcher reads of the assigned
        partitions, from the consumer's positions, which then move past them."""
        assert self.consumer is not None and self.fetcher is not None
        positions = {}
        for tp in self.consumer.paused():
            try:
                position = self.consumer.position(tp, timeout_ms=POLL_TIMEOUT_MS)
            except (KafkaError, ValueError):  # revoked meanwhile, or its offset not known yet
                continue
            if position is not None:
                positions[tp] = position
        per_record = self._bytes_per_record or FIRST_RECORD_BYTES_GUESS
        max_bytes = max(SMALLEST_FETCH_BYTES, int(max_records * per_record))
        fetched = self.fetcher.fetch(positions, wait_ms, max_bytes)
        for tp in fetched.out_of_range:
            self._reset_out_of_range(tp, positions[tp])
        deliveries: list[Delivery | PointRun] = []
        taken = 0
        assigned = self.consumer.assignment()
        for part in fetched.records:
            tp = part.partition
            room = max_records - taken
            if tp not in assigned or room <= 0:
                continue
            next_offset = part.next_offset
            if part.offsets:
                size = part.fetched_bytes / len(part.offsets)
                self._bytes_per_record = (self._bytes_per_record or size) / 2 + size / 2
            if len(part.offsets) > room:  # the rest is fetched again for the next batch
                for column in (part.offsets, part.timestamps_ms, part.keys, part.values):
                    del column[room:]
                next_offset = part.offsets[-1] + 1
            taken += len(part.offsets)
            deliveries += self.decoder.decode_fetched(part)
            if next_offset is not None and next_offset != positions[tp]:
                self._seek(tp, next_offset)
        return deliveries

    def _reset_out_of_range(self, tp: TopicPartition, offset: int) -> None:
        """A position outside the partition's log (deleted by retention, or a log cut
        short): read from where auto_offset_reset says, as kafka-python would."""
        assert self.consumer is not None
        where = "earliest" if self.settings.from_beginning else "latest"
        log.warning(
            "%s[%d]: offset %d is no longer in the log; reading from the %s offset",
            tp.topic,
            tp.partition,
            offset,
            where,
        )
        try:
            if self.settings.from_beginning:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek_to_end(tp)
        except (KafkaError, ValueError):
            pass  # revoked meanwhile: its next owner reads it

    def _records_that_fit(self) -> int:
        """Records to ask for so the batch stays near batch_size metrics: a record may carry
        many lines. Until the first records show their size, ask for few."""
        room = max(1, self.settings.batch_size - self.pending.metric_count)
        per_record = self._metrics_per_record or FIRST_METRICS_PER_RECORD_GUESS
        return max(1, min(MAX_POLL_RECORDS, int(room / max(per_record, 1.0))))

    def flush(self, wait: bool = False) -> None:
        """Hand the pending batch to the store thread, once the batch before it is kept and
        its offsets committed; with `wait`, return once this one is too."""
        self._settle()
        with self._lock:
            batch, self.pending = self.pending, Batch()
            if batch:
                self._in_flight = _Write(batch, self._store_thread.submit(self._keep, batch))
        if wait:
            self._settle()

    def _settle(self) -> None:
        """Wait for the batch in the store thread: commit its offsets, or if the store
        refused it (PositionsMoved), read its partitions again. A StoreError stops the sink."""
        with self._lock:
            write, self._in_flight = self._in_flight, None
        if write is None:
            return
        try:
            write.done.result()
        except PositionsMoved as moved:
            self._read_again(write.batch, moved)
            return
        if self.settings.group:
            self._commit(_offsets_of(write.batch.next_offsets))

    def keep_pending(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """For the rebalance listener: wait for the batch in the store thread and keep the
        pending one; the offsets to commit for both."""
        with self._lock:
            write, self._in_flight = self._in_flight, None
            batch, self.pending = self.pending, Batch()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        try:
            if write is not None:
                write.done.result()
                offsets = _offsets_of(write.batch.next_offsets)
            if batch:
                self._keep(batch)
                offsets |= _offsets_of(batch.next_offsets)
        except PositionsMoved as moved:
            # The partitions are going anyway; whoever gets them resumes from the store.
            log.warning("%s were written by another sink meanwhile; this batch is dropped", moved)
        except (StoreError, BrokenPipeError) as error:
            self._fatal = error
            return {}
        return offsets

    def _resume_from_store(self, records: dict[TopicPartition, list]) -> dict:
        """Newly assigned partitions start where the store stopped: the store's position
        may be past the group's committed offset (the sink stopped between storing a batch
        and committing it). Records fetched from before that position are dropped and the
        partition is read from there. A group offset past the store's (moved on purpose,
        `agent sink reset --to-latest`) is followed; one before it is not: what lies between
        is stored already. The group's offset is moved to the store's at once, so lag and
        Kafka's tools show it even when nothing more comes to read."""
        assert self.consumer is not None
        partitions, self.unclaimed = self.unclaimed, set()
        if self.durable is None:
            return records
        # The store answers one thread at a time. (The listener waited for the store
        # thread when it revoked partitions, so this waits only on a first assignment.)
        self._settle()
        assigned = self.consumer.assignment()
        partitions = {tp for tp in partitions if tp in assigned}
        stored = self.durable.claim((tp.topic, tp.partition) for tp in partitions)
        resumed: dict[tuple[str, int], int] = {}
        for tp in sorted(partitions):
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                continue
            fetched = records.get(tp)
            try:
                start = fetched[0].offset if fetched else self.consumer.position(tp)
            except KafkaError:  # revoked while the store answered: its next owner resumes
                continue
            if start is not None and offset > start and self._seek(tp, offset):
                records = {key: value for key, value in records.items() if key != tp}
                resumed[(tp.topic, tp.partition)] = offset
                log.info(
                    "%s[%d]: resuming at offset %d, where the store stopped (the group was at %d)",
                    tp.topic,
                    tp.partition,
                    offset,
                    start,
                )
        if resumed and self.settings.group:
            self._commit(_offsets_of(resumed))
        return records

    def _read_again(self, batch: Batch, moved: PositionsMoved) -> None:
        """A batch the store refused (PositionsMoved): nothing of it was kept. The batch
        read after it is dropped too, and each of their partitions still assigned is read
        again from where the store now stands (or from the first record dropped)."""
        assert self.consumer is not None
        log.warning(
            "%s were written by another sink since this one was assigned them; the batch "
            "is dropped and read again from the store's positions",
            moved,
        )
        with self._lock:
            dropped, self.pending = self.pending, Batch()
        first_offsets: dict[tuple[str, int], int] = {}
        for delivery in [*batch.deliveries, *dropped.deliveries]:
            first_offsets.setdefault((delivery.topic, delivery.partition), delivery.offset)
        assigned = self.consumer.assignment()
        partitions = [TopicPartition(t, p) for t, p in first_offsets]
        partitions = [tp for tp in partitions if tp in assigned]
        if self.durable is None or not partitions:
            return
        stored = self.durable.claim((tp.topic, tp.partition) for tp in partitions)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._seek(tp, stored.get(key, first_offsets[key]))

    def _seek(self, tp: TopicPartition, offset: int) -> bool:
        """Read `tp` from `offset` next; False if it was revoked meanwhile (a rebalance may
        run while the store is asked), which leaves it to its next owner."""
        assert self.consumer is not None
        try:
            self.consumer.seek(tp, offset)
        except ValueError:
            return False
        return True

    def _keep(self, batch: Batch) -> None:
        """Every store writes the batch; the first one (the durable store, when there is
        one) says how many metrics were new."""
        started = time.monotonic()
        kept = [store.write(batch) for store in self.stores]
        self.metrics_kept += batch.metric_count
        self.metrics_new += kept[0] if kept else 0
        log.debug(
            "kept %d metrics of %d records (%d new) in %.1f ms",
            batch.metric_count,
            batch.messages,
            kept[0] if kept else 0,
            (time.monotonic() - started) * 1000,
        )

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        assert self.consumer is not None
        try:
            self.consumer.commit(offsets)
        except KafkaError as error:
            log.warning(
                "could not commit %s: %s; those records will be read again (and not stored twice)",
                _offsets_text(offsets),
                error,
            )

    def _idle_too_long(self, started: float, idle_s: float) -> bool:
        """--timeout-ms: no record came for that long. A group member counts from its first
        assignment: joining may wait a session timeout for a member that died, and past
        that wait too it gives up."""
        timeout_s = self.settings.timeout_ms / 1000
        if self._assigned_at_s == 0.0 and self.settings.group:
            joining_s = time.monotonic() - started
            return joining_s >= timeout_s + self.settings.session_timeout_ms / 1000
        return idle_s >= timeout_s

    def _poll_timeout_ms(self) -> int:
        if not self.pending:
            return POLL_TIMEOUT_MS
        left_ms = (self.settings.flush_interval - self.pending.age_s()) * 1000
        return max(0, min(POLL_TIMEOUT_MS, int(left_ms)))

    def _reached_max_messages(self) -> bool:
        return bool(self.settings.max_messages) and self.messages >= self.settings.max_messages

    # -- the group ---------------------------------------------------------------------------

    def assignment_changed(self, assigned: set[TopicPartition]) -> None:
        """New partitions: the fetcher reads them, so the consumer is told not to."""
        self._assignment = assigned
        self._assignment_news = True
        if self.consumer is not None and assigned:
            self.consumer.pause(*assigned)

    def _report_assignment(self) -> None:
        """Log a new assignment (from the main thread, before the records it brings)."""
        if not self._assignment_news:
            return
        self._assignment_news = False
        self._assigned_at_s = time.monotonic()
        if self._assignment:
            self._rejoin_at_s = None  # a rebalance already gave it some
            self._rejoin_wait_s = REJOIN_FIRST_WAIT_S
            log.info("partitions assigned: %s", describe_partitions(self._assignment))
            return
        self._report_no_partitions()

    def _report_no_partitions(self) -> None:
        """Say why this member has nothing; join again when it should have had something."""
        members, partitions_by_topic = self._group_shape()
        missing = [topic for topic, count in partitions_by_topic.items() if not count]
        # The range assignment gives every member a partition of each topic that has at
        # least as many partitions as the group has members.
        widest = max(partitions_by_topic, key=partitions_by_topic.__getitem__)
        if missing:
            # kafka-python watches for them and the group rebalances once they are back.
            log.warning(
                "no partitions assigned: topic(s) %s not found; waiting", ", ".join(missing)
            )
        elif members is not None and members <= partitions_by_topic[widest]:
            log.info(
                "no partitions assigned although the group has %d members and %s %d"
                " partitions; joining the group again in %.0f s, with fresh metadata",
                members,
                widest,
                partitions_by_topic[widest],
                self._rejoin_wait_s,
            )
            self._rejoin_at_s = time.monotonic() + self._rejoin_wait_s
            self._rejoin_wait_s = min(2 * self._rejoin_wait_s, REJOIN_LONGEST_WAIT_S)
        else:
            log.info(
                "no partitions assigned; %s members share %d partitions (this sink stays idle)",
                "?" if members is None else members,
                sum(partitions_by_topic.values()),
            )

    def _rejoin(self) -> None:
        """Leave the group and join again with fresh metadata: the leader assigns from what
        it then knows."""
        assert self.consumer is not None
        self._rejoin_at_s = None
        self.consumer.unsubscribe()
        self._subscribe()

    def _group_shape(self) -> tuple[int | None, dict[str, int]]:
        """How many members the group has (None if the broker does not say) and how many
        partitions each of its topics has (0: not found)."""
        assert self.consumer is not None
        consumer = self.consumer
        partitions = {t: len(consumer.partitions_for_topic(t)) for t in self.settings.topics}
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.settings.brokers,
                client_id=self.settings.client_id,
                **self.settings.client_config(),
            )
            try:
                described = admin.describe_groups([self.settings.group])[self.settings.group]
            finally:
                admin.close()
            members: int | None = len(described.get("members") or [])
        except KafkaError:
            members = None
        return members, partitions

    def _log_totals(self) -> None:
        decoder = self.decoder
        log.info(
            "processed a total of %d messages: %d metrics kept (%d new), %d invalid lines",
            self.messages,
            self.metrics_kept,
            self.metrics_new,
            decoder.invalid_lines,
        )


def _offsets_of(
    next_offsets: dict[tuple[str, int], int],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """Next offsets by (topic, partition), as the consumer commits them."""
    return {
        TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
        for (topic, partition), offset in next_offsets.items()
    }


def _silence_stdout() -> None:
    """After a closed pipe, keep Python from failing again when it flushes stdout at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
