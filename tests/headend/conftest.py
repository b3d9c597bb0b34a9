"""Fixtures: one real PostgreSQL server per session (initdb + pg_ctl on a free port in a temp
dir), a fresh database per test (the broker: tests/harness/broker.py)."""

import uuid
from collections.abc import Iterator

import pytest

from uplink.headend.localpg import LocalPostgres, pg_bin


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    if pg_bin() is None:
        pytest.skip("PostgreSQL server not installed (make debian-deps installs `postgresql`)")
    server = LocalPostgres(tmp_path_factory.mktemp("pg")).start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: LocalPostgres) -> Iterator[str]:
    """A new empty database on the session's server; dropped afterwards."""
    import psycopg
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    yield pg_server.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())
