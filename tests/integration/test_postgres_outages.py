"""The PostgreSQL store when its server goes away, comes back or refuses it, over plain TCP
and over TLS (scripts/postgres tls on): each error psycopg raises while the server is gone
is transient (waited out and retried), a refused login, a missing right or a value of the
wrong type is permanent, and a connection is set to notice a server that stops answering
without closing it. The errors are the real ones, from the real server and libpq."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from agent.sink.postgres import CONNECTION_DEFAULTS, PostgresStore, is_transient

pytestmark = pytest.mark.postgres

RECOVERY_TIMEOUT_S = 60
ROWS_BEFORE_THE_CRASH = 10_000


def raised(action: Callable[[], object]) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        action()
    return caught.value


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def terminate(url: str, pid: int) -> None:
    with connect(url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def uses_tls(connection: psycopg.Connection) -> bool:
    query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    return connection.execute(query).fetchone()[0]


def copy_until_the_backend_dies(connection: psycopg.Connection) -> None:
    """COPY rows; partway, the backend is killed with SIGKILL (the server then crashes and
    recovers, as after any of its processes dies)."""
    connection.execute("CREATE TEMPORARY TABLE copied (n bigint, x double precision)")
    with connection.cursor() as cursor, cursor.copy("COPY copied FROM STDIN") as copy:
        for n in range(10**8):
            copy.write_row((n, n / 7))
            if n == ROWS_BEFORE_THE_CRASH:
                os.kill(connection.info.backend_pid, signal.SIGKILL)


def connect_once_recovered(url: str) -> list[psycopg.Error]:
    """Connect until the server takes connections again; the errors met on the way."""
    met = []
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        try:
            connect(url).close()
            return met
        except psycopg.Error as error:
            met.append(error)
            assert time.monotonic() < deadline, met
            time.sleep(0.01)


@contextlib.contextmanager
def stopped(postgres_script) -> Iterator[None]:
    assert postgres_script("stop").returncode == 0
    try:
        yield
    finally:
        started = postgres_script("start")
        assert started.returncode == 0, started.stderr


def test_every_error_of_a_server_going_away_is_transient(
    postgres_database, postgres_script, postgres_transport
):
    met: list[psycopg.Error] = []
    idle = connect(postgres_database)
    assert uses_tls(idle) == (postgres_transport == "tls")
    terminate(postgres_database, idle.info.backend_pid)
    met.append(raised(lambda: idle.execute("SELECT 1")))

    busy = connect(postgres_database)
    threading.Timer(0.5, terminate, (postgres_database, busy.info.backend_pid)).start()
    met.append(raised(lambda: busy.execute("SELECT pg_sleep(30)")))

    copying = connect(postgres_database)
    met.append(raised(lambda: copy_until_the_backend_dies(copying)))
    met += connect_once_recovered(postgres_database)

    with stopped(postgres_script):
        met.append(raised(lambda: connect(postgres_database)))

    texts = [f"{type(error).__name__} {error.sqlstate}: {error}" for error in met]
    assert [text for error, text in zip(met, texts, strict=True) if not is_transient(error)] == []
    assert any("57P01" in text for text in texts), texts  # terminated by an administrator
    assert any("Connection refused" in text for text in texts), texts
    if postgres_transport == "tls":
        # A TLS session cut short by the crash: libpq names TLS in the error.
        assert any("SSL" in text for text in texts), texts


@pytest.fixture
def roles(postgres_url) -> Iterator[None]:
    with connect(postgres_url) as admin:
        admin.execute("DROP ROLE IF EXISTS outage_writer, outage_nologin")
        admin.execute("CREATE ROLE outage_writer LOGIN PASSWORD 'right-secret'")
        admin.execute("CREATE ROLE outage_nologin NOLOGIN PASSWORD 'right-secret'")
    yield
    with connect(postgres_url) as admin:
        admin.execute("DROP OWNED BY outage_writer")
        admin.execute("DROP ROLE IF EXISTS outage_writer, outage_nologin")


def test_refused_logins_missing_rights_and_wrong_types_are_permanent(
    postgres_database, postgres_transport, roles
):
    as_role = postgres_database.replace("agent@", "outage_writer:right-secret@")
    wrong_password = postgres_database.replace("agent@", "outage_writer:wrong@")
    no_login = postgres_database.replace("agent@", "outage_nologin:right-secret@")
    no_database = postgres_database.rsplit("/", 1)[0] + "/no_such_database"
    with connect(postgres_database) as owner:
        owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        owner.execute("CREATE TABLE cpu (time timestamp, usage_idle double precision)")
    met = {
        "28P01": raised(lambda: connect(wrong_password)),
        "28000": raised(lambda: connect(no_login)),
        "3D000": raised(lambda: connect(no_database)),
        "42501": raised(lambda: connect(as_role).execute("CREATE TABLE cpu_tag (tag_id bigint)")),
        "42804": raised(
            lambda: connect(postgres_database).execute(
                "INSERT INTO cpu (usage_idle) SELECT 'x'::text"
            )
        ),
    }
    if postgres_transport == "plain":
        met["TLS required"] = raised(lambda: connect(postgres_database + "?sslmode=require"))
    transient = {what: str(error) for what, error in met.items() if is_transient(error)}
    assert transient == {}


def socket_option(connection: psycopg.Connection, level: int, option: int) -> int:
    with socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
        return duplicate.getsockopt(level, option)


def test_a_connection_probes_a_silent_server_and_gives_up_on_unacknowledged_data(
    postgres_database,
):
    store = PostgresStore(postgres_database)
    try:
        connection = store._connect()
        assert socket_option(connection, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        got = {
            "keepalives_idle": socket_option(connection, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepalives_interval": socket_option(
                connection, socket.IPPROTO_TCP, socket.TCP_KEEPINTVL
            ),
            "keepalives_count": socket_option(connection, socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "tcp_user_timeout": socket_option(
                connection, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT
            ),
        }
    finally:
        store.close()
    assert got == {name: int(CONNECTION_DEFAULTS[name]) for name in got}


def test_keepalive_and_timeout_options_of_the_dsn_are_kept(postgres_database):
    store = PostgresStore(
        postgres_database + "?keepalives_idle=60&tcp_user_timeout=0&connect_timeout=3"
    )
    try:
        connection = store._connect()
        idle_s = socket_option(connection, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        user_timeout_ms = socket_option(connection, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
        connect_timeout = connection.info.get_parameters()["connect_timeout"]
    finally:
        store.close()
    assert (idle_s, user_timeout_ms, connect_timeout) == (60, 0, "3")
