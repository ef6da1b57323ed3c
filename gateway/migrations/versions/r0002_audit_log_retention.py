"""Audit log retention: allow deleting audit entries older than the legal floor, nothing else.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

r0001 made ``audit_log`` strictly append-only. Retention (``shuxin.gateway.lifecycle``) must
be able to drop entries once they are older than the legal minimum of six months, so this
revision replaces the DELETE refusal with one that refuses only entries younger than
:data:`AUDIT_FLOOR_DAYS` days by the database's own clock; UPDATE (and, on PostgreSQL,
TRUNCATE) stay refused. The floor is in the trigger, so no application bug or setting can
delete younger entries. Both SQLite and PostgreSQL; ``downgrade`` restores r0001's triggers.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Six months, rounded up: entries younger than this cannot be deleted.
AUDIT_FLOOR_DAYS = 183
_APPEND_ONLY_MESSAGE = "audit_log is append-only"
_FLOOR_MESSAGE = (
    f"audit_log is append-only: entries younger than {AUDIT_FLOOR_DAYS} days cannot be deleted"
)


def upgrade() -> None:
    """Upgrade the schema."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE FUNCTION audit_log_delete_floor() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF OLD.at > now() - interval '{AUDIT_FLOOR_DAYS} days' THEN "
            f"RAISE EXCEPTION '{_FLOOR_MESSAGE}'; END IF; RETURN OLD; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_delete_floor BEFORE DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_delete_floor()"
        )
    else:
        # SQLite stores the time as naive UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]', which
        # compares in time order with datetime('now', …) (also UTC, same layout).
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            f"WHEN OLD.at > datetime('now', '-{AUDIT_FLOOR_DAYS} days') "
            f"BEGIN SELECT RAISE(ABORT, '{_FLOOR_MESSAGE}'); END"
        )


def downgrade() -> None:
    """Downgrade the schema."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_delete_floor ON audit_log")
        op.execute("DROP FUNCTION audit_log_delete_floor()")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END"
        )
