"""Options accepted so that Telegraf's configs load, with no effect here: a config that sets
them loads, and is told so in one warning at start-up naming each of them."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from agent.config import load
from agent.options import warn_ignored
from agent.sink.settings import load as load_sink
from tests.conftest import REPO

TELEGRAF_CONFIG = """\
[agent]
  interval = "10s"
  statefile = "/var/lib/telegraf/state.json"
  logfile_rotation_max_size = "10MB"
  always_include_global_tags = true
[[inputs.net]]
  ignore_protocol_stats = true
[[inputs.processes]]
  use_sudo = false
[[outputs.kafka]]
  brokers = ["127.0.0.1:9092"]
  sasl_version = 1
"""


def test_options_with_no_effect_are_accepted_and_named_in_the_order_written(tmp_path):
    path = tmp_path / "telegraf.conf"
    path.write_text(TELEGRAF_CONFIG)
    config = load([path])
    assert [entry.name for entry in config.inputs] == ["net", "processes"]
    assert config.ignored_options == [
        "agent.statefile",
        "agent.logfile_rotation_max_size",
        "agent.always_include_global_tags",
        "inputs.net.ignore_protocol_stats",
        "inputs.processes.use_sudo",
        "outputs.kafka.sasl_version",
    ]


def test_the_shipped_configs_and_the_sample_set_no_option_without_effect():
    for path in ("conf/agent.toml", "conf/examples/seed-telegraf.conf"):
        assert load([REPO / path]).ignored_options == [], path
    assert load_sink(str(REPO / "conf/sink.toml"), {}).ignored_options == []


def test_the_sink_names_its_options_with_no_effect(tmp_path):
    path = tmp_path / "sink.toml"
    path.write_text('topic = "m"\nsasl_version = 0\n')
    assert load_sink(str(path), {}).ignored_options == ["sasl_version"]


def test_they_are_named_in_one_warning_each_once(caplog):
    log = logging.getLogger("agent")
    with caplog.at_level(logging.WARNING):
        warn_ignored(["agent.statefile", "outputs.kafka.sasl_version", "agent.statefile"], log)
        warn_ignored([], log)
    assert [record.getMessage() for record in caplog.records] == [
        "Options with no effect here, accepted so that Telegraf configs load: "
        "agent.statefile, outputs.kafka.sasl_version"
    ]


def test_the_agent_warns_once_at_start_up(tmp_path):
    path = tmp_path / "telegraf.conf"
    path.write_text(
        textwrap.dedent("""\
        [agent]
          statefile = "/tmp/state.json"
        [[inputs.mem]]
        [[inputs.processes]]
          use_sudo = true
        """)
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(path), "--test"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if " W! " in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].endswith(
        "[agent] Options with no effect here, accepted so that Telegraf configs load: "
        "agent.statefile, inputs.processes.use_sudo"
    )
