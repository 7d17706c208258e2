"""outputs.kafka's own producer against a real broker: what arrives (read back with
kafka-python's consumer, an independent client), idempotence across a lost answer, retries,
refusals, batch_size, acks and codecs.

A connection may be given a fault: `FaultyExchange` loses the answer to a Produce request
(the broker did store the batch) or fails before sending, as a network would.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import kafka.errors as errors
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner import DefaultPartitioner
from kafka.protocol.producer import ProduceRequest

from plugins.common.kafka import KafkaSecurity, broker_address
from plugins.common.kafka_exchange import KafkaExchange
from plugins.outputs.kafka_producer import Producer, ProducerSettings, WritePartitions

pytestmark = pytest.mark.kafka


class FaultyExchange(KafkaExchange):
    """A connection whose next `faults` Produce requests meet `fault`: "lose answer" (sent,
    then the connection drops before the answer is read) or "refuse" (the connection drops
    before anything is sent). `produce_requests` counts the Produce requests tried."""

    faults = 0
    fault = "lose answer"
    produce_requests = 0
    losing = False

    def send(self, request: Any, version: int) -> None:
        self.losing = False
        if isinstance(request, ProduceRequest):
            FaultyExchange.produce_requests += 1
            if FaultyExchange.faults > 0:
                FaultyExchange.faults -= 1
                if FaultyExchange.fault == "refuse":
                    self.sock.close()
                    raise ConnectionResetError("connection dropped (test fault)")
                self.losing = True
        super().send(request, version)

    def receive(self, response_class: Any, version: int) -> Any:
        if self.losing:
            time.sleep(0.2)  # the broker stores the batch meanwhile
            self.sock.close()
            raise ConnectionResetError("connection dropped before the answer (test fault)")
        return super().receive(response_class, version)


@pytest.fixture
def faults() -> type[FaultyExchange]:
    FaultyExchange.faults = 0
    FaultyExchange.fault = "lose answer"
    FaultyExchange.produce_requests = 0
    return FaultyExchange


def faulty_connect(host: str, port: int, timeout_s: float) -> KafkaExchange:
    plain = KafkaSecurity().open_exchange(host, port, timeout_s, "producer-test")
    return FaultyExchange(plain.sock, plain.client_id)


SETTINGS: dict[str, Any] = {
    "client_id": "producer-test",
    "acks": -1,
    "idempotent": True,
    "codec": 0,
    "max_retry": 3,
    "batch_size": 1048576,
    "linger_ms": 5,
    "connect": faulty_connect,
}


def producer(bootstrap: str, **overrides: Any) -> Producer:
    options = {**SETTINGS, "bootstrap": [broker_address(bootstrap)], **overrides}
    started = Producer(ProducerSettings(**options))
    started.start(10.0)
    return started


def read_back(bootstrap: str, topic: str, partitions: int = 1) -> dict[int, list[Any]]:
    """Every record of `topic`, by partition, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000)
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    records: dict[int, list[Any]] = {p: [] for p in range(partitions)}
    for record in consumer:
        records[record.partition].append(record)
    consumer.close()
    return records


def send_all(
    sender: Producer, topic: str, partition: int, values: list[bytes], key: bytes | None = None
) -> list[Any]:
    return [sender.send(topic, partition, [key] * len(values), values, [1_000] * len(values))]


def settled(deliveries: list[Any], timeout_s: float = 20.0) -> None:
    for delivery in deliveries:
        delivery.get(timeout=timeout_s)


def test_records_arrive_with_their_keys_values_and_timestamps_in_order(
    kafka_bootstrap, create_topic
):
    topic = create_topic(partitions=2)
    sender = producer(kafka_bootstrap)
    try:
        values = [f"m{n} v={n}i {n}\n".encode() for n in range(500)]
        keys: list[bytes | None] = [b"host-a", None] * 250
        stamps = [1_700_000_000_000 + n for n in range(500)]
        settled([sender.send(topic, 1, keys, values, stamps)])
    finally:
        sender.close(10.0)
    stored = read_back(kafka_bootstrap, topic, partitions=2)
    assert stored[0] == []
    assert [r.value for r in stored[1]] == values
    assert [r.key for r in stored[1]] == keys
    assert [r.timestamp for r in stored[1]] == stamps


def test_keys_go_to_the_partitions_kafka_pythons_default_partitioner_gives_them(
    kafka_bootstrap, create_topic
):
    topic = create_topic(partitions=4)
    sender = producer(kafka_bootstrap)
    keys = [f"host-{n}".encode() for n in range(30)]
    try:
        partitions = WritePartitions(sender, 5.0)
        deliveries = []
        for key in keys:
            deliveries += send_all(sender, topic, partitions.of(topic, key), [key + b"\n"], key)
        settled(deliveries)
    finally:
        sender.close(10.0)
    default = DefaultPartitioner()
    stored = read_back(kafka_bootstrap, topic, partitions=4)
    for partition, records in stored.items():
        for record in records:
            cluster = LedPartitions(topic, 4)
            placed = default.partition(topic, record.key, record.key, None, b"", cluster)
            assert placed == partition
    assert sum(len(records) for records in stored.values()) == len(keys)
    assert sum(1 for records in stored.values() if records) > 1


@dataclass(frozen=True)
class LedPartitions:
    """kafka-python's cluster metadata as its partitioner asks it: one topic, each of its
    partitions with a leader."""

    topic: str
    count: int

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.count))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.count))


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_each_codec_is_read_back_by_another_client(kafka_bootstrap, create_topic, codec):
    topic = create_topic()
    sender = producer(kafka_bootstrap, codec=codec)
    values = [f"cpu,host=h{n % 7} usage={n}.5 {n}\n".encode() for n in range(2000)]
    try:
        settled(send_all(sender, topic, 0, values))
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == values


def test_a_batch_whose_answer_was_lost_is_sent_again_and_stored_once(
    kafka_bootstrap, create_topic, faults
):
    topic = create_topic()
    sender = producer(kafka_bootstrap)
    try:
        settled(send_all(sender, topic, 0, [b"before\n"]))
        faults.faults = 2  # two answers lost in a row; the broker stored the batch each time
        values = [f"line {n}\n".encode() for n in range(100)]
        settled(send_all(sender, topic, 0, values))
        settled(send_all(sender, topic, 0, [b"after\n"]))
    finally:
        sender.close(10.0)
    assert faults.produce_requests >= 5  # the lost ones were really sent again
    stored = [r.value for r in read_back(kafka_bootstrap, topic)[0]]
    assert stored == [b"before\n", *values, b"after\n"]


def test_without_idempotence_a_lost_answer_stores_the_batch_twice(
    kafka_bootstrap, create_topic, faults
):
    """What idempotence prevents, shown: the same fault without it."""
    topic = create_topic()
    sender = producer(kafka_bootstrap, idempotent=False, acks=-1)
    try:
        faults.faults = 1
        settled(send_all(sender, topic, 0, [b"once\n"]))
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == [b"once\n", b"once\n"]


def test_without_idempotence_max_retry_bounds_the_resends(kafka_bootstrap, create_topic, faults):
    topic = create_topic()
    sender = producer(kafka_bootstrap, idempotent=False, max_retry=2)
    try:
        settled(send_all(sender, topic, 0, [b"warm-up\n"]))
        faults.fault, faults.faults = "refuse", 100
        before = faults.produce_requests
        (delivery,) = send_all(sender, topic, 0, [b"never\n"])
        with pytest.raises(errors.KafkaConnectionError):
            delivery.get(timeout=20)
        assert faults.produce_requests - before == 3  # the first try and two retries
        assert delivery.exception.retriable  # the agent keeps the metrics for a later write
    finally:
        faults.faults = 0
        sender.close(10.0)


def test_with_idempotence_a_broker_away_is_waited_out_and_nothing_is_lost(
    kafka_bootstrap, create_topic, faults
):
    topic = create_topic()
    sender = producer(kafka_bootstrap)
    try:
        settled(send_all(sender, topic, 0, [b"warm-up\n"]))
        faults.fault, faults.faults = "refuse", 8
        deliveries = send_all(sender, topic, 0, [b"late\n"])
        with pytest.raises(errors.KafkaTimeoutError):
            sender.flush(0.3)  # still failing: flush gives up in time, the records stay
        settled(deliveries)
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == [b"warm-up\n", b"late\n"]


def test_a_refused_batch_fails_alone_and_the_partition_goes_on(kafka_bootstrap, create_topic):
    """The broker refuses a batch over the topic's max.message.bytes (not retriable); the
    sequence numbers it would have used go to the next batch, which the broker takes."""
    topic = create_topic(config={"max.message.bytes": "2000"})
    sender = producer(kafka_bootstrap)
    try:
        (refused,) = send_all(sender, topic, 0, [b"x" * 5000])
        with pytest.raises(errors.KafkaError) as raised:
            refused.get(timeout=20)
        assert not raised.value.retriable
        settled(send_all(sender, topic, 0, [b"small\n"] * 3))
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == [b"small\n"] * 3


def test_a_connection_the_broker_ended_while_idle_is_made_again_without_a_warning(
    kafka_bootstrap, create_topic, caplog
):
    """Brokers close connections idle for connections.max.idle.ms. Shown here by ending the
    reading side of each connection, which is what the reader sees of a broker's close."""
    topic = create_topic()
    sender = producer(kafka_bootstrap)
    try:
        settled(send_all(sender, topic, 0, [b"first\n"]))
        for exchange in list(sender._exchanges.values()):
            exchange.sock.shutdown(socket.SHUT_RD)
        with caplog.at_level(logging.INFO, logger="outputs.kafka"):
            settled(send_all(sender, topic, 0, [b"second\n"]))
    finally:
        sender.close(10.0)
    assert caplog.records == []
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == [b"first\n", b"second\n"]


def test_records_over_batch_size_go_in_several_batches_under_one_delivery(
    kafka_bootstrap, create_topic
):
    topic = create_topic()
    sender = producer(kafka_bootstrap, batch_size=1000)
    values = [f"{n:099d}\n".encode() for n in range(95)]  # 100 bytes: 7 to a batch
    try:
        delivery = sender.send(topic, 0, [None] * 95, values, [1] * 95)
        delivery.get(timeout=20)
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == values


def test_a_batch_over_the_topics_size_limit_is_sent_again_split(kafka_bootstrap, create_topic):
    """batch_size 1 MiB, but the topic takes batches of at most 3,000 bytes: a write of
    12,000 bytes on one partition goes in smaller batches, nothing refused, nothing lost."""
    topic = create_topic(config={"max.message.bytes": "3000"})
    sender = producer(kafka_bootstrap)
    values = [f"cpu,host=h{n} usage={n} {n}\n".encode().ljust(120, b"_") for n in range(100)]
    try:
        settled(send_all(sender, topic, 0, values))
        settled(send_all(sender, topic, 0, values[:30]))  # the lower limit is kept
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == values + values[:30]


def test_flush_returns_once_every_record_handed_over_is_stored(kafka_bootstrap, create_topic):
    """Also while a batch is being written (compressed), between the queue and the wire."""
    topic = create_topic()
    sender = producer(kafka_bootstrap, codec=4, linger_ms=0)
    values = [f"cpu,host=h{n % 50} usage={n}.25 {n}\n".encode() for n in range(200_000)]
    try:
        deliveries = [
            sender.send(topic, 0, [None] * 1000, values[i : i + 1000], [1] * 1000)
            for i in range(0, len(values), 1000)
        ]
        sender.flush(30.0)
        assert all(delivery.is_done and not delivery.failed() for delivery in deliveries)
    finally:
        sender.close(10.0)
    assert len(read_back(kafka_bootstrap, topic)[0]) == len(values)


def test_acks_0_sends_without_waiting_for_an_answer(kafka_bootstrap, create_topic):
    topic = create_topic()
    sender = producer(kafka_bootstrap, acks=0, idempotent=False)
    try:
        settled(send_all(sender, topic, 0, [b"fire\n", b"forget\n"]))
        sender.flush(10.0)
    finally:
        sender.close(10.0)
    deadline = time.monotonic() + 10
    while (stored := read_back(kafka_bootstrap, topic)[0]) == [] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [r.value for r in stored] == [b"fire\n", b"forget\n"]


def test_a_new_topic_is_created_and_its_partitions_known(kafka_bootstrap):
    topic = f"producer-new-{time.monotonic_ns()}"
    sender = producer(kafka_bootstrap)
    try:
        assert sender.partition_count(topic, 10.0) >= 1
        settled(send_all(sender, topic, 0, [b"first\n"]))
    finally:
        sender.close(10.0)
    assert [r.value for r in read_back(kafka_bootstrap, topic)[0]] == [b"first\n"]


def test_an_unreachable_cluster_is_an_error_naming_why_once_start_gives_up():
    unreachable = Producer(ProducerSettings(**{**SETTINGS, "bootstrap": [("127.0.0.1", 1)]}))
    with pytest.raises(errors.KafkaConnectionError, match="no broker answered.*refused"):
        unreachable.start(0.5)
    assert unreachable._thread is None  # no sender was started


def test_close_fails_what_is_still_unsent_and_stops_its_thread(
    kafka_bootstrap, create_topic, faults
):
    topic = create_topic()
    sender = producer(kafka_bootstrap)
    settled(send_all(sender, topic, 0, [b"warm-up\n"]))
    faults.fault, faults.faults = "refuse", 10_000
    (delivery,) = send_all(sender, topic, 0, [b"stuck\n"])
    sender.close(0.5)
    assert delivery.is_done and delivery.failed()
    assert sender._thread is not None and not sender._thread.is_alive()
