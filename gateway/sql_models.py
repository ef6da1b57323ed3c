"""SQLAlchemy 2 ORM models of the central SQL store (SQLite by default, PostgreSQL by URL).

Tables (``docs/gateway-sql.md`` explains each)::

    org_unit ─┬─ org_unit_closure     the 支队 → 大队 → 站 grid and its closure table
              ├─ relief_station ── device
              ├─ subject ─┬─ consent
              │           └─ identity          name ↔ code, AES-GCM ciphertext only
              └─ app_user
    session ─┬─ session_phase, session_event, rating, session_summary, display_curve
    alert, quarantine, audit_log                   (audit_log is append-only)

Subtree scoping uses a **closure table** (``org_unit_closure``: one row per ancestor /
descendant pair, depth 0 for the unit itself): "everything under unit X" is an equality join
on integer keys that both SQLite and PostgreSQL answer from an index, with no ``LIKE`` prefix,
escaping or collation rules, and the same rows answer "roll this up per brigade" for reports.

Portability rules: times are :class:`UtcDateTime` (aware UTC in Python on both databases);
enums are stored as their string values in ``VARCHAR`` with a ``CHECK`` (no PostgreSQL ``ENUM``
types to migrate); JSON is ``JSON`` on SQLite and ``JSONB`` on PostgreSQL; constraint names
follow :data:`NAMING_CONVENTION` so migrations can refer to them.

Only declarations live here: no queries, no engines, no I/O. The migrations in
``migrations/versions`` must produce exactly this schema (a test compares them); they never
import this module. ORM rows stay inside :mod:`shuxin.gateway.sql_store`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: ``session_summary.phase_index`` of the whole-session summary (phases count from 0).
WHOLE_SESSION: Final = -1

#: Column lengths shared with the contract's identifier rules (``shuxin.contract.ids``).
STATION_ID_LEN: Final = 32
DEVICE_ID_LEN: Final = 48
SESSION_ID_LEN: Final = 64
SUBJECT_CODE_LEN: Final = 16
LABEL_LEN: Final = 64


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text (which sorts in time
    order). A naive ``datetime`` is refused: its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware (UTC) time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 (signature fixed by TypeDecorator)
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON document column: ``JSON`` on SQLite, ``JSONB`` on PostgreSQL.
JsonDoc: Final[TypeEngine[Any]] = JSON().with_variant(JSONB(), "postgresql")
#: Integer key that is ``BIGINT`` on PostgreSQL and SQLite's rowid ``INTEGER`` there.
BigId: Final[TypeEngine[int]] = BigInteger().with_variant(Integer(), "sqlite")


def _enum(cls: type[StrEnum], name: str) -> SqlEnum:
    """A portable enum: its string values in a VARCHAR with a CHECK constraint."""
    return SqlEnum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class OrgUnitKind(StrEnum):
    """Level of an org unit: 支队 detachment → 大队 brigade → 救援站 station."""

    DETACHMENT = "detachment"
    BRIGADE = "brigade"
    STATION = "station"


class Presence(StrEnum):
    """A relief station's presence from its retained status and last will."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class ConsentStatus(StrEnum):
    """Summary of a subject's consent records (the records themselves are authoritative)."""

    UNKNOWN = "unknown"  # no consent recorded centrally yet
    GRANTED = "granted"  # at least one purpose granted and not withdrawn
    WITHDRAWN = "withdrawn"  # consent was recorded, and every purpose is withdrawn


class SessionStatus(StrEnum):
    """State of a biofeedback session."""

    RUNNING = "running"
    ENDED = "ended"
    ABORTED = "aborted"
    TIMEOUT = "timeout"


class RatingWhen(StrEnum):
    """When a self-rating was taken."""

    BEFORE = "before"
    AFTER = "after"


class AlertKind(StrEnum):
    """Advisory (watch, check_in) and operational alert kinds."""

    WATCH = "watch"
    CHECK_IN = "check_in"
    STATION_OFFLINE = "station_offline"
    DEVICE_LOST = "device_lost"
    OUTBOX_BACKLOG = "outbox_backlog"


class AlertState(StrEnum):
    """An alert moves open → acknowledged → resolved (or open → resolved), by a person."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Role(StrEnum):
    """Dashboard roles (DESIGN §4 dashboard_api)."""

    STATION_STAFF = "station_staff"
    COUNSELOR = "counselor"
    PROGRAMME_LEAD = "programme_lead"
    COMMANDER = "commander"
    ADMIN = "admin"
    AUDITOR = "auditor"


class Base(DeclarativeBase):
    """Declarative base with the shared naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OrgUnitRow(Base):
    """A node of the grid. A detachment has no parent; every other unit has one."""

    __tablename__ = "org_unit"
    __table_args__ = (
        CheckConstraint("(parent_id IS NULL) = (kind = 'detachment')", name="root_is_detachment"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[OrgUnitKind] = mapped_column(_enum(OrgUnitKind, "org_unit_kind"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_unit.id", ondelete="RESTRICT"), index=True
    )
    name_zh: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OrgUnitClosureRow(Base):
    """One (ancestor, descendant) pair of the grid, including (unit, unit) at depth 0."""

    __tablename__ = "org_unit_closure"

    ancestor_id: Mapped[int] = mapped_column(
        ForeignKey("org_unit.id", ondelete="CASCADE"), primary_key=True
    )
    descendant_id: Mapped[int] = mapped_column(
        ForeignKey("org_unit.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    depth: Mapped[int] = mapped_column(Integer)


class ReliefStationRow(Base):
    """A relief station (舒心驿站): its MQTT id, place in the grid, credential and health."""

    __tablename__ = "relief_station"

    id: Mapped[str] = mapped_column(String(STATION_ID_LEN), primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_unit.id", ondelete="RESTRICT"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(128))
    #: Broker password hash (e.g. Mosquitto's PBKDF2 form); never the password itself.
    credential_hash: Mapped[str | None] = mapped_column(String(255))
    credential_rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    presence: Mapped[Presence] = mapped_column(_enum(Presence, "presence"))
    #: ``sent_at`` of the status message that set ``presence`` (newest wins).
    presence_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    agent_version: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    outbox_backlog: Mapped[int | None] = mapped_column(Integer)
    outbox_dropped: Mapped[int | None] = mapped_column(Integer)
    reconnects: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeviceRow(Base):
    """A sensor at a station; device ids are unique per station (as in the MQTT topics)."""

    __tablename__ = "device"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("relief_station.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LEN), primary_key=True)
    profile: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    connected: Mapped[bool | None] = mapped_column(Boolean)
    battery_pct: Mapped[int | None] = mapped_column(Integer)
    contact: Mapped[str | None] = mapped_column(String(16))
    firmware: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    rssi_dbm: Mapped[int | None] = mapped_column(Integer)
    #: ``sent_at`` of the status message the fields above come from (newest wins).
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SubjectRow(Base):
    """A participant, known here only by a pseudonymous code."""

    __tablename__ = "subject"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(SUBJECT_CODE_LEN), unique=True)
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_unit.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    active: Mapped[bool] = mapped_column(Boolean)
    consent_status: Mapped[ConsentStatus] = mapped_column(_enum(ConsentStatus, "consent_status"))


class ConsentRow(Base):
    """One consent for one purpose; withdrawal closes it (rows are never deleted)."""

    __tablename__ = "consent"
    __table_args__ = (Index(None, "subject_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(LABEL_LEN))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="RESTRICT"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    withdrawal_recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="RESTRICT")
    )


class IdentityRow(Base):
    """A subject's real identity, AES-256-GCM encrypted; no plaintext column exists."""

    __tablename__ = "identity"

    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SessionRow(Base):
    """A biofeedback session, keyed by the id the edge chose (as in MQTT).

    Created by whichever message of the session arrives first; ``subject_id``, the protocol
    and ``started_at`` stay empty until a lifecycle message fills them.
    """

    __tablename__ = "session"
    __table_args__ = (
        Index(None, "subject_id", "started_at"),
        Index(None, "station_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(SESSION_ID_LEN), primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("relief_station.id", ondelete="RESTRICT"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subject.id", ondelete="RESTRICT"))
    protocol_id: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    protocol_version: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    status: Mapped[SessionStatus] = mapped_column(
        _enum(SessionStatus, "session_status"), index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    #: Device ids the lifecycle message listed (JSON array of strings).
    devices: Mapped[list[str]] = mapped_column(JsonDoc)
    #: Highest lifecycle ``seq`` applied; an older lifecycle message cannot undo a newer one.
    lifecycle_seq: Mapped[int | None] = mapped_column(BigInteger)
    #: The edge clock's offset estimate from the newest lifecycle message (DESIGN §5).
    clock_offset_ms: Mapped[float | None] = mapped_column(Float)
    clock_source: Mapped[str | None] = mapped_column(String(16))
    clock_uncertainty_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


# The session list's newest-first order, ``started_at DESC NULLS LAST, id`` (migration r0003):
# one index per dialect, in the order that database reads it in. SQLite sorts NULL lowest, so
# DESC already puts NULLs last (and SQLite's CREATE INDEX refuses NULLS LAST); PostgreSQL sorts
# NULL highest, so its index states NULLS LAST.
Index("ix_session_started_at_id", SessionRow.started_at.desc(), SessionRow.id).ddl_if(
    dialect="sqlite"
)
Index("ix_session_started_at_id", SessionRow.started_at.desc().nulls_last(), SessionRow.id).ddl_if(
    dialect="postgresql"
)


def for_dialect(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic ``include_object`` hook: leave out the schema items declared for another
    dialect (``ddl_if``, e.g. the two ``ix_session_started_at_id``), so a schema comparison
    sees exactly the one this database has. Without it Alembic keys both by their shared name
    and compares whichever its set iteration yields first."""

    def include(item: Any, _name: str | None, _type: str, reflected: bool, _other: Any) -> bool:
        # ``_ddl_if`` is where SQLAlchemy keeps ``ddl_if()``'s arguments (no public reader).
        condition = getattr(item, "_ddl_if", None)
        return reflected or condition is None or condition.dialect in (None, dialect)

    return include


class SessionPhaseRow(Base):
    """A phase: the plan from the start message, the actual times from phase events."""

    __tablename__ = "session_phase"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("session.id", ondelete="CASCADE"), primary_key=True
    )
    phase_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(LABEL_LEN))
    kind: Mapped[str | None] = mapped_column(String(16))
    planned_duration_s: Mapped[float | None] = mapped_column(Float)
    pacer_bpm: Mapped[float | None] = mapped_column(Float)
    inhale_exhale_ratio: Mapped[float | None] = mapped_column(Float)
    vr_scene: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    #: Earliest ``phase_start`` / latest ``phase_end`` seen (order-independent).
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SessionEventRow(Base):
    """One event of an events message, keyed by (session, message seq, index in message)."""

    __tablename__ = "session_event"
    __table_args__ = (
        UniqueConstraint("session_id", "seq", "event_index"),
        Index(None, "session_id", "t"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_index: Mapped[int] = mapped_column(Integer)
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    #: The event's other fields as the contract defines them (bounded in size).
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)


class RatingRow(Base):
    """The current before/after rating of a session; the rating event with the highest
    (seq, index) wins, so a corrected rating replaces the first one."""

    __tablename__ = "rating"
    __table_args__ = (CheckConstraint("value >= 0 AND value <= 10", name="value_0_10"),)

    session_id: Mapped[str] = mapped_column(
        ForeignKey("session.id", ondelete="CASCADE"), primary_key=True
    )
    when: Mapped[RatingWhen] = mapped_column(_enum(RatingWhen, "rating_when"), primary_key=True)
    scale: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    source_seq: Mapped[int] = mapped_column(BigInteger)
    source_index: Mapped[int] = mapped_column(Integer)


class SessionSummaryRow(Base):
    """Authoritative metrics of one phase, or of the whole session (``phase_index = -1``)."""

    __tablename__ = "session_summary"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("session.id", ondelete="CASCADE"), primary_key=True
    )
    phase_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase_name: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    quality: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    algorithm_versions: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    protocol_version: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DisplayCurveRow(Base):
    """A downsampled series for display (seconds from session start, values; null = gap)."""

    __tablename__ = "display_curve"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("session.id", ondelete="CASCADE"), primary_key=True
    )
    series: Mapped[str] = mapped_column(String(LABEL_LEN), primary_key=True)
    t_offset_s: Mapped[list[float]] = mapped_column(JsonDoc)
    values: Mapped[list[float | None]] = mapped_column(JsonDoc)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AlertRow(Base):
    """An advisory or operational alert with its explanation and the people who handled it.

    ``open_key`` names the alert's target (kind + subject/station/device) while the alert is
    unresolved and is NULL once resolved: its UNIQUE constraint allows one unresolved alert
    per target, which is the hysteresis the gateway relies on, even across replicas.
    """

    __tablename__ = "alert"
    __table_args__ = (
        ForeignKeyConstraint(
            ["station_id", "device_id"],
            ["device.station_id", "device.device_id"],
            ondelete="RESTRICT",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[AlertKind] = mapped_column(_enum(AlertKind, "alert_kind"))
    state: Mapped[AlertState] = mapped_column(_enum(AlertState, "alert_state"), index=True)
    open_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("subject.id", ondelete="CASCADE"), index=True
    )
    station_id: Mapped[str | None] = mapped_column(
        ForeignKey("relief_station.id", ondelete="RESTRICT"), index=True
    )
    device_id: Mapped[str | None] = mapped_column(String(DEVICE_ID_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Inputs, baseline, thresholds and quality that raised the alert.
    explanation: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="RESTRICT")
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledge_note: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="RESTRICT")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolve_note: Mapped[str | None] = mapped_column(Text)


class QuarantineRow(Base):
    """A message ingest refused (mirrors ``shuxin.gateway.quarantine.QuarantineRecord``).

    ``station`` is taken from the topic and has no foreign key: a refused message may name a
    station that does not exist.
    """

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    topic: Mapped[str] = mapped_column(String(256))
    station: Mapped[str | None] = mapped_column(String(STATION_ID_LEN))
    code: Mapped[str] = mapped_column(String(LABEL_LEN), index=True)
    reason: Mapped[str] = mapped_column(String(300))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc)
    payload: Mapped[str] = mapped_column(Text)
    payload_encoding: Mapped[str] = mapped_column(String(8))
    payload_size: Mapped[int] = mapped_column(Integer)
    payload_truncated: Mapped[bool] = mapped_column(Boolean)


class WithdrawnSessionRow(Base):
    """A session id whose data must never be stored again: it belonged to a subject who
    withdrew consent (erased or anonymised), or it arrived after the withdrawal.

    Deliberately no subject, station or time: a random session id alone links to nobody once
    the session's rows are gone. Ingest discards every later message of these sessions
    (:class:`shuxin.gateway.sql_sink.SqlConsentGate`), so an outbox that was offline during
    the withdrawal cannot bring the data back.
    """

    __tablename__ = "withdrawn_session"

    id: Mapped[str] = mapped_column(String(SESSION_ID_LEN), primary_key=True)
    withdrawn_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditLogRow(Base):
    """Who did what to whose data, when, and why. Append-only: the migration installs
    triggers that refuse UPDATE and DELETE.

    ``actor`` and ``subject_code`` are copies without foreign keys, so an entry outlives the
    user account and the subject it names.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(LABEL_LEN), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    subject_code: Mapped[str | None] = mapped_column(String(SUBJECT_CODE_LEN), index=True)
    action: Mapped[str] = mapped_column(String(LABEL_LEN))
    resource: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(45))


class UserRow(Base):
    """A dashboard user (``user`` is a reserved word in PostgreSQL, hence ``app_user``)."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(LABEL_LEN), unique=True)
    #: Set by the auth issue's hashing library (argon2); NULL = cannot log in yet.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_unit.id", ondelete="RESTRICT"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
