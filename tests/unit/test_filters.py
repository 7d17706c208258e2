"""Per-plugin filters and naming, with Telegraf's semantics and glob patterns."""

from __future__ import annotations

from agent.buffer import MemoryBuffer
from agent.filters import Glob, is_glob
from agent.metric import Metric
from agent.plugin import Input, Output
from agent.running import InputSettings, OutputSettings, RunningInput, RunningOutput


class Fixed(Input):
    """An input that returns copies of the given metrics."""

    plugin_name = "fixed"

    def __init__(self, *metrics: Metric) -> None:
        self.metrics = metrics

    def gather(self):
        return [m.copy() for m in self.metrics]


CPU0 = Metric("cpu", {"cpu": "cpu0"}, {"usage_idle": 90.0, "time_idle": 5.0}, 1_000_000_123)
TOTAL = Metric("cpu", {"cpu": "cpu-total"}, {"usage_idle": 95.0, "time_idle": 9.0}, 1_000_000_123)
MEM = Metric("mem", {}, {"used": 1}, 1_000_000_123)


def gathered(precision_ns: int = 1, default_tags=None, **settings):
    running = RunningInput(
        Fixed(CPU0, TOTAL, MEM), InputSettings(**settings), default_tags or {}, precision_ns
    )
    return running.gather()


def test_globs_support_stars_classes_and_alternatives():
    glob = Glob(["time_*", "usage_[is]dle", "{a,b}x"])
    assert [glob.match(s) for s in ("time_user", "usage_idle", "usage_sdle", "bx", "cx")] == [
        True, True, True, True, False,
    ]  # fmt: skip


def test_star_question_bracket_and_brace_each_make_a_glob_and_plain_names_are_not():
    assert [is_glob(text) for text in ("sd*", "sd?", "sd[ab]", "sd{a,b}")] == [True] * 4
    assert [is_glob(text) for text in ("sda", "/dev/disk/by-id/ata-1", "a,b}")] == [False] * 3


def test_fielddrop_removes_matching_fields():
    assert all(set(m.fields) == {"usage_idle"} for m in gathered(fielddrop=["time_*"])[:2])


def test_fieldinclude_keeps_only_matching_fields_and_drops_emptied_metrics():
    metrics = gathered(fieldinclude=["time_*"])
    assert [m.name for m in metrics] == ["cpu", "cpu"]
    assert all(set(m.fields) == {"time_idle"} for m in metrics)


def test_namepass_and_namedrop_select_by_measurement():
    assert [m.name for m in gathered(namepass=["me*"])] == ["mem"]
    assert [m.name for m in gathered(namedrop=["cpu"])] == ["mem"]


def test_tagpass_and_tagdrop_select_by_tag_value():
    assert [m.tags["cpu"] for m in gathered(tagpass={"cpu": ["cpu-total"]})] == ["cpu-total"]
    assert [m.name for m in gathered(tagdrop={"cpu": ["cpu[0-9]*"]})] == ["cpu", "mem"]


def test_taginclude_and_tagexclude_trim_tags():
    tags = {"host": "h", "dc": "x"}
    assert all(set(m.tags) == {"host"} for m in gathered(default_tags=tags, taginclude=["host"]))
    assert all("dc" not in m.tags for m in gathered(default_tags=tags, tagexclude=["dc"]))


def test_name_override_prefix_and_suffix():
    assert {m.name for m in gathered(name_override="x")} == {"x"}
    assert {m.name for m in gathered(name_prefix="p_", name_suffix="_s")} == {"p_cpu_s", "p_mem_s"}


def test_filters_select_on_the_plugins_own_name_before_renaming():
    assert [m.name for m in gathered(namepass=["mem"], name_prefix="host_")] == ["host_mem"]


def test_plugin_tags_and_default_tags_are_added_without_overwriting():
    metrics = gathered(default_tags={"host": "h", "cpu": "never"}, tags={"role": "db"})
    assert metrics[0].tags == {"cpu": "cpu0", "host": "h", "role": "db"}


def test_timestamps_are_rounded_to_the_precision():
    assert {m.time_ns for m in gathered(precision_ns=1_000_000_000)} == {1_000_000_000}
    assert {m.time_ns for m in gathered(precision_ns=1_000)} == {1_000_000_000}


def test_failing_input_is_counted_not_raised():
    class Broken(Input):
        plugin_name = "broken"

        def gather(self):
            raise OSError("no /proc")

    running = RunningInput(Broken(), InputSettings(), {}, 1)
    assert running.gather() == []
    assert running.stats.errors == 1


class Discard(Output):
    plugin_name = "discard"


def test_output_filters_apply_to_a_copy():
    running = RunningOutput(Discard(), OutputSettings(fielddrop=["time_*"]), 10, MemoryBuffer(10))
    view = running.accept(CPU0)
    assert set(view.fields) == {"usage_idle"}
    assert set(CPU0.fields) == {"usage_idle", "time_idle"}
    assert running.accept(MEM) == MEM
    namepass = RunningOutput(Discard(), OutputSettings(namepass=["cpu"]), 10, MemoryBuffer(10))
    assert namepass.accept(MEM) is None
    assert namepass.stats.metrics_filtered == 1
