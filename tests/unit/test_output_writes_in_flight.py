"""RunningOutput with an output that has several writes on their way at once: the next batch
is sent before the one before is settled, and still every metric is delivered once, in
order, nothing is lost on a failure and nothing stays in flight after a flush."""

from __future__ import annotations

from agent.buffer import Batch
from agent.metric import Metric
from agent.plugin import Output, WriteError
from agent.running import OutputSettings, RunningOutput
from tests.unit.test_buffer import numbers


class Windowed(Output):
    """Records what it is sent and settles in order; `fail` maps the number of a send
    (0 first) to the indexes its settle reports as failed, `raise_on_send` the number of a
    send that raises instead."""

    plugin_name = "windowed"
    writes_in_flight = 3

    def __init__(self, fail: dict[int, list[int]] | None = None, raise_on_send: int = -1):
        self.fail = fail or {}
        self.raise_on_send = raise_on_send
        self.sends: list[list[int]] = []
        self.delivered: list[int] = []
        self.unsettled: list[int] = []  # numbers of the sends not settled yet
        self.most_unsettled = 0
        self.settled_without_waiting: list[int] = []

    def send(self, batch: Batch) -> object:
        metrics = batch.metrics
        number = len(self.sends)
        self.sends.append([m.fields["n"] for m in metrics])
        if number == self.raise_on_send:
            raise OSError("connection reset")
        self.unsettled.append(number)
        self.most_unsettled = max(self.most_unsettled, len(self.unsettled))
        return number, metrics

    def settle(self, sending: object, wait: bool = True) -> None:
        number, metrics = sending
        assert self.unsettled[0] == number, "settled out of order"
        self.unsettled.pop(0)
        if not wait:
            self.settled_without_waiting.append(number)
        failed = self.fail.get(number, [])
        self.delivered += [m.fields["n"] for i, m in enumerate(metrics) if i not in failed]
        if failed:
            raise WriteError(f"{len(failed)} not acknowledged", failed)


def metrics(count: int) -> list[Metric]:
    return [Metric("m", {}, {"n": n}, n) for n in range(count)]


def test_batches_are_sent_ahead_of_settling_and_each_metric_is_delivered_once(make_buffer):
    output = Windowed()
    running = RunningOutput(output, OutputSettings(), 10, make_buffer(1000))
    running.add(metrics(95))
    assert running.flush()
    assert output.delivered == list(range(95))
    assert [len(sent) for sent in output.sends] == [10] * 9 + [5]
    assert output.most_unsettled == 3
    assert output.unsettled == []
    assert len(running.buffer) == 0
    assert running.stats.metrics_written == 95


def test_a_failed_write_stops_the_sending_and_keeps_what_failed_in_order(make_buffer):
    output = Windowed(fail={1: [0, 9]})
    running = RunningOutput(output, OutputSettings(), 10, make_buffer(1000))
    running.add(metrics(60))
    assert not running.flush()
    # The third and fourth were on their way when the second failed: settled at once.
    assert len(output.sends) == 4
    assert output.settled_without_waiting == [2, 3]
    assert output.unsettled == []
    assert numbers(running.buffer) == [10, 19, *range(40, 60)]
    assert running.stats.metrics_written == 38
    assert running.flush()  # the next flush delivers the rest
    assert sorted(output.delivered) == list(range(60))


def test_a_send_that_raises_leaves_every_unsettled_batch_in_the_buffer(make_buffer):
    output = Windowed(raise_on_send=1)
    running = RunningOutput(output, OutputSettings(), 10, make_buffer(1000))
    running.add(metrics(30))
    assert not running.flush()
    assert numbers(running.buffer) == list(range(30))
    assert output.delivered == []
    # Nothing stays in flight: an overflow may drop the oldest metrics again.
    assert running.buffer.add(metrics(1000)) == 30


def test_an_output_without_a_window_writes_one_batch_at_a_time(make_buffer):
    class OneAtATime(Output):
        plugin_name = "one"

        def __init__(self) -> None:
            self.writes: list[list[int]] = []

        def write(self, metrics: list[Metric]) -> None:
            self.writes.append([m.fields["n"] for m in metrics])

    output = OneAtATime()
    running = RunningOutput(output, OutputSettings(), 4, make_buffer(100))
    running.add(metrics(10))
    assert running.flush()
    assert output.writes == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
