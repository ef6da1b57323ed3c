"""Withdrawn sessions: session ids whose data must never be stored again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

A consent withdrawal (erase or anonymise) records the withdrawn subject's session ids here, and
ingest records the ids of sessions that arrive for a subject whose consent is withdrawn; ingest
then discards every message of those sessions, so a station outbox that was offline during the
withdrawal cannot bring the data back. The table holds the id and when only: no subject, no
station, no session time. Both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "withdrawn_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawn_session")),
    )


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_table("withdrawn_session")
