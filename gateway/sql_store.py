"""The central SQL store's repository: typed operations the gateway and the dashboard API call.

:class:`SqlStore` wraps an engine (see :mod:`shuxin.gateway.sql_engine`); each public method is
one transaction and returns frozen dataclasses, never ORM rows. Groups of operations:

- **grid**: :meth:`~SqlStore.create_org_unit`, :meth:`~SqlStore.subtree`,
  :meth:`~SqlStore.ancestors`, :meth:`~SqlStore.move_org_unit`. Every ``list_*`` method takes
  ``under`` (an org-unit id) and returns only rows in that subtree: the API passes the user's
  unit, which is how access follows the grid.
- **stations, devices**: registration, broker credential hash, presence and health from the
  retained status messages (the newest ``sent_at`` wins).
- **subjects**: pseudonymous codes, consent per purpose (grant / withdraw, never deleted),
  identities encrypted with :class:`~shuxin.gateway.identity_crypto.IdentityCipher`; a name is
  only ever returned by :meth:`~SqlStore.reveal_identity`, which commits an audit record
  before it decrypts.
- **sessions**: :meth:`~SqlStore.apply_lifecycle` and :meth:`~SqlStore.apply_events` take
  validated contract messages. Both are idempotent and independent of arrival order: events
  are keyed by (session, message seq, index in the message); an older lifecycle message never
  undoes a newer one; phase times keep the earliest start and latest end; the rating with the
  highest (seq, index) wins. Whichever message of a session arrives first creates its row.
- **summaries, display curves** (upserts), **alerts** (one unresolved alert per target;
  acknowledged and resolved only by a user), **quarantine** (:class:`SqlQuarantine` is the
  ingest port's adapter), **audit log** (append only), **users** (minimal, for the API).

Library errors are translated into :mod:`shuxin.gateway.sql_errors`. Nothing here logs, and no
error message carries a name, a number or a payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy import (
    CursorResult,
    Engine,
    Integer,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from shuxin.contract.ids import (
    DEVICE_ID_PATTERN,
    SESSION_ID_PATTERN,
    STATION_ID_PATTERN,
    is_subject_code,
)
from shuxin.contract.messages import (
    DeviceStatus,
    EventsMessage,
    LifecycleMessage,
    PhaseEvent,
    RatingEvent,
    StationStatus,
)
from shuxin.gateway.errors import QuarantineError
from shuxin.gateway.identity_crypto import IdentityCipher, PersonIdentity, SealedIdentity
from shuxin.gateway.quarantine import QuarantineRecord
from shuxin.gateway.sql_engine import make_engine, make_session_factory, upgrade
from shuxin.gateway.sql_errors import (
    ConflictError,
    IdentityCryptoError,
    InvalidTransitionError,
    NotFoundError,
    SqlDataError,
    SqlStoreError,
    SqlUnavailableError,
    TooLargeError,
    UnknownStationError,
)
from shuxin.gateway.sql_models import (
    WHOLE_SESSION,
    AlertKind,
    AlertRow,
    AlertState,
    AuditLogRow,
    Base,
    ConsentRow,
    ConsentStatus,
    DeviceRow,
    DisplayCurveRow,
    IdentityRow,
    OrgUnitClosureRow,
    OrgUnitKind,
    OrgUnitRow,
    Presence,
    QuarantineRow,
    RatingRow,
    RatingWhen,
    ReliefStationRow,
    Role,
    SessionEventRow,
    SessionPhaseRow,
    SessionRow,
    SessionStatus,
    SessionSummaryRow,
    SubjectRow,
    UserRow,
    WithdrawnSessionRow,
)
from shuxin.gateway.sql_settings import SqlSettings

__all__ = [
    "GATEWAY",
    "WHOLE_SESSION",
    "Actor",
    "Alert",
    "AuditEntry",
    "Consent",
    "Device",
    "DisplayCurve",
    "OrgUnit",
    "Phase",
    "Rating",
    "SessionEvent",
    "SessionRecord",
    "SqlQuarantine",
    "SqlStore",
    "Station",
    "Subject",
    "Summary",
    "User",
    "in_subtree",
    "open_store",
]

#: Largest JSON of one event's payload (bytes); the contract's own bounds stay far below.
MAX_EVENT_PAYLOAD_BYTES: Final = 2048
#: Largest JSON of a summary's metrics, quality or algorithm versions (bytes).
MAX_SUMMARY_JSON_BYTES: Final = 64 * 1024
#: Largest JSON of an alert's explanation (bytes).
MAX_EXPLANATION_BYTES: Final = 16 * 1024
#: Most points of one display curve.
MAX_CURVE_POINTS: Final = 5000
#: Longest acknowledge/resolve note (characters).
MAX_NOTE_CHARS: Final = 1000
#: Longest audit ``resource`` / ``purpose`` (characters).
MAX_AUDIT_TEXT_CHARS: Final = 200

_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
_STATION_RE: Final = re.compile(STATION_ID_PATTERN)
_DEVICE_RE: Final = re.compile(DEVICE_ID_PATTERN)
_SESSION_RE: Final = re.compile(SESSION_ID_PATTERN)
_TERMINAL: Final = frozenset({SessionStatus.ENDED, SessionStatus.ABORTED, SessionStatus.TIMEOUT})
_LIFECYCLE_STATUS: Final = {
    "start": SessionStatus.RUNNING,
    "end": SessionStatus.ENDED,
    "abort": SessionStatus.ABORTED,
    "timeout": SessionStatus.TIMEOUT,
}
#: Which parent kind each kind of unit needs (a detachment is a root).
_PARENT_KIND: Final = {
    OrgUnitKind.DETACHMENT: None,
    OrgUnitKind.BRIGADE: OrgUnitKind.DETACHMENT,
    OrgUnitKind.STATION: OrgUnitKind.BRIGADE,
}
_SUBJECT_ALERTS: Final = frozenset({AlertKind.WATCH, AlertKind.CHECK_IN})
_STATION_ALERTS: Final = frozenset({AlertKind.STATION_OFFLINE, AlertKind.OUTBOX_BACKLOG})
#: What an advisory alert must explain (issue 5: inputs, baseline, thresholds, quality).
_ADVISORY_EXPLANATION_KEYS: Final = frozenset({"inputs", "baseline", "thresholds", "quality"})
#: Tables keyed by session id whose rows go with their session.
_SESSION_CHILDREN: Final[Mapping[str, Any]] = {
    "phases": SessionPhaseRow,
    "events": SessionEventRow,
    "ratings": RatingRow,
    "summaries": SessionSummaryRow,
    "curves": DisplayCurveRow,
}

# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class OrgUnit:
    """A node of the 支队 → 大队 → 站 grid."""

    id: int
    kind: OrgUnitKind
    parent_id: int | None
    code: str
    name_zh: str


@dataclass(frozen=True, slots=True)
class Station:
    """A relief station with its health. ``credential_hash`` is the broker password hash."""

    id: str
    org_unit_id: int
    display_name: str
    presence: Presence
    presence_at: datetime | None
    last_seen_at: datetime | None
    agent_version: str | None
    outbox_backlog: int | None
    outbox_dropped: int | None
    reconnects: int | None
    credential_rotated_at: datetime | None
    credential_hash: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class Device:
    """A sensor at a station, with its last reported state."""

    station_id: str
    device_id: str
    profile: str | None
    connected: bool | None
    battery_pct: int | None
    contact: str | None
    firmware: str | None
    rssi_dbm: int | None
    status_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Subject:
    """A participant known by a pseudonymous code."""

    id: int
    code: str
    org_unit_id: int
    created_at: datetime
    active: bool
    consent_status: ConsentStatus


@dataclass(frozen=True, slots=True)
class Consent:
    """One consent for one purpose, open until withdrawn."""

    id: int
    subject_code: str
    purpose: str
    granted_at: datetime
    recorded_by_id: int
    withdrawn_at: datetime | None
    withdrawal_recorded_by_id: int | None

    @property
    def active(self) -> bool:
        """True while not withdrawn."""
        return self.withdrawn_at is None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as stored (subject, protocol and start may be unknown until lifecycle)."""

    id: str
    station_id: str
    subject_code: str | None
    protocol_id: str | None
    protocol_version: str | None
    status: SessionStatus
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    devices: tuple[str, ...]
    clock_offset_ms: float | None
    clock_source: str | None
    clock_uncertainty_ms: float | None


@dataclass(frozen=True, slots=True)
class Phase:
    """A session phase: plan and actual times."""

    session_id: str
    index: int
    name: str
    kind: str | None
    planned_duration_s: float | None
    pacer_bpm: float | None
    inhale_exhale_ratio: float | None
    vr_scene: str | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One stored event: where it came from (seq, index), its time, kind and other fields."""

    session_id: str
    seq: int
    index: int
    t: datetime
    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Rating:
    """The current before/after self-rating of a session."""

    session_id: str
    when: RatingWhen
    scale: str
    value: int
    t: datetime


@dataclass(frozen=True, slots=True)
class Summary:
    """Authoritative metrics of one phase (``phase_index`` ≥ 0) or the whole session
    (:data:`WHOLE_SESSION`), with quality, algorithm versions and the protocol version."""

    session_id: str
    phase_index: int
    phase_name: str | None
    metrics: Mapping[str, Any]
    quality: Mapping[str, Any]
    algorithm_versions: Mapping[str, str]
    protocol_version: str | None
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class DisplayCurve:
    """A downsampled series for display: seconds from session start and values (None: gap)."""

    session_id: str
    series: str
    t_offset_s: tuple[float, ...]
    values: tuple[float | None, ...]
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """An advisory or operational alert and who handled it."""

    id: int
    kind: AlertKind
    state: AlertState
    subject_code: str | None
    station_id: str | None
    device_id: str | None
    created_at: datetime
    explanation: Mapping[str, Any]
    acknowledged_by_id: int | None
    acknowledged_at: datetime | None
    acknowledge_note: str | None
    resolved_by_id: int | None
    resolved_at: datetime | None
    resolve_note: str | None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user (with id) or a system component such as ``system:gateway``."""

    name: str
    user_id: int | None = None


#: The gateway acting on its own (ingest, summaries, alerts).
GATEWAY: Final = Actor("system:gateway")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record."""

    id: int
    at: datetime
    actor: str
    actor_user_id: int | None
    subject_code: str | None
    action: str
    resource: str
    purpose: str
    ip: str | None


@dataclass(frozen=True, slots=True)
class User:
    """A dashboard user (the auth issue fills in hashing and lockout)."""

    id: int
    username: str
    role: Role
    org_unit_id: int
    active: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None
    password_hash: str | None = field(repr=False)


# --------------------------------------------------------------------------- helpers


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn SQLAlchemy and driver errors into :mod:`shuxin.gateway.sql_errors` ones."""
    try:
        yield
    except (SqlStoreError, IdentityCryptoError):
        raise
    except IntegrityError as exc:
        raise ConflictError(f"{what}: {_first_line(exc.orig)}") from exc
    except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
        reason = _first_line(exc.orig) if isinstance(exc, DBAPIError) else type(exc).__name__
        raise SqlUnavailableError(f"{what}: {reason}") from exc
    except DBAPIError as exc:
        raise SqlDataError(f"{what}: {_first_line(exc.orig)}") from exc
    except StatementError as exc:  # a value the column type refused before reaching the DB
        raise SqlDataError(f"{what}: {_first_line(exc.orig)}") from exc
    except SQLAlchemyError as exc:
        raise SqlStoreError(f"{what}: {type(exc).__name__}") from exc


def _json_doc(value: object, limit: int, what: str) -> Any:
    """A detached, JSON-compatible copy of ``value``; refuse NaN, ±inf and > ``limit`` bytes."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SqlDataError(f"{what} is not finite JSON: {exc}") from exc
    size = len(text.encode("utf-8"))
    if size > limit:
        raise TooLargeError(f"{what} is {size} bytes, more than {limit}")
    return json.loads(text)


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise SqlDataError(f"{what} {value!r} is not valid ({pattern.pattern})")
    return value


def _check_text(value: str, limit: int, what: str) -> str:
    if not value or len(value) > limit:
        raise SqlDataError(f"{what} must be 1–{limit} characters")
    return value


def _insert_ignore(
    db: OrmSession, model: type[Base], rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> int:
    """INSERT ``rows``, skipping those that collide on ``keys``; return how many went in.

    Counted with RETURNING: the DB-API ``rowcount`` of a multi-row INSERT is not reliable
    across drivers (psycopg reports -1 here).
    """
    if not rows:
        return 0
    key_column = model.__table__.c[keys[0]]
    if db.get_bind().dialect.name == "postgresql":
        pg_stmt = postgresql.insert(model).values(list(rows))
        result = db.execute(
            pg_stmt.on_conflict_do_nothing(index_elements=list(keys)).returning(key_column)
        )
    else:
        lite_stmt = sqlite.insert(model).values(list(rows))
        result = db.execute(
            lite_stmt.on_conflict_do_nothing(index_elements=list(keys)).returning(key_column)
        )
    return len(result.all())


def _upsert(db: OrmSession, model: type[Base], row: Mapping[str, Any], keys: Sequence[str]) -> None:
    """INSERT ``row`` or, when ``keys`` collide, overwrite the other columns with it."""
    others = [name for name in row if name not in keys]
    if db.get_bind().dialect.name == "postgresql":
        pg_stmt = postgresql.insert(model).values(dict(row))
        db.execute(
            pg_stmt.on_conflict_do_update(
                index_elements=list(keys), set_={name: pg_stmt.excluded[name] for name in others}
            )
        )
    else:
        lite_stmt = sqlite.insert(model).values(dict(row))
        db.execute(
            lite_stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={name: lite_stmt.excluded[name] for name in others},
            )
        )


def _require_user(db: OrmSession, user_id: int) -> None:
    if db.get(UserRow, user_id) is None:
        raise NotFoundError(f"no user {user_id}")


def _max_time(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new > current else current


def _min_time(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


def in_subtree(column: ColumnElement[int] | Any, under: int) -> ColumnElement[bool]:
    """SQL condition: the org-unit id in ``column`` lies in the subtree rooted at ``under``.

    This is the one scoping rule of the store (and of the API queries built on it).
    """
    descendants = select(OrgUnitClosureRow.descendant_id).where(
        OrgUnitClosureRow.ancestor_id == under
    )
    return cast(ColumnElement[bool], column.in_(descendants))


def _org_unit(row: OrgUnitRow) -> OrgUnit:
    return OrgUnit(row.id, row.kind, row.parent_id, row.code, row.name_zh)


def _station(row: ReliefStationRow) -> Station:
    return Station(
        id=row.id,
        org_unit_id=row.org_unit_id,
        display_name=row.display_name,
        presence=row.presence,
        presence_at=row.presence_at,
        last_seen_at=row.last_seen_at,
        agent_version=row.agent_version,
        outbox_backlog=row.outbox_backlog,
        outbox_dropped=row.outbox_dropped,
        reconnects=row.reconnects,
        credential_rotated_at=row.credential_rotated_at,
        credential_hash=row.credential_hash,
    )


def _device(row: DeviceRow) -> Device:
    return Device(
        station_id=row.station_id,
        device_id=row.device_id,
        profile=row.profile,
        connected=row.connected,
        battery_pct=row.battery_pct,
        contact=row.contact,
        firmware=row.firmware,
        rssi_dbm=row.rssi_dbm,
        status_at=row.status_at,
        last_seen_at=row.last_seen_at,
    )


def _subject(row: SubjectRow) -> Subject:
    return Subject(
        row.id, row.code, row.org_unit_id, row.created_at, row.active, row.consent_status
    )


def _consent(row: ConsentRow, code: str) -> Consent:
    return Consent(
        id=row.id,
        subject_code=code,
        purpose=row.purpose,
        granted_at=row.granted_at,
        recorded_by_id=row.recorded_by_id,
        withdrawn_at=row.withdrawn_at,
        withdrawal_recorded_by_id=row.withdrawal_recorded_by_id,
    )


def _session(row: SessionRow, subject_code: str | None) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        station_id=row.station_id,
        subject_code=subject_code,
        protocol_id=row.protocol_id,
        protocol_version=row.protocol_version,
        status=row.status,
        started_at=row.started_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        devices=tuple(row.devices),
        clock_offset_ms=row.clock_offset_ms,
        clock_source=row.clock_source,
        clock_uncertainty_ms=row.clock_uncertainty_ms,
    )


def _phase(row: SessionPhaseRow) -> Phase:
    return Phase(
        session_id=row.session_id,
        index=row.phase_index,
        name=row.name,
        kind=row.kind,
        planned_duration_s=row.planned_duration_s,
        pacer_bpm=row.pacer_bpm,
        inhale_exhale_ratio=row.inhale_exhale_ratio,
        vr_scene=row.vr_scene,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


def _alert(row: AlertRow, subject_code: str | None) -> Alert:
    return Alert(
        id=row.id,
        kind=row.kind,
        state=row.state,
        subject_code=subject_code,
        station_id=row.station_id,
        device_id=row.device_id,
        created_at=row.created_at,
        explanation=row.explanation,
        acknowledged_by_id=row.acknowledged_by_id,
        acknowledged_at=row.acknowledged_at,
        acknowledge_note=row.acknowledge_note,
        resolved_by_id=row.resolved_by_id,
        resolved_at=row.resolved_at,
        resolve_note=row.resolve_note,
    )


def _audit(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        actor_user_id=row.actor_user_id,
        subject_code=row.subject_code,
        action=row.action,
        resource=row.resource,
        purpose=row.purpose,
        ip=row.ip,
    )


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        org_unit_id=row.org_unit_id,
        active=row.active,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        password_hash=row.password_hash,
    )


# --------------------------------------------------------------------------- the store


class SqlStore:
    """Repository over one database (thread-safe: every call opens its own transaction).

    Parameters
    ----------
    engine
        From :func:`shuxin.gateway.sql_engine.make_engine`, migrated to the head revision.
    cipher
        The identity cipher, or None: identities can then be neither stored nor read.
    clock
        Source of "now" for created/updated times (UTC, aware); injectable for tests.
    """

    def __init__(
        self,
        engine: Engine,
        cipher: IdentityCipher | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.engine = engine
        self._cipher = cipher
        self._clock = clock
        self._sessions = make_session_factory(engine)
        self._read_engine: Engine | None = None

    def close(self) -> None:
        """Close the engine's pooled connections."""
        if self._read_engine is not None and self._read_engine is not self.engine:
            self._read_engine.dispose()
        self.engine.dispose()

    @property
    def _reader(self) -> Engine:
        """An engine for hot-path lookups that write nothing (ingest's consent gate, once per
        batch). On a SQLite file: read-only with a deferred ``BEGIN``, so the lookup neither
        takes nor waits for the write lock; elsewhere (PostgreSQL, in-memory SQLite) the
        store's own engine."""
        if self._read_engine is None:
            url = self.engine.url
            on_file = url.get_backend_name() == "sqlite" and url.database not in (
                None,
                "",
                ":memory:",
            )
            self._read_engine = make_engine(url, read_only=True) if on_file else self.engine
        return self._read_engine

    @contextmanager
    def _tx(self, what: str) -> Iterator[OrmSession]:
        with _translate(what), self._sessions.begin() as db:
            yield db

    # ----------------------------------------------------------------------- grid

    def create_org_unit(
        self, kind: OrgUnitKind, code: str, name_zh: str, parent_id: int | None = None
    ) -> OrgUnit:
        """Add a unit under ``parent_id`` (a detachment has none; a brigade's parent is a
        detachment, a station's a brigade). ``code`` is unique across the grid."""
        _check_text(code, 32, "org unit code")
        _check_text(name_zh, 64, "org unit name")
        with self._tx("create org unit") as db:
            self._check_parent(db, kind, parent_id)
            row = OrgUnitRow(
                kind=kind, parent_id=parent_id, code=code, name_zh=name_zh, created_at=self._clock()
            )
            db.add(row)
            db.flush()
            db.execute(
                insert(OrgUnitClosureRow).values(ancestor_id=row.id, descendant_id=row.id, depth=0)
            )
            if parent_id is not None:
                db.execute(
                    insert(OrgUnitClosureRow).from_select(
                        ["ancestor_id", "descendant_id", "depth"],
                        select(
                            OrgUnitClosureRow.ancestor_id,
                            literal(row.id, Integer),
                            OrgUnitClosureRow.depth + 1,
                        ).where(OrgUnitClosureRow.descendant_id == parent_id),
                    )
                )
            return _org_unit(row)

    @staticmethod
    def _check_parent(db: OrmSession, kind: OrgUnitKind, parent_id: int | None) -> None:
        wanted = _PARENT_KIND[kind]
        if wanted is None:
            if parent_id is not None:
                raise ConflictError("a detachment has no parent unit")
            return
        parent = db.get(OrgUnitRow, parent_id) if parent_id is not None else None
        if parent is None:
            raise NotFoundError(f"a {kind.value} needs an existing {wanted.value} as parent")
        if parent.kind is not wanted:
            raise ConflictError(
                f"a {kind.value}'s parent must be a {wanted.value}, not a {parent.kind.value}"
            )

    def get_org_unit(self, unit_id: int) -> OrgUnit:
        """The unit with ``unit_id``."""
        with self._tx("get org unit") as db:
            row = db.get(OrgUnitRow, unit_id)
            if row is None:
                raise NotFoundError(f"no org unit {unit_id}")
            return _org_unit(row)

    def get_org_unit_by_code(self, code: str) -> OrgUnit:
        """The unit with ``code``."""
        with self._tx("get org unit") as db:
            row = db.scalar(select(OrgUnitRow).where(OrgUnitRow.code == code))
            if row is None:
                raise NotFoundError(f"no org unit with code {code!r}")
            return _org_unit(row)

    def subtree(self, under: int) -> list[OrgUnit]:
        """``under`` and every unit below it, by depth then code."""
        with self._tx("list subtree") as db:
            rows = db.execute(
                select(OrgUnitRow)
                .join(OrgUnitClosureRow, OrgUnitClosureRow.descendant_id == OrgUnitRow.id)
                .where(OrgUnitClosureRow.ancestor_id == under)
                .order_by(OrgUnitClosureRow.depth, OrgUnitRow.code)
            ).scalars()
            units = [_org_unit(row) for row in rows]
            if not units:
                raise NotFoundError(f"no org unit {under}")
            return units

    def ancestors(self, unit_id: int) -> list[OrgUnit]:
        """The path from the detachment down to ``unit_id`` (inclusive)."""
        with self._tx("list ancestors") as db:
            rows = db.execute(
                select(OrgUnitRow)
                .join(OrgUnitClosureRow, OrgUnitClosureRow.ancestor_id == OrgUnitRow.id)
                .where(OrgUnitClosureRow.descendant_id == unit_id)
                .order_by(OrgUnitClosureRow.depth.desc())
            ).scalars()
            units = [_org_unit(row) for row in rows]
            if not units:
                raise NotFoundError(f"no org unit {unit_id}")
            return units

    def move_org_unit(self, unit_id: int, new_parent_id: int) -> OrgUnit:
        """Re-attach ``unit_id`` (with its subtree) under ``new_parent_id``."""
        with self._tx("move org unit") as db:
            row = db.get(OrgUnitRow, unit_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no org unit {unit_id}")
            self._check_parent(db, row.kind, new_parent_id)
            below = select(OrgUnitClosureRow.descendant_id).where(
                OrgUnitClosureRow.ancestor_id == unit_id
            )
            above = select(OrgUnitClosureRow.ancestor_id).where(
                OrgUnitClosureRow.descendant_id == unit_id, OrgUnitClosureRow.ancestor_id != unit_id
            )
            db.execute(
                delete(OrgUnitClosureRow).where(
                    OrgUnitClosureRow.descendant_id.in_(below),
                    OrgUnitClosureRow.ancestor_id.in_(above),
                )
            )
            upper = aliased(OrgUnitClosureRow)
            lower = aliased(OrgUnitClosureRow)
            db.execute(
                insert(OrgUnitClosureRow).from_select(
                    ["ancestor_id", "descendant_id", "depth"],
                    select(upper.ancestor_id, lower.descendant_id, upper.depth + lower.depth + 1)
                    .select_from(upper)
                    .join(lower, true())  # every new ancestor × every node of the subtree
                    .where(upper.descendant_id == new_parent_id, lower.ancestor_id == unit_id),
                )
            )
            row.parent_id = new_parent_id
            return _org_unit(row)

    # ----------------------------------------------------------------------- stations

    def register_station(
        self,
        station_id: str,
        *,
        org_unit_id: int,
        display_name: str,
        credential_hash: str | None = None,
        credential_rotated_at: datetime | None = None,
    ) -> Station:
        """Add a relief station (its id is the MQTT station id); a duplicate id conflicts."""
        _check(_STATION_RE, station_id, "station id")
        _check_text(display_name, 128, "station display name")
        with self._tx("register station") as db:
            if db.get(OrgUnitRow, org_unit_id) is None:
                raise NotFoundError(f"no org unit {org_unit_id}")
            if db.get(ReliefStationRow, station_id) is not None:
                raise ConflictError(f"station {station_id} is already registered")
            row = ReliefStationRow(
                id=station_id,
                org_unit_id=org_unit_id,
                display_name=display_name,
                credential_hash=credential_hash,
                credential_rotated_at=credential_rotated_at,
                presence=Presence.UNKNOWN,
                created_at=self._clock(),
            )
            db.add(row)
            db.flush()
            return _station(row)

    def set_station_credential(
        self, station_id: str, credential_hash: str, rotated_at: datetime
    ) -> Station:
        """Store a new broker password hash (never the password) and when it was rotated."""
        _check_text(credential_hash, 255, "credential hash")
        with self._tx("set station credential") as db:
            row = self._station_row(db, station_id)
            row.credential_hash = credential_hash
            row.credential_rotated_at = rotated_at
            return _station(row)

    @staticmethod
    def _station_row(db: OrmSession, station_id: str, *, lock: bool = False) -> ReliefStationRow:
        row = db.get(ReliefStationRow, station_id, with_for_update=lock)
        if row is None:
            raise UnknownStationError(f"station {station_id!r} is not registered")
        return row

    def get_station(self, station_id: str) -> Station:
        """The station with ``station_id``."""
        with self._tx("get station") as db:
            return _station(self._station_row(db, station_id))

    def list_stations(self, under: int) -> list[Station]:
        """Stations in the subtree ``under``, by id."""
        with self._tx("list stations") as db:
            rows = db.scalars(
                select(ReliefStationRow)
                .where(in_subtree(ReliefStationRow.org_unit_id, under))
                .order_by(ReliefStationRow.id)
            )
            return [_station(row) for row in rows]

    def record_station_status(self, status: StationStatus, received_at: datetime) -> Station:
        """Apply a retained station status; an older ``sent_at`` than the stored one only
        advances ``last_seen_at`` — except the last will of the connection that reported
        ``online``: the edge composes its will (``offline``) when it connects, before its
        ``online`` status, so the will is older by construction; it is recognised by carrying
        the same ``reconnects`` count as the stored ``online`` status."""
        with self._tx("record station status") as db:
            row = self._station_row(db, status.station, lock=True)
            row.last_seen_at = _max_time(row.last_seen_at, received_at)
            own_will = (
                status.state == "offline"
                and row.presence is Presence.ONLINE
                and status.reconnects is not None
                and status.reconnects == row.reconnects
            )
            if own_will:
                row.presence = Presence.OFFLINE
            elif row.presence_at is None or status.sent_at >= row.presence_at:
                row.presence = Presence(status.state)
                row.presence_at = status.sent_at
                if status.agent_version is not None:
                    row.agent_version = status.agent_version
                if status.outbox_backlog is not None:
                    row.outbox_backlog = status.outbox_backlog
                if status.outbox_dropped is not None:
                    row.outbox_dropped = status.outbox_dropped
                if status.reconnects is not None:
                    row.reconnects = status.reconnects
            return _station(row)

    def touch_station(self, station_id: str, seen_at: datetime) -> None:
        """Advance the station's ``last_seen_at`` (any message from it counts); an unknown
        station is ignored."""
        with self._tx("touch station") as db:
            db.execute(
                update(ReliefStationRow)
                .where(
                    ReliefStationRow.id == station_id,
                    or_(
                        ReliefStationRow.last_seen_at.is_(None),
                        ReliefStationRow.last_seen_at < seen_at,
                    ),
                )
                .values(last_seen_at=seen_at)
            )

    # ----------------------------------------------------------------------- devices

    def register_device(
        self, station_id: str, device_id: str, profile: str | None = None
    ) -> Device:
        """Add a device to a station, or return it as it is (idempotent)."""
        _check(_DEVICE_RE, device_id, "device id")
        with self._tx("register device") as db:
            row = self._device_row(db, station_id, device_id)
            if profile is not None and row.profile is None:
                row.profile = profile
            return _device(row)

    def _device_row(self, db: OrmSession, station_id: str, device_id: str) -> DeviceRow:
        self._station_row(db, station_id)
        _insert_ignore(
            db,
            DeviceRow,
            [{"station_id": station_id, "device_id": device_id, "created_at": self._clock()}],
            ["station_id", "device_id"],
        )
        row = db.get(
            DeviceRow, (station_id, device_id), with_for_update=True, populate_existing=True
        )
        assert row is not None  # inserted or already there
        return row

    def record_device_status(self, status: DeviceStatus, received_at: datetime) -> Device:
        """Apply a retained device status (registering the device); the newest ``sent_at``
        wins."""
        with self._tx("record device status") as db:
            row = self._device_row(db, status.station, status.device)
            row.last_seen_at = _max_time(row.last_seen_at, received_at)
            if row.status_at is None or status.sent_at >= row.status_at:
                row.status_at = status.sent_at
                row.profile = status.profile
                row.connected = status.connected
                row.battery_pct = status.battery_pct
                row.contact = status.contact
                row.firmware = status.firmware
                row.rssi_dbm = status.rssi_dbm
            return _device(row)

    def list_devices(self, station_id: str) -> list[Device]:
        """The station's devices, by id."""
        with self._tx("list devices") as db:
            self._station_row(db, station_id)
            rows = db.scalars(
                select(DeviceRow)
                .where(DeviceRow.station_id == station_id)
                .order_by(DeviceRow.device_id)
            )
            return [_device(row) for row in rows]

    # ----------------------------------------------------------------------- subjects

    def register_subject(self, code: str, org_unit_id: int) -> Subject:
        """Add a participant by pseudonymous code (see ``shuxin.contract.ids``)."""
        if not is_subject_code(code):
            raise SqlDataError("subject code must be a pseudonymous code like S-7F3K2")
        with self._tx("register subject") as db:
            if db.get(OrgUnitRow, org_unit_id) is None:
                raise NotFoundError(f"no org unit {org_unit_id}")
            if db.scalar(select(SubjectRow.id).where(SubjectRow.code == code)) is not None:
                raise ConflictError(f"subject {code} already exists")
            row = SubjectRow(
                code=code,
                org_unit_id=org_unit_id,
                created_at=self._clock(),
                active=True,
                consent_status=ConsentStatus.UNKNOWN,
            )
            db.add(row)
            db.flush()
            return _subject(row)

    @staticmethod
    def _subject_row(db: OrmSession, code: str, *, lock: bool = False) -> SubjectRow:
        query = select(SubjectRow).where(SubjectRow.code == code)
        row = db.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFoundError(f"no subject {code}")
        return row

    def get_subject(self, code: str) -> Subject:
        """The subject with ``code``."""
        with self._tx("get subject") as db:
            return _subject(self._subject_row(db, code))

    def list_subjects(self, under: int, *, active_only: bool = False) -> list[Subject]:
        """Subjects whose org unit is in the subtree ``under``, by code."""
        with self._tx("list subjects") as db:
            query = select(SubjectRow).where(in_subtree(SubjectRow.org_unit_id, under))
            if active_only:
                query = query.where(SubjectRow.active.is_(True))
            return [_subject(row) for row in db.scalars(query.order_by(SubjectRow.code))]

    # ----------------------------------------------------------------------- consent

    def grant_consent(
        self, code: str, purpose: str, *, granted_at: datetime, recorded_by: int
    ) -> Consent:
        """Record consent for ``purpose`` (a label such as ``biofeedback`` or ``research``).

        Idempotent: while a consent for that purpose is open, it is returned unchanged.
        """
        _check(_LABEL_RE, purpose, "consent purpose")
        with self._tx("grant consent") as db:
            _require_user(db, recorded_by)
            subject = self._subject_row(db, code, lock=True)
            row = self._open_consent(db, subject.id, purpose)
            if row is None:
                row = ConsentRow(
                    subject_id=subject.id,
                    purpose=purpose,
                    granted_at=granted_at,
                    recorded_by_id=recorded_by,
                )
                db.add(row)
                db.flush()
            self._refresh_consent_status(db, subject)
            return _consent(row, code)

    def withdraw_consent(
        self, code: str, purpose: str, *, withdrawn_at: datetime, recorded_by: int
    ) -> Consent:
        """Close the open consent for ``purpose``; the record stays, with who and when."""
        with self._tx("withdraw consent") as db:
            _require_user(db, recorded_by)
            subject = self._subject_row(db, code, lock=True)
            row = self._open_consent(db, subject.id, purpose)
            if row is None:
                raise NotFoundError(f"subject {code} has no open consent for {purpose!r}")
            row.withdrawn_at = withdrawn_at
            row.withdrawal_recorded_by_id = recorded_by
            db.flush()
            self._refresh_consent_status(db, subject)
            return _consent(row, code)

    @staticmethod
    def _open_consent(db: OrmSession, subject_id: int, purpose: str) -> ConsentRow | None:
        return db.scalar(
            select(ConsentRow).where(
                ConsentRow.subject_id == subject_id,
                ConsentRow.purpose == purpose,
                ConsentRow.withdrawn_at.is_(None),
            )
        )

    @staticmethod
    def _refresh_consent_status(db: OrmSession, subject: SubjectRow) -> None:
        total, open_count = db.execute(
            select(
                func.count(ConsentRow.id),
                func.count(ConsentRow.id).filter(ConsentRow.withdrawn_at.is_(None)),
            ).where(ConsentRow.subject_id == subject.id)
        ).one()
        if open_count:
            subject.consent_status = ConsentStatus.GRANTED
        elif total:
            subject.consent_status = ConsentStatus.WITHDRAWN
        else:
            subject.consent_status = ConsentStatus.UNKNOWN

    def consents(self, code: str) -> list[Consent]:
        """Every consent record of the subject, oldest first."""
        with self._tx("list consents") as db:
            subject = self._subject_row(db, code)
            rows = db.scalars(
                select(ConsentRow)
                .where(ConsentRow.subject_id == subject.id)
                .order_by(ConsentRow.granted_at, ConsentRow.id)
            )
            return [_consent(row, code) for row in rows]

    # ----------------------------------------------------------------------- identity

    def _require_cipher(self) -> IdentityCipher:
        if self._cipher is None:
            raise IdentityCryptoError(
                "no identity keys configured (SHUXIN_SQL_IDENTITY_KEYS / _KEY_ID)"
            )
        return self._cipher

    def put_identity(
        self, code: str, identity: PersonIdentity, *, actor: Actor, purpose: str
    ) -> None:
        """Store (or replace) the subject's identity, encrypted; audited as ``identity.write``."""
        cipher = self._require_cipher()
        sealed = cipher.seal(identity, subject_code=code)
        with self._tx("put identity") as db:
            subject = self._subject_row(db, code, lock=True)
            now = self._clock()
            row = db.get(IdentityRow, subject.id)
            if row is None:
                db.add(
                    IdentityRow(
                        subject_id=subject.id,
                        key_id=sealed.key_id,
                        nonce=sealed.nonce,
                        ciphertext=sealed.ciphertext,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                row.key_id, row.nonce, row.ciphertext = (
                    sealed.key_id,
                    sealed.nonce,
                    sealed.ciphertext,
                )
                row.updated_at = now
            self._append_audit(
                db,
                actor=actor,
                action="identity.write",
                resource=f"subject/{code}/identity",
                purpose=purpose,
                subject_code=code,
                ip=None,
            )

    def reveal_identity(
        self, code: str, *, actor: Actor, purpose: str, ip: str | None = None
    ) -> PersonIdentity:
        """Decrypt the subject's identity. The only way to read one.

        The audit record (``identity.reveal``: who, whose, why, from where) is committed even
        when decryption then fails. Whether ``actor`` may see it at all is the caller's (the
        API's role check) to decide before calling.
        """
        cipher = self._require_cipher()
        with self._tx("reveal identity") as db:
            subject = self._subject_row(db, code)
            row = db.get(IdentityRow, subject.id)
            if row is None:
                raise NotFoundError(f"no identity stored for subject {code}")
            self._append_audit(
                db,
                actor=actor,
                action="identity.reveal",
                resource=f"subject/{code}/identity",
                purpose=purpose,
                subject_code=code,
                ip=ip,
            )
            sealed = SealedIdentity(row.key_id, bytes(row.nonce), bytes(row.ciphertext))
        return cipher.open(sealed, subject_code=code)

    def has_identity(self, code: str) -> bool:
        """True when an identity is stored for the subject (reveals nothing else)."""
        with self._tx("check identity") as db:
            subject = self._subject_row(db, code)
            return db.get(IdentityRow, subject.id) is not None

    def rekey_identities(self, *, actor: Actor) -> int:
        """Re-encrypt every identity not under the active key; return how many changed."""
        cipher = self._require_cipher()
        with self._tx("rekey identities") as db:
            rows = db.execute(
                select(IdentityRow, SubjectRow.code)
                .join(SubjectRow, SubjectRow.id == IdentityRow.subject_id)
                .where(IdentityRow.key_id != cipher.active_key_id)
                .with_for_update()
            ).all()
            for row, code in rows:
                sealed = SealedIdentity(row.key_id, bytes(row.nonce), bytes(row.ciphertext))
                fresh = cipher.seal(cipher.open(sealed, subject_code=code), subject_code=code)
                row.key_id, row.nonce, row.ciphertext = fresh.key_id, fresh.nonce, fresh.ciphertext
                row.updated_at = self._clock()
            self._append_audit(
                db,
                actor=actor,
                action="identity.rekey",
                resource=f"identity/*?count={len(rows)}",
                purpose=f"key rotation to {cipher.active_key_id}",
                subject_code=None,
                ip=None,
            )
            return len(rows)

    # ----------------------------------------------------------------------- sessions

    def _session_row(self, db: OrmSession, session_id: str, station_id: str) -> SessionRow:
        """The session's row, locked; created as a placeholder when this message is first."""
        _check(_SESSION_RE, session_id, "session id")
        _insert_ignore(
            db,
            SessionRow,
            [
                {
                    "id": session_id,
                    "station_id": station_id,
                    "status": SessionStatus.RUNNING,
                    "devices": [],
                    "created_at": self._clock(),
                }
            ],
            ["id"],
        )
        row = db.get(SessionRow, session_id, with_for_update=True, populate_existing=True)
        assert row is not None  # inserted or already there
        if row.station_id != station_id:
            raise ConflictError(
                f"session {session_id} belongs to station {row.station_id}, not {station_id}"
            )
        return row

    def _subject_for_session(self, db: OrmSession, code: str, org_unit_id: int) -> SubjectRow:
        """The subject with ``code``; a code first seen in a session is registered under the
        station's org unit (stations enrol people while offline)."""
        _insert_ignore(
            db,
            SubjectRow,
            [
                {
                    "code": code,
                    "org_unit_id": org_unit_id,
                    "created_at": self._clock(),
                    "active": True,
                    "consent_status": ConsentStatus.UNKNOWN,
                }
            ],
            ["code"],
        )
        return self._subject_row(db, code)

    def apply_lifecycle(self, message: LifecycleMessage) -> SessionRecord:
        """Create or update a session from a lifecycle message (start/end/abort/timeout).

        Idempotent and order-independent: fields come from the message with the highest
        ``seq`` (an older one only fills fields still empty, and an empty device list never
        replaces a known one); a terminal status is never replaced by ``running``; the phase
        plan comes from the message that lists phases. An unknown station raises
        :class:`~shuxin.gateway.sql_errors.UnknownStationError`.
        """
        with self._tx("apply lifecycle") as db:
            station = self._station_row(db, message.station)
            subject = self._subject_for_session(db, message.subject, station.org_unit_id)
            row = self._session_row(db, message.session, message.station)
            if row.subject_id is not None and row.subject_id != subject.id:
                raise ConflictError(f"session {message.session} belongs to another subject")
            newest = row.lifecycle_seq is None or message.seq >= row.lifecycle_seq
            new_status = _LIFECYCLE_STATUS[message.event]
            # The newest message sets each field; an older one only fills what is still empty.
            if newest:
                row.lifecycle_seq = message.seq
            if newest or row.subject_id is None:
                row.subject_id = subject.id
            if newest or row.protocol_id is None:
                row.protocol_id = message.protocol.id
                row.protocol_version = message.protocol.version
            if newest or row.started_at is None:
                row.started_at = message.started_at
            if message.devices and (newest or not row.devices):
                row.devices = list(message.devices)
            if newest or row.clock_source is None:
                row.clock_offset_ms = message.clock.offset_ms
                row.clock_source = message.clock.source
                row.clock_uncertainty_ms = message.clock.uncertainty_ms
            if new_status in _TERMINAL and (newest or row.status not in _TERMINAL):
                row.status = new_status
                row.ended_at = message.ended_at
                row.end_reason = message.reason
            for index, plan in enumerate(message.phases):
                phase = self._phase_row(db, row.id, index, plan.name)
                phase.name = plan.name
                phase.kind = plan.kind
                phase.planned_duration_s = plan.duration_s
                phase.pacer_bpm = plan.pacer_bpm
                phase.inhale_exhale_ratio = plan.inhale_exhale_ratio
                phase.vr_scene = plan.vr_scene
            db.flush()
            return _session(row, subject.code)

    @staticmethod
    def _phase_row(db: OrmSession, session_id: str, index: int, name: str) -> SessionPhaseRow:
        row = db.get(SessionPhaseRow, (session_id, index))
        if row is None:
            row = SessionPhaseRow(session_id=session_id, phase_index=index, name=name)
            db.add(row)
        return row

    # ----------------------------------------------------------------------- consent gate

    def withdrawn_among(
        self, session_ids: Collection[str], subject_codes: Collection[str] = ()
    ) -> tuple[set[str], set[str]]:
        """Which of ``session_ids`` are withdrawn sessions, and which of ``subject_codes``
        name a subject whose consent is withdrawn (every purpose closed)."""
        if not session_ids and not subject_codes:
            return set(), set()
        with _translate("check withdrawn sessions"), self._reader.connect() as db:
            sessions = set(
                db.scalars(
                    select(WithdrawnSessionRow.id).where(
                        WithdrawnSessionRow.id.in_(sorted(session_ids))
                    )
                )
                if session_ids
                else ()
            )
            subjects = set(
                db.scalars(
                    select(SubjectRow.code).where(
                        SubjectRow.code.in_(sorted(subject_codes)),
                        SubjectRow.consent_status == ConsentStatus.WITHDRAWN,
                    )
                )
                if subject_codes
                else ()
            )
            return sessions, subjects

    def withdraw_sessions(self, session_ids: Collection[str]) -> int:
        """Record ``session_ids`` as withdrawn; return how many were new.

        Whatever ingest already stored under such an id without a subject (a placeholder
        created by an events message that beat its lifecycle) is deleted with it. A session
        already linked to a subject is left to the withdrawal that erases or anonymises it.
        """
        for session_id in session_ids:
            _check(_SESSION_RE, session_id, "session id")
        if not session_ids:
            return 0
        with self._tx("withdraw sessions") as db:
            return self._withdraw_sessions(db, session_ids, placeholders=True)

    def _withdraw_sessions(
        self, db: OrmSession, session_ids: Collection[str], *, placeholders: bool
    ) -> int:
        if placeholders:
            orphans = select(SessionRow.id).where(
                SessionRow.id.in_(sorted(session_ids)), SessionRow.subject_id.is_(None)
            )
            orphan_ids = list(db.scalars(orphans))
            if orphan_ids:
                for model in _SESSION_CHILDREN.values():
                    db.execute(delete(model).where(model.session_id.in_(orphan_ids)))
                db.execute(delete(SessionRow).where(SessionRow.id.in_(orphan_ids)))
        now = self._clock()
        ids = sorted(session_ids)
        return sum(  # in chunks: a long history would exceed SQLite's bound-parameter limit
            _insert_ignore(
                db,
                WithdrawnSessionRow,
                [{"id": session_id, "withdrawn_at": now} for session_id in ids[i : i + 500]],
                ["id"],
            )
            for i in range(0, len(ids), 500)
        )

    def apply_events(self, message: EventsMessage) -> int:
        """Store an events message's events; return how many were new.

        Re-applying a message changes nothing: events are keyed by (session, ``seq``, index);
        phase times keep the earliest ``phase_start`` and the latest ``phase_end``; a rating
        replaces the stored one only when its (seq, index) is higher.
        """
        rows = []
        for index, event in enumerate(message.events):
            payload = event.model_dump(mode="json", exclude={"kind", "t"})
            rows.append(
                {
                    "session_id": message.session,
                    "seq": message.seq,
                    "event_index": index,
                    "t": event.t,
                    "kind": event.kind,
                    "payload": _json_doc(payload, MAX_EVENT_PAYLOAD_BYTES, "event payload"),
                }
            )
        with self._tx("apply events") as db:
            self._station_row(db, message.station)
            session = self._session_row(db, message.session, message.station)
            inserted = _insert_ignore(
                db, SessionEventRow, rows, ["session_id", "seq", "event_index"]
            )
            for index, event in enumerate(message.events):
                if isinstance(event, PhaseEvent):
                    phase = self._phase_row(db, session.id, event.index, event.phase)
                    if event.kind == "phase_start":
                        phase.started_at = _min_time(phase.started_at, event.t)
                    else:
                        phase.ended_at = _max_time(phase.ended_at, event.t)
                elif isinstance(event, RatingEvent):
                    self._apply_rating(db, session.id, message.seq, index, event)
                db.flush()
            return inserted

    @staticmethod
    def _apply_rating(
        db: OrmSession, session_id: str, seq: int, index: int, event: RatingEvent
    ) -> None:
        when = RatingWhen(event.when)
        row = db.get(RatingRow, (session_id, when, event.scale))
        if row is None:
            db.add(
                RatingRow(
                    session_id=session_id,
                    when=when,
                    scale=event.scale,
                    value=event.value,
                    t=event.t,
                    source_seq=seq,
                    source_index=index,
                )
            )
        elif (seq, index) >= (row.source_seq, row.source_index):
            row.value, row.t = event.value, event.t
            row.source_seq, row.source_index = seq, index

    def mark_session_timeout(
        self, session_id: str, *, ended_at: datetime, reason: str = "gateway_timeout"
    ) -> SessionRecord:
        """The gateway gave up waiting: a running session becomes ``timeout``. A session that
        already ended is returned unchanged; a later lifecycle message from the edge wins."""
        _check(_LABEL_RE, reason, "timeout reason")
        with self._tx("mark session timeout") as db:
            row = db.get(SessionRow, session_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no session {session_id}")
            if row.status is SessionStatus.RUNNING:
                row.status = SessionStatus.TIMEOUT
                row.ended_at = ended_at
                row.end_reason = reason
            code = (
                db.scalar(select(SubjectRow.code).where(SubjectRow.id == row.subject_id))
                if row.subject_id is not None
                else None
            )
            return _session(row, code)

    def get_session(self, session_id: str) -> SessionRecord:
        """The session with ``session_id``."""
        with self._tx("get session") as db:
            found = db.execute(
                select(SessionRow, SubjectRow.code)
                .outerjoin(SubjectRow, SubjectRow.id == SessionRow.subject_id)
                .where(SessionRow.id == session_id)
            ).one_or_none()
            if found is None:
                raise NotFoundError(f"no session {session_id}")
            return _session(found[0], found[1])

    def list_sessions(
        self, under: int, *, subject_code: str | None = None, limit: int = 100
    ) -> list[SessionRecord]:
        """Sessions in the subtree ``under``, newest first.

        A session belongs where its subject belongs; one whose subject is not yet known
        belongs to its station's unit.
        """
        with self._tx("list sessions") as db:
            query = (
                select(SessionRow, SubjectRow.code)
                .outerjoin(SubjectRow, SubjectRow.id == SessionRow.subject_id)
                .join(ReliefStationRow, ReliefStationRow.id == SessionRow.station_id)
                .where(
                    or_(
                        in_subtree(SubjectRow.org_unit_id, under),
                        and_(
                            SessionRow.subject_id.is_(None),
                            in_subtree(ReliefStationRow.org_unit_id, under),
                        ),
                    )
                )
            )
            if subject_code is not None:
                query = query.where(SubjectRow.code == subject_code)
            query = query.order_by(SessionRow.started_at.desc().nulls_last(), SessionRow.id).limit(
                limit
            )
            return [_session(row, code) for row, code in db.execute(query).all()]

    def session_phases(self, session_id: str) -> list[Phase]:
        """The session's phases by index."""
        with self._tx("list phases") as db:
            rows = db.scalars(
                select(SessionPhaseRow)
                .where(SessionPhaseRow.session_id == session_id)
                .order_by(SessionPhaseRow.phase_index)
            )
            return [_phase(row) for row in rows]

    def session_events(self, session_id: str) -> list[SessionEvent]:
        """The session's events in time order (ties by seq and index)."""
        with self._tx("list events") as db:
            rows = db.scalars(
                select(SessionEventRow)
                .where(SessionEventRow.session_id == session_id)
                .order_by(SessionEventRow.t, SessionEventRow.seq, SessionEventRow.event_index)
            )
            return [
                SessionEvent(row.session_id, row.seq, row.event_index, row.t, row.kind, row.payload)
                for row in rows
            ]

    def session_ratings(self, session_id: str) -> list[Rating]:
        """The session's current ratings (before first)."""
        with self._tx("list ratings") as db:
            rows = db.scalars(select(RatingRow).where(RatingRow.session_id == session_id))
            ratings = [
                Rating(row.session_id, row.when, row.scale, row.value, row.t) for row in rows
            ]
            return sorted(ratings, key=lambda r: (r.when is not RatingWhen.BEFORE, r.scale))

    # ----------------------------------------------------------------------- summaries

    def store_summary(self, summary: Summary) -> None:
        """Insert or replace the summary of (session, phase index)."""
        if summary.phase_index < WHOLE_SESSION:
            raise SqlDataError(f"phase_index must be ≥ 0, or {WHOLE_SESSION} for the session")
        row = {
            "session_id": summary.session_id,
            "phase_index": summary.phase_index,
            "phase_name": summary.phase_name,
            "metrics": _json_doc(dict(summary.metrics), MAX_SUMMARY_JSON_BYTES, "metrics"),
            "quality": _json_doc(dict(summary.quality), MAX_SUMMARY_JSON_BYTES, "quality"),
            "algorithm_versions": _json_doc(
                dict(summary.algorithm_versions), MAX_SUMMARY_JSON_BYTES, "algorithm versions"
            ),
            "protocol_version": summary.protocol_version,
            "computed_at": summary.computed_at,
        }
        with self._tx("store summary") as db:
            if db.get(SessionRow, summary.session_id) is None:
                raise NotFoundError(f"no session {summary.session_id}")
            _upsert(db, SessionSummaryRow, row, ["session_id", "phase_index"])

    def summaries(self, session_id: str) -> list[Summary]:
        """The session's summaries: the whole session first, then phases by index."""
        with self._tx("list summaries") as db:
            rows = db.scalars(
                select(SessionSummaryRow)
                .where(SessionSummaryRow.session_id == session_id)
                .order_by(SessionSummaryRow.phase_index)
            )
            return [
                Summary(
                    session_id=row.session_id,
                    phase_index=row.phase_index,
                    phase_name=row.phase_name,
                    metrics=row.metrics,
                    quality=row.quality,
                    algorithm_versions=row.algorithm_versions,
                    protocol_version=row.protocol_version,
                    computed_at=row.computed_at,
                )
                for row in rows
            ]

    def store_curve(self, curve: DisplayCurve) -> None:
        """Insert or replace a display curve (at most :data:`MAX_CURVE_POINTS` points)."""
        _check(_LABEL_RE, curve.series, "curve series name")
        if len(curve.t_offset_s) != len(curve.values):
            raise SqlDataError("t_offset_s and values must have the same length")
        if len(curve.values) > MAX_CURVE_POINTS:
            raise TooLargeError(f"a display curve holds at most {MAX_CURVE_POINTS} points")
        limit = 64 * MAX_CURVE_POINTS
        row = {
            "session_id": curve.session_id,
            "series": curve.series,
            "t_offset_s": _json_doc(list(curve.t_offset_s), limit, "curve times"),
            "values": _json_doc(list(curve.values), limit, "curve values"),
            "computed_at": curve.computed_at,
        }
        with self._tx("store curve") as db:
            if db.get(SessionRow, curve.session_id) is None:
                raise NotFoundError(f"no session {curve.session_id}")
            _upsert(db, DisplayCurveRow, row, ["session_id", "series"])

    def curves(self, session_id: str) -> list[DisplayCurve]:
        """The session's display curves by series name."""
        with self._tx("list curves") as db:
            rows = db.scalars(
                select(DisplayCurveRow)
                .where(DisplayCurveRow.session_id == session_id)
                .order_by(DisplayCurveRow.series)
            )
            return [
                DisplayCurve(
                    row.session_id,
                    row.series,
                    tuple(row.t_offset_s),
                    tuple(row.values),
                    row.computed_at,
                )
                for row in rows
            ]

    # ----------------------------------------------------------------------- alerts

    def open_alert(
        self,
        kind: AlertKind,
        explanation: Mapping[str, Any],
        *,
        created_at: datetime,
        subject_code: str | None = None,
        station_id: str | None = None,
        device_id: str | None = None,
    ) -> Alert:
        """Open an alert, or return the unresolved one of the same kind and target.

        ``watch``/``check_in`` name a subject; ``station_offline``/``outbox_backlog`` a
        station; ``device_lost`` a station and device. ``explanation`` holds the inputs,
        baseline, thresholds and quality (required keys for ``watch``/``check_in``); an
        existing alert keeps its own.
        """
        doc = _json_doc(dict(explanation), MAX_EXPLANATION_BYTES, "alert explanation")
        if kind in _SUBJECT_ALERTS:
            if subject_code is None or station_id is not None or device_id is not None:
                raise SqlDataError(f"a {kind.value} alert names a subject only")
            missing = sorted(_ADVISORY_EXPLANATION_KEYS - set(doc))
            if missing:
                raise SqlDataError(f"a {kind.value} alert's explanation lacks {missing}")
            target = f"subject:{subject_code}"
        elif kind in _STATION_ALERTS:
            if station_id is None or subject_code is not None or device_id is not None:
                raise SqlDataError(f"a {kind.value} alert names a station only")
            target = f"station:{station_id}"
        else:
            if station_id is None or device_id is None or subject_code is not None:
                raise SqlDataError(f"a {kind.value} alert names a station and a device")
            target = f"device:{station_id}/{device_id}"
        open_key = f"{kind.value}|{target}"
        with self._tx("open alert") as db:
            subject_id = self._subject_row(db, subject_code).id if subject_code else None
            if station_id is not None:
                self._station_row(db, station_id)
            if device_id is not None and db.get(DeviceRow, (station_id, device_id)) is None:
                raise NotFoundError(f"no device {device_id} at station {station_id}")
            _insert_ignore(
                db,
                AlertRow,
                [
                    {
                        "kind": kind,
                        "state": AlertState.OPEN,
                        "open_key": open_key,
                        "subject_id": subject_id,
                        "station_id": station_id,
                        "device_id": device_id,
                        "created_at": created_at,
                        "explanation": doc,
                    }
                ],
                ["open_key"],
            )
            row = db.scalar(select(AlertRow).where(AlertRow.open_key == open_key))
            assert row is not None  # inserted or already open
            return _alert(row, subject_code)

    def _alert_transition(
        self,
        alert_id: int,
        user_id: int,
        allowed_from: frozenset[AlertState],
        apply: Callable[[AlertRow], None],
        what: str,
    ) -> Alert:
        with self._tx(what) as db:
            _require_user(db, user_id)
            row = db.get(AlertRow, alert_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no alert {alert_id}")
            if row.state not in allowed_from:
                raise InvalidTransitionError(
                    f"alert {alert_id} is {row.state.value}: cannot {what}"
                )
            apply(row)
            db.flush()
            return _alert(row, self._code_of(db, row.subject_id))

    @staticmethod
    def _code_of(db: OrmSession, subject_id: int | None) -> str | None:
        if subject_id is None:
            return None
        return db.scalar(select(SubjectRow.code).where(SubjectRow.id == subject_id))

    def acknowledge_alert(self, alert_id: int, *, user_id: int, note: str, at: datetime) -> Alert:
        """An open alert becomes acknowledged by ``user_id`` (a person), with a note."""
        _check_text(note, MAX_NOTE_CHARS, "note")

        def apply(row: AlertRow) -> None:
            row.state = AlertState.ACKNOWLEDGED
            row.acknowledged_by_id, row.acknowledged_at, row.acknowledge_note = user_id, at, note

        return self._alert_transition(
            alert_id, user_id, frozenset({AlertState.OPEN}), apply, "acknowledge alert"
        )

    def resolve_alert(self, alert_id: int, *, user_id: int, note: str, at: datetime) -> Alert:
        """An open or acknowledged alert becomes resolved by ``user_id``; the target may then
        raise a new alert."""
        _check_text(note, MAX_NOTE_CHARS, "note")

        def apply(row: AlertRow) -> None:
            row.state = AlertState.RESOLVED
            row.open_key = None
            row.resolved_by_id, row.resolved_at, row.resolve_note = user_id, at, note

        return self._alert_transition(
            alert_id,
            user_id,
            frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED}),
            apply,
            "resolve alert",
        )

    def list_alerts(self, under: int, *, state: AlertState | None = None) -> list[Alert]:
        """Alerts in the subtree ``under`` (by the subject's or the station's unit), newest
        first."""
        with self._tx("list alerts") as db:
            query = (
                select(AlertRow, SubjectRow.code)
                .outerjoin(SubjectRow, SubjectRow.id == AlertRow.subject_id)
                .outerjoin(ReliefStationRow, ReliefStationRow.id == AlertRow.station_id)
                .where(
                    or_(
                        in_subtree(SubjectRow.org_unit_id, under),
                        in_subtree(ReliefStationRow.org_unit_id, under),
                    )
                )
            )
            if state is not None:
                query = query.where(AlertRow.state == state)
            query = query.order_by(AlertRow.created_at.desc(), AlertRow.id.desc())
            return [_alert(row, code) for row, code in db.execute(query).all()]

    # ----------------------------------------------------------------------- operational alerts

    def all_stations(self) -> list[Station]:
        """Every registered station, by id (for the gateway's operational checks)."""
        with self._tx("list all stations") as db:
            rows = db.scalars(select(ReliefStationRow).order_by(ReliefStationRow.id))
            return [_station(row) for row in rows]

    def running_sessions(self) -> list[SessionRecord]:
        """Every session still running (no end, abort or timeout yet)."""
        with self._tx("list running sessions") as db:
            query = (
                select(SessionRow, SubjectRow.code)
                .outerjoin(SubjectRow, SubjectRow.id == SessionRow.subject_id)
                .where(SessionRow.status == SessionStatus.RUNNING)
                .order_by(SessionRow.id)
            )
            return [_session(row, code) for row, code in db.execute(query).all()]

    def unresolved_operational_alerts(self) -> list[Alert]:
        """Open or acknowledged station-offline, device-lost and outbox-backlog alerts."""
        with self._tx("list operational alerts") as db:
            rows = db.scalars(
                select(AlertRow)
                .where(
                    AlertRow.kind.not_in(list(_SUBJECT_ALERTS)),
                    AlertRow.state != AlertState.RESOLVED,
                )
                .order_by(AlertRow.id)
            )
            return [_alert(row, None) for row in rows]

    def resolve_operational_alert(
        self, alert_id: int, *, actor: Actor, note: str, at: datetime
    ) -> Alert:
        """The system resolves an operational alert whose condition cleared (no user; the
        note says who). Advisory alerts are refused: only a person resolves those."""
        _check_text(note, MAX_NOTE_CHARS, "note")
        with self._tx("resolve operational alert") as db:
            row = db.get(AlertRow, alert_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no alert {alert_id}")
            if row.kind in _SUBJECT_ALERTS:
                raise InvalidTransitionError(f"alert {alert_id} is advisory: a person resolves it")
            if row.state is AlertState.RESOLVED:
                raise InvalidTransitionError(f"alert {alert_id} is already resolved")
            row.state = AlertState.RESOLVED
            row.open_key = None
            row.resolved_at, row.resolve_note = at, f"{actor.name}: {note}"
            db.flush()
            return _alert(row, None)

    # ----------------------------------------------------------------------- quarantine

    def add_quarantine(self, records: Sequence[QuarantineRecord]) -> None:
        """Store refused messages in one transaction."""
        rows = [
            {
                "received_at": record.received_at,
                "topic": record.topic,
                "station": record.station,
                "code": record.code,
                "reason": record.reason,
                "errors": _json_doc([dict(e) for e in record.errors], 64 * 1024, "errors"),
                "payload": record.payload,
                "payload_encoding": record.payload_encoding,
                "payload_size": record.payload_size,
                "payload_truncated": record.payload_truncated,
            }
            for record in records
        ]
        if not rows:
            return
        with self._tx("add quarantine") as db:
            db.execute(insert(QuarantineRow), rows)

    def recent_quarantine(self, limit: int = 100) -> list[QuarantineRecord]:
        """Up to ``limit`` quarantined messages, newest first."""
        with self._tx("read quarantine") as db:
            rows = db.scalars(select(QuarantineRow).order_by(QuarantineRow.id.desc()).limit(limit))
            return [
                QuarantineRecord(
                    received_at=row.received_at,
                    topic=row.topic,
                    station=row.station,
                    code=row.code,
                    reason=row.reason,
                    errors=tuple(row.errors),
                    payload=row.payload,
                    payload_encoding="base64" if row.payload_encoding == "base64" else "text",
                    payload_size=row.payload_size,
                    payload_truncated=row.payload_truncated,
                )
                for row in rows
            ]

    def quarantine_counts(self) -> dict[str, int]:
        """Stored quarantine rows per code."""
        with self._tx("count quarantine") as db:
            rows = db.execute(
                select(QuarantineRow.code, func.count()).group_by(QuarantineRow.code)
            ).all()
            return {str(code): int(count) for code, count in rows}

    def purge_quarantine(self, older_than: datetime) -> int:
        """Delete quarantine rows received before ``older_than`` (retention); return how
        many."""
        with self._tx("purge quarantine") as db:
            result = db.execute(delete(QuarantineRow).where(QuarantineRow.received_at < older_than))
            return int(cast(CursorResult[Any], result).rowcount)

    # ----------------------------------------------------------------------- audit

    def _append_audit(
        self,
        db: OrmSession,
        *,
        actor: Actor,
        action: str,
        resource: str,
        purpose: str,
        subject_code: str | None,
        ip: str | None,
        at: datetime | None = None,
    ) -> AuditLogRow:
        _check_text(actor.name, 64, "audit actor")
        _check(_LABEL_RE, action, "audit action")
        _check_text(resource, MAX_AUDIT_TEXT_CHARS, "audit resource")
        _check_text(purpose, MAX_AUDIT_TEXT_CHARS, "audit purpose")
        if ip is not None:
            _check_text(ip, 45, "audit ip")
        row = AuditLogRow(
            at=at or self._clock(),
            actor=actor.name,
            actor_user_id=actor.user_id,
            subject_code=subject_code,
            action=action,
            resource=resource,
            purpose=purpose,
            ip=ip,
        )
        db.add(row)
        db.flush()
        return row

    def append_audit(
        self,
        *,
        actor: Actor,
        action: str,
        resource: str,
        purpose: str,
        subject_code: str | None = None,
        ip: str | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one audit record (who, whose data, what, which resource, why, from where).

        ``action`` is a label such as ``session.read`` or ``export.csv``.
        """
        with self._tx("append audit") as db:
            row = self._append_audit(
                db,
                actor=actor,
                action=action,
                resource=resource,
                purpose=purpose,
                subject_code=subject_code,
                ip=ip,
                at=at,
            )
            return _audit(row)

    def append_audits(self, records: Sequence[Mapping[str, Any]]) -> list[AuditEntry]:
        """Append several audit records in one transaction (all or none): one lock and one
        commit for the records of concurrent requests. Each mapping holds
        :meth:`append_audit`'s keyword arguments."""
        with self._tx("append audit") as db:
            return [_audit(self._append_audit(db, **record)) for record in records]

    def audit_entries(
        self, *, subject_code: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit records, newest first, optionally for one subject and/or one actor."""
        with self._tx("read audit") as db:
            query = select(AuditLogRow)
            if subject_code is not None:
                query = query.where(AuditLogRow.subject_code == subject_code)
            if actor is not None:
                query = query.where(AuditLogRow.actor == actor)
            rows = db.scalars(query.order_by(AuditLogRow.id.desc()).limit(limit))
            return [_audit(row) for row in rows]

    # ----------------------------------------------------------------------- users

    def create_user(
        self, username: str, *, role: Role, org_unit_id: int, password_hash: str | None = None
    ) -> User:
        """Add a dashboard user at ``org_unit_id`` (their scope); a duplicate name conflicts."""
        _check(_LABEL_RE, username, "username")
        with self._tx("create user") as db:
            if db.get(OrgUnitRow, org_unit_id) is None:
                raise NotFoundError(f"no org unit {org_unit_id}")
            if db.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                raise ConflictError(f"user {username!r} already exists")
            row = UserRow(
                username=username,
                password_hash=password_hash,
                role=role,
                org_unit_id=org_unit_id,
                active=True,
                failed_logins=0,
                created_at=self._clock(),
            )
            db.add(row)
            db.flush()
            return _user(row)

    def get_user(self, username: str) -> User:
        """The user called ``username``."""
        with self._tx("get user") as db:
            row = db.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                raise NotFoundError(f"no user {username!r}")
            return _user(row)


class SqlQuarantine:
    """The ingest :class:`~shuxin.gateway.quarantine.QuarantineStore` port over the SQL
    store: failures surface as :class:`~shuxin.gateway.errors.QuarantineError`."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def add(self, records: Sequence[QuarantineRecord]) -> None:
        """Store ``records`` durably or raise ``QuarantineError``."""
        try:
            self._store.add_quarantine(records)
        except SqlStoreError as exc:
            raise QuarantineError(f"cannot write quarantine rows: {exc}") from exc


def open_store(
    settings: SqlSettings, data_dir: Path, *, clock: Callable[[], datetime] = _utc_now
) -> SqlStore:
    """The composition-root helper: engine from ``settings`` (SQLite file in ``data_dir``
    by default), migrations applied when ``migrate_on_start``, identity cipher from the key
    ring."""
    engine = make_engine(
        settings.resolved_url(data_dir), sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    if settings.migrate_on_start:
        upgrade(engine)
    return SqlStore(engine, settings.identity_cipher(), clock=clock)


# --------------------------------------------------------------------------- data lifecycle
# Retention purges, consent withdrawal (delete / anonymise) and what a subject export reads.
# Used by shuxin.gateway.lifecycle; documented in docs/data-lifecycle.md.

#: Audit entries younger than this many days cannot be deleted (migration r0002's trigger).
AUDIT_FLOOR_DAYS: Final = 183
#: Prefix of the opaque id an anonymised session gets (no station, date or counter in it).
ANONYMOUS_SESSION_PREFIX: Final = "anon-"


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """Where a session's raw points lie: its station, devices and edge-clock time range.

    ``start``/``end`` are None when the session has no time at all (nothing to delete by
    range). ``end`` of a session that never ended is its latest known event or phase time.
    """

    session_id: str
    station_id: str
    devices: tuple[str, ...]
    start: datetime | None
    end: datetime | None


class SqlLifecycle:
    """Retention and withdrawal operations over a :class:`SqlStore` (one transaction each).

    Every ``purge_*`` takes ``dry_run`` and then only counts. Withdrawal keeps the subject row
    (its code, unit and ``consent_status``), its consent records (open ones are closed) and
    every audit entry, and appends one ``subject.withdraw`` entry.
    """

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _now(self) -> datetime:
        return self._store._clock()

    # ----------------------------------------------------------------------- retention

    @staticmethod
    def _count_or_delete(db: OrmSession, model: type[Base], where: Any, dry_run: bool) -> int:
        if dry_run:
            return int(db.scalar(select(func.count()).select_from(model).where(where)) or 0)
        return int(cast(CursorResult[Any], db.execute(delete(model).where(where))).rowcount)

    def purge_derived(self, older_than: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete summaries and display curves of sessions that started before
        ``older_than`` (sessions without a start: created before); return counts per table."""
        session_time = func.coalesce(SessionRow.started_at, SessionRow.created_at)
        old_sessions = select(SessionRow.id).where(session_time < older_than)
        with self._store._tx("purge derived data") as db:
            return {
                "summaries": self._count_or_delete(
                    db, SessionSummaryRow, SessionSummaryRow.session_id.in_(old_sessions), dry_run
                ),
                "curves": self._count_or_delete(
                    db, DisplayCurveRow, DisplayCurveRow.session_id.in_(old_sessions), dry_run
                ),
            }

    def purge_quarantine(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete quarantine rows received before ``older_than``; return how many."""
        with self._store._tx("purge quarantine") as db:
            return self._count_or_delete(
                db, QuarantineRow, QuarantineRow.received_at < older_than, dry_run
            )

    def purge_audit(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete audit entries older than ``older_than``; return how many.

        Refuses (``SqlDataError``) a cut-off younger than :data:`AUDIT_FLOOR_DAYS` days; the
        database's trigger refuses it too, by the database's clock.
        """
        from datetime import timedelta

        if older_than > self._now() - timedelta(days=AUDIT_FLOOR_DAYS):
            raise SqlDataError(
                f"audit entries must be kept at least {AUDIT_FLOOR_DAYS} days; "
                "the cut-off is too recent"
            )
        with self._store._tx("purge audit log") as db:
            return self._count_or_delete(db, AuditLogRow, AuditLogRow.at < older_than, dry_run)

    # ----------------------------------------------------------------------- withdrawal

    def session_spans(self, code: str) -> list[SessionSpan]:
        """Station, devices and time range of each of the subject's sessions (by start)."""
        with self._store._tx("list session spans") as db:
            subject = self._store._subject_row(db, code)
            sessions = db.scalars(
                select(SessionRow)
                .where(SessionRow.subject_id == subject.id)
                .order_by(SessionRow.started_at, SessionRow.id)
            ).all()
            spans = []
            for row in sessions:
                event_first, event_last = db.execute(
                    select(func.min(SessionEventRow.t), func.max(SessionEventRow.t)).where(
                        SessionEventRow.session_id == row.id
                    )
                ).one()
                phase_first, phase_last = db.execute(
                    select(
                        func.min(SessionPhaseRow.started_at), func.max(SessionPhaseRow.ended_at)
                    ).where(SessionPhaseRow.session_id == row.id)
                ).one()
                starts = [t for t in (row.started_at, event_first, phase_first) if t is not None]
                ends = [
                    t
                    for t in (row.ended_at, event_last, phase_last, row.started_at)
                    if t is not None
                ]
                spans.append(
                    SessionSpan(
                        session_id=row.id,
                        station_id=row.station_id,
                        devices=tuple(row.devices),
                        start=_as_utc(min(starts)) if starts else None,
                        end=_as_utc(max(ends)) if ends else None,
                    )
                )
            return spans

    def _close_consents(self, db: OrmSession, subject: SubjectRow, actor: Actor) -> int:
        rows = db.scalars(
            select(ConsentRow).where(
                ConsentRow.subject_id == subject.id, ConsentRow.withdrawn_at.is_(None)
            )
        ).all()
        for row in rows:
            row.withdrawn_at = self._now()
            row.withdrawal_recorded_by_id = actor.user_id
        subject.consent_status = ConsentStatus.WITHDRAWN
        subject.active = False
        return len(rows)

    def erase_subject(self, code: str, *, actor: Actor, purpose: str) -> dict[str, int]:
        """Delete the subject's sessions (with phases, events, ratings, summaries, curves),
        alerts, identity and quarantined messages naming them; close open consents; audit.
        Idempotent. Returns counts per kind."""
        with self._store._tx("erase subject") as db:
            subject = self._store._subject_row(db, code, lock=True)
            session_ids = select(SessionRow.id).where(SessionRow.subject_id == subject.id)
            # Later messages of these sessions (an outbox that was offline) are discarded.
            self._store._withdraw_sessions(db, list(db.scalars(session_ids)), placeholders=False)
            counts = {"sessions": 0}
            for name, model in _SESSION_CHILDREN.items():
                counts[name] = self._count_or_delete(
                    db, model, model.session_id.in_(session_ids), dry_run=False
                )
            counts["sessions"] = self._count_or_delete(
                db, SessionRow, SessionRow.subject_id == subject.id, dry_run=False
            )
            counts["alerts"] = self._count_or_delete(
                db, AlertRow, AlertRow.subject_id == subject.id, dry_run=False
            )
            counts["identity"] = self._count_or_delete(
                db, IdentityRow, IdentityRow.subject_id == subject.id, dry_run=False
            )
            counts["quarantine"] = self._count_or_delete(
                db, QuarantineRow, QuarantineRow.payload.contains(code, autoescape=True), False
            )
            counts["consents_closed"] = self._close_consents(db, subject, actor)
            self._store._append_audit(
                db,
                actor=actor,
                action="subject.withdraw",
                resource=f"subject/{code}?mode=delete&sessions={counts['sessions']}",
                purpose=purpose,
                subject_code=code,
                ip=None,
            )
            return counts

    def anonymise_subject(self, code: str, *, actor: Actor, purpose: str) -> dict[str, int]:
        """Cut the subject's link to their sessions and keep only what reports aggregate.

        Each session moves to a new opaque id (``anon-…``) with no subject, no devices, no
        clock details and its times moved to the start of its UTC day (the duration kept);
        phases keep their plan but lose their times; summaries and ratings stay (rating times
        also moved to the day); events, display curves, alerts, the identity and quarantined
        messages naming the subject are deleted; open consents close; audited. Idempotent.
        Returns counts.
        """
        import secrets

        def day_of(moment: datetime | None) -> datetime | None:
            if moment is None:
                return None
            moment = _as_utc(moment)
            return moment.replace(hour=0, minute=0, second=0, microsecond=0)

        counts = {"sessions": 0, "events": 0, "curves": 0}
        with self._store._tx("anonymise subject") as db:
            subject = self._store._subject_row(db, code, lock=True)
            rows = db.scalars(select(SessionRow).where(SessionRow.subject_id == subject.id)).all()
            # The original ids: later messages of these sessions are discarded.
            self._store._withdraw_sessions(db, [row.id for row in rows], placeholders=False)
            for row in rows:
                new_id = ANONYMOUS_SESSION_PREFIX + secrets.token_hex(12)
                started = day_of(row.started_at)
                ended = None
                if started is not None and row.started_at and row.ended_at:
                    ended = started + (_as_utc(row.ended_at) - _as_utc(row.started_at))
                db.add(
                    SessionRow(
                        id=new_id,
                        station_id=row.station_id,
                        subject_id=None,
                        protocol_id=row.protocol_id,
                        protocol_version=row.protocol_version,
                        status=row.status,
                        started_at=started,
                        ended_at=ended,
                        end_reason=row.end_reason,
                        devices=[],
                        lifecycle_seq=None,
                        clock_offset_ms=None,
                        clock_source=None,
                        clock_uncertainty_ms=None,
                        created_at=started or day_of(row.created_at),
                    )
                )
                db.flush()
                counts["events"] += self._count_or_delete(
                    db, SessionEventRow, SessionEventRow.session_id == row.id, dry_run=False
                )
                counts["curves"] += self._count_or_delete(
                    db, DisplayCurveRow, DisplayCurveRow.session_id == row.id, dry_run=False
                )
                db.execute(
                    update(SessionPhaseRow)
                    .where(SessionPhaseRow.session_id == row.id)
                    .values(session_id=new_id, started_at=None, ended_at=None)
                )
                for rating in db.scalars(select(RatingRow).where(RatingRow.session_id == row.id)):
                    rating.t = day_of(rating.t) or rating.t
                db.flush()
                db.execute(
                    update(RatingRow)
                    .where(RatingRow.session_id == row.id)
                    .values(session_id=new_id, source_seq=0, source_index=0)
                )
                for summary in db.scalars(
                    select(SessionSummaryRow).where(SessionSummaryRow.session_id == row.id)
                ):
                    summary.computed_at = day_of(summary.computed_at) or summary.computed_at
                db.flush()
                db.execute(
                    update(SessionSummaryRow)
                    .where(SessionSummaryRow.session_id == row.id)
                    .values(session_id=new_id)
                )
                db.execute(delete(SessionRow).where(SessionRow.id == row.id))
                counts["sessions"] += 1
            counts["alerts"] = self._count_or_delete(
                db, AlertRow, AlertRow.subject_id == subject.id, dry_run=False
            )
            counts["identity"] = self._count_or_delete(
                db, IdentityRow, IdentityRow.subject_id == subject.id, dry_run=False
            )
            counts["quarantine"] = self._count_or_delete(
                db, QuarantineRow, QuarantineRow.payload.contains(code, autoescape=True), False
            )
            counts["consents_closed"] = self._close_consents(db, subject, actor)
            self._store._append_audit(
                db,
                actor=actor,
                action="subject.withdraw",
                resource=f"subject/{code}?mode=anonymise&sessions={counts['sessions']}",
                purpose=purpose,
                subject_code=code,
                ip=None,
            )
            return counts

    def subject_alerts(self, code: str) -> list[Alert]:
        """Every alert about the subject, oldest first (for an export)."""
        with self._store._tx("list subject alerts") as db:
            subject = self._store._subject_row(db, code)
            rows = db.scalars(
                select(AlertRow)
                .where(AlertRow.subject_id == subject.id)
                .order_by(AlertRow.created_at, AlertRow.id)
            )
            return [_alert(row, code) for row in rows]

    def subject_audit(self, code: str) -> list[AuditEntry]:
        """Every audit entry naming the subject, oldest first (for an export)."""
        with self._store._tx("read subject audit") as db:
            rows = db.scalars(
                select(AuditLogRow).where(AuditLogRow.subject_code == code).order_by(AuditLogRow.id)
            )
            return [_audit(row) for row in rows]


def _as_utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC (a naive value is taken as UTC, as the store writes it)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
