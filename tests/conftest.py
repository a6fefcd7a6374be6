"""The suite's database: one PostgreSQL server per session, a fresh database per test module.

Set ``EXPLAINER_TEST_DSN`` to run against an existing server (its user needs CREATEDB);
otherwise a throwaway server is started, from the binaries ``EXPLAINER_TEST_SERVER`` names
(embedded, system or auto; default auto).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Literal, cast

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from explainer.db.server import ThrowawayServer, find_binaries

MakeDatabase = Callable[[], str]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--only-server-tests",
        action="store_true",
        help="run only the tests that use the suite's server (pg_dsn): what a second run "
        "against another server (EXPLAINER_TEST_DSN) can change",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --only-server-tests, leave out tests whose result cannot depend on the server
    EXPLAINER_TEST_DSN names: those without it (parsers, renderers, rules on pasted plans)
    and those that start servers of their own."""
    if not config.getoption("--only-server-tests"):
        return
    kept = [item for item in items if "pg_dsn" in getattr(item, "fixturenames", ())]
    deselected = [item for item in items if "pg_dsn" not in getattr(item, "fixturenames", ())]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A superuser DSN of a server the whole session shares."""
    external = os.environ.get("EXPLAINER_TEST_DSN")
    if external:
        yield external
        return
    prefer = os.environ.get("EXPLAINER_TEST_SERVER", "auto")
    binaries = find_binaries(cast(Literal["embedded", "system", "auto"], prefer))
    with ThrowawayServer(binaries) as server:
        yield server.dsn


def _create_database(server_dsn: str, prefix: str) -> tuple[str, str]:
    """CREATE DATABASE with a unique name; returns (name, dsn)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, make_conninfo(server_dsn, dbname=name)


def _drop_database(server_dsn: str, name: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def db_dsn(pg_dsn: str) -> Iterator[str]:
    """A fresh database for one test module: create tables freely, it is dropped afterwards."""
    name, dsn = _create_database(pg_dsn, "explainer_test")
    try:
        yield dsn
    finally:
        _drop_database(pg_dsn, name)


@pytest.fixture
def make_database(pg_dsn: str) -> Iterator[MakeDatabase]:
    """A factory for extra fresh databases within one test, all dropped after it."""
    created: list[str] = []

    def make() -> str:
        name, dsn = _create_database(pg_dsn, "explainer_test")
        created.append(name)
        return dsn

    try:
        yield make
    finally:
        for name in created:
            _drop_database(pg_dsn, name)
