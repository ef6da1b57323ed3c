"""Engines and schema migrations of the central SQL store (SQLite default, PostgreSQL by URL).

:func:`make_engine` builds an engine from a URL: ``sqlite:///PATH`` gets WAL,
``synchronous=FULL``, ``foreign_keys=ON``, a busy time-out, and ``BEGIN IMMEDIATE`` for every
transaction (a deferred SQLite transaction that later writes can fail with "database is locked"
when another writer got there first, whatever the busy time-out; taking the write lock up front
turns that into waiting). ``postgresql://`` is driven by psycopg 3 with pre-ping.

:func:`make_session_factory` gives ORM sessions on it (objects stay readable after commit).

:func:`upgrade` / :func:`downgrade` run the Alembic migrations shipped inside this package
(``migrations/``), programmatically: no ``alembic.ini`` is needed at runtime. On PostgreSQL an
advisory lock makes replicas that start together migrate one after the other.

Nothing here knows the tables (the migrations do) or logs a URL with its password.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shuxin.gateway.sql_errors import SqlSchemaError, SqlStoreError, SqlUnavailableError

#: The Alembic script directory that ships with the package.
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
#: Backends this store supports (``URL.get_backend_name()``).
SUPPORTED_BACKENDS: Final = frozenset({"sqlite", "postgresql"})
#: Key of the PostgreSQL advisory lock held while migrating ("shuxin" in ASCII).
_MIGRATION_LOCK_KEY: Final = 0x736875786E
DEFAULT_SQLITE_BUSY_TIMEOUT_MS: Final = 10_000


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pick psycopg 3 for a bare ``postgresql://``.

    Raises
    ------
    SqlStoreError
        The URL does not parse or names a backend other than SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SqlStoreError("the SQL URL does not parse") from exc
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise SqlStoreError(
            f"unsupported SQL backend {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    return parsed


def _sqlite_on_connect(busy_timeout_ms: int, dbapi_connection: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver's own implicit
    # transactions get SAVEPOINT and locking wrong); see the SQLAlchemy SQLite dialect notes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_on_begin_read(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(
    url: str | URL,
    *,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    echo: bool = False,
    read_only: bool = False,
) -> Engine:
    """Create an engine for ``url`` with this store's connection settings (see module doc).

    ``read_only`` (SQLite): deferred ``BEGIN`` and ``PRAGMA query_only``, so readers share the
    database under WAL instead of queueing for the write lock; any write through it fails.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, echo=echo)

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            _sqlite_on_connect(sqlite_busy_timeout_ms, dbapi_connection)
            if read_only:
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute("PRAGMA query_only=ON")
                finally:
                    cursor.close()

        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", _sqlite_on_begin_read if read_only else _sqlite_on_begin)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """ORM sessions on ``engine`` whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, optionally bound to ``connection``.

    Developers create a new revision with
    ``alembic.command.revision(alembic_config(conn), message=..., autogenerate=True)``
    (see docs/gateway-sql.md).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SqlSchemaError("no migrations found in the package")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's migration revision, or None for an empty database."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise SqlUnavailableError("cannot read the schema revision") from exc


def _migrate(target: str | URL | Engine, revision: str, *, up: bool) -> None:
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            config = alembic_config(connection)
            if up:
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    except OperationalError as exc:
        raise SqlUnavailableError(f"cannot migrate: {type(exc.orig).__name__}") from exc
    except (CommandError, SQLAlchemyError) as exc:
        raise SqlSchemaError(f"migration to {revision!r} failed: {exc}") from exc
    finally:
        if not isinstance(target, Engine):
            engine.dispose()


def upgrade(target: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database at ``target`` (a URL or an engine) up to ``revision``.

    Idempotent: a database already at ``revision`` is left alone. Raises
    :class:`SqlSchemaError` when the database is at a revision this code does not ship
    (a newer version migrated it) or a migration fails.
    """
    _migrate(target, revision, up=True)


def downgrade(target: str | URL | Engine, revision: str) -> None:
    """Migrate the database at ``target`` down to ``revision`` (``"base"``: empty)."""
    _migrate(target, revision, up=False)
