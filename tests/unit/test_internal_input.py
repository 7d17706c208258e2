"""inputs.internal: the agent's own counters under Telegraf's measurement, tag and field names,
counted from what the running inputs and outputs really did."""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil

from agent import __version__
from agent.agent import Agent
from agent.config import AgentSettings, Config, InputConfig, OutputConfig
from agent.metric import Metric
from agent.plugin import Input, Output
from agent.running import InputSettings, OutputSettings
from plugins.inputs.internal import Internal

# The fields Telegraf 1.37's inputs.internal writes (memstats aside: Go runtime figures).
TELEGRAF_FIELDS = {
    "internal_agent": {
        "gather_errors", "gather_timeouts", "metrics_dropped", "metrics_gathered",
        "metrics_rejected", "metrics_written",
    },
    "internal_gather": {"errors", "gather_time_ns", "gather_timeouts", "metrics_gathered"},
    "internal_write": {
        "buffer_limit", "buffer_size", "errors", "metrics_added", "metrics_dropped",
        "metrics_filtered", "metrics_rejected", "metrics_written", "startup_errors",
        "write_time_ns",
    },
}  # fmt: skip


@dataclass
class Counting(Input):
    """Gathers `per_gather` metrics; fails instead when `fail` is set."""

    plugin_name = "counting"
    per_gather: int = 3
    fail: bool = False

    def gather(self):
        if self.fail:
            raise OSError("cannot read /proc/counting")
        return [Metric("counted", {}, {"n": n}) for n in range(self.per_gather)]


@dataclass
class Failing(Counting):
    plugin_name = "failing"
    fail: bool = True


@dataclass
class Destination(Output):
    """Takes every metric except those named "huge", which it rejects; `reachable` False
    makes connect() fail as an absent broker does."""

    plugin_name = "destination"
    reachable: bool = True
    written: list[Metric] = field(default_factory=list)

    def connect(self):
        if not self.reachable:
            raise ConnectionError("cannot reach the destination")

    def write(self, metrics):
        for metric in metrics:
            if metric.name == "huge":
                self.report_rejected(f"Dropped metric {metric.name}: too large")
            else:
                self.written.append(metric)


def agent_with(
    inputs: dict[str, Input],
    outputs: dict[str, Output],
    limit: int = 100,
    output_settings: OutputSettings | None = None,
) -> Agent:
    config = Config(agent=AgentSettings(metric_buffer_limit=limit, omit_hostname=True))
    config.inputs = [InputConfig(name, p, InputSettings(), "test") for name, p in inputs.items()]
    config.outputs = [
        OutputConfig(name, p, output_settings or OutputSettings(), "test")
        for name, p in outputs.items()
    ]
    return Agent(config)


def reported(agent: Agent) -> dict[tuple[str, str], Metric]:
    """The internal input's metrics by measurement and the input or output they describe."""
    internal = next(r for r in agent.inputs if isinstance(r.plugin, Internal))
    return {
        (m.name, m.tags.get("input") or m.tags.get("output") or ""): m
        for m in internal.plugin.gather()
    }


def test_names_tags_and_integer_fields_are_telegrafs():
    agent = agent_with({"internal": Internal(), "counting": Counting()}, {"d": Destination()})
    metrics = reported(agent)
    assert set(metrics) == {
        ("internal_agent", ""),
        ("internal_gather", "counting"),
        ("internal_gather", "internal"),
        ("internal_write", "destination"),
        ("internal_memstats", ""),
    }
    for (name, _), metric in metrics.items():
        assert metric.tags["version"] == __version__
        assert all(type(value) is int for value in metric.fields.values()), name
        if name in TELEGRAF_FIELDS:
            assert set(metric.fields) == TELEGRAF_FIELDS[name]
    assert metrics["internal_memstats", ""].fields["rss_bytes"] > 0


def test_memstats_are_left_out_when_not_asked_for():
    agent = agent_with({"internal": Internal(collect_memstats=False)}, {})
    assert "internal_memstats" not in {name for name, _ in reported(agent)}


def test_gathers_and_their_errors_are_counted_per_input_and_for_the_agent():
    agent = agent_with({"internal": Internal(), "counting": Counting(), "failing": Failing()}, {})
    running_counting, running_failing = agent.inputs[1], agent.inputs[2]
    for _ in range(2):
        running_counting.gather()
    running_failing.gather()
    metrics = reported(agent)
    gather = metrics["internal_gather", "counting"].fields
    assert gather["metrics_gathered"] == 6 and gather["errors"] == 0
    assert gather["gather_time_ns"] > 0
    failed = metrics["internal_gather", "failing"].fields
    assert failed["metrics_gathered"] == 0 and failed["errors"] == 1
    agent_fields = metrics["internal_agent", ""].fields
    assert agent_fields["metrics_gathered"] == 6
    assert agent_fields["gather_errors"] == 1


def test_an_overflowing_buffer_counts_exactly_the_dropped_metrics():
    agent = agent_with({"internal": Internal()}, {"d": Destination()}, limit=4)
    output = agent.outputs[0]
    output.add([Metric("m", {}, {"n": n}, n) for n in range(6)])
    write = reported(agent)["internal_write", "destination"].fields
    assert write["metrics_added"] == 6
    assert write["metrics_dropped"] == 2
    assert write["buffer_size"] == 4 and write["buffer_limit"] == 4
    assert reported(agent)["internal_agent", ""].fields["metrics_dropped"] == 2


def test_written_and_rejected_metrics_are_counted_apart():
    destination = Destination()
    agent = agent_with({"internal": Internal()}, {"d": destination})
    output = agent.outputs[0]
    output.add([Metric("m", {}, {"n": 1}, 1), Metric("huge", {}, {"n": 2}, 2)])
    assert output.flush()
    write = reported(agent)["internal_write", "destination"].fields
    assert write["metrics_written"] == 1
    assert write["metrics_rejected"] == 1
    assert write["buffer_size"] == 0
    assert reported(agent)["internal_agent", ""].fields["metrics_rejected"] == 1


def test_a_destination_not_reachable_counts_a_startup_error_and_an_error_per_flush():
    destination = Destination(reachable=False)
    agent = agent_with({"internal": Internal()}, {"d": destination})
    output = agent.outputs[0]
    output.add([Metric("m", {}, {"n": 1}, 1)])
    assert not output.flush()
    assert not output.flush()
    destination.reachable = True
    assert output.flush()
    write = reported(agent)["internal_write", "destination"].fields
    assert write["startup_errors"] == 2
    assert write["errors"] == 2
    assert write["metrics_written"] == 1


def test_filtered_metrics_are_counted():
    settings = OutputSettings(namedrop=["m"])
    agent = agent_with({"internal": Internal()}, {"d": Destination()}, output_settings=settings)
    agent.outputs[0].add([Metric("m", {}, {"n": 1}, 1), Metric("kept", {}, {"n": 2}, 2)])
    write = reported(agent)["internal_write", "destination"].fields
    assert write["metrics_filtered"] == 1 and write["metrics_added"] == 1


def test_memstats_are_this_process_even_when_host_proc_points_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(psutil, "PROCFS_PATH", "/proc")  # whatever an earlier test left there
    rss = psutil.Process().memory_info().rss
    # What the host inputs leave behind with HOST_PROC: psutil reading the watched host's
    # /proc, where this process's pid is another process or none.
    monkeypatch.setenv("HOST_PROC", str(tmp_path))
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(tmp_path))
    memory = reported(agent_with({"internal": Internal()}, {}))["internal_memstats", ""].fields
    assert 0.5 * rss < memory["rss_bytes"] < 2 * rss
    assert memory["vms_bytes"] >= memory["rss_bytes"]
