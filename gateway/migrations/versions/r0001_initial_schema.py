"""Initial schema of the central SQL store: grid, stations, subjects, sessions, alerts, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Creates every table of ``shuxin.gateway.sql_models`` as of this revision, and triggers that
make ``audit_log`` append-only (UPDATE and DELETE raise) on SQLite and PostgreSQL.
Migrations never import the models: they describe the schema as it was at their revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY_MESSAGE = "audit_log is append-only"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=24)


def _create_audit_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END"
            )


def _drop_audit_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "audit_log",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("subject_code", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_subject_code"), "audit_log", ["subject_code"])
    _create_audit_triggers()
    op.create_table(
        "org_unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", _enum("org_unit_kind", "detachment", "brigade", "station"), nullable=False
        ),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(parent_id IS NULL) = (kind = 'detachment')",
            name=op.f("ck_org_unit_root_is_detachment"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["org_unit.id"],
            name=op.f("fk_org_unit_parent_id_org_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit")),
        sa.UniqueConstraint("code", name=op.f("uq_org_unit_code")),
    )
    op.create_index(op.f("ix_org_unit_parent_id"), "org_unit", ["parent_id"])
    op.create_table(
        "quarantine",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("station", sa.String(length=32), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("errors", _json(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_encoding", sa.String(length=8), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.Column("payload_truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_code"), "quarantine", ["code"])
    op.create_index(op.f("ix_quarantine_received_at"), "quarantine", ["received_at"])
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column(
            "role",
            _enum(
                "role",
                "station_staff",
                "counselor",
                "programme_lead",
                "commander",
                "admin",
                "auditor",
            ),
            nullable=False,
        ),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_unit.id"],
            name=op.f("fk_app_user_org_unit_id_org_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_index(op.f("ix_app_user_org_unit_id"), "app_user", ["org_unit_id"])
    op.create_table(
        "org_unit_closure",
        sa.Column("ancestor_id", sa.Integer(), nullable=False),
        sa.Column("descendant_id", sa.Integer(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ancestor_id"],
            ["org_unit.id"],
            name=op.f("fk_org_unit_closure_ancestor_id_org_unit"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["descendant_id"],
            ["org_unit.id"],
            name=op.f("fk_org_unit_closure_descendant_id_org_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ancestor_id", "descendant_id", name=op.f("pk_org_unit_closure")),
    )
    op.create_index(
        op.f("ix_org_unit_closure_descendant_id"), "org_unit_closure", ["descendant_id"]
    )
    op.create_table(
        "relief_station",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("credential_hash", sa.String(length=255), nullable=True),
        sa.Column("credential_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("presence", _enum("presence", "unknown", "online", "offline"), nullable=False),
        sa.Column("presence_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("outbox_backlog", sa.Integer(), nullable=True),
        sa.Column("outbox_dropped", sa.Integer(), nullable=True),
        sa.Column("reconnects", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_unit.id"],
            name=op.f("fk_relief_station_org_unit_id_org_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relief_station")),
    )
    op.create_index(op.f("ix_relief_station_org_unit_id"), "relief_station", ["org_unit_id"])
    op.create_table(
        "subject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "consent_status",
            _enum("consent_status", "unknown", "granted", "withdrawn"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_unit.id"],
            name=op.f("fk_subject_org_unit_id_org_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject")),
        sa.UniqueConstraint("code", name=op.f("uq_subject_code")),
    )
    op.create_index(op.f("ix_subject_org_unit_id"), "subject", ["org_unit_id"])
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawal_recorded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["app_user.id"],
            name=op.f("fk_consent_recorded_by_id_app_user"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
            name=op.f("fk_consent_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["withdrawal_recorded_by_id"],
            ["app_user.id"],
            name=op.f("fk_consent_withdrawal_recorded_by_id_app_user"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_subject_id_purpose"), "consent", ["subject_id", "purpose"])
    op.create_table(
        "device",
        sa.Column("station_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=48), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=True),
        sa.Column("connected", sa.Boolean(), nullable=True),
        sa.Column("battery_pct", sa.Integer(), nullable=True),
        sa.Column("contact", sa.String(length=16), nullable=True),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.Column("rssi_dbm", sa.Integer(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["relief_station.id"],
            name=op.f("fk_device_station_id_relief_station"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("station_id", "device_id", name=op.f("pk_device")),
    )
    op.create_table(
        "identity",
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
            name=op.f("fk_identity_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_identity")),
    )
    op.create_table(
        "session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("protocol_id", sa.String(length=64), nullable=True),
        sa.Column("protocol_version", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            _enum("session_status", "running", "ended", "aborted", "timeout"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.Column("devices", _json(), nullable=False),
        sa.Column("lifecycle_seq", sa.BigInteger(), nullable=True),
        sa.Column("clock_offset_ms", sa.Float(), nullable=True),
        sa.Column("clock_source", sa.String(length=16), nullable=True),
        sa.Column("clock_uncertainty_ms", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["relief_station.id"],
            name=op.f("fk_session_station_id_relief_station"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
            name=op.f("fk_session_subject_id_subject"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session")),
    )
    op.create_index(
        op.f("ix_session_station_id_started_at"), "session", ["station_id", "started_at"]
    )
    op.create_index(op.f("ix_session_status"), "session", ["status"])
    op.create_index(
        op.f("ix_session_subject_id_started_at"), "session", ["subject_id", "started_at"]
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            _enum(
                "alert_kind",
                "watch",
                "check_in",
                "station_offline",
                "device_lost",
                "outbox_backlog",
            ),
            nullable=False,
        ),
        sa.Column(
            "state", _enum("alert_state", "open", "acknowledged", "resolved"), nullable=False
        ),
        sa.Column("open_key", sa.String(length=160), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=48), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("explanation", _json(), nullable=False),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledge_note", sa.Text(), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["app_user.id"],
            name=op.f("fk_alert_acknowledged_by_id_app_user"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["app_user.id"],
            name=op.f("fk_alert_resolved_by_id_app_user"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["station_id", "device_id"],
            ["device.station_id", "device.device_id"],
            name=op.f("fk_alert_station_id_device_id_device"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["relief_station.id"],
            name=op.f("fk_alert_station_id_relief_station"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subject.id"],
            name=op.f("fk_alert_subject_id_subject"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alert_open_key")),
    )
    op.create_index(op.f("ix_alert_state"), "alert", ["state"])
    op.create_index(op.f("ix_alert_station_id"), "alert", ["station_id"])
    op.create_index(op.f("ix_alert_subject_id"), "alert", ["subject_id"])
    op.create_table(
        "display_curve",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("series", sa.String(length=64), nullable=False),
        sa.Column("t_offset_s", _json(), nullable=False),
        sa.Column("values", _json(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_display_curve_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "series", name=op.f("pk_display_curve")),
    )
    op.create_table(
        "rating",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("when", _enum("rating_when", "before", "after"), nullable=False),
        sa.Column("scale", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_seq", sa.BigInteger(), nullable=False),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.CheckConstraint("value >= 0 AND value <= 10", name=op.f("ck_rating_value_0_10")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_rating_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "when", "scale", name=op.f("pk_rating")),
    )
    op.create_table(
        "session_event",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_session_event_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_event")),
        sa.UniqueConstraint(
            "session_id",
            "seq",
            "event_index",
            name=op.f("uq_session_event_session_id_seq_event_index"),
        ),
    )
    op.create_index(op.f("ix_session_event_session_id_t"), "session_event", ["session_id", "t"])
    op.create_table(
        "session_phase",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("phase_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("planned_duration_s", sa.Float(), nullable=True),
        sa.Column("pacer_bpm", sa.Float(), nullable=True),
        sa.Column("inhale_exhale_ratio", sa.Float(), nullable=True),
        sa.Column("vr_scene", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_session_phase_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "phase_index", name=op.f("pk_session_phase")),
    )
    op.create_table(
        "session_summary",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("phase_index", sa.Integer(), nullable=False),
        sa.Column("phase_name", sa.String(length=64), nullable=True),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("quality", _json(), nullable=False),
        sa.Column("algorithm_versions", _json(), nullable=False),
        sa.Column("protocol_version", sa.String(length=64), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_session_summary_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "phase_index", name=op.f("pk_session_summary")),
    )


def downgrade() -> None:
    """Downgrade the schema."""
    _drop_audit_triggers()
    op.drop_table("session_summary")
    op.drop_table("session_phase")
    op.drop_index(op.f("ix_session_event_session_id_t"), table_name="session_event")
    op.drop_table("session_event")
    op.drop_table("rating")
    op.drop_table("display_curve")
    op.drop_index(op.f("ix_alert_subject_id"), table_name="alert")
    op.drop_index(op.f("ix_alert_station_id"), table_name="alert")
    op.drop_index(op.f("ix_alert_state"), table_name="alert")
    op.drop_table("alert")
    op.drop_index(op.f("ix_session_subject_id_started_at"), table_name="session")
    op.drop_index(op.f("ix_session_status"), table_name="session")
    op.drop_index(op.f("ix_session_station_id_started_at"), table_name="session")
    op.drop_table("session")
    op.drop_table("identity")
    op.drop_table("device")
    op.drop_index(op.f("ix_consent_subject_id_purpose"), table_name="consent")
    op.drop_table("consent")
    op.drop_index(op.f("ix_subject_org_unit_id"), table_name="subject")
    op.drop_table("subject")
    op.drop_index(op.f("ix_relief_station_org_unit_id"), table_name="relief_station")
    op.drop_table("relief_station")
    op.drop_index(op.f("ix_org_unit_closure_descendant_id"), table_name="org_unit_closure")
    op.drop_table("org_unit_closure")
    op.drop_index(op.f("ix_app_user_org_unit_id"), table_name="app_user")
    op.drop_table("app_user")
    op.drop_index(op.f("ix_quarantine_received_at"), table_name="quarantine")
    op.drop_index(op.f("ix_quarantine_code"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_index(op.f("ix_org_unit_parent_id"), table_name="org_unit")
    op.drop_table("org_unit")
    op.drop_index(op.f("ix_audit_log_subject_code"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor"), table_name="audit_log")
    op.drop_table("audit_log")
