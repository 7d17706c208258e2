"""Which PostgreSQL errors the store waits out, for errors this machine cannot produce on
demand: the texts of other libpq and OpenSSL versions (OpenSSL 1.1 says "SSL SYSCALL error:
EOF detected" where OpenSSL 3 says "SSL error: unexpected eof while reading"), a server
starting up or full, a network that times out. The errors met here are checked against the
real server in tests/integration/test_postgres_outages.py."""

from __future__ import annotations

import psycopg
import pytest

from agent.sink.postgres import is_transient

AT = 'connection failed: connection to server at "10.0.0.5", port 5432 failed: '


@pytest.mark.parametrize(
    "text",
    [
        "consuming input failed: SSL SYSCALL error: EOF detected",
        "sending copy data failed: SSL SYSCALL error: Connection reset by peer",
        "consuming input failed: SSL connection has been closed unexpectedly",
        "consuming input failed: SSL error: unexpected eof while reading",
        "consuming input failed: server closed the connection unexpectedly",
        "could not receive data from server: Connection timed out",
        AT + "FATAL:  the database system is starting up",
        AT + "FATAL:  the database system is shutting down",
        AT + "FATAL:  the database system is in recovery mode",
        AT + "FATAL:  sorry, too many clients already",
        AT + "Connection timed out\n\tIs the server running on that host and accepting TCP/IP",
        AT + "No route to host",
        "connection timeout expired",
    ],
)
def test_a_lost_or_unready_server_without_a_sqlstate_is_transient(text):
    assert is_transient(psycopg.OperationalError(text))


@pytest.mark.parametrize("code", ["57P01", "57P02", "57P03", "08006", "53300", "40P01", "40001"])
def test_sqlstates_of_a_server_going_away_busy_or_full_are_transient(code):
    assert is_transient(psycopg.errors.lookup(code)("from the server"))


@pytest.mark.parametrize(
    "text",
    [
        AT + 'FATAL:  password authentication failed for user "sink"',
        AT + 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "sink", database "m", no '
        "encryption",
        AT + 'FATAL:  role "sink" is not permitted to log in',
        AT + 'FATAL:  database "metrics" does not exist',
        AT + "fe_sendauth: no password supplied",
        AT + "server does not support SSL, but SSL was required",
        AT + "SSL error: certificate verify failed",
        'invalid sslmode value: "sometimes"',
        'invalid integer value "x" for connection option "port"',
    ],
)
def test_a_refused_login_or_an_unusable_dsn_is_permanent(text):
    assert not is_transient(psycopg.OperationalError(text))


@pytest.mark.parametrize("code", ["28P01", "28000", "42501", "42804", "22P02", "3D000"])
def test_sqlstates_of_refusals_rights_and_types_are_permanent(code):
    assert not is_transient(psycopg.errors.lookup(code)("from the server"))


def test_an_error_of_the_client_library_itself_is_permanent():
    assert not is_transient(psycopg.DataError("int too large to convert"))
