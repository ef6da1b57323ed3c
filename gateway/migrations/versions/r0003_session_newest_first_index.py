"""Session list: an index that serves the newest-first page.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The dashboard's session list orders by ``started_at DESC NULLS LAST, id`` (sessions without a
start last). Without an index on ``started_at`` the database reads and sorts every session in
scope to return the first 50. ``ix_session_started_at_id`` lets it walk the sessions newest
first and stop after the page:

- SQLite sorts NULL lowest, so ``DESC`` already puts NULLs last: ``(started_at DESC, id)``
  (SQLite's CREATE INDEX refuses ``NULLS LAST``).
- PostgreSQL sorts NULL highest: ``(started_at DESC NULLS LAST, id)``.

Either way the index is in the list's own order and read forwards. The models declare the
same two indexes, each for its dialect (``sql_models``, after ``SessionRow``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_session_started_at_id"


def upgrade() -> None:
    """Upgrade the schema."""
    if op.get_context().dialect.name == "postgresql":
        op.create_index(_NAME, "session", [sa.text("started_at DESC NULLS LAST"), sa.text("id")])
    else:
        op.create_index(_NAME, "session", [sa.text("started_at DESC"), sa.text("id")])


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_index(_NAME, table_name="session")
