"""Config conveniences of the `agent` command: --config-directory, environment variables in
config values (never echoed), --list-plugins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SECRET = "hunter2-must-not-appear"


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_config_directory_adds_its_conf_and_toml_files_in_name_order(tmp_path):
    main = tmp_path / "agent.toml"
    main.write_text("[agent]\nomit_hostname = true\n")
    directory = tmp_path / "agent.d"
    directory.mkdir()
    (directory / "20-mem.toml").write_text("[[inputs.mem]]\n")
    (directory / "10-tags.conf").write_text('[global_tags]\ndc = "eu-1"\n')
    (directory / "30-cpu.toml.disabled").write_text("[[inputs.cpu]]\n")
    result = agent("-config", str(main), "--config-directory", str(directory), "--test")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()  # mem only: the .disabled file is not read
    assert line.startswith("mem,dc=eu-1 ")


def test_config_directory_that_is_not_a_directory_is_one_line(tmp_path):
    main = tmp_path / "agent.toml"
    main.write_text("[[inputs.mem]]\n")
    result = agent("-config", str(main), "--config-directory", str(tmp_path / "nope"), "--test")
    assert result.returncode == 1
    assert result.stderr == f"agent: --config-directory {tmp_path / 'nope'}: not a directory\n"


def test_environment_variables_fill_config_values(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text(
        '[global_tags]\nrack = "${RACK}"\n[agent]\nomit_hostname = ${OMIT}\n[[inputs.mem]]\n'
        "# ${UNSET_IN_A_COMMENT:?comments are not read}\n"
    )
    result = agent("-config", str(config), "--test", env={"RACK": "r7", "OMIT": "true"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mem,rack=r7 ")


BROKEN_WITH_SECRET = {
    "toml syntax": '[agent]\nhostname = "${AGENT_SECRET}\n[[inputs.mem]]\n',
    "wrong type": '[[inputs.cpu]]\npercpu = "${AGENT_SECRET}"\n',
    "bad duration": '[agent]\ninterval = "$AGENT_SECRET"\n[[inputs.mem]]\n',
    "bare value": "[[inputs.cpu]]\npercpu = ${AGENT_SECRET}\n",
}


@pytest.mark.parametrize("case", BROKEN_WITH_SECRET)
def test_a_broken_config_never_echoes_a_value_from_the_environment(tmp_path, case):
    config = tmp_path / "broken.toml"
    config.write_text(BROKEN_WITH_SECRET[case])
    result = agent("-config", str(config), "--test", env={"AGENT_SECRET": SECRET})
    assert result.returncode == 1
    assert result.stderr.startswith(f"agent: {config}:") and result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr + result.stdout


def test_a_required_variable_that_is_unset_is_one_line_naming_it(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('[[inputs.mem]]\n[inputs.mem.tags]\nzone = "${ZONE:?set the zone}"\n')
    env = {key: value for key, value in os.environ.items() if key != "ZONE"}
    result = subprocess.run(
        [sys.executable, "-m", "agent", "-config", str(config), "--test"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"agent: {config}:3: environment variable ZONE is not set: set the zone\n"
    )


def test_list_plugins_prints_every_registered_plugin_by_kind():
    result = agent("--list-plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected_inputs = ["cpu", "disk", "diskio", "kernel", "mem", "net", "processes", "swap",
                       "system"]  # fmt: skip
    assert {f"inputs.{name}" for name in expected_inputs} <= set(lines)
    assert {"outputs.kafka", "outputs.file", "serializers.influx", "serializers.json"} <= set(lines)
    kinds = [line.split(".")[0] for line in lines]
    assert kinds == sorted(kinds, key=["inputs", "outputs", "serializers", "parsers"].index)


def test_sample_config_has_every_host_inputs_own_sample():
    result = agent("config")
    assert result.returncode == 0, result.stderr
    for name in ("system", "disk", "diskio", "swap", "processes", "kernel"):
        assert f"\n[[inputs.{name}]]\n" in result.stdout
    assert "\n# [[inputs.net]]\n" in result.stdout  # off in Telegraf's sample too
