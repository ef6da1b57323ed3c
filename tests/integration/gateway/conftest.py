"""SQLite/PostgreSQL database URLs per test for the SQL store tests.

The ``postgres`` server fixture itself lives in ``tests/servers`` (shared by every test).

``db_url`` / ``empty_db_url`` (function, parametrized ``sqlite`` and ``postgresql``): an
empty database migrated to the head revision, or a database with nothing in it at all. On
SQLite each is a fresh file (copied from a template migrated once per run); on PostgreSQL
``db_url`` is one database migrated once and emptied before each test
(creating a database per test costs about half a second here), and ``empty_db_url`` a new
database. A test that changes the schema or its revision must use ``empty_db_url``.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from servers.postgres import PostgresServer

from shuxin.gateway.sql_engine import make_engine, upgrade


@pytest.fixture(scope="session")
def pg_database(postgres: PostgresServer) -> str:
    """Name of the database the ``db_url`` tests share, migrated to the head revision."""
    name = "shuxin_test"
    upgrade(postgres.create_database(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the head revision, to copy per test."""
    path = tmp_path_factory.mktemp("sql-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection's close checkpoints the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh database migrated to the head revision."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "shuxin.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    database: str = request.getfixturevalue("pg_database")
    server.truncate_all(database)
    return server.url(database)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh, empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"e_{uuid.uuid4().hex[:16]}")
