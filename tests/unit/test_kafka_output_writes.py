"""outputs.kafka's write(): what is sent, what stays pending, what is reported failed.

The producer is a fake at the system boundary; delivery itself is tested against a real
broker in tests/integration.
"""

from __future__ import annotations

import pytest

from agent.buffer import Batch
from agent.disk_buffer import DiskBuffer
from agent.metric import Metric
from agent.plugin import WriteError
from agent.running import OutputSettings, RunningOutput
from plugins.outputs.kafka import Kafka
from plugins.outputs.kafka_producer import WritePartitions
from plugins.serializers.influx import InfluxSerializer


class FakeFuture:
    def __init__(self) -> None:
        self.is_done = False
        self.exception: Exception | None = None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def get(self, timeout=None) -> None:
        from kafka.errors import KafkaTimeoutError

        self.waited_s = timeout
        if not self.is_done:
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")


class FakeProducer:
    """Records what is sent, on a topic of one partition; the records of each send share a
    delivery, which settles as `settle` says."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, FakeFuture]] = []
        self.settle = "ack"  # "ack", "hang" (never acknowledged), or an exception to fail with

    def partition_count(self, topic, timeout_s) -> int:
        return 1

    def available_partitions(self, topic) -> list[int]:
        return [0]

    def send(self, topic, partition, keys, values, timestamps_ms) -> FakeFuture:
        assert len(keys) == len(values) == len(timestamps_ms)
        future = FakeFuture()
        if self.settle != "hang":
            future.is_done = True
            if isinstance(self.settle, Exception):
                future.exception = self.settle
        self.sent.extend((topic, value, future) for value in values)
        return future

    def send_now(self) -> None:
        pass

    def flush(self, timeout_s=None) -> None:
        pass


class Refused(Exception):
    retriable = False


class Retriable(Exception):
    retriable = True


def kafka(**options) -> tuple[Kafka, FakeProducer]:
    output = Kafka(brokers=["127.0.0.1:1"], topic="t", **options)
    output.serializer = InfluxSerializer()
    output._producer = FakeProducer()
    return output, output._producer


def metrics(count: int) -> list[Metric]:
    return [Metric("m", {"n": str(i)}, {"v": float(i)}, i) for i in range(count)]


def numbered(count: int, first: int = 0) -> Batch:
    """A batch as a buffer hands it out: `count` metrics numbered from `first`."""
    return Batch(metrics(count), list(range(first, first + count)))


def write(output: Kafka, batch: Batch) -> None:
    """A whole write, as the agent makes it of one send and its settle."""
    output.settle(output.send(batch))


@pytest.mark.parametrize("batch_format", [False, True])
def test_acknowledged_metrics_leave_nothing_pending(batch_format):
    output, producer = kafka(use_batch_format=batch_format)
    write(output, numbered(5))
    assert sum(value.count(b"\n") for _, value, _ in producer.sent) == 5
    assert len(producer.sent) == (1 if batch_format else 5)
    assert output._deliveries.pending() == set()


@pytest.mark.parametrize("batch_format", [False, True])
def test_a_metric_whose_record_is_still_pending_is_never_sent_again(batch_format):
    output, producer = kafka(use_batch_format=batch_format)
    batch = numbered(3)
    producer.settle = "hang"
    with pytest.raises(WriteError) as raised:
        write(output, batch)
    assert raised.value.failed == [0, 1, 2]
    sent_before = len(producer.sent)
    producer.settle = "ack"
    with pytest.raises(WriteError) as raised:  # still pending: awaited, not sent again
        write(output, batch)
    assert raised.value.failed == [0, 1, 2]
    assert len(producer.sent) == sent_before
    for _, _, future in producer.sent:
        future.is_done = True
    write(output, batch)  # acknowledged meanwhile: done, nothing sent again
    assert len(producer.sent) == sent_before
    assert output._deliveries.pending() == set()


def test_a_retried_batch_of_new_objects_with_the_same_numbers_is_awaited_not_sent_again():
    """A disk buffer hands a retried batch out as it reads its rows again: equal metrics,
    new objects, the same sequence numbers."""
    output, producer = kafka()
    producer.settle = "hang"
    with pytest.raises(WriteError):
        write(output, Batch(metrics(3), [7, 8, 9]))
    sent_before = len(producer.sent)
    with pytest.raises(WriteError) as raised:  # still on its way: awaited
        write(output, Batch(metrics(3), [7, 8, 9]))
    assert raised.value.in_flight == [0, 1, 2]
    for _, _, future in producer.sent:
        future.is_done = True
    write(output, Batch(metrics(3), [7, 8, 9]))
    assert len(producer.sent) == sent_before
    assert output._deliveries.pending() == set()


def test_metrics_pending_in_a_disk_buffer_are_awaited_when_it_hands_them_out_again(tmp_path):
    output, producer = kafka()
    running = RunningOutput(output, OutputSettings(), 10, DiskBuffer(tmp_path / "k.db", 100))
    running.connected = True  # the fake producer is in place; nothing to connect to
    running.add(metrics(3))
    producer.settle = "hang"
    assert not running.flush()
    assert len(running.buffer) == 3
    for _, _, future in producer.sent:
        future.is_done = True
    assert running.flush()
    assert len(producer.sent) == 3
    assert len(running.buffer) == 0
    assert running.stats.metrics_written == 3


def test_only_new_metrics_are_sent_beside_pending_ones():
    output, producer = kafka()
    old, new = numbered(2), numbered(2, first=2)
    producer.settle = "hang"
    with pytest.raises(WriteError):
        write(output, old)
    producer.settle = "ack"
    with pytest.raises(WriteError) as raised:
        write(output, Batch([*old.metrics, *new.metrics], [*old.sequence, *new.sequence]))
    assert raised.value.failed == [0, 1]
    assert len(producer.sent) == 4


def test_a_retriable_failure_is_reported_and_sent_again_by_the_next_write():
    output, producer = kafka()
    batch = numbered(2)
    producer.settle = Retriable("broker away")
    with pytest.raises(WriteError) as raised:
        write(output, batch)
    assert raised.value.failed == [0, 1]
    producer.settle = "ack"
    write(output, batch)
    assert len(producer.sent) == 4


def test_a_refused_metric_is_dropped_with_an_error_not_retried(caplog):
    output, producer = kafka(use_batch_format=True)
    producer.settle = Refused("record too large")
    write(output, numbered(2))  # no WriteError: retrying cannot succeed
    assert "Dropped metric m: Kafka refused it: record too large" in caplog.text
    assert output._deliveries.pending() == set()


def test_a_metric_larger_than_max_message_bytes_is_dropped_and_the_rest_sent(caplog):
    output, producer = kafka(max_message_bytes=20)
    big = Metric("big", {}, {"text": "x" * 50}, 1)
    small = Metric("s", {}, {"v": 1.0}, 1)
    write(output, Batch([big, small], [0, 1]))
    assert [value for _, value, _ in producer.sent] == [b"s v=1 1\n"]
    assert "Dropped metric big of" in caplog.text


@pytest.mark.parametrize("limit", [30, 31, 45, 60, 1000])
def test_batched_lines_split_where_the_limit_says_and_keep_their_order(limit):
    output, producer = kafka(use_batch_format=True, max_message_bytes=limit)
    batch = metrics(12)  # lines of 14-15 bytes
    write(output, Batch(batch, list(range(12))))
    values = [value for _, value, _ in producer.sent]
    assert b"".join(values) == b"".join(InfluxSerializer().serialize(m) for m in batch)
    assert all(len(value) <= limit for value in values)
    # Each record is as full as the limit allows: the next line would not have fitted.
    lines = [value.splitlines(keepends=True) for value in values]
    for record, following in zip(lines, lines[1:], strict=False):
        assert len(b"".join(record)) + len(following[0]) > limit


def test_a_write_settled_while_a_later_one_travels_waits_for_its_own_records_only():
    output, producer = kafka()
    producer.settle = "hang"
    first = output.send(numbered(2))
    producer.settle = "ack"
    second = output.send(numbered(3, first=2))
    with pytest.raises(WriteError) as raised:
        output.settle(first)
    assert raised.value.failed == [0, 1]
    assert raised.value.in_flight == [0, 1]  # still on their way: never dropped, never resent
    first_futures = [future for _, _, future in producer.sent[:2]]
    assert all(future.waited_s > 0 for future in first_futures)
    assert not any(hasattr(future, "waited_s") for _, _, future in producer.sent[2:])
    output.settle(second)
    assert output._deliveries.pending() == set(first.batch.sequence)


def test_settling_without_waiting_reports_what_is_still_on_its_way_as_in_flight():
    output, producer = kafka()
    producer.settle = "hang"
    sending = output.send(numbered(2))
    output.send(numbered(1, first=2))
    with pytest.raises(WriteError) as raised:
        output.settle(sending, wait=False)
    assert raised.value.in_flight == [0, 1]
    assert not any(hasattr(future, "waited_s") for _, _, future in producer.sent)


class FakeCluster:
    """kafka-python's ClusterMetadata as its partitioner sees it, and the producer's view of
    the same topic: some partitions, some with a leader."""

    def __init__(self, partitions: set[int], available: set[int]) -> None:
        self.partitions, self.available = partitions, available

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.available

    def partition_count(self, topic: str, timeout_s: float) -> int:
        return len(self.partitions)

    def available_partitions(self, topic: str) -> list[int]:
        return sorted(self.available)


def test_records_without_a_key_share_one_partition_per_write_and_only_ones_with_a_leader():
    cluster = FakeCluster({0, 1, 2, 3}, available={0, 1, 3})
    used = set()
    for _ in range(200):
        partitions = WritePartitions(cluster, 1.0)  # type: ignore[arg-type]
        chosen = {partitions.of("t", None) for _ in range(20)}
        assert len(chosen) == 1
        used |= chosen
    assert used == {0, 1, 3}


def test_records_with_a_key_go_where_kafka_pythons_default_partitioner_puts_them():
    from kafka.partitioner import DefaultPartitioner

    default = DefaultPartitioner()
    cluster = FakeCluster({0, 1, 2, 3, 4, 5}, available={0, 1, 2, 3, 4, 5})
    partitions = WritePartitions(cluster, 1.0)  # type: ignore[arg-type]
    keys = [f"host-{n}".encode() for n in range(40)]
    for key in keys * 2:
        expected = default.partition("t", key, key, None, b"v", cluster)
        assert partitions.of("t", key) == expected
    assert len({partitions.of("t", k) for k in keys}) > 1
