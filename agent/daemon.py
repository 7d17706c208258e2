"""The agent as a service: runs the schedule until SIGTERM/SIGINT, reloads on SIGHUP.

On stop it gathers no more, waits for gathers under way, then flushes what every output
still buffers (bounded by FINAL_FLUSH_TIMEOUT_S) and exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from agent import __version__
from agent.agent import Agent
from agent.config import Config
from agent.errors import ConfigError
from agent.scheduler import Schedule

log = logging.getLogger("agent")

# Within systemd's default TimeoutStopSec of 90 s, with room for a slow gather.
FINAL_FLUSH_TIMEOUT_S = 30.0


class Daemon:
    """Runs one Agent at a time; a reload swaps it for one built from the new config."""

    def __init__(self, load_config: Callable[[], Config], config: Config) -> None:
        self.load_config = load_config
        self.config = config
        self.wake = threading.Event()
        self.stop_requested = False
        self.reload_requested = False

    def request_stop(self, signum: int, _frame: object) -> None:
        log.info("Received %s, stopping", signal.Signals(signum).name)
        self.stop_requested = True
        self.wake.set()

    def request_reload(self, _signum: int, _frame: object) -> None:
        log.info("Received SIGHUP, reloading the configuration")
        self.reload_requested = True
        self.wake.set()

    def run(self) -> int:
        # A process started in the background by a script has SIGINT ignored; handling it
        # here makes Ctrl-C and `kill -INT` work everywhere.
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)
        log.info("metrics-agent %s starting", __version__)
        agent, schedule = self.start(self.config)
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stop_requested:
                break
            if self.reload_requested:
                self.reload_requested = False
                agent, schedule = self.reload(agent, schedule)
        self.finish(agent, schedule)
        log.info("Stopped")
        return 0

    def reload(self, agent: Agent, schedule: Schedule) -> tuple[Agent, Schedule]:
        """Swap in the new configuration; a broken one leaves the running agent as it is.

        The old agent finishes (flushes, closes its buffers) before the new one opens them,
        so a disk buffer is never open twice."""
        try:
            new_config = self.load_config()
        except ConfigError as error:
            log.error("Config reload failed, the running config stays: %s", error)
            return agent, schedule
        self.finish(agent, schedule)
        try:
            started = self.start(new_config)
        except (ValueError, OSError) as error:
            log.error("Config reload failed, going back to the previous config: %s", error)
            return self.start(self.config)
        self.config = new_config
        return started

    def start(self, config: Config) -> tuple[Agent, Schedule]:
        agent = Agent(config)
        agent.start_inputs()
        log.info("Inputs: %s", " ".join(entry.name for entry in config.inputs))
        log.info("Outputs: %s", " ".join(entry.name for entry in config.outputs))
        tags = config.default_tags()
        log.info("Tags on every metric: %s", " ".join(f"{k}={v}" for k, v in sorted(tags.items())))
        settings = config.agent
        log.info(
            "Settings: interval %gs, flush_interval %gs, hostname %r, quiet %s",
            settings.interval, settings.flush_interval, config.hostname(), settings.quiet,
        )  # fmt: skip
        schedule = Schedule(agent)
        schedule.start()
        return agent, schedule

    def finish(self, agent: Agent, schedule: Schedule) -> None:
        """Stop gathering, then deliver what is buffered, within the final flush timeout."""
        schedule.stop()
        log.info("Writing out what the outputs still hold (for at most %gs)", FINAL_FLUSH_TIMEOUT_S)
        flushes = [
            threading.Thread(target=output.flush, name=output.log_name, daemon=True)
            for output in agent.outputs
        ]
        for thread in flushes:
            thread.start()
        for thread in flushes:
            thread.join(FINAL_FLUSH_TIMEOUT_S)
        for output in agent.outputs:
            if len(output.buffer):
                output.log.error(
                    "%d metrics could not be delivered before shutdown", len(output.buffer)
                )
            output.close()
            output.buffer.close()
        gathered = sum(running.stats.metrics_gathered for running in agent.inputs)
        written = sum(output.stats.metrics_written for output in agent.outputs)
        dropped = sum(output.stats.metrics_dropped for output in agent.outputs)
        rejected = sum(output.stats.metrics_rejected for output in agent.outputs)
        log.info(
            "Metrics gathered: %d, written: %d, dropped: %d, rejected: %d",
            gathered, written, dropped, rejected,
        )  # fmt: skip


def run_daemon(load_config: Callable[[], Config], config: Config) -> int:
    return Daemon(load_config, config).run()
