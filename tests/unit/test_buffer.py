"""The output buffer: bounded, oldest dropped first, nothing removed before it is delivered."""

from __future__ import annotations

import pytest

from agent.buffer import MemoryBuffer
from agent.metric import Metric


def metrics(*numbers: int) -> list[Metric]:
    return [Metric("m", {}, {"n": n}, n) for n in numbers]


def numbers(buffer: MemoryBuffer) -> list[int]:
    return [m.fields["n"] for m in buffer.batch(len(buffer) or 1).metrics]


def test_batch_takes_the_oldest_without_removing_them():
    buffer = MemoryBuffer(10)
    buffer.add(metrics(1, 2, 3))
    assert [m.fields["n"] for m in buffer.batch(2).metrics] == [1, 2]
    assert numbers(buffer) == [1, 2, 3]


def test_accept_removes_what_was_delivered():
    buffer = MemoryBuffer(10)
    buffer.add(metrics(1, 2, 3))
    buffer.accept(buffer.batch(2))
    assert numbers(buffer) == [3]


def test_accept_keeps_the_failed_ones_in_order():
    buffer = MemoryBuffer(10)
    buffer.add(metrics(1, 2, 3, 4))
    buffer.accept(buffer.batch(3), failed=[0, 2])
    assert numbers(buffer) == [1, 3, 4]


def test_buffer_drops_oldest_when_full():
    buffer = MemoryBuffer(3)
    assert buffer.add(metrics(1, 2, 3, 4, 5)) == 2
    assert numbers(buffer) == [3, 4, 5]
    assert buffer.dropped == 2


def test_metrics_dropped_while_their_batch_was_being_written_are_not_removed_twice():
    buffer = MemoryBuffer(3)
    buffer.add(metrics(1, 2, 3))
    batch = buffer.batch(2)
    buffer.add(metrics(4, 5))  # drops 1 and 2, which are in flight
    buffer.accept(batch)
    assert numbers(buffer) == [3, 4, 5]


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="metric_buffer_limit"):
        MemoryBuffer(0)
