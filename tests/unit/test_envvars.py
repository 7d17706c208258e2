"""Environment variables in config files, substituted in the raw text as Telegraf does."""

from __future__ import annotations

import textwrap

import pytest

from agent import secret_values
from agent.cli import main as agent_main
from agent.config import ConfigError, load
from agent.envvars import strip_comments, substitute
from agent.secret_values import reveals_environment
from agent.sink.cli import main as sink_main
from agent.sink.settings import load as load_sink
from agent.toml_text import tomllib


@pytest.fixture(autouse=True)
def fresh_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values recorded here stay here: a test elsewhere may quote the same words."""
    monkeypatch.setattr(secret_values, "_recorded", secret_values.EnvironmentValues())


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


# Characters that would end a string, start an escape or a new key if pasted into TOML.
AWKWARD_VALUES = [
    'pa"ss',
    "back\\slash\\",
    "it's",
    "two\nlines",
    'x"\ngroup = "injected-group',
    "tab\there, bell\x07, escape\x1b[2J, del\x7f",
    "'''\"\"\"",
    "ünïcödé ✓",
]
STRING_FORMS = ['"{}"', "'{}'", '"""{}"""', "'''{}'''"]


@pytest.mark.parametrize("value", AWKWARD_VALUES)
@pytest.mark.parametrize("form", STRING_FORMS)
def test_a_value_inside_quotes_becomes_exactly_that_strings_content(value, form):
    text = f"a = {form.format('<${VALUE}>')}\nb = 1\n"
    substituted = substitute(text, "agent.toml", {"VALUE": value})
    assert tomllib.loads(substituted) == {"a": f"<{value}>", "b": 1}
    assert substituted.count("\n") == text.count("\n")  # line numbers hold


WRITTEN_AROUND = r"C:\\dir ${VALUE} ${UNSET:-d\\f} $$5"


@pytest.mark.parametrize(
    ("form", "content"),
    [('"{}"', r"C:\dir it's d\f $5"), ("'{}'", r"C:\\dir it's d\\f $5"),
     ('"""{}"""', r"C:\dir it's d\f $5"), ("'''{}'''", r"C:\\dir it's d\\f $5")],
)  # fmt: skip
def test_text_written_around_a_value_keeps_its_meaning(form, content):
    text = f"a = {form.format(WRITTEN_AROUND)}\n"
    substituted = substitute(text, "agent.toml", {"VALUE": "it's"})
    assert tomllib.loads(substituted) == {"a": content}


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("false", False), ("42", 42), ("-1.5e3", -1500.0), ('"eu-1"', "eu-1"),
     ('["a:9092", "b:9092"]', ["a:9092", "b:9092"]), ("{ x = 1 } # c", {"x": 1})],
)  # fmt: skip
def test_a_value_outside_quotes_may_be_one_toml_value(value, parsed):
    substituted = substitute("a = ${VALUE}\nb = 1\n", "agent.toml", {"VALUE": value})
    assert tomllib.loads(substituted) == {"a": parsed, "b": 1}


@pytest.mark.parametrize(
    "value",
    ["yes", "", "1, b = 2", 'true\ngroup = "injected"', "1 ]", "[" * 500 + "]" * 500, "two words"],
)
def test_a_value_outside_quotes_that_is_not_one_toml_value_is_an_error_naming_the_variable(
    value,
):
    with pytest.raises(ConfigError) as caught:
        substitute("[agent]\npercpu = ${PERCPU}\n", "agent.toml", {"PERCPU": value})
    message = str(caught.value)
    assert message.startswith("agent.toml:2: environment variable PERCPU is not one TOML value")
    assert '"${PERCPU}"' in message
    if value:
        assert value not in message


def test_a_password_cannot_set_another_option_of_the_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_PASSWORD", 'x"\ntopic = "injected-topic')
    path = tmp_path / "agent.toml"
    path.write_text(
        '[[inputs.mem]]\n[[outputs.kafka]]\nsasl_username = "u"\n'
        'sasl_password = "${KAFKA_PASSWORD}"\n'
    )
    kafka = load([path]).outputs[0].plugin
    assert kafka.topic == "telegraf"
    assert kafka.sasl_password == 'x"\ntopic = "injected-topic'


def test_a_password_cannot_set_the_group_of_the_sink(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_PASSWORD", 'x"\ngroup = "injected-group')
    path = tmp_path / "sink.toml"
    path.write_text('topic = "m"\nsasl_username = "u"\nsasl_password = "${KAFKA_PASSWORD}"\n')
    settings = load_sink(str(path), {})
    assert settings.group == ""
    assert settings.sasl_password == 'x"\ngroup = "injected-group'


SASL_BY_ENVIRONMENT = 'sasl_username = "u"\nsasl_mechanism = "${KAFKA_PASSWORD}"\n'


def test_an_agent_error_shows_the_variable_where_its_value_would_be(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_PASSWORD", "Zq7SuperSecretPw")
    path = tmp_path / "agent.toml"
    path.write_text("[[inputs.mem]]\n[[outputs.kafka]]\n" + SASL_BY_ENVIRONMENT)
    assert agent_main(["-config", str(path), "--once"]) == 1
    stderr = capsys.readouterr().err
    assert 'sasl_mechanism: "${KAFKA_PASSWORD}" is not supported' in stderr
    assert "Zq7SuperSecretPw" not in stderr


def test_a_sink_error_shows_the_variable_where_its_value_would_be(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_PASSWORD", "Zq7SuperSecretPw")
    path = tmp_path / "sink.toml"
    path.write_text('topic = "m"\n' + SASL_BY_ENVIRONMENT)
    assert sink_main(["-config", str(path)]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"agent sink: {path}:3: sink: sasl_mechanism: ")
    assert '"${KAFKA_PASSWORD}" is not supported' in stderr
    assert "Zq7SuperSecretPw" not in stderr
