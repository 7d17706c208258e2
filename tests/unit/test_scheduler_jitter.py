"""collection_jitter and flush_jitter: each gather or flush first waits a random delay in
[0, jitter). The schedule is given a sleep that records the delay instead of waiting it, so
each delay is seen and nothing timed is asserted."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest

from agent.agent import Agent
from agent.config import AgentSettings, Config, InputConfig, OutputConfig
from agent.metric import Metric
from agent.options import Duration
from agent.plugin import Input, Output
from agent.running import InputSettings, OutputSettings
from agent.scheduler import Schedule

JUST_BELOW_ONE = math.nextafter(1.0, 0.0)  # the largest number random.random() returns
DRAWS = 500


@dataclass
class Timeline:
    """What the schedule did, in order: ("sleep", seconds), ("gather",) and ("write",)."""

    events: list[tuple] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.events.append(("sleep", seconds))

    def delays(self) -> list[float]:
        return [event[1] for event in self.events if event[0] == "sleep"]


@dataclass
class Counter(Input):
    plugin_name = "counter"
    timeline: Timeline = field(default_factory=Timeline)

    def gather(self):
        self.timeline.events.append(("gather",))
        return [Metric("n", {}, {"v": 1})]


@dataclass
class Recorder(Output):
    plugin_name = "recorder"
    timeline: Timeline = field(default_factory=Timeline)

    def write(self, metrics):
        self.timeline.events.append(("write",))


def schedule_with(
    timeline: Timeline,
    random_fraction=random.random,
    input_settings: InputSettings | None = None,
    output_settings: OutputSettings | None = None,
    **agent_settings,
) -> Schedule:
    config = Config(agent=AgentSettings(**agent_settings))
    config.inputs = [
        InputConfig("counter", Counter(timeline), input_settings or InputSettings(), "test")
    ]
    config.outputs = [
        OutputConfig("recorder", Recorder(timeline), output_settings or OutputSettings(), "test")
    ]
    return Schedule(Agent(config), random_fraction=random_fraction, sleep=timeline.sleep)


def gather(schedule: Schedule, times: int) -> None:
    for _ in range(times):
        schedule.gather(schedule.agent.inputs[0], 10.0)


def flush(schedule: Schedule, times: int) -> None:
    output = schedule.agent.outputs[0]
    for _ in range(times):
        output.add([Metric("n", {}, {"v": 1})])  # something to write
        schedule.flush(output)


def fractions(*values: float):
    return iter(values).__next__


# collection_jitter


def test_each_gather_first_waits_its_collection_jitter_delay():
    timeline = Timeline()
    gather(schedule_with(timeline, collection_jitter=Duration(5)), 3)
    assert [event[0] for event in timeline.events] == ["sleep", "gather"] * 3


def test_collection_jitter_delays_are_drawn_anew_within_zero_to_the_jitter():
    timeline = Timeline()
    gather(schedule_with(timeline, collection_jitter=Duration(5)), DRAWS)
    delays = timeline.delays()
    assert len(delays) == DRAWS
    assert all(0 <= delay < 5 for delay in delays)
    # Spread over the range, not one fixed delay (each bound fails with odds 0.8**500).
    assert min(delays) < 1 and max(delays) > 4


def test_collection_jitter_delay_is_never_the_jitter_or_beyond():
    timeline = Timeline()
    schedule = schedule_with(
        timeline, fractions(0.0, JUST_BELOW_ONE), collection_jitter=Duration(5)
    )
    gather(schedule, 2)
    shortest, longest = timeline.delays()
    assert shortest == 0.0
    assert longest < 5 and longest == pytest.approx(5)


def test_an_inputs_own_collection_jitter_replaces_the_agents():
    timeline = Timeline()
    schedule = schedule_with(
        timeline,
        fractions(JUST_BELOW_ONE),
        input_settings=InputSettings(collection_jitter=Duration(0.5)),
        collection_jitter=Duration(60),
    )
    gather(schedule, 1)
    (delay,) = timeline.delays()
    assert delay < 0.5 and delay == pytest.approx(0.5)


def test_without_collection_jitter_a_gather_does_not_wait():
    timeline = Timeline()
    gather(schedule_with(timeline), 3)
    assert timeline.events == [("gather",)] * 3


# flush_jitter


def test_each_flush_first_waits_its_flush_jitter_delay():
    timeline = Timeline()
    flush(schedule_with(timeline, flush_jitter=Duration(5)), 3)
    assert [event[0] for event in timeline.events] == ["sleep", "write"] * 3


def test_flush_jitter_delays_are_drawn_anew_within_zero_to_the_jitter():
    timeline = Timeline()
    flush(schedule_with(timeline, flush_jitter=Duration(5)), DRAWS)
    delays = timeline.delays()
    assert len(delays) == DRAWS
    assert all(0 <= delay < 5 for delay in delays)
    assert min(delays) < 1 and max(delays) > 4


def test_flush_jitter_delay_is_never_the_jitter_or_beyond():
    timeline = Timeline()
    schedule = schedule_with(timeline, fractions(0.0, JUST_BELOW_ONE), flush_jitter=Duration(5))
    flush(schedule, 2)
    shortest, longest = timeline.delays()
    assert shortest == 0.0
    assert longest < 5 and longest == pytest.approx(5)


def test_an_outputs_own_flush_jitter_replaces_the_agents():
    timeline = Timeline()
    schedule = schedule_with(
        timeline,
        fractions(JUST_BELOW_ONE),
        output_settings=OutputSettings(flush_jitter=Duration(0.5)),
        flush_jitter=Duration(60),
    )
    flush(schedule, 1)
    (delay,) = timeline.delays()
    assert delay < 0.5 and delay == pytest.approx(0.5)


def test_a_full_batch_is_flushed_at_once_without_flush_jitter():
    timeline = Timeline()
    schedule = schedule_with(timeline, flush_jitter=Duration(5), metric_batch_size=1)
    gather(schedule, 1)
    (flush_job,) = schedule.scheduler.get_jobs()  # queued by the gather, not yet run
    flush_job.func(*flush_job.args)
    assert timeline.events == [("gather",), ("write",)]


def test_without_flush_jitter_a_flush_does_not_wait():
    timeline = Timeline()
    flush(schedule_with(timeline), 3)
    assert timeline.events == [("write",)] * 3
