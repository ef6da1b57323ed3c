"""A private PostgreSQL server for tests, from Debian's binaries.

Debian's PostgreSQL binaries (``/usr/lib/postgresql/<v>/bin``, or ``$SHUXIN_PG_BINDIR``) run
``initdb`` into a private temp dir and start ``postgres`` on 127.0.0.1 with a free port, its
Unix socket in that dir, and durability off (fsync, full pages, synchronous commit: test data
need not survive a power cut). PostgreSQL refuses to run as root, so under root both run as the
``postgres`` user through ``setpriv`` (no fork, so the server still dies with pytest) in a dir
under ``/tmp`` owned by that user. Stopped with SIGINT (fast shutdown). Never touches the system
cluster, its port 5432 or /var/lib/postgresql. The ``postgres`` fixture is in ``fixtures.py``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from shuxin.gateway.sql_models import Base

from ._process import (
    LOOPBACK,
    ServerHandle,
    ServerProcess,
    ServerStartError,
    ServerUnavailable,
    free_ports,
)

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
