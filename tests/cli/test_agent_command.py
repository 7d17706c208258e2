"""The `agent` command as a user runs it: a real process, its stdout, stderr and exit status."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from line_protocol_parser import parse_line

from agent import registry
from agent.cli import run_parser
from tests.conftest import REPO

SEED = REPO / "conf/examples/seed-telegraf.conf"
DEFAULT = REPO / "conf/agent.toml"


def agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def parsed_lines(stdout: str) -> list[dict]:
    return [parse_line(line) for line in stdout.splitlines()]


def test_version():
    result = agent("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("agent 0.")


def test_test_mode_prints_cpu_and_mem_lines_a_third_party_parser_reads():
    result = agent("-config", str(DEFAULT), "--test")
    assert result.returncode == 0, result.stderr
    metrics = parsed_lines(result.stdout)
    cpus = {m["tags"]["cpu"] for m in metrics if m["measurement"] == "cpu"}
    assert "cpu-total" in cpus and "cpu0" in cpus
    (mem,) = [m for m in metrics if m["measurement"] == "mem"]
    assert mem["fields"]["total"] > 0
    assert 0 <= mem["fields"]["used_percent"] <= 100
    assert all("host" in m["tags"] for m in metrics)


def test_test_mode_values_read_back_equal_to_the_printed_text():
    result = agent("-config", str(DEFAULT), "--test")
    for text, metric in zip(result.stdout.splitlines(), parsed_lines(result.stdout), strict=True):
        printed = dict(pair.split("=") for pair in text.split(" ")[1].split(","))
        assert set(printed) == set(metric["fields"])
        for key, value in metric["fields"].items():
            if printed[key].endswith("u"):
                assert value == int(printed[key][:-1])
            else:
                assert value == float(printed[key])
        if metric["measurement"] == "cpu":
            assert sum(metric["fields"].values()) == pytest.approx(100, abs=1e-6)


def test_seed_config_prints_per_cpu_and_total_without_time_fields_and_a_mem_line():
    result = agent("-config", str(SEED), "--test")
    assert result.returncode == 0, result.stderr
    metrics = parsed_lines(result.stdout)
    cpu = [m for m in metrics if m["measurement"] == "cpu"]
    assert {m["tags"]["cpu"] for m in cpu} >= {"cpu0", "cpu-total"}
    assert all(not key.startswith("time_") for m in cpu for key in m["fields"])
    assert all("usage_idle" in m["fields"] for m in cpu)
    assert [m["measurement"] for m in metrics].count("mem") == 1


def test_input_filter_runs_only_the_named_inputs():
    result = agent("-config", str(DEFAULT), "--test", "--input-filter", "mem")
    assert {m["measurement"] for m in parsed_lines(result.stdout)} == {"mem"}


def test_once_writes_through_outputs_file(tmp_path):
    out = tmp_path / "metrics.out"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nomit_hostname = true\n[[inputs.mem]]\n[[outputs.file]]\nfiles = ["{out}"]\n'
    )
    result = agent("-config", str(config), "--once")
    assert result.returncode == 0, result.stderr
    (mem,) = parsed_lines(out.read_text())
    assert mem["measurement"] == "mem" and mem["tags"] == {}
    assert ",total=" in out.read_text() and "u," not in out.read_text()  # integers as `i`


BROKEN = {
    "syntax": '[agent]\ninterval = "10s\n',
    "unknown plugin": "[[inputs.nope]]\n",
    "unknown option": "[[inputs.cpu]]\npercpuu = true\n",
    "wrong type": '[[inputs.cpu]]\npercpu = "yes"\n',
    "bad duration": '[agent]\ninterval = "10 parsecs"\n[[inputs.cpu]]\n',
    "zero interval": '[agent]\ninterval = "0s"\n[[inputs.cpu]]\n',
    "negative interval": '[agent]\ninterval = "-5s"\n[[inputs.cpu]]\n',
    "negative flush_interval": '[agent]\nflush_interval = "-1s"\n[[inputs.cpu]]\n',
    "negative collection_jitter": '[agent]\ncollection_jitter = "-1s"\n[[inputs.cpu]]\n',
    "zero input interval": '[[inputs.cpu]]\ninterval = "0s"\n',
    "zero output flush_interval": "[[inputs.cpu]]\n[[outputs.file]]\nflush_interval = 0\n",
    "negative output flush_jitter": '[[inputs.cpu]]\n[[outputs.file]]\nflush_jitter = "-1s"\n',
    "zero metric_batch_size": "[agent]\nmetric_batch_size = 0\n[[inputs.cpu]]\n",
    "zero output buffer limit": "[[inputs.cpu]]\n[[outputs.file]]\nmetric_buffer_limit = 0\n",
    "negative exec timeout": '[[inputs.exec]]\ncommands = ["true"]\ntimeout = "-1s"\n',
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_config_prints_one_line_naming_the_file_and_exits_1(tmp_path, case):
    config = tmp_path / "broken.toml"
    config.write_text(BROKEN[case])
    result = agent("-config", str(config), "--test")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"agent: {config}:")
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_one_line(tmp_path):
    result = agent("-config", str(tmp_path / "nope.toml"), "--test")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot read config file" in result.stderr


def test_unknown_flag_is_one_line():
    result = agent("--frobnicate")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--frobnicate" in result.stderr


def test_default_config_is_the_sample_of_its_plugins():
    result = agent("config", "--input-filter", "cpu:mem", "--output-filter", "kafka")
    assert result.returncode == 0
    assert result.stdout == DEFAULT.read_text()


def test_full_sample_config_runs_and_prints_a_line_of_every_input_it_enables(tmp_path):
    sample = agent("config")
    assert sample.returncode == 0, sample.stderr
    config = tmp_path / "agent.toml"
    config.write_text(sample.stdout)
    result = agent("-config", str(config), "--test")
    assert result.returncode == 0, result.stderr
    measurements = {m["measurement"] for m in parsed_lines(result.stdout)}
    assert measurements >= {"cpu", "disk", "diskio", "kernel", "mem", "processes", "swap",
                            "system"}  # fmt: skip


def test_full_sample_config_comments_out_the_plugins_not_on_by_default():
    result = agent("config")
    exec_sample = registry.lookup("inputs", "exec").SAMPLE_CONFIG
    commented = "".join(f"# {line}".rstrip() + "\n" for line in exec_sample.splitlines())
    assert "\n" + commented in result.stdout
    for plugin in ("inputs.exec", "inputs.file", "inputs.internal", "inputs.net", "outputs.file"):
        assert f"\n# [[{plugin}]]\n" in result.stdout and f"\n[[{plugin}]]" not in result.stdout


def test_a_filter_prints_its_plugins_enabled_and_leaves_the_other_kind_as_by_default():
    result = agent("config", "--output-filter", "file")
    assert "\n[[outputs.file]]\n" in result.stdout and "outputs.kafka" not in result.stdout
    assert "\n[[inputs.cpu]]\n" in result.stdout and "\n# [[inputs.exec]]\n" in result.stdout


def test_sample_config_of_an_unknown_plugin_is_one_line_naming_it():
    result = agent("config", "--input-filter", "cpu:nope")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith('agent: --input-filter: unknown plugin "inputs.nope" ')
    assert result.stderr.count("\n") == 1


def test_input_filter_matching_no_configured_input_says_so_and_names_them():
    result = agent("-config", str(DEFAULT), "--test", "--input-filter", "disk")
    assert result.returncode == 1
    assert result.stderr == (
        "agent: --input-filter disk matched none of the inputs configured in "
        f"{DEFAULT} (cpu, mem)\n"
    )


def test_readme_command_line_table_has_every_flag():
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    names = [action.dest.replace("_", "-") for action in run_parser()._actions]
    for name in names:  # written with one dash or two: `-config FILE`, `--test`
        if name != "help":
            assert re.search(rf"`--?{name}[` ]", table), name


def test_unwritable_buffer_directory_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nbuffer_strategy = "disk"\nbuffer_directory = "{blocker}/buffer"\n'
        "[[inputs.mem]]\n[[outputs.file]]\n"
    )
    result = agent("-config", str(config), "--once")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot open the disk buffer" in result.stderr and "Traceback" not in result.stderr
