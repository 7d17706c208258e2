"""Configuration: Telegraf's layout loads; every mistake is one line naming file, line, option."""

from __future__ import annotations

import re
import string
import textwrap
import tracemalloc

import pytest

from agent.cli import main as agent_main
from agent.config import ConfigError, load
from agent.errors import LONGEST_MESSAGE_CHARS
from agent.options import parse_duration
from tests.conftest import REPO


def write(tmp_path, text: str):
    path = tmp_path / "agent.toml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load([write(tmp_path, text)])
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_seed_telegraf_conf_loads_unchanged():
    config = load([REPO / "conf/examples/seed-telegraf.conf"])
    assert [entry.name for entry in config.inputs] == ["cpu", "mem"]
    assert config.inputs[0].settings.fielddrop == ["time_*"]
    kafka = config.outputs[0].plugin
    assert kafka.brokers == ["127.0.0.1:9092"]
    assert kafka.topic == "my-computer-metric"
    assert config.agent.interval == 10.0


def test_default_config_loads():
    config = load([REPO / "conf/agent.toml"])
    assert [entry.name for entry in config.inputs] == ["cpu", "mem"]
    assert [entry.name for entry in config.outputs] == ["kafka"]
    assert config.outputs[0].plugin.topic == "metrics"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("500ms", 0.5), ("1m", 60), ("1m30s", 90), ("1.5h", 5400), ("2us", 2e-6),
     ("", 0), ("10", 10)],
)  # fmt: skip
def test_durations_are_read_as_telegraf_writes_them(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_agent_settings_take_telegraf_names(tmp_path):
    config = load([write(tmp_path, """
        [global_tags]
          dc = "eu-1"
        [agent]
          interval = "1s"
          round_interval = false
          flush_interval = "500ms"
          metric_batch_size = 10
          metric_buffer_limit = 100
          precision = "1ms"
          hostname = "box"
          omit_hostname = false
        [[inputs.mem]]
    """)])  # fmt: skip
    agent = config.agent
    assert (agent.interval, agent.flush_interval, agent.precision) == (1.0, 0.5, 0.001)
    assert (agent.metric_batch_size, agent.metric_buffer_limit) == (10, 100)
    assert config.default_tags() == {"dc": "eu-1", "host": "box"}


def test_omit_hostname_leaves_out_the_host_tag(tmp_path):
    config = load([write(tmp_path, "[agent]\nomit_hostname = true\n[[inputs.mem]]\n")])
    assert "host" not in config.default_tags()


def test_a_telegraf_generated_agent_section_loads_with_its_values_applied(tmp_path):
    # `telegraf config`'s [agent] table, every key it writes, with the values a user edits
    # set away from their defaults so that a value left unread shows.
    config = load([write(tmp_path, """
        [agent]
          interval = "7s"
          round_interval = false
          metric_batch_size = 500
          metric_buffer_limit = 5000
          collection_jitter = "1s"
          collection_offset = "2s"
          flush_interval = "20s"
          flush_jitter = "3s"
          precision = "1ms"
          debug = true
          quiet = false
          logtarget = "file"
          logfile = ""
          logfile_rotation_interval = "0h"
          logfile_rotation_max_size = "0MB"
          logfile_rotation_max_archives = 5
          log_with_timezone = ""
          hostname = "box"
          omit_hostname = false
          skip_processors_after_aggregators = false
        [[inputs.cpu]]
    """)])  # fmt: skip
    agent = config.agent
    assert (agent.interval, agent.round_interval) == (7.0, False)
    assert (agent.metric_batch_size, agent.metric_buffer_limit) == (500, 5000)
    assert (agent.collection_jitter, agent.collection_offset) == (1.0, 2.0)
    assert (agent.flush_interval, agent.flush_jitter) == (20.0, 3.0)
    assert agent.precision == pytest.approx(0.001)
    assert (agent.debug, agent.quiet, agent.logfile) == (True, False, "")
    assert config.default_tags() == {"host": "box"}
    assert [entry.name for entry in config.inputs] == ["cpu"]


def test_toml_syntax_error_names_file_line_and_column(tmp_path):
    message = error_of(tmp_path, '[agent]\ninterval = "10s\n')
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2:")
    assert "TOML syntax error" in message


def test_unknown_plugin_is_named_with_the_available_ones(tmp_path):
    message = error_of(tmp_path, "[[inputs.cpu]]\n[[inputs.nope]]\n")
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2:")
    assert '"inputs.nope"' in message and "cpu" in message


def test_unknown_option_names_line_and_suggests_the_close_one(tmp_path):
    message = error_of(tmp_path, "[[inputs.mem]]\n\n[[inputs.cpu]]\n  percpuu = true\n")
    assert message.startswith(f"{tmp_path / 'agent.toml'}:4:")
    assert 'unknown option "percpuu"' in message
    assert 'did you mean "percpu"' in message


def test_unknown_option_in_the_second_table_of_a_plugin_names_its_line(tmp_path):
    text = "[[inputs.cpu]]\n  percpu = true\n[[inputs.cpu]]\n  totalcpu = true\n  bogus = 1\n"
    assert error_of(tmp_path, text).startswith(f"{tmp_path / 'agent.toml'}:5:")


def test_wrong_type_says_what_was_expected(tmp_path):
    message = error_of(tmp_path, '[[inputs.cpu]]\n  percpu = "yes"\n')
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2:")
    assert "inputs.cpu: percpu: expected a boolean, got 'yes'" in message


def test_bad_duration_names_the_option(tmp_path):
    message = error_of(tmp_path, '[agent]\n  interval = "10 parsecs"\n[[inputs.cpu]]\n')
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2:")
    assert "interval" in message and '"10 parsecs" is not a duration' in message


def test_bad_option_value_checked_by_the_plugin(tmp_path):
    message = error_of(tmp_path, '[[outputs.kafka]]\n  compression_codec = "brotli"\n')
    assert message.startswith(f"{tmp_path / 'agent.toml'}:1:")
    assert 'unknown codec "brotli"' in message


def test_unknown_data_format_is_named(tmp_path):
    message = error_of(tmp_path, '[[outputs.file]]\n  data_format = "xml"\n')
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2:")
    assert 'unknown format "xml"' in message


def test_serializer_options_belong_to_the_chosen_format(tmp_path):
    config = load([write(tmp_path, '[[outputs.file]]\ndata_format = "json"\n'
                                   'json_timestamp_units = "1ms"\n')])  # fmt: skip
    assert config.outputs[0].plugin.serializer.json_timestamp_units == pytest.approx(0.001)
    message = error_of(tmp_path, '[[outputs.file]]\n  influx_sort_fields = "x"\n')
    assert "influx_sort_fields: expected a boolean" in message


def test_unknown_section_is_refused(tmp_path):
    assert 'unknown section "nonsense"' in error_of(tmp_path, "[nonsense]\na = 1\n")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load([tmp_path / "absent.toml"])


def test_later_files_add_plugins_and_override_agent_settings(tmp_path):
    first = tmp_path / "a.toml"
    first.write_text('[agent]\ninterval = "5s"\nhostname = "a"\n[[inputs.cpu]]\n')
    second = tmp_path / "b.toml"
    second.write_text('[agent]\nhostname = "b"\n[[inputs.mem]]\n')
    config = load([first, second])
    assert (config.agent.interval, config.agent.hostname) == (5.0, "b")
    assert [entry.name for entry in config.inputs] == ["cpu", "mem"]


def test_a_secret_option_of_the_wrong_type_is_named_but_its_value_never_shown(tmp_path):
    message = error_of(tmp_path, "[[outputs.kafka]]\n  sasl_password = 8675309\n")
    assert "sasl_password: expected a string" in message
    assert "8675309" not in message


def test_tls_files_that_cannot_be_loaded_are_a_config_error(tmp_path):
    message = error_of(tmp_path, f'[[outputs.kafka]]\n  tls_ca = "{tmp_path}/absent.pem"\n')
    assert "tls_ca" in message and "absent.pem" in message


def test_unsupported_sasl_mechanism_is_named(tmp_path):
    message = error_of(tmp_path, '[[outputs.kafka]]\n  sasl_mechanism = "GSSAPI"\n'
                                 '  sasl_username = "a"\n')  # fmt: skip
    assert 'sasl_mechanism: "GSSAPI" is not supported' in message


@pytest.mark.parametrize("option", ["interval", "flush_interval"])
@pytest.mark.parametrize("value", ['"0s"', '"-5s"', "0", '""'])
def test_an_agent_interval_of_zero_or_less_is_refused(tmp_path, option, value):
    message = error_of(tmp_path, f"[agent]\n  {option} = {value}\n[[inputs.cpu]]\n")
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2: agent: {option}: ")
    assert 'expected a duration greater than zero, such as "10s", got ' in message


@pytest.mark.parametrize(
    "option", ["collection_jitter", "collection_offset", "flush_jitter", "precision"]
)
def test_a_negative_jitter_offset_or_precision_is_refused(tmp_path, option):
    message = error_of(tmp_path, f'[agent]\n  {option} = "-1s"\n[[inputs.cpu]]\n')
    assert message.startswith(f"{tmp_path / 'agent.toml'}:2: agent: {option}: ")
    assert "expected a duration of zero or more" in message and "'-1s'" in message


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_an_endless_or_undefined_interval_is_refused(tmp_path, value):
    message = error_of(tmp_path, f"[agent]\n  interval = {value}\n[[inputs.cpu]]\n")
    assert f'interval: expected a duration greater than zero, such as "10s", got {value}' in message


@pytest.mark.parametrize(
    ("table", "option", "value", "expected"),
    [("inputs.cpu", "interval", '"0s"', "greater than zero"),
     ("inputs.cpu", "collection_jitter", '"-1s"', "of zero or more"),
     ("inputs.cpu", "precision", '"-1s"', "of zero or more"),
     ("outputs.file", "flush_interval", '"-1s"', "greater than zero"),
     ("outputs.file", "flush_jitter", '"-1ms"', "of zero or more")],
)  # fmt: skip
def test_a_plugin_overriding_an_agent_duration_is_held_to_the_same_range(
    tmp_path, table, option, value, expected
):
    message = error_of(tmp_path, f"[[inputs.mem]]\n[[{table}]]\n  {option} = {value}\n")
    assert message.startswith(f"{tmp_path / 'agent.toml'}:3: {table}: {option}: ")
    assert f"expected a duration {expected}" in message


def test_a_global_tag_that_is_not_a_string_says_what_it_got(tmp_path):
    message = error_of(tmp_path, "[global_tags]\n  dc = 5\n  rack = [1]\n")
    assert message == f"{tmp_path / 'agent.toml'}:2: global_tags.dc: expected a string, got 5"
    message = error_of(tmp_path, '[global_tags]\n  dc = "a"\n  rack = [1]\n')
    assert message.endswith("global_tags.rack: expected a string, got an array")


def test_a_hidden_value_of_the_wrong_type_is_named_by_its_toml_type(tmp_path):
    message = error_of(tmp_path, "[[outputs.kafka]]\n  sasl_password = 8675309\n")
    assert message.endswith("sasl_password: expected a string, got an integer (value hidden)")


@pytest.mark.parametrize(
    "nested", ["[" * 500 + "]" * 500, "{ a = " * 500 + "1" + " }" * 500], ids=["array", "table"]
)
def test_values_nested_500_deep_are_one_line_naming_file_and_line(tmp_path, capsys, nested):
    path = write(tmp_path, f"[[inputs.mem]]\nfieldpass = {nested}\n")
    assert agent_main(["-config", str(path), "--test"]) == 1
    assert capsys.readouterr().err == (
        f"agent: {path}:2: arrays or inline tables nested more than 100 deep\n"
    )


# Big enough to show what a megabytes-long value costs, small enough for a unit test.
LONG_CHARS = 2_000_000


def left_out_count(message: str) -> int:
    counted = re.search(r"… \(([\d,]+) characters left out\) …", message)
    assert counted, message
    return int(counted.group(1).replace(",", ""))


def test_a_long_value_is_cut_to_its_start_and_a_count_of_what_was_left_out(tmp_path):
    value = "A" * LONG_CHARS
    message = error_of(
        tmp_path, f'[[outputs.kafka]]\nsasl_username = "u"\nsasl_mechanism = "{value}"\n'
    )
    assert len(message) <= LONGEST_MESSAGE_CHARS + 50
    assert re.match(r'\S+agent.toml:\d+: outputs.kafka: sasl_mechanism: "AAAA', message)
    assert re.search(r'AAAA" is not supported \(expected [^)]*\)$', message)
    assert left_out_count(message) > LONG_CHARS - LONGEST_MESSAGE_CHARS


def test_a_long_unknown_option_name_is_cut_and_not_compared_at_length(tmp_path):
    name = (string.ascii_lowercase * (LONG_CHARS // 26 + 1))[:LONG_CHARS]
    tracemalloc.start()
    try:
        message = error_of(tmp_path, f"[[inputs.mem]]\n{name} = 1\n")
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f'{tmp_path / "agent.toml"}:2: inputs.mem: unknown option "abcd')
    assert len(message) <= LONGEST_MESSAGE_CHARS + 50
    assert left_out_count(message) > LONG_CHARS - LONGEST_MESSAGE_CHARS
    # The file's text, with comments removed and with variables, its lines and the parsed
    # key: a few copies of the name, never a table of where each character occurs in it.
    assert peak_bytes < 12 * LONG_CHARS
