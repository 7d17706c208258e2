"""scripts/postgres: a throwaway PostgreSQL that tests connect to, stop and start again."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.postgres


def test_up_prints_a_uri_that_accepts_connections_and_queries(postgres_url):
    assert postgres_url.startswith("postgresql://")
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT 1 + 1").fetchone() == (2,)


def test_up_again_leaves_the_running_server_and_prints_the_same_uri(postgres_url, postgres_script):
    again = postgres_script("up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == postgres_url


def test_stop_keeps_the_data_and_start_brings_it_back(postgres_database, postgres_script):
    with psycopg.connect(postgres_database) as connection:
        connection.execute("CREATE TABLE kept (n int)")
        connection.execute("INSERT INTO kept VALUES (7)")
    try:
        assert postgres_script("stop").returncode == 0
        assert postgres_script("status").returncode == 3
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres_database, connect_timeout=5)
    finally:
        started = postgres_script("start")
    assert started.returncode == 0, started.stderr
    assert postgres_script("status").returncode == 0
    with psycopg.connect(postgres_database) as connection:
        assert connection.execute("SELECT n FROM kept").fetchall() == [(7,)]


def test_other_roles_must_give_their_password(postgres_url, postgres_database):
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS harness_user")
        admin.execute("CREATE ROLE harness_user LOGIN PASSWORD 'right'")
    url = postgres_database.replace("agent@", "harness_user:wrong@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url)


def tls_in_use(url: str) -> bool:
    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()[0]


def test_tls_on_serves_tls_across_a_restart_and_tls_off_ends_it(postgres_url, postgres_script):
    try:
        on = postgres_script("tls", "on")
        assert on.returncode == 0, on.stderr
        # libpq's default sslmode (prefer) takes TLS when the server offers it.
        assert tls_in_use(postgres_url)
        assert postgres_script("stop").returncode == 0
        assert postgres_script("start").returncode == 0
        assert tls_in_use(postgres_url)
    finally:
        off = postgres_script("tls", "off")
    assert off.returncode == 0, off.stderr
    assert not tls_in_use(postgres_url)
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        psycopg.connect(postgres_url + "?sslmode=require")
