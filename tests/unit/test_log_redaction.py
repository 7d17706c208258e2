"""Log lines write `${NAME}` where a value substituted from the environment would appear."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from agent import envvars, logs, secret_values

ENV = {
    "OUT": "/srv/secret-metrics.lp",
    "BRK": "kafka-secret:9092",
    "BRK_HOST": "kafka-secret",
    "DC": "secret-dc",
    "PORT": "80",
    "ZONE": "secret-zone",
}


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh record of environment values, filled as reading a config fills it."""
    monkeypatch.setattr(secret_values, "_recorded", secret_values.EnvironmentValues())
    envvars.substitute(
        "out = '${OUT}'\nbrokers = ['$BRK']\nhost = '${BRK_HOST}'\ndc = '${DC:-eu-1}'\n"
        "port = '${PORT}'\n",
        "agent.toml",
        ENV,
    )


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose handler has the filter, and what the handler wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))  # prints exception text too
    handler.addFilter(logs.HideEnvironmentValues())
    logger = logging.getLogger("tests.log_redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def test_message_arguments_from_the_environment_are_written_as_variable_names(logged):
    log, stream = logged
    log.error("Write failed: cannot open %s: %s", ENV["OUT"], "No such file or directory")
    assert stream.getvalue() == "Write failed: cannot open ${OUT}: No such file or directory\n"


def test_exception_text_hides_environment_values(logged):
    log, stream = logged
    try:
        raise ConnectionError(f"cannot reach {ENV['BRK']}")
    except ConnectionError:
        log.exception("flush failed")
    text = stream.getvalue()
    assert "ConnectionError: cannot reach ${BRK}" in text
    assert "kafka-secret" not in text


def test_two_variables_in_one_line_are_both_hidden(logged):
    log, stream = logged
    log.info("Tags on every metric: dc=%s file=%s", ENV["DC"], ENV["OUT"])
    assert stream.getvalue() == "Tags on every metric: dc=${DC} file=${OUT}\n"


def test_a_value_that_appears_twice_is_hidden_both_times(logged):
    log, stream = logged
    log.warning(f"DNS lookup failed for {ENV['BRK']}; bootstrap from ['{ENV['BRK']}']")
    assert stream.getvalue() == "DNS lookup failed for ${BRK}; bootstrap from ['${BRK}']\n"


def test_a_value_holding_another_value_is_hidden_as_a_whole(logged):
    log, stream = logged
    log.warning("broker %s, host %s", ENV["BRK"], ENV["BRK_HOST"])
    assert stream.getvalue() == "broker ${BRK}, host ${BRK_HOST}\n"


def test_values_shorter_than_four_characters_are_left_alone(logged):
    log, stream = logged
    log.info("listening on port %s of %s", ENV["PORT"], ENV["BRK_HOST"])
    assert stream.getvalue() == "listening on port 80 of ${BRK_HOST}\n"


def test_defaults_written_in_the_config_are_not_hidden(logged):
    envvars.substitute("zone = '${UNSET_ZONE:-eu-west-default}'\n", "agent.toml", ENV)
    log, stream = logged
    log.info("zone eu-west-default, dc %s", ENV["DC"])
    assert stream.getvalue() == "zone eu-west-default, dc ${DC}\n"


def test_values_read_after_logging_started_are_hidden_too(logged):
    """A SIGHUP reload reads the config again, with variables the first one did not use."""
    log, stream = logged
    log.info("Tags on every metric: dc=%s", ENV["DC"])
    envvars.substitute("zone = '${ZONE}'\n", "agent.toml", ENV)
    log.info("Tags on every metric: dc=%s zone=%s", ENV["DC"], ENV["ZONE"])
    assert stream.getvalue().splitlines()[-1] == "Tags on every metric: dc=${DC} zone=${ZONE}"


def test_setup_hides_values_in_the_logfile(tmp_path):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logfile = tmp_path / "agent.log"
    try:
        logs.setup(logfile=str(logfile))
        logging.getLogger("outputs.file").error("cannot open %s", ENV["OUT"])
        for handler in root.handlers:
            handler.close()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert logfile.read_text().endswith(" E! [outputs.file] cannot open ${OUT}\n")
