"""inputs.file: whole files parsed at every gather, globs, encodings, and bad lines reported
with file:line:column while the good ones are kept."""

from __future__ import annotations

import logging
import textwrap
import time
from pathlib import Path

import pytest

from agent.config import ConfigError, load
from agent.metric import Metric
from agent.running import RunningInput
from tests.conftest import REPO

T1 = 1_700_000_000_000_000_000


def running_file_input(tmp_path: Path, options: str) -> RunningInput:
    """inputs.file built from a config table, as the agent builds it (parser included)."""
    config_path = tmp_path / "agent.toml"
    config_path.write_text("[[inputs.file]]\n" + textwrap.dedent(options))
    (entry,) = load([config_path]).inputs
    return RunningInput(entry.plugin, entry.settings, {}, precision_ns=1)


def lines(metrics: list[Metric]) -> list[tuple[str, dict[str, str], dict, int]]:
    """Metrics as comparable tuples, in the order gathered (files in name order)."""
    return [(m.name, m.tags, m.fields, m.time_ns) for m in metrics]


def test_a_glob_reads_every_matching_file_and_file_tag_names_each(tmp_path):
    (tmp_path / "a.lp").write_text(f"cpu,cpu=cpu0 usage=1.5 {T1}\n")
    (tmp_path / "b.lp").write_text(f"mem used=3i {T1}\n")
    (tmp_path / "c.txt").write_text("not line protocol\n")
    running = running_file_input(tmp_path, f'files = ["{tmp_path}/*.lp"]\nfile_tag = "file"\n')
    assert lines(running.gather()) == [
        ("cpu", {"cpu": "cpu0", "file": "a.lp"}, {"usage": 1.5}, T1),
        ("mem", {"file": "b.lp"}, {"used": 3}, T1),
    ]
    assert running.stats.errors == 0


def test_double_star_matches_files_in_any_directory_below(tmp_path):
    (tmp_path / "top.lp").write_text(f"top v=1i {T1}\n")
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "deep.lp").write_text(f"deep v=2i {T1}\n")
    (tmp_path / "x" / "skip.txt").write_text(f"skip v=3i {T1}\n")
    running = running_file_input(
        tmp_path, f'files = ["{tmp_path}/**.lp"]\nfile_path_tag = "path"\n'
    )
    assert lines(running.gather()) == [
        ("top", {"path": str(tmp_path / "top.lp")}, {"v": 1}, T1),
        ("deep", {"path": str(tmp_path / "x/y/deep.lp")}, {"v": 2}, T1),
    ]


def test_a_trailing_double_star_reads_every_file_below_and_braces_pick_names(tmp_path):
    (tmp_path / "logs" / ".hidden").mkdir(parents=True)
    (tmp_path / "logs" / "a.lp").write_text(f"a v=1i {T1}\n")
    (tmp_path / "logs" / ".hidden" / "b.lp").write_text(f"b v=1i {T1}\n")
    (tmp_path / "c.lp").write_text(f"c v=1i {T1}\n")
    (tmp_path / "d.lp").write_text(f"d v=1i {T1}\n")
    running = running_file_input(
        tmp_path, f'files = ["{tmp_path}/logs/**", "{tmp_path}/{{c,x}}.lp"]\n'
    )
    assert [m.name for m in running.gather()] == ["b", "a", "c"]
    assert running.stats.errors == 0


@pytest.mark.parametrize("encoding, codec", [("utf-16le", "utf-16-le"), ("utf-16be", "utf-16-be")])
def test_a_utf16_file_is_read_in_its_encoding_without_its_byte_order_mark(
    tmp_path, encoding, codec
):
    text = f"\ufeffroom,name=Küche temp=21.5 {T1}\nroom,name=Bad temp=23 {T1}\n"
    (tmp_path / "rooms.lp").write_bytes(text.encode(codec))
    running = running_file_input(
        tmp_path, f'files = ["{tmp_path}/rooms.lp"]\ncharacter_encoding = "{encoding}"\n'
    )
    assert lines(running.gather()) == [
        ("room", {"name": "Küche"}, {"temp": 21.5}, T1),
        ("room", {"name": "Bad"}, {"temp": 23.0}, T1),
    ]
    assert running.stats.errors == 0


def test_a_bad_line_is_reported_with_file_line_and_column_and_the_good_lines_are_kept(
    tmp_path, caplog
):
    path = tmp_path / "metrics.lp"
    path.write_text(f"a v=1i {T1}\nb v=2i {T1}\nbad line here\nc v=3i {T1}\n")
    running = running_file_input(tmp_path, f'files = ["{path}"]\n')
    with caplog.at_level(logging.ERROR):
        metrics = running.gather()
    assert [m.name for m in metrics] == ["a", "b", "c"]
    assert running.stats.errors == 1
    (record,) = caplog.records
    assert record.name == "inputs.file"
    assert f"{path}:3:9: expected '=' after field key: 'bad line here'" in record.getMessage()


def test_a_file_full_of_garbage_reports_its_first_lines_and_counts_the_rest(tmp_path, caplog):
    path = tmp_path / "garbage.lp"
    path.write_text("garbage\n" * 25)
    running = running_file_input(tmp_path, f'files = ["{path}"]\n')
    with caplog.at_level(logging.ERROR):
        assert running.gather() == []
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 11
    assert f"{path}:10:8:" in messages[9]
    assert messages[10].endswith(f"{path}: 15 more lines did not parse")


def test_json_data_format_reads_telegraf_json(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(
        '{"fields":{"usage_idle":99.5},"name":"cpu","tags":{"cpu":"cpu0"},"timestamp":1700000000}\n'
        '{"fields":{"used":12},"name":"mem","tags":{},"timestamp":1700000001}\n'
    )
    running = running_file_input(tmp_path, f'files = ["{path}"]\ndata_format = "json"\n')
    assert lines(running.gather()) == [
        ("cpu", {"cpu": "cpu0"}, {"usage_idle": 99.5}, T1),
        ("mem", {}, {"used": 12}, T1 + 1_000_000_000),
    ]


def test_the_parsers_options_are_taken_in_the_inputs_table(tmp_path):
    path = tmp_path / "seconds.lp"
    path.write_text("a v=1i 1700000000\n")
    running = running_file_input(
        tmp_path, f'files = ["{path}"]\ninflux_timestamp_precision = "1s"\n'
    )
    assert [m.time_ns for m in running.gather()] == [T1]


def test_every_gather_reads_the_whole_file_again(tmp_path):
    path = tmp_path / "metrics.lp"
    path.write_text(f"a v=1i {T1}\n")
    running = running_file_input(tmp_path, f'files = ["{path}"]\n')
    assert [m.name for m in running.gather()] == ["a"]
    with path.open("a") as file:
        file.write(f"b v=2i {T1}\n")
    assert [m.name for m in running.gather()] == ["a", "b"]


def test_a_line_without_timestamp_gets_the_time_of_the_gather(tmp_path):
    path = tmp_path / "metrics.lp"
    path.write_text("a v=1i\nb v=2i\n")
    running = running_file_input(tmp_path, f'files = ["{path}"]\n')
    before = time.time_ns()
    first, second = running.gather()
    assert before <= first.time_ns == second.time_ns <= time.time_ns()


def test_a_pattern_matching_no_file_is_an_error_and_the_other_patterns_are_read(tmp_path, caplog):
    (tmp_path / "here.lp").write_text(f"here v=1i {T1}\n")
    missing = tmp_path / "missing-*.lp"
    running = running_file_input(tmp_path, f'files = ["{missing}", "{tmp_path}/here.lp"]\n')
    with caplog.at_level(logging.ERROR):
        assert [m.name for m in running.gather()] == ["here"]
    assert running.stats.errors == 1
    assert f"could not find file(s): {missing}" in caplog.text


def test_a_line_that_is_not_utf8_is_an_error_by_default_and_replaced_with_utf8(tmp_path):
    path = tmp_path / "latin1.lp"
    path.write_bytes(f"a,name=K\xfcche v=1i {T1}\nb v=2i {T1}\n".encode("latin-1"))
    strict = running_file_input(tmp_path, f'files = ["{path}"]\n')
    assert [m.name for m in strict.gather()] == ["b"]
    assert strict.stats.errors == 1
    lenient = running_file_input(tmp_path, f'files = ["{path}"]\ncharacter_encoding = "utf-8"\n')
    assert [m.tags for m in lenient.gather()] == [{"name": "K\ufffdche"}, {}]
    assert lenient.stats.errors == 0


def test_an_unknown_character_encoding_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="character_encoding: expected one of ''"):
        running_file_input(tmp_path, 'files = ["x"]\ncharacter_encoding = "latin1"\n')


def test_an_unknown_data_format_names_the_parsers(tmp_path):
    with pytest.raises(ConfigError, match=r'unknown format "xml" \(available: influx, json'):
        running_file_input(tmp_path, 'files = ["x"]\ndata_format = "xml"\n')


def test_the_file_to_kafka_example_reads_the_file_it_is_given(tmp_path, monkeypatch):
    path = tmp_path / "metrics.lp"
    path.write_text(f"a v=1i {T1}\n")
    monkeypatch.setenv("METRICS_FILE", str(path))
    config = load([REPO / "conf/examples/file-to-kafka.toml"])
    (entry,) = config.inputs
    kafka = config.outputs[0].plugin
    assert (kafka.use_batch_format, kafka.compression_codec) == (True, 3)
    assert [m.name for m in entry.plugin.gather()] == ["a"]
