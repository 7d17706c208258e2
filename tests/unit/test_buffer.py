"""Output buffers, memory and disk: bounded, oldest dropped first, nothing removed before it
is delivered; the disk buffer also survives restarts and torn writes."""

from __future__ import annotations

import math
import shutil

import pytest

from agent.disk_buffer import DiskBuffer
from agent.metric import Metric, UInt
from tests.unit.conftest import file_modes


def metrics(*numbers: int) -> list[Metric]:
    return [Metric("m", {"k": "v"}, {"n": n}, n) for n in numbers]


def numbers(buffer) -> list[int]:
    """What the buffer holds, oldest first, looked at without leaving it in flight."""
    batch = buffer.batch(len(buffer) or 1)
    buffer.accept(batch, failed=range(len(batch.metrics)))
    return [m.fields["n"] for m in batch.metrics]


def test_batch_takes_the_oldest_without_removing_them(make_buffer):
    buffer = make_buffer(10)
    buffer.add(metrics(1, 2, 3))
    assert [m.fields["n"] for m in buffer.batch(2).metrics] == [1, 2]
    assert numbers(buffer) == [1, 2, 3]


def test_a_retried_batch_hands_out_the_same_metrics_with_the_same_sequence_numbers(make_buffer):
    buffer = make_buffer(10)
    buffer.add(metrics(1, 2))
    first = buffer.batch(2)
    buffer.accept(first, failed=[0, 1])
    buffer.add(metrics(3))
    again = buffer.batch(3)
    assert again.sequence[:2] == first.sequence
    assert again.metrics[:2] == first.metrics
    assert again.sequence[2] not in first.sequence


def test_accept_removes_what_was_delivered(make_buffer):
    buffer = make_buffer(10)
    buffer.add(metrics(1, 2, 3))
    buffer.accept(buffer.batch(2))
    assert numbers(buffer) == [3]
    assert len(buffer) == 1


def test_accept_keeps_the_failed_ones_in_order(make_buffer):
    buffer = make_buffer(10)
    buffer.add(metrics(1, 2, 3, 4))
    buffer.accept(buffer.batch(3), failed=[0, 2])
    assert numbers(buffer) == [1, 3, 4]


def test_buffer_drops_oldest_when_full(make_buffer):
    buffer = make_buffer(3)
    assert buffer.add(metrics(1, 2, 3, 4, 5)) == 2
    assert numbers(buffer) == [3, 4, 5]
    assert buffer.dropped == 2


def test_an_overflow_while_a_batch_is_written_drops_the_oldest_waiting_metrics(make_buffer):
    buffer = make_buffer(3)
    buffer.add(metrics(1, 2, 3))
    batch = buffer.batch(2)
    assert buffer.add(metrics(4, 5)) == 2  # 1 and 2 are being written: 3 and 4 go
    assert buffer.dropped == 2
    buffer.accept(batch)
    assert numbers(buffer) == [5]


def test_when_everything_is_in_flight_an_overflow_drops_the_newcomers(make_buffer):
    buffer = make_buffer(2)
    buffer.add(metrics(1, 2))
    batch = buffer.batch(2)
    assert buffer.add(metrics(3)) == 1
    buffer.accept(batch, failed=[0, 1])
    assert numbers(buffer) == [1, 2]


def test_metrics_sent_and_awaiting_acknowledgement_stay_in_flight(make_buffer):
    buffer = make_buffer(3)
    buffer.add(metrics(1, 2, 3))
    buffer.accept(buffer.batch(3), failed=[0, 1, 2], in_flight=[1])
    assert buffer.add(metrics(4, 5)) == 2  # 2 may still arrive: 1 and 3 go instead
    assert numbers(buffer) == [2, 4, 5]


def test_a_failed_write_releases_its_metrics_for_dropping(make_buffer):
    buffer = make_buffer(2)
    buffer.add(metrics(1, 2))
    buffer.accept(buffer.batch(2), failed=[0, 1])
    assert buffer.add(metrics(3)) == 1
    assert numbers(buffer) == [2, 3]


def test_limit_must_be_positive(make_buffer):
    with pytest.raises(ValueError, match="metric_buffer_limit"):
        make_buffer(0)


def test_disk_buffer_replays_undelivered_metrics_in_order_after_a_restart(tmp_path):
    path = tmp_path / "kafka.db"
    buffer = DiskBuffer(path, 100)
    buffer.add(metrics(1, 2, 3, 4))
    buffer.accept(buffer.batch(1))
    buffer.close()
    reopened = DiskBuffer(path, 100)
    assert numbers(reopened) == [2, 3, 4]
    reopened.add(metrics(5))
    assert numbers(reopened) == [2, 3, 4, 5]


def test_disk_buffer_keeps_field_types_exactly(tmp_path):
    original = Metric(
        "m",
        {"host": "a b"},
        {"f": 0.1, "big": 1e300, "i": -(2**63), "u": UInt(2**64 - 1), "b": True, "s": 'x"\n'},
        123,
    )
    buffer = DiskBuffer(tmp_path / "kafka.db", 10)
    buffer.add([original, Metric("nan", {}, {"x": math.nan}, 1)])
    buffer.close()
    restored, with_nan = DiskBuffer(tmp_path / "kafka.db", 10).batch(2).metrics
    assert restored == original
    assert type(restored.fields["u"]) is UInt and type(restored.fields["b"]) is bool
    assert math.isnan(with_nan.fields["x"])


def test_disk_buffer_survives_a_torn_last_write(tmp_path):
    path = tmp_path / "kafka.db"
    buffer = DiskBuffer(path, 100)
    buffer.add(metrics(1, 2, 3))
    wal = path.with_name(path.name + "-wal")
    intact = wal.stat().st_size
    buffer.add(metrics(4, 5, 6))
    # Simulate a power cut: copy the files as they would be on disk with the last
    # transaction's WAL frames only partly written.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(path, crashed / "kafka.db")
    torn = wal.read_bytes()[: intact + (wal.stat().st_size - intact) // 2]
    (crashed / "kafka.db-wal").write_bytes(torn)
    buffer.close()
    recovered = DiskBuffer(crashed / "kafka.db", 100)
    assert numbers(recovered) == [1, 2, 3]
    assert len(recovered) == 3


def test_the_disk_buffer_and_its_wal_and_shm_files_are_readable_by_their_owner_only(
    tmp_path, usual_umask
):
    path = tmp_path / "kafka.db"
    buffer = DiskBuffer(path, 10)
    buffer.add(metrics(1))
    assert file_modes(path) == {"kafka.db": 0o600, "kafka.db-wal": 0o600, "kafka.db-shm": 0o600}
    buffer.close()
