"""APScheduler jobs: each input gathers every interval, each output flushes every flush_interval.

Jobs run in a thread pool, so a slow input delays neither the others nor the flushes. An
input still gathering when its next turn comes skips that turn with a warning.

Gathers due at the same moment take turns, one after another, instead of all running at once:
Python runs one thread at a time, and threads that gather side by side hand the interpreter
to each other at every file they read (hundreds of times a round, each a context switch),
which costs more CPU than the reading itself. A gather waits for its turn at most a tenth of
its interval (at most GATHER_TURN_WAIT_S), so a slow or stuck input delays the others by no
more than that.

An output whose flush_interval is the interval of some inputs, without flush_jitter (the
usual case: both 10s), is flushed by the last of those inputs to gather in each round,
right after it, instead of by a job of its own: the metrics leave as soon as they are made,
and the process wakes once a round instead of twice (at the seed's settings that was a
third of the idle agent's CPU). A gather skipped because the previous one is still running,
or one that failed, counts as done for the round, so a stuck input delays one flush, never
all later ones. An output that is failing is retried by a job of its own each round.
Other outputs flush on their own schedule. Any output is also flushed as soon as it holds a
full batch.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.agent import Agent
from agent.running import RunningInput, RunningOutput

log = logging.getLogger("agent")

GATHER_TURN_WAIT_S = 0.1


def turn_wait_s(interval: float) -> float:
    """How long a due gather waits for the one gathering now before it gathers anyway."""
    return min(GATHER_TURN_WAIT_S, interval / 10)


class GatherRound:
    """The inputs of one interval that have gathered since the outputs that flush with them
    last flushed."""

    def __init__(self, inputs: list[RunningInput]) -> None:
        self.inputs = {id(running) for running in inputs}
        self.outputs: list[RunningOutput] = []
        self._done: set[int] = set()
        self._lock = threading.Lock()

    def finished(self, running: RunningInput) -> bool:
        """Notes that `running` has gathered (or skipped) this round; True if that ended it."""
        with self._lock:
            self._done.add(id(running))
            if self._done != self.inputs:
                return False
            self._done = set()
            return True


def first_gather_time(now: float, interval: float, round_interval: bool, offset: float) -> float:
    """Epoch seconds of the first gather: the next interval boundary when rounding (10s →
    :00, :10, …), at once otherwise; then shifted by collection_offset."""
    start = math.ceil(now / interval) * interval if round_interval else now
    return start + offset


class Schedule:
    """The running agent's timetable of gathers and flushes."""

    def __init__(
        self,
        agent: Agent,
        random_fraction: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`random_fraction` draws numbers in [0, 1) for the jitters and `sleep` waits them
        out: tests pass their own to see each delay without timing it."""
        self.agent = agent
        self.random_fraction = random_fraction
        self.sleep = sleep
        self.settings = agent.config.agent
        workers = 2 * (len(agent.inputs) + len(agent.outputs)) + 2
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 2},
            timezone=timezone.utc,
        )
        self._gathering = {id(running): threading.Lock() for running in agent.inputs}
        self._turn = threading.Lock()  # held by the input gathering now
        # APScheduler's shutdown holds its job store lock while it waits for the jobs under
        # way, and add_job waits for that lock: a gather adding a flush then would never
        # end, nor would the shutdown. Gathers add flushes only under this lock, and only
        # until stop() has taken it.
        self._adding_flushes = threading.Lock()
        self._stopping = False
        by_interval: dict[float, list[RunningInput]] = {}
        for running in agent.inputs:
            by_interval.setdefault(self._interval(running), []).append(running)
        self._rounds = {interval: GatherRound(inputs) for interval, inputs in by_interval.items()}

    def start(self) -> None:
        now = time.time()
        for running in self.agent.inputs:
            interval = self._interval(running)
            start = first_gather_time(
                now, interval, self.settings.round_interval, self.settings.collection_offset
            )
            self.scheduler.add_job(
                self.gather,
                IntervalTrigger(seconds=interval, start_date=_utc(start), timezone=timezone.utc),
                args=[running, interval],
                name=running.log_name,
                next_run_time=_utc(start),
            )
        for running in self.agent.outputs:
            interval = running.settings.flush_interval or self.settings.flush_interval
            if interval in self._rounds and self._flush_jitter(running) == 0:
                self._rounds[interval].outputs.append(running)
                continue
            self.scheduler.add_job(
                self.flush,
                IntervalTrigger(seconds=interval, start_date=_utc(now + interval)),
                args=[running],
                name=running.log_name,
            )
        self.scheduler.start()

    def _interval(self, running: RunningInput) -> float:
        return running.settings.interval or self.settings.interval

    def _flush_jitter(self, running: RunningOutput) -> float:
        jitter = running.settings.flush_jitter
        return self.settings.flush_jitter if jitter is None else jitter

    def stop(self) -> None:
        """No more gathers or flushes; waits for those under way."""
        with self._adding_flushes:
            self._stopping = True
        self.scheduler.shutdown(wait=True)

    def gather(self, running: RunningInput, interval: float) -> None:
        lock = self._gathering[id(running)]
        try:
            if lock.acquire(blocking=False):
                try:
                    self._gather(running, interval)
                finally:
                    lock.release()
            else:
                running.stats.gather_timeouts += 1
                running.log.warning(
                    "Gather skipped: the previous one is still running after its interval of %gs",
                    interval,
                )
        finally:
            if self._rounds[interval].finished(running):
                self._flush_round(self._rounds[interval])

    def _flush_round(self, gather_round: GatherRound) -> None:
        """Flush the outputs that flush with a round, now it has ended. A failing output (its
        broker away) is retried by a job of its own: a write that waits out its timeout must
        not hold up this input's next gather."""
        for output in gather_round.outputs:
            if output.healthy:
                output.flush()
            else:
                self.flush_soon(output)

    def _gather(self, running: RunningInput, interval: float) -> None:
        jitter = running.settings.collection_jitter
        if jitter is None:
            jitter = self.settings.collection_jitter
        if jitter > 0:
            self.sleep(self.jitter_delay_s(jitter))
        has_turn = self._turn.acquire(timeout=turn_wait_s(interval))
        try:
            metrics = running.gather()
        finally:
            if has_turn:
                self._turn.release()
        for output in self.agent.outputs:
            # A full batch is flushed at once, unless the output is failing: then the
            # flush schedule paces the retries, so an outage is not logged per gather.
            if output.add(metrics) and output.healthy:
                self.flush_soon(output)

    def flush_soon(self, running: RunningOutput) -> None:
        """A flush of `running` now, besides its schedule; none once stop() has begun (the
        final flush delivers what is left)."""
        with self._adding_flushes:
            if not self._stopping:
                self.scheduler.add_job(self.flush, args=[running, False])

    def flush(self, running: RunningOutput, jittered: bool = True) -> None:
        jitter = self._flush_jitter(running)
        if jittered and jitter > 0:
            self.sleep(self.jitter_delay_s(jitter))
        running.flush()

    def jitter_delay_s(self, jitter: float) -> float:
        """A random delay in [0, jitter) seconds, drawn anew for each gather or flush."""
        return jitter * self.random_fraction()


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc) + timedelta(0)
