"""Alembic environment of the central SQL store (run by Alembic, never imported directly).

``shuxin.gateway.sql_engine.upgrade`` passes an open connection in
``config.attributes["connection"]``; Alembic's command-line tool is not needed. Offline mode
(``--sql``) renders SQL for the URL in ``sqlalchemy.url``. SQLite runs in batch mode, so later
migrations that alter columns work there too. Autogenerate renders the store's custom column
types as the plain SQLAlchemy types they wrap, so revision files never import the models.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, TypeDecorator

from shuxin.gateway.sql_models import Base, for_dialect


def _render_item(kind: str, item: Any, _autogen_context: AutogenContext) -> str | Literal[False]:
    """Render a TypeDecorator column type as the type it wraps (``sa.DateTime(...)``)."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl!r}"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=for_dialect(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=Base.metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    elif isinstance(connection, Connection):
        _configure(connection)
    else:
        raise RuntimeError(
            "run the migrations through shuxin.gateway.sql_engine.upgrade(url), which passes "
            "a connection in config.attributes['connection']"
        )


_run()
