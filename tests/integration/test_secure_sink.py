"""The sink against the SASL_SSL node: it reads what the agent wrote, with the same options."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.kafka

PASSWORD_VARIABLE = "SINK_TEST_PASSWORD"


def run(args: list[str], password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, PASSWORD_VARIABLE: password},
    )


def security(secure) -> str:
    return (
        f'tls_ca = "{secure.ca}"\nsasl_mechanism = "SCRAM-SHA-256"\n'
        f'sasl_username = "{secure.username}"\nsasl_password = "${{{PASSWORD_VARIABLE}}}"\n'
    )


def test_sink_stores_over_sasl_ssl_what_the_agent_wrote_and_reports_lag(tmp_path, kafka_secure):
    topic, group = f"secure-sink-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    agent_config = tmp_path / "agent.toml"
    agent_config.write_text(
        f"[agent]\nomit_hostname = true\n[[inputs.mem]]\n[[outputs.kafka]]\n"
        f'brokers = ["{kafka_secure.bootstrap}"]\ntopic = "{topic}"\n'
        + security(kafka_secure).replace("\n", "\n  ")
    )
    assert run(["-config", str(agent_config), "--once"], kafka_secure.password).returncode == 0
    db = tmp_path / "sink.db"
    sink_config = tmp_path / "sink.toml"
    sink_config.write_text(
        f'brokers = ["{kafka_secure.bootstrap}"]\ntopics = ["{topic}"]\ngroup = "{group}"\n'
        f'from_beginning = true\nstore = "sqlite:{db}"\ntimeout_ms = 3000\n'
        + security(kafka_secure)
    )
    result = run(["sink", "-config", str(sink_config)], kafka_secure.password)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        assert connection.execute(tables).fetchall() == [
            ("agent_sink_positions",),
            ("mem",),
            ("mem_tag",),
        ]
        assert connection.execute("SELECT count(*) FROM mem").fetchone() == (1,)
    lag = run(["sink", "lag", "-config", str(sink_config)], kafka_secure.password)
    assert lag.returncode == 0, lag.stderr
    (row,) = [line.split() for line in lag.stdout.splitlines() if line.startswith(group)]
    assert row[3:6] == ["1", "1", "0"]  # CURRENT-OFFSET, LOG-END-OFFSET, LAG
    assert kafka_secure.password not in result.stderr + lag.stderr + lag.stdout


def test_sink_with_a_wrong_password_says_so_in_one_line(tmp_path, kafka_secure):
    sink_config = tmp_path / "sink.toml"
    sink_config.write_text(
        f'brokers = ["{kafka_secure.bootstrap}"]\ntopics = ["any"]\n' + security(kafka_secure)
    )
    result = run(["sink", "-config", str(sink_config), "--timeout-ms", "2000"], "wrong-pass-77")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert "SASL SCRAM-SHA-256 login as 'agent' refused" in errors[0]
    assert "wrong-pass-77" not in result.stderr and "Traceback" not in result.stderr


def test_sink_with_a_ca_that_did_not_sign_the_broker_says_so_in_one_line(tmp_path, kafka_secure):
    sink_config = tmp_path / "sink.toml"
    wrong_ca = security(kafka_secure).replace(str(kafka_secure.ca), str(kafka_secure.other_ca))
    sink_config.write_text(f'brokers = ["{kafka_secure.bootstrap}"]\ntopics = ["any"]\n' + wrong_ca)
    result = run(
        ["sink", "-config", str(sink_config), "--timeout-ms", "2000"], kafka_secure.password
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert f"TLS handshake with {kafka_secure.bootstrap} failed" in errors[0]
    assert "certificate verify failed" in errors[0]
    assert "Traceback" not in result.stderr


def test_sink_debug_output_never_shows_the_password(tmp_path, kafka_secure):
    topic = f"secure-debug-{uuid.uuid4().hex[:8]}"
    agent_config = tmp_path / "agent.toml"
    agent_config.write_text(
        f"[agent]\nomit_hostname = true\n[[inputs.mem]]\n[[outputs.kafka]]\n"
        f'brokers = ["{kafka_secure.bootstrap}"]\ntopic = "{topic}"\n'
        + security(kafka_secure).replace("\n", "\n  ")
    )
    wrote = run(["-config", str(agent_config), "--once", "--debug"], kafka_secure.password)
    assert wrote.returncode == 0, wrote.stderr
    sink_config = tmp_path / "sink.toml"
    sink_config.write_text(
        f'brokers = ["{kafka_secure.bootstrap}"]\ntopics = ["{topic}"]\nfrom_beginning = true\n'
        f"timeout_ms = 2000\n" + security(kafka_secure)
    )
    result = run(["sink", "-config", str(sink_config), "--debug"], kafka_secure.password)
    assert result.returncode == 0, result.stderr
    # Debug lines were written (the check below means something), by both.
    assert " D! " in result.stderr and " D! " in wrote.stderr
    for output in (result.stderr, result.stdout, wrote.stderr, wrote.stdout):
        assert kafka_secure.password not in output
