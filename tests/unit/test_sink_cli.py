"""`agent sink` flags and config file: every mistake is one line on stderr and exit status 1."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from agent.errors import LONGEST_MESSAGE_CHARS
from agent.sink.cli import main
from agent.sink.settings import SettingsError, load
from tests.conftest import REPO


def error_line(capsys, *argv: str) -> str:
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("agent sink: ")
    return lines[0]


def write(tmp_path, text: str):
    path = tmp_path / "sink.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--topic", "m", "--max-messages", "x"], "invalid int value: 'x'"),
        (["--topic", "m", "--format", "xml"], "invalid choice: 'xml'"),
        (["--topic", "m", "--data-format", "csv"], "invalid choice: 'csv'"),
        (["--topic", "m", "--store", "mysql://x"], 'expected "sqlite:PATH", "postgresql://'),
        (["--topic", "m", "--max-messages", "-1"], "--max-messages: must not be negative"),
        (["--topic", "m", "--flush-interval", "soon"], '"soon" is not a duration'),
        (["--topic", "m", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "no topic: pass --topic NAME"),
        (["lag"], "no group: pass --group NAME"),
        (["reset", "--group", "g"], "one of the arguments"),
        (["reset", "--group", "g", "--to-earliest", "--to-latest"], "not allowed with"),
        (["-config", "/nonexistent/sink.toml"], "/nonexistent/sink.toml: cannot read config file"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_1(capsys, argv, expected):
    assert expected in error_line(capsys, *argv)


def test_an_unknown_config_option_names_file_line_and_a_close_match(capsys, tmp_path):
    path = write(
        tmp_path,
        """\
        brokers = ["127.0.0.1:9092"]
        topics = ["metrics"]
        gruop = "sink"
    """,
    )
    line = error_line(capsys, "-config", str(path))
    assert line == f'agent sink: {path}:3: sink: unknown option "gruop" (did you mean "group"?)'


def test_a_wrong_type_in_the_config_names_file_line_and_option(capsys, tmp_path):
    path = write(
        tmp_path,
        """\
        topics = ["metrics"]

        max_messages = "ten"
    """,
    )
    line = error_line(capsys, "-config", str(path))
    assert line == f"agent sink: {path}:3: sink: max_messages: expected an integer, got 'ten'"


def test_a_flush_interval_of_zero_is_refused_with_its_line(capsys, tmp_path):
    path = write(tmp_path, 'topics = ["metrics"]\nflush_interval = "0s"\n')
    line = error_line(capsys, "-config", str(path))
    assert line == (
        f"agent sink: {path}:2: sink: flush_interval: expected a duration greater than zero, "
        "such as \"10s\", got '0s'"
    )


def test_a_toml_syntax_error_names_line_and_column(capsys, tmp_path):
    path = write(tmp_path, 'topics = ["metrics"]\ngroup = = "x"\n')
    assert error_line(capsys, "-config", str(path)).startswith(f"agent sink: {path}:2:")


def test_flags_override_the_config_file(tmp_path):
    path = write(
        tmp_path,
        """\
        brokers = ["b1:9092", "b2:9092"]
        topic = "from-file"
        group = "file-group"
        max_messages = 5
        store = "sqlite:/tmp/x.db"
    """,
    )
    settings = load(str(path), {"max_messages": 7, "topics": ["flag-topic"], "topic": ""})
    assert settings.brokers == ["b1:9092", "b2:9092"]
    assert settings.topics == ["flag-topic"]
    assert (settings.group, settings.max_messages) == ("file-group", 7)
    assert settings.store == "sqlite:/tmp/x.db"
    assert not settings.prints  # a store without a named format prints nothing


def test_the_shipped_sink_config_loads():
    settings = load(str(REPO / "conf" / "sink.toml"), {})
    assert settings.topics == ["metrics"]
    assert settings.group
    assert settings.store.startswith("sqlite:")


def test_settings_error_for_a_table_in_the_config(tmp_path):
    path = write(tmp_path, "topics = ['m']\n[sink]\ngroup = 'x'\n")
    with pytest.raises(SettingsError, match=r":2: sink: unknown table"):
        load(str(path), {})


def test_agent_sink_is_a_subcommand_of_agent_and_never_prints_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "agent", "sink", "--topic", "m", "--timeout-ms", "nope"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "agent sink: argument -timeout-ms/--timeout-ms: invalid int value: 'nope'"
    ]


@pytest.mark.parametrize(
    "nested", ["[" * 500 + "]" * 500, "{ a = " * 500 + "1" + " }" * 500], ids=["array", "table"]
)
def test_a_config_value_nested_500_deep_is_one_line(capsys, tmp_path, nested):
    path = write(tmp_path, f'topics = ["m"]\nbrokers = {nested}\n')
    assert error_line(capsys, "-config", str(path)) == (
        f"agent sink: {path}:2: arrays or inline tables nested more than 100 deep"
    )


LONG_CHARS = 2_000_000


def test_a_long_config_value_is_cut_in_the_error_line(capsys, tmp_path):
    path = write(tmp_path, f'topics = ["m"]\nformat = "{"x" * LONG_CHARS}"\n')
    line = error_line(capsys, "-config", str(path))
    assert line.startswith(f"agent sink: {path}:2: sink: format: expected one of")
    assert "got 'xxxx" in line and "characters left out" in line
    assert len(line) <= LONGEST_MESSAGE_CHARS + 50


def test_a_long_unknown_config_key_is_cut_in_the_error_line(capsys, tmp_path):
    path = write(tmp_path, f'topics = ["m"]\n{"k" * LONG_CHARS} = 1\n')
    line = error_line(capsys, "-config", str(path))
    assert line.startswith(f'agent sink: {path}:2: sink: unknown option "kkkk')
    assert "characters left out" in line
    assert len(line) <= LONGEST_MESSAGE_CHARS + 50


def test_each_worker_runs_the_same_flags_with_workers_1():
    from agent.sink.workers import worker_argv

    argv = ["--topic", "m", "--workers", "3", "--group", "g", "--workers=2", "-workers", "4"]
    assert worker_argv(argv)[4:] == ["--topic", "m", "--group", "g", "--workers", "1"]


def test_several_workers_need_a_group(capsys):
    assert "--workers: several workers share partitions in a group" in error_line(
        capsys, "--topic", "m", "--workers", "2"
    )
