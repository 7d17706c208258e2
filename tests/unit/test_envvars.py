"""Environment variables in config files, substituted in the raw text as Telegraf does."""

from __future__ import annotations

import textwrap

import pytest

from agent.config import ConfigError, load
from agent.envvars import reveals_environment, strip_comments, substitute

ENV = {"HOST": "kafka-1", "PORT": "9092", "EMPTY": "", "SECRET": "s3cr3t-value"}


def sub(text: str) -> str:
    return substitute(text, "agent.toml", ENV)


@pytest.mark.parametrize(
    ("written", "result"),
    [
        ("a = '$HOST:$PORT'", "a = 'kafka-1:9092'"),
        ("a = '${HOST}x'", "a = 'kafka-1x'"),
        ("a = '$UNSET ${UNSET}'", "a = '$UNSET ${UNSET}'"),  # unset: left as written
        ("a = '${UNSET:-dflt} ${EMPTY:-dflt} ${HOST:-dflt}'", "a = 'dflt dflt kafka-1'"),
        ("a = '${UNSET-dflt} ${EMPTY-dflt}'", "a = 'dflt '"),  # `-`: only unset falls back
        ("a = '${HOST:+on} ${EMPTY:+on} ${EMPTY+on} ${UNSET+on}'", "a = 'on  on '"),
        ("a = '${UNSET:-${HOST}:${PORT}}'", "a = 'kafka-1:9092'"),  # defaults hold variables
        ("a = 'cost $$5'", "a = 'cost $5'"),
        ("a = '^${1}x$'", "a = '^${1}x$'"),  # a regular expression survives
        ("a = '${HOST.x} $ 5'", "a = '${HOST.x} $ 5'"),
    ],
)
def test_references_are_replaced_as_telegraf_replaces_them(written, result):
    assert sub(written) == result


def test_required_variable_that_is_unset_is_an_error_naming_file_line_and_message():
    text = '[agent]\n\nhostname = "${NODE_NAME:?set NODE_NAME to the node}"\n'
    with pytest.raises(ConfigError) as caught:
        sub(text)
    assert str(caught.value) == (
        "agent.toml:3: environment variable NODE_NAME is not set: set NODE_NAME to the node"
    )


def test_colon_question_mark_also_refuses_an_empty_value_but_question_mark_does_not():
    with pytest.raises(ConfigError, match="agent.toml:1: environment variable EMPTY is empty"):
        sub("a = '${EMPTY:?needed}'")
    assert sub("a = '${EMPTY?needed}'") == "a = ''"
    with pytest.raises(ConfigError, match="UNSET is not set: needed$"):
        sub("a = '${UNSET?needed}'")


def test_comments_are_removed_first_so_references_in_them_do_nothing():
    text = "# ${UNSET:?never read}\na = 1 # $HOST ${UNSET:?nor this}\nb = '#$HOST' # x\n"
    assert sub(text) == "\na = 1 \nb = '#kafka-1' \n"


def test_strings_keep_their_hash_signs_and_line_breaks_stay_in_place():
    text = textwrap.dedent('''\
        a = "x # not a comment \\" still # in" # gone
        b = """multi
        line # kept""" # gone
        c = \'\'\'lit # kept\'\'\' # gone
        d = 'it # kept' # gone
        ''')
    assert strip_comments(text) == textwrap.dedent('''\
        a = "x # not a comment \\" still # in"\x20
        b = """multi
        line # kept"""\x20
        c = \'\'\'lit # kept\'\'\'\x20
        d = 'it # kept'\x20
        ''')


def test_values_substituted_are_remembered_as_secrets():
    sub("a = '$SECRET'")
    assert reveals_environment("got 's3cr3t-value'")
    assert not reveals_environment("got 'something else'")


def test_config_files_take_variables_also_outside_strings(tmp_path, monkeypatch):
    monkeypatch.setenv("PERCPU", "false")
    monkeypatch.setenv("DC", "eu-1")
    path = tmp_path / "agent.toml"
    path.write_text('[[inputs.cpu]]\npercpu = ${PERCPU}\n[inputs.cpu.tags]\ndc = "$DC"\n')
    (entry,) = load([path]).inputs
    assert entry.plugin.percpu is False
    assert entry.settings.tags == {"dc": "eu-1"}


def test_a_wrong_value_from_the_environment_is_not_quoted_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_TEST_SECRET", "hunter2-do-not-print")
    path = tmp_path / "agent.toml"
    path.write_text('[agent]\ninterval = "$AGENT_TEST_SECRET"\n[[inputs.cpu]]\n'
                    'percpu = "${AGENT_TEST_SECRET}"\n')  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load([path])
    assert "hunter2" not in str(caught.value)
    assert "agent.toml:2: agent: interval: expected a duration" in str(caught.value)
    assert "a value from the environment (not shown)" in str(caught.value)
