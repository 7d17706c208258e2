"""The agent's own metrics: what each input gathered, what each output wrote, dropped and
still buffers, and the process's memory. Names follow Telegraf's inputs.internal.

- `internal_agent`: metrics_gathered, metrics_written, metrics_dropped, metrics_rejected,
  gather_errors, gather_timeouts (counters since start).
- `internal_gather` (tag `input`, and `alias` when set): metrics_gathered, errors,
  gather_timeouts (turns skipped because the gather before was still running) (counters),
  gather_time_ns (the last gather's duration).
- `internal_write` (tag `output`, and `alias`): metrics_added, metrics_written,
  metrics_dropped (buffer overflow), metrics_rejected (too large for the destination),
  metrics_filtered, errors, startup_errors (failed connects) (counters), buffer_size,
  buffer_limit (metrics now), write_time_ns (the last write's duration).
- `internal_memstats` (with collect_memstats): rss_bytes and vms_bytes of the agent process
  (Telegraf reports Go runtime figures here; a Python process has these instead).

All carry the tag `version`, the agent's version. Values are integers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.metric import Metric
from agent.plugin import Input
from agent.registry import input

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

if TYPE_CHECKING:
    from agent.agent import Agent

SAMPLE_CONFIG = """\
# The agent's own figures: what each input gathered and each output wrote
[[inputs.internal]]
  ## Also internal_memstats: the agent process's resident and virtual memory,
  ## in bytes.
  collect_memstats = true
"""


@input("internal")
@dataclass
class Internal(Input):
    """Reports the running agent's own counters and memory."""

    SAMPLE_CONFIG = SAMPLE_CONFIG

    collect_memstats: bool = True
    _agent: Any = field(default=None, init=False, repr=False)

    def attach_agent(self, agent: Agent) -> None:
        """Called by the agent that runs this input: the one whose statistics it reports."""
        self._agent = agent

    def gather(self) -> Iterator[Metric]:
        if self._agent is None:
            raise RuntimeError("inputs.internal runs only inside an agent")
        now_ns = time.time_ns()
        version = {"version": __version__}
        inputs, outputs = self._agent.inputs, self._agent.outputs
        yield Metric(
            "internal_agent",
            dict(version),
            {
                "gather_errors": sum(r.stats.errors for r in inputs),
                "gather_timeouts": sum(r.stats.gather_timeouts for r in inputs),
                "metrics_dropped": sum(r.stats.metrics_dropped for r in outputs),
                "metrics_gathered": sum(r.stats.metrics_gathered for r in inputs),
                "metrics_rejected": sum(r.stats.metrics_rejected for r in outputs),
                "metrics_written": sum(r.stats.metrics_written for r in outputs),
            },
            now_ns,
        )
        for running in inputs:
            tags = {"input": running.plugin.plugin_name, **version}
            if running.settings.alias:
                tags["alias"] = running.settings.alias
            stats = running.stats
            fields = {
                "errors": stats.errors,
                "gather_time_ns": stats.gather_time_ns,
                "gather_timeouts": stats.gather_timeouts,
                "metrics_gathered": stats.metrics_gathered,
            }
            yield Metric("internal_gather", tags, fields, now_ns)
        for running in outputs:
            tags = {"output": running.plugin.plugin_name, **version}
            if running.settings.alias:
                tags["alias"] = running.settings.alias
            stats = running.stats
            fields = {
                "buffer_limit": running.buffer.limit,
                "buffer_size": len(running.buffer),
                "errors": stats.errors,
                "metrics_added": stats.metrics_added,
                "metrics_dropped": stats.metrics_dropped,
                "metrics_filtered": stats.metrics_filtered,
                "metrics_rejected": stats.metrics_rejected,
                "metrics_written": stats.metrics_written,
                "startup_errors": stats.startup_errors,
                "write_time_ns": stats.write_time_ns,
            }
            yield Metric("internal_write", tags, fields, now_ns)
        if self.collect_memstats:
            vms_bytes, rss_bytes = own_memory()
            fields = {"rss_bytes": rss_bytes, "vms_bytes": vms_bytes}
            yield Metric("internal_memstats", dict(version), fields, now_ns)


def own_memory() -> tuple[int, int]:
    """Virtual and resident bytes of this process, from /proc/self: never from HOST_PROC,
    which is the watched host's /proc (where this pid may be another process or none)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        size_pages, resident_pages = statm.read().split()[:2]
    return int(size_pages) * PAGE_SIZE, int(resident_pages) * PAGE_SIZE
