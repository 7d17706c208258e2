"""inputs.exec: commands run in parallel at every gather; one that fails, hangs or prints
garbage is reported by name and costs none of the others' metrics; a hung one is killed with
its children and reaped."""

from __future__ import annotations

import logging
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from agent.config import ConfigError, load
from agent.running import RunningInput

T1 = 1_700_000_000_000_000_000


def script(directory: Path, name: str, body: str) -> Path:
    """An executable shell script in `directory`."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def running_exec_input(tmp_path: Path, options: str) -> RunningInput:
    """inputs.exec built from a config table, as the agent builds it (parser included)."""
    config_path = tmp_path / "agent.toml"
    config_path.write_text("[[inputs.exec]]\n" + textwrap.dedent(options))
    (entry,) = load([config_path]).inputs
    return RunningInput(entry.plugin, entry.settings, {}, precision_ns=1)


def is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, waiting for its parent to reap it) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until_dead(pid: int, timeout_s: float = 30.0) -> bool:
    """True once `pid` is gone. The timeout only ends the wait for a process that is never
    killed; how soon a killed one goes is not asserted (a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_command_that_prints_line_protocol_gives_its_metrics(tmp_path):
    ok = script(tmp_path, "ok.sh", f'echo "disk,mount=/ used=12i {T1}"\necho "load v=0.5 {T1}"\n')
    running = running_exec_input(tmp_path, f'commands = ["{ok}"]\ndata_format = "influx"\n')
    metrics = running.gather()
    assert [(m.name, m.tags, m.fields, m.time_ns) for m in metrics] == [
        ("disk", {"mount": "/"}, {"used": 12}, T1),
        ("load", {}, {"v": 0.5}, T1),
    ]
    assert running.stats.errors == 0


def test_a_failing_command_is_logged_with_its_last_stderr_line_and_the_others_still_arrive(
    tmp_path, caplog
):
    ok = script(tmp_path, "ok.sh", f'echo "ok v=1i {T1}"\n')
    fails = script(
        tmp_path,
        "fails.sh",
        f"""\
        echo "partial v=1i {T1}"
        echo "starting" >&2
        echo "cannot open /dev/sensor0" >&2
        exit 1
        """,
    )
    running = running_exec_input(
        tmp_path, f'commands = ["{fails}", "{ok}"]\ndata_format = "influx"\n'
    )
    with caplog.at_level(logging.ERROR):
        assert [m.name for m in running.gather()] == ["ok"]
    assert running.stats.errors == 1
    (record,) = caplog.records
    assert record.name == "inputs.exec"
    assert record.getMessage().endswith(
        f'command "{fails}": exit status 1: cannot open /dev/sensor0'
    )


def test_a_command_past_its_timeout_is_killed_with_its_children_and_reaped(
    tmp_path, caplog, monkeypatch
):
    signals_sent = []
    killpg = os.killpg

    def recording_killpg(pgid: int, sig: int) -> None:
        signals_sent.append(sig)
        killpg(pgid, sig)

    monkeypatch.setattr("plugins.inputs.exec.os.killpg", recording_killpg)
    pids = tmp_path / "pids"
    slow = script(
        tmp_path,
        "slow.sh",
        f"""\
        sleep 30 &
        echo "$$ $!" > {pids}
        echo "slow v=1i {T1}"
        sleep 30
        """,
    )
    ok = script(tmp_path, "ok.sh", f'echo "ok v=1i {T1}"\n')
    running = running_exec_input(
        tmp_path, f'commands = ["{slow}", "{ok}"]\ntimeout = "0.5s"\ndata_format = "influx"\n'
    )
    with caplog.at_level(logging.ERROR):
        assert [m.name for m in running.gather()] == ["ok"]
    assert signals_sent == [signal.SIGTERM]  # SIGTERM ended it; no SIGKILL was needed
    script_pid, child_pid = map(int, pids.read_text().split())
    assert wait_until_dead(child_pid), "the command's child outlived it"
    with pytest.raises(ChildProcessError):  # already reaped: no zombie left behind
        os.waitpid(script_pid, os.WNOHANG)
    assert f'command "{slow}": timed out after 0.5s' in caplog.text
    assert running.stats.errors == 1


def test_a_command_that_ignores_sigterm_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr("plugins.inputs.exec.KILL_GRACE_S", 0.2)
    pids = tmp_path / "pids"
    stubborn = script(tmp_path, "stubborn.sh", f'trap "" TERM\necho $$ > {pids}\nsleep 30\n')
    running = running_exec_input(tmp_path, f'commands = ["{stubborn}"]\ntimeout = "0.3s"\n')
    assert running.gather() == []
    with pytest.raises(ChildProcessError):
        os.waitpid(int(pids.read_text()), os.WNOHANG)
    assert running.stats.errors == 1


def test_environment_entries_are_added_to_the_agents_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_AGENT", "kept")
    env = script(tmp_path, "env.sh", f'echo "env,a=$FROM_AGENT,b=$ZONE,c=$HOME v=1i {T1}"\n')
    running = running_exec_input(
        tmp_path,
        f"""\
        commands = ["{env}"]
        environment = ["ZONE=eu-west", "HOME=/elsewhere"]
        data_format = "influx"
        """,
    )
    (metric,) = running.gather()
    assert metric.tags == {"a": "kept", "b": "eu-west", "c": "/elsewhere"}


def test_a_command_that_does_not_exist_is_named_and_the_others_still_arrive(tmp_path, caplog):
    ok = script(tmp_path, "ok.sh", f'echo "ok v=1i {T1}"\n')
    running = running_exec_input(
        tmp_path,
        f'commands = ["no-such-command-here --flag", "{tmp_path}/missing.sh", "{ok}"]\n'
        'data_format = "influx"\n',
    )
    with caplog.at_level(logging.ERROR):
        assert [m.name for m in running.gather()] == ["ok"]
    assert running.stats.errors == 2
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].endswith(
        'command "no-such-command-here --flag": cannot run no-such-command-here: not found in PATH'
    )
    assert messages[1].endswith(
        f'command "{tmp_path}/missing.sh": cannot run {tmp_path}/missing.sh: '
        "No such file or directory"
    )


def test_garbage_output_is_reported_by_line_and_column_and_the_good_lines_kept(tmp_path, caplog):
    mixed = script(
        tmp_path, "mixed.sh", f'echo "a v=1i {T1}"\necho "garbage here"\necho "b v=2i {T1}"\n'
    )
    running = running_exec_input(tmp_path, f'commands = ["{mixed}"]\ndata_format = "influx"\n')
    with caplog.at_level(logging.ERROR):
        assert [m.name for m in running.gather()] == ["a", "b"]
    assert f"command \"{mixed}\" output:2:13: expected '=' after field key: 'garbage here'" in (
        caplog.text
    )
    assert running.stats.errors == 1


def test_commands_run_at_the_same_time(tmp_path):
    # Each waits for the other's mark: run one after the other, the first would time out.
    commands = []
    for me, other in (("a", "b"), ("b", "a")):
        waiter = script(
            tmp_path,
            f"{me}.sh",
            f"""\
            touch {tmp_path}/{me}.mark
            while [ ! -e {tmp_path}/{other}.mark ]; do sleep 0.01; done
            echo "{me} v=1i {T1}"
            """,
        )
        commands.append(f'"{waiter}"')
    running = running_exec_input(
        tmp_path, f'commands = [{", ".join(commands)}]\ntimeout = "2s"\ndata_format = "influx"\n'
    )
    assert [m.name for m in running.gather()] == ["a", "b"]


def test_a_glob_in_the_program_path_runs_every_match_with_the_arguments(tmp_path):
    for name in ("one", "two"):
        script(tmp_path, f"probe-{name}.sh", f'echo "{name} first=\\"$1\\",count=$#i {T1}"\n')
    running = running_exec_input(
        tmp_path, f'commands = ["{tmp_path}/probe-*.sh \'x y\' z"]\ndata_format = "influx"\n'
    )
    assert [(m.name, m.fields) for m in running.gather()] == [
        ("one", {"first": "x y", "count": 2}),
        ("two", {"first": "x y", "count": 2}),
    ]


def test_ignore_error_parses_the_output_of_a_failing_command(tmp_path):
    fails = script(tmp_path, "fails.sh", f'echo "partial v=1i {T1}"\nexit 2\n')
    running = running_exec_input(
        tmp_path, f'commands = ["{fails}"]\nignore_error = true\ndata_format = "influx"\n'
    )
    assert [m.name for m in running.gather()] == ["partial"]
    assert running.stats.errors == 0


def test_json_is_the_default_data_format_as_in_telegraf(tmp_path):
    json = script(
        tmp_path,
        "json.sh",
        """echo '{"fields":{"v":1.5},"name":"j","tags":{"t":"x"},"timestamp":1700000000}'\n""",
    )
    running = running_exec_input(tmp_path, f'commands = ["{json}"]\n')
    assert [(m.name, m.tags, m.fields, m.time_ns) for m in running.gather()] == [
        ("j", {"t": "x"}, {"v": 1.5}, T1)
    ]


@pytest.mark.parametrize(
    "options, expected, line",
    [
        ('commands = ["echo \'unclosed"]', "commands: cannot split", 1),
        ('environment = ["NOVALUE"]', 'environment: expected "KEY=value"', 1),
        # A value of the wrong kind is found on its own line; the checks above, on the table.
        ('timeout = "0s"', "timeout: expected a duration greater than zero", 2),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(tmp_path, options, expected, line):
    with pytest.raises(ConfigError, match=expected) as caught:
        running_exec_input(tmp_path, options + "\n")
    assert str(caught.value).startswith(f"{tmp_path / 'agent.toml'}:{line}: inputs.exec: ")
