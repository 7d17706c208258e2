"""scripts/own-words-check: no run of six words of Telegraf's sample configs or messages stands
in the project's text. Facts (option names, defaults) may come from Telegraf; sentences not.

Telegraf's source comes from Go's module proxy (`go mod download`, into .cache/telegraf) when it
is not there yet: a machine without Go fails these tests, saying so, rather than skipping them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CHECK = REPO / "scripts" / "own-words-check"


def own_words_check(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=dict(os.environ, **environment),
    )


@pytest.fixture(scope="module")
def telegraf_source() -> Path:
    result = own_words_check("--telegraf-source")
    if result.returncode != 0:
        pytest.fail(
            f"Telegraf's source is needed to compare with: {result.stderr.strip()}", pytrace=False
        )
    return Path(result.stdout.strip())


def test_no_line_of_the_project_shares_six_words_with_telegraf(telegraf_source):
    result = own_words_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_copied_sample_sentence_is_found_though_rewrapped_and_recased(telegraf_source, tmp_path):
    # One of Telegraf's own sentences, read from its source (never written into ours).
    sample = (telegraf_source / "plugins" / "inputs" / "cpu" / "sample.conf").read_text()
    sentence = next(
        line.strip().lstrip("# ")
        for line in sample.splitlines()
        if line.strip().startswith("##") and len(line.split()) >= 7
    )
    words = sentence.split()
    copied = tmp_path / "copied.toml"
    copied.write_text(f"[agent]\n  ## {' '.join(words[:3]).title()}\n  ## {' '.join(words[3:])}\n")
    result = own_words_check(str(copied))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{copied}:2: ")
    assert "plugins/inputs/cpu/sample.conf" in result.stdout


def test_a_copied_log_message_in_python_is_found(telegraf_source, tmp_path):
    agent_go = (telegraf_source / "agent" / "agent.go").read_text()
    message = re.search(r'log\.Println\("I! \[agent\] ([^"%]{30,})"\)', agent_go)
    assert message is not None, "agent.go should log at least one sentence without arguments"
    copied = tmp_path / "copied.py"
    copied.write_text(f"import logging\n\nlogging.info({message.group(1)!r})\n")
    result = own_words_check(str(copied))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{copied}:3: ")
    assert "agent/agent.go" in result.stdout


def test_option_lines_are_facts_and_not_compared(telegraf_source, tmp_path):
    sample = (telegraf_source / "plugins" / "inputs" / "disk" / "sample.conf").read_text()
    options = [line for line in sample.splitlines() if "=" in line or line.startswith("[[")]
    assert any("ignore_fs" in line for line in options)
    facts = tmp_path / "facts.toml"
    facts.write_text("\n".join(options) + "\n")
    result = own_words_check(str(facts))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_telegraf_src_is_one_line_naming_it(tmp_path):
    result = own_words_check(TELEGRAF_SRC=str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"own-words-check: TELEGRAF_SRC={tmp_path} is not Telegraf's source "
        "(no cmd/telegraf/agent.conf)\n"
    )
