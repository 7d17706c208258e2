"""The schedule with the real APScheduler: intervals, rounding, slow inputs, batch-ready flushes."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from apscheduler.schedulers.base import STATE_STOPPED

from agent.agent import Agent
from agent.config import AgentSettings, Config, InputConfig, OutputConfig
from agent.metric import Metric
from agent.options import Duration
from agent.plugin import Input, Output
from agent.running import InputSettings, OutputSettings
from agent.scheduler import Schedule, first_gather_time, turn_wait_s


@dataclass
class Ticker(Input):
    """Records when it gathers; sleeps `pause` seconds first to play a slow input."""

    plugin_name = "ticker"
    pause: float = 0.0
    times: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    def gather(self):
        self.times.append(time.time())
        time.sleep(self.pause)
        self.ends.append(time.time())
        return [Metric("tick", {}, {"n": len(self.times)})]


@dataclass
class Collect(Output):
    plugin_name = "collect"
    writes: list[list[Metric]] = field(default_factory=list)

    def write(self, metrics):
        self.writes.append(list(metrics))


def agent_with(inputs: list[Input], output: Output, **settings) -> Agent:
    config = Config(agent=AgentSettings(**settings))
    config.inputs = [InputConfig("ticker", p, InputSettings(), "test") for p in inputs]
    config.outputs = [OutputConfig("collect", output, OutputSettings(), "test")]
    return Agent(config)


def wait_for(condition, timeout_s: float = 30.0) -> None:
    """Until `condition()` holds. The timeout only ends a run whose condition never comes
    (the assertions after it then fail); how long anything took is never asserted."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_until(agent: Agent, condition) -> None:
    schedule = Schedule(agent)
    schedule.start()
    try:
        wait_for(condition)
    finally:
        schedule.stop()


def test_round_interval_starts_on_the_next_boundary():
    assert first_gather_time(1003.2, 10, True, 0) == 1010
    assert first_gather_time(1003.2, 10, True, 2) == 1012
    assert first_gather_time(1003.2, 10, False, 0) == 1003.2


def test_gathers_are_planned_on_interval_boundaries():
    ticker = Ticker()
    schedule = Schedule(
        agent_with([ticker], Collect(), interval=Duration(0.5), round_interval=True)
    )
    schedule.start()
    try:
        planned = []
        deadline = time.monotonic() + 10
        while len(ticker.times) < 3 and time.monotonic() < deadline:
            (job,) = [j for j in schedule.scheduler.get_jobs() if j.name == "inputs.ticker"]
            planned.append(job.next_run_time.timestamp())
            time.sleep(0.1)
    finally:
        schedule.stop()
    assert len(ticker.times) >= 3  # the planned gathers happened
    # Exactly on :00 and :.5 (what the machine's load does to when they run is not asserted).
    assert planned and all(round(t * 2, 6) == round(t * 2) for t in planned), planned


def test_slow_input_skips_its_turn_with_a_warning_and_delays_no_other(caplog):
    slow, fast = Ticker(pause=1.2), Ticker()
    caplog.set_level(logging.WARNING)
    agent = agent_with([slow, fast], Collect(), interval=Duration(0.5))
    run_until(agent, lambda: len(slow.ends) >= 2 and len(fast.times) >= 5)
    assert len(slow.ends) >= 2 and len(fast.times) >= 5
    # Not stacked: each slow gather starts after the one before ended, its missed turns
    # skipped with a warning.
    slow_spans = list(zip(slow.times, slow.ends, strict=False))
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(slow_spans))
    assert "Gather skipped: the previous one is still running" in caplog.text
    # Each skipped turn is counted as a gather timeout (internal_gather.gather_timeouts).
    skipped = caplog.text.count("Gather skipped: the previous one is still running")
    assert [running.stats.gather_timeouts for running in agent.inputs] == [skipped, 0]
    # Not delaying: the fast input gathered while the slow one was still gathering.
    assert any(start < t < end for start, end in slow_spans for t in fast.times)


def test_inputs_due_at_the_same_moment_gather_one_after_another():
    tickers = [Ticker(pause=0.01) for _ in range(3)]
    agent = agent_with(tickers, Collect(), interval=Duration(0.5))
    run_until(agent, lambda: all(len(t.ends) >= 2 for t in tickers))
    spans = sorted(span for t in tickers for span in zip(t.times, t.ends, strict=True))
    assert len(spans) >= 6
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))


@dataclass
class Stuck(Input):
    """Gathers until `release` is set, holding the turn all that time."""

    plugin_name = "stuck"
    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)

    def gather(self):
        self.started.set()
        self.release.wait(30)
        return []


def test_a_stuck_input_does_not_keep_the_others_from_gathering():
    stuck, fast = Stuck(), Ticker()
    schedule = Schedule(agent_with([stuck, fast], Collect(), interval=Duration(0.2)))
    schedule.start()
    try:
        assert stuck.started.wait(10)
        wait_for(lambda: len(fast.times) >= 3)
        assert len(fast.times) >= 3
        assert not stuck.release.is_set()  # all of them while the stuck input held its turn
    finally:
        stuck.release.set()
        schedule.stop()


def test_the_wait_for_a_turn_is_a_tenth_of_the_interval_and_at_most_a_tenth_of_a_second():
    assert turn_wait_s(0.5) == pytest.approx(0.05)
    assert turn_wait_s(1.0) == pytest.approx(0.1)
    assert turn_wait_s(10.0) == pytest.approx(0.1)


def test_a_full_batch_is_flushed_without_waiting_for_the_flush_interval():
    output = Collect()
    agent = agent_with(
        [Ticker()], output, interval=Duration(0.2), flush_interval=Duration(3600),
        metric_batch_size=2, round_interval=False,
    )  # fmt: skip
    run_until(agent, lambda: len(output.writes) >= 2)
    assert output.writes and all(len(batch) <= 2 for batch in output.writes)


def test_a_failing_output_keeps_metrics_in_order_for_the_next_flush():
    failing = threading.Event()
    failing.set()

    @dataclass
    class Flaky(Collect):
        refused: int = 0

        def write(self, metrics):
            if failing.is_set():
                self.refused += 1
                raise ConnectionError("broker away")
            super().write(metrics)

    output, ticker = Flaky(), Ticker()
    agent = agent_with(
        [ticker], output, interval=Duration(0.1), flush_interval=Duration(0.3),
        round_interval=False,
    )  # fmt: skip
    schedule = Schedule(agent)
    schedule.start()
    try:
        wait_for(lambda: output.refused >= 2 and len(ticker.times) >= 10)
        assert output.refused >= 2 and output.writes == []
        failing.clear()
        wait_for(lambda: output.writes)
    finally:
        schedule.stop()
    agent.outputs[0].flush()
    numbers = [m.fields["n"] for batch in output.writes for m in batch]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 10


@pytest.mark.parametrize("limit", [3])
def test_buffer_overflow_drops_the_oldest_and_counts_them(limit, caplog):
    agent = agent_with([Ticker()], Collect(), metric_buffer_limit=limit)
    output = agent.outputs[0]
    metrics = [Metric("m", {}, {"n": n}) for n in range(5)]
    caplog.set_level(logging.WARNING)
    output.add(metrics)
    assert [m.fields["n"] for m in output.buffer.batch(10).metrics] == [2, 3, 4]
    assert output.stats.metrics_dropped == 2
    assert "dropped the 2 oldest metrics" in caplog.text


@dataclass
class HeldInput(Input):
    """Gathers a full batch once `release` is set, and says when it has begun."""

    plugin_name = "held"
    begun: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def gather(self):
        self.begun.set()
        self.release.wait(30)
        return [Metric("tick", {}, {"n": n}) for n in range(4)]


def test_stop_while_a_gather_with_a_full_batch_is_under_way_ends():
    held = HeldInput()
    agent = agent_with(
        [held], Collect(), interval=Duration(3600), flush_interval=Duration(3600),
        metric_batch_size=2, round_interval=False,
    )  # fmt: skip
    schedule = Schedule(agent)
    schedule.start()
    wait_for(held.begun.is_set)
    stopping = threading.Thread(target=schedule.stop, daemon=True)
    stopping.start()
    wait_for(lambda: schedule.scheduler.state == STATE_STOPPED)  # the shutdown has begun
    time.sleep(0.2)  # it now waits for the gather; the gather ends with a full batch
    held.release.set()
    stopping.join(30)
    assert not stopping.is_alive(), "stop() never returned: the gather's flush blocked it"


def test_an_output_flushing_at_the_inputs_interval_is_flushed_after_each_round_of_gathers():
    output, first, second = Collect(), Ticker(), Ticker()
    agent = agent_with(
        [first, second], output, interval=Duration(0.3), flush_interval=Duration(0.3)
    )
    schedule = Schedule(agent)
    schedule.start()
    try:
        # No flush job of its own: the round's last gather flushes it.
        assert [job.name for job in schedule.scheduler.get_jobs()] == ["inputs.ticker"] * 2
        wait_for(lambda: len(output.writes) >= 3)
    finally:
        schedule.stop()
    assert len(output.writes) >= 3
    # Each write is one round: both inputs' metrics of it, nothing left for the next.
    for write in output.writes[:3]:
        assert len(write) == 2, write


@pytest.mark.parametrize(
    "settings",
    [
        {"flush_interval": Duration(0.6)},
        {"flush_interval": Duration(0.3), "flush_jitter": Duration(0.1)},
    ],
    ids=["another interval", "flush_jitter"],
)
def test_an_output_with_another_flush_interval_or_a_flush_jitter_keeps_its_own_flush_job(settings):
    agent = agent_with([Ticker()], Collect(), interval=Duration(0.3), **settings)
    schedule = Schedule(agent)
    schedule.start()
    try:
        names = sorted(job.name for job in schedule.scheduler.get_jobs())
    finally:
        schedule.stop()
    assert names == ["inputs.ticker", "outputs.collect"]


def test_a_stuck_input_delays_the_rounds_flush_once_and_not_the_later_ones():
    stuck, fast, output = Stuck(), Ticker(), Collect()
    agent = agent_with([stuck, fast], output, interval=Duration(0.2), flush_interval=Duration(0.2))
    schedule = Schedule(agent)
    schedule.start()
    try:
        assert stuck.started.wait(10)
        wait_for(lambda: len(output.writes) >= 3)
        assert not stuck.release.is_set()  # every write came while the input was stuck
    finally:
        stuck.release.set()
        schedule.stop()
    assert len(output.writes) >= 3
    assert all(metric.name == "tick" for write in output.writes for metric in write)


@dataclass
class NotMetrics(Input):
    """A broken plugin: hands over something that is not a metric."""

    plugin_name = "broken"

    def gather(self):
        return [None]


@dataclass
class Raising(Collect):
    """An output whose plugin fails with an error no output should raise."""

    plugin_name = "raising"

    def write(self, metrics):
        raise ValueError("a bug in the plugin")


def agent_with_outputs(inputs: list[Input], outputs: list[Output], **settings) -> Agent:
    agent_config = Config(agent=AgentSettings(**settings))
    agent_config.inputs = [InputConfig("ticker", p, InputSettings(), "test") for p in inputs]
    agent_config.outputs = [
        OutputConfig(output.plugin_name, output, OutputSettings(), "test") for output in outputs
    ]
    return Agent(agent_config)


def test_a_broken_input_is_one_logged_error_and_its_round_still_flushes(caplog):
    ticker, output = Ticker(), Collect()
    agent = agent_with(
        [NotMetrics(), ticker], output, interval=Duration(0.2), flush_interval=Duration(0.2)
    )
    run_until(agent, lambda: len(output.writes) >= 3)
    assert len(output.writes) >= 3
    assert "Gather error" in caplog.text
    assert agent.inputs[0].stats.errors >= 1


def test_an_output_failing_with_any_error_keeps_its_metrics_and_the_others_write(caplog):
    raising, healthy = Raising(), Collect()
    agent = agent_with_outputs(
        [Ticker()], [raising, healthy], interval=Duration(0.2), flush_interval=Duration(0.2)
    )
    run_until(agent, lambda: len(healthy.writes) >= 3)
    assert len(healthy.writes) >= 3
    assert "Write failed: a bug in the plugin" in caplog.text
    assert len(agent.outputs[0].buffer) >= 3  # kept for the next flush


def test_failing_outputs_are_retried_by_jobs_of_their_own_and_the_inputs_gather_on():
    release = threading.Event()

    @dataclass
    class Failing(Collect):
        plugin_name = "failing"
        tries: int = 0

        def write(self, metrics):
            self.tries += 1
            if self.tries > 1:  # the retries wait (a broker that does not answer)
                release.wait(30)
            raise ConnectionError("broker away")

    ticker, outputs = Ticker(), [Failing(), Failing()]
    agent = agent_with_outputs(
        [ticker], outputs, interval=Duration(0.2), flush_interval=Duration(0.2)
    )
    schedule = Schedule(agent)
    schedule.start()
    try:
        wait_for(lambda: all(output.tries >= 2 for output in outputs))
        gathered = len(ticker.times)
        wait_for(lambda: len(ticker.times) >= gathered + 5)
        assert len(ticker.times) >= gathered + 5  # gathering on while both retries hang
        assert not release.is_set()
    finally:
        release.set()
        schedule.stop()
