"""The `agent` command as a user runs it: a real process, its stdout, stderr and exit status."""

from __future__ import annotations

import subprocess
import sys

import pytest
from line_protocol_parser import parse_line

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
