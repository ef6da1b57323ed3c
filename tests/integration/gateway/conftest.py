"""A real PostgreSQL for the SQL store tests, and SQLite/PostgreSQL database URLs per test.

``postgres`` (session): Debian's PostgreSQL binaries (``/usr/lib/postgresql/<v>/bin``, or
``$SHUXIN_PG_BINDIR``) run ``initdb`` into a private temp dir and start ``postgres`` on
127.0.0.1 with a free port, its Unix socket in that dir, and durability off (fsync, full
pages, synchronous commit: test data need not survive a power cut). PostgreSQL refuses to run
as root, so under root both run as the ``postgres`` user through ``setpriv`` (no fork, so the
server still dies with pytest) in a dir under ``/tmp`` owned by that user. Stopped with SIGINT
(fast shutdown). A missing binary or a failed start skips with the reason, or fails under
``CI=true`` (``servers._process.unavailable``).

``db_url`` / ``empty_db_url`` (function, parametrized ``sqlite`` and ``postgresql``): an
empty database migrated to the head revision, or a database with nothing in it at all. On
SQLite each is a fresh file (copied from a template migrated once per run); on PostgreSQL
``db_url`` is one database migrated once and emptied before each test
(creating a database per test costs about half a second here), and ``empty_db_url`` a new
database. A test that changes the schema or its revision must use ``empty_db_url``.

Never touches the system cluster, its port 5432 or /var/lib/postgresql.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers._process import (
    LOOPBACK,
    ServerHandle,
    ServerProcess,
    ServerStartError,
    ServerUnavailable,
    free_ports,
    unavailable,
)

from shuxin.gateway.sql_engine import make_engine, upgrade
from shuxin.gateway.sql_models import Base

PG_USER = "shuxin"
SYSTEM_USER = "postgres"
INITDB_TIMEOUT_S = 120.0


def _pg_bindir() -> Path:
    override = os.environ.get("SHUXIN_PG_BINDIR")
    if override:
        candidates = [Path(override)]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        found = shutil.which("postgres")
        if found:
            candidates.append(Path(found).parent)
    for folder in candidates:
        if (folder / "postgres").is_file() and (folder / "initdb").is_file():
            return folder
    raise ServerUnavailable(
        "PostgreSQL server binaries not found: install the Debian package 'postgresql' "
        "(apt-get install postgresql) or point SHUXIN_PG_BINDIR at its bin directory"
    )


def _as_server_user() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        raise ServerUnavailable("running as root needs setpriv (util-linux) to drop to postgres")
    return ["setpriv", f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups"]


class PostgresServer(ServerHandle):
    """Handle on one test PostgreSQL cluster (superuser ``shuxin``, trust auth on loopback)."""

    name = "postgresql"

    def __init__(self, root: Path, *, shared: bool = False) -> None:
        super().__init__(root, shared=shared)
        try:
            import psycopg  # noqa: F401  (only to fail early with a clear reason)
        except ImportError as exc:
            raise ServerUnavailable(
                "psycopg 3 is not installed: pip install 'psycopg[binary]' (extra 'postgres')"
            ) from exc
        self.bindir = _pg_bindir()
        self.prefix = _as_server_user()
        self.host = LOOPBACK
        self.port = 0
        self.data_dir = root / "data"
        self.socket_dir = root / "sock"
        self.log_path = root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` (psycopg 3 driver)."""
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.port}/{database}"

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.prefix:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.socket_dir.mkdir(exist_ok=True)
        if self.prefix:
            os.chown(self.socket_dir, owner.pw_uid, owner.pw_gid)
        argv = [
            *self.prefix,
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=INITDB_TIMEOUT_S, cwd=self.root
        )
        if done.returncode != 0:
            raise ServerStartError(f"initdb exited with {done.returncode}", done.stderr[-2000:])

    def _assign_ports(self) -> None:
        (self.port,) = free_ports(1)

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host=self.host, port=self.port, user=PG_USER, dbname="postgres", connect_timeout=2
            ):
                return True
        except psycopg.Error:
            return False

    def _make_process(self) -> ServerProcess:
        self._initdb()
        pdeathsig = ["--pdeathsig=KILL", "--"] if self.prefix else []
        argv = [
            *self.prefix,
            *pdeathsig,
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "max_connections=60",
        ]
        return ServerProcess(self.name, argv, self.log_path, self._ready, cwd=self.root)

    def execute_autocommit(self, sql: str) -> None:
        """Run one statement outside a transaction (``CREATE DATABASE`` needs that)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (optionally as a copy of ``template``) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name {name!r}")
        suffix = f" TEMPLATE {template}" if template else ""
        self.execute_autocommit(f"CREATE DATABASE {name}{suffix}")
        return self.url(name)

    def truncate_all(self, database: str) -> None:
        """Empty every table of the store in ``database`` (the schema and its revision stay).

        ``DELETE`` rather than ``TRUNCATE`` (which makes new files for every table and index,
        several times slower on these tiny tables); ``session_replication_role = replica``
        (superuser only) keeps the foreign-key and the audit log's append-only triggers from
        firing: a test reset, never something the product does.
        """
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=PG_USER, dbname=database
        ) as connection:  # one transaction, committed on leaving the block
            connection.execute("SET LOCAL session_replication_role = replica")
            for name in Base.metadata.tables:
                connection.execute(f'DELETE FROM "{name}"')

    def close(self) -> None:
        """Fast shutdown (SIGINT: disconnect clients, checkpoint, exit), then reap."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGINT)
        super().close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A shared PostgreSQL cluster for the run; create your own database in it."""
    root = Path(tempfile.mkdtemp(prefix="shuxin-pg-"))
    try:
        server = PostgresServer(root, shared=True)
        server.launch()
    except ServerUnavailable as exc:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"postgresql: {exc}")
    except ServerStartError as exc:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"postgresql could not start: {exc}")
    yield server
    server.close()
    shutil.rmtree(root, ignore_errors=True)


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
