"""The dashboard API's SQL reads: SQLAlchemy 2 selects over the gateway's ORM models.

Every function takes the request's ORM session and the caller's org-unit id (``under``) and
applies the one scoping rule, ``in_subtree``, so nothing outside the caller's subtree is ever
returned. List functions return ``(rows, count)`` where ``count`` is a ``COUNT(*)`` of the
filtered query (the session list skips it on a short last page, where ``offset`` plus the
rows returned is the exact count), and load related rows for a page in one
query per relation (no N+1). Sessions belong where their subject belongs (a session whose
subject is still unknown belongs to its station's unit), exactly as ``SqlStore`` says.

No HTTP, no audit writes, no permission checks here: routes do those. Writes are limited to
the user admin's deactivation; everything else goes through ``SqlStore``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import Float, Select, and_, case, func, or_, select
from sqlalchemy import cast as cast_sql
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from shuxin.gateway.sql_models import (
    WHOLE_SESSION,
    AlertKind,
    AlertRow,
    AlertState,
    AuditLogRow,
    ConsentRow,
    DeviceRow,
    OrgUnitClosureRow,
    OrgUnitRow,
    RatingRow,
    ReliefStationRow,
    SessionEventRow,
    SessionPhaseRow,
    SessionRow,
    SessionStatus,
    SessionSummaryRow,
    SubjectRow,
    UserRow,
)
from shuxin.gateway.sql_store import in_subtree

#: A resting value counts for the personal band only at or below this % of artefacts
#: (the same rule as the gateway's advisory alerts).
RESTING_MAX_ARTIFACT_PCT: Final = 5.0
#: Phase kinds whose values are "resting".
RESTING_KINDS: Final = ("baseline", "rest")
#: Window of the rolling statistics (sessions) and the fewest values they need.
ROLLING_WINDOW: Final = 7
ROLLING_MIN: Final = 3
#: The rating scale shown in lists.
RATING_SCALE: Final = "tension_0_10"


@dataclass(frozen=True, slots=True)
class Page:
    """Paging: at most ``limit`` rows after skipping ``offset``."""

    limit: int = 50
    offset: int = 0


def subtree_is_everything(db: OrmSession, under: int) -> bool:
    """``under``'s subtree holds every org unit (it is the only root): every station, subject
    and session is then in scope, and queries may drop the scope condition. One count over
    the small org-unit table, in the caller's transaction."""
    outside = (
        select(func.count())
        .select_from(OrgUnitRow)
        .where(
            ~OrgUnitRow.id.in_(
                select(OrgUnitClosureRow.descendant_id).where(
                    OrgUnitClosureRow.ancestor_id == under
                )
            )
        )
    )
    return db.scalar(outside) == 0


def _count(db: OrmSession, query: Select[*tuple[Any, ...]]) -> int:
    counted = db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return int(counted or 0)


# --------------------------------------------------------------------------- org units


def list_org_units(db: OrmSession, under: int) -> list[OrgUnitRow]:
    """The subtree rooted at ``under``: roots first (by depth), then by code."""
    query = (
        select(OrgUnitRow)
        .join(OrgUnitClosureRow, OrgUnitClosureRow.descendant_id == OrgUnitRow.id)
        .where(OrgUnitClosureRow.ancestor_id == under)
        .order_by(OrgUnitClosureRow.depth, OrgUnitRow.code)
    )
    return list(db.scalars(query))


def org_unit_by_code(db: OrmSession, code: str, under: int) -> OrgUnitRow | None:
    """The unit called ``code`` when it lies in the subtree, else None."""
    return db.scalar(
        select(OrgUnitRow).where(OrgUnitRow.code == code, in_subtree(OrgUnitRow.id, under))
    )


def unit_in_scope(db: OrmSession, unit_id: int, under: int) -> OrgUnitRow | None:
    """The unit with ``unit_id`` when it lies in the subtree, else None."""
    return db.scalar(
        select(OrgUnitRow).where(OrgUnitRow.id == unit_id, in_subtree(OrgUnitRow.id, under))
    )


# --------------------------------------------------------------------------- stations


@dataclass(frozen=True, slots=True)
class StationView:
    """A station with its unit's code and its devices."""

    station: ReliefStationRow
    org_unit_code: str
    devices: list[DeviceRow]


def list_stations(db: OrmSession, under: int) -> list[StationView]:
    """Stations in the subtree with their devices (two queries), by station id."""
    rows = db.execute(
        select(ReliefStationRow, OrgUnitRow.code)
        .join(OrgUnitRow, OrgUnitRow.id == ReliefStationRow.org_unit_id)
        .where(in_subtree(ReliefStationRow.org_unit_id, under))
        .order_by(ReliefStationRow.id)
    ).all()
    ids = [station.id for station, _ in rows]
    devices: dict[str, list[DeviceRow]] = {station_id: [] for station_id in ids}
    if ids:
        for device in db.scalars(
            select(DeviceRow)
            .where(DeviceRow.station_id.in_(ids))
            .order_by(DeviceRow.station_id, DeviceRow.device_id)
        ):
            devices[device.station_id].append(device)
    return [StationView(station, code, devices[station.id]) for station, code in rows]


def station_in_scope(db: OrmSession, station_id: str, under: int) -> ReliefStationRow | None:
    """The station when it lies in the subtree, else None."""
    return db.scalar(
        select(ReliefStationRow).where(
            ReliefStationRow.id == station_id, in_subtree(ReliefStationRow.org_unit_id, under)
        )
    )


# --------------------------------------------------------------------------- subjects


@dataclass(frozen=True, slots=True)
class SubjectView:
    """A subject with its unit's code and activity counts."""

    subject: SubjectRow
    org_unit_code: str
    session_count: int
    last_session_at: datetime | None
    open_alerts: int


def list_subjects(
    db: OrmSession,
    under: int,
    page: Page,
    *,
    org_unit_id: int | None = None,
    code: str | None = None,
) -> tuple[list[SubjectView], int]:
    """Subjects in the subtree (or in the subtree of ``org_unit_id``; or the one called
    ``code``), by code, with their session count, last session and unresolved alerts (one
    grouped query each for the page)."""
    query = select(SubjectRow).where(in_subtree(SubjectRow.org_unit_id, under))
    if code is not None:
        query = query.where(SubjectRow.code == code)
    if org_unit_id is not None:
        query = query.where(in_subtree(SubjectRow.org_unit_id, org_unit_id))
    total = _count(db, query)
    subjects = list(
        db.scalars(query.order_by(SubjectRow.code).limit(page.limit).offset(page.offset))
    )
    ids = [s.id for s in subjects]
    sessions: dict[int, tuple[int, datetime | None]] = {}
    alerts: dict[int, int] = {}
    units: dict[int, str] = {}
    if ids:
        for subject_id, n, last in db.execute(
            select(SessionRow.subject_id, func.count(), func.max(SessionRow.started_at))
            .where(SessionRow.subject_id.in_(ids))
            .group_by(SessionRow.subject_id)
        ):
            if subject_id is not None:
                sessions[subject_id] = (int(n), last)
        for subject_id, n in db.execute(
            select(AlertRow.subject_id, func.count())
            .where(AlertRow.subject_id.in_(ids), AlertRow.state != AlertState.RESOLVED)
            .group_by(AlertRow.subject_id)
        ):
            if subject_id is not None:
                alerts[subject_id] = int(n)
        unit_ids = {s.org_unit_id for s in subjects}
        units = dict(
            db.execute(
                select(OrgUnitRow.id, OrgUnitRow.code).where(OrgUnitRow.id.in_(unit_ids))
            ).all()
        )
    views = []
    for s in subjects:
        n, last = sessions.get(s.id, (0, None))
        views.append(SubjectView(s, units[s.org_unit_id], n, _aware(last), alerts.get(s.id, 0)))
    return views, total


def _aware(value: datetime | str | None) -> datetime | None:
    """MAX() over a time column, as an aware UTC datetime (SQLite may hand back text)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def subject_in_scope(db: OrmSession, code: str, under: int) -> SubjectRow | None:
    """The subject when it lies in the subtree, else None."""
    return db.scalar(
        select(SubjectRow).where(SubjectRow.code == code, in_subtree(SubjectRow.org_unit_id, under))
    )


def subject_consents(db: OrmSession, subject_id: int) -> list[ConsentRow]:
    """The subject's consent records, oldest first."""
    return list(
        db.scalars(
            select(ConsentRow)
            .where(ConsentRow.subject_id == subject_id)
            .order_by(ConsentRow.granted_at, ConsentRow.id)
        )
    )


# --------------------------------------------------------------------------- sessions


def session_scope(under: int, *, by_station: bool = False) -> ColumnElement[bool]:
    """A session lies in the subtree: by its subject's unit, or by its station's unit while
    the subject is unknown (``by_station``: by the station's unit alone). Needs no join: the
    conditions are ``IN`` lists of subject and station ids, so a count or a page over many
    sessions reads only the session table and its indexes."""
    stations = select(ReliefStationRow.id).where(in_subtree(ReliefStationRow.org_unit_id, under))
    if by_station:
        return SessionRow.station_id.in_(stations)
    subjects = select(SubjectRow.id).where(in_subtree(SubjectRow.org_unit_id, under))
    return or_(
        SessionRow.subject_id.in_(subjects),
        and_(SessionRow.subject_id.is_(None), SessionRow.station_id.in_(stations)),
    )


def _session_scope_case(under: int) -> ColumnElement[bool]:
    """:func:`session_scope` as one CASE (same rows; a different plan, see list_sessions)."""
    stations = select(ReliefStationRow.id).where(in_subtree(ReliefStationRow.org_unit_id, under))
    subjects = select(SubjectRow.id).where(in_subtree(SubjectRow.org_unit_id, under))
    return cast(
        ColumnElement[bool],
        case(
            (SessionRow.subject_id.is_(None), SessionRow.station_id.in_(stations)),
            else_=SessionRow.subject_id.in_(subjects),
        ),
    )


@dataclass(frozen=True, slots=True)
class SessionFilters:
    """Filters of the session list (None: not filtered)."""

    station: str | None = None
    subject: str | None = None
    protocol: str | None = None
    status: SessionStatus | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    #: Scope by the station's unit instead of the subject's (station staff: the sessions
    #: held at their station, whoever the subject is).
    by_station: bool = False


@dataclass(frozen=True, slots=True)
class SessionListItem:
    """One row of the session list with what the list shows of its summary and ratings."""

    session: SessionRow
    subject_code: str | None
    whole_metrics: dict[str, Any] | None
    whole_quality: dict[str, Any] | None
    ratings: dict[str, int] = field(default_factory=dict)


def _session_base(under: int, *, by_station: bool = False) -> Select[SessionRow, str]:
    return (
        select(SessionRow, SubjectRow.code)
        .outerjoin(SubjectRow, SubjectRow.id == SessionRow.subject_id)
        .where(session_scope(under, by_station=by_station))
    )


def list_sessions(
    db: OrmSession, under: int, filters: SessionFilters, page: Page
) -> tuple[list[SessionListItem], int]:
    """Sessions in scope matching ``filters``, newest first; with the subject codes, the
    whole-session summary and the before/after ratings of the page's sessions (one query
    each). The count and the page read the session table alone (no joins)."""
    query = select(SessionRow)
    if filters.station is not None:
        query = query.where(SessionRow.station_id == filters.station)
    if filters.subject is not None:
        subject_id = select(SubjectRow.id).where(SubjectRow.code == filters.subject)
        query = query.where(SessionRow.subject_id == subject_id.scalar_subquery())
    if filters.protocol is not None:
        query = query.where(SessionRow.protocol_id == filters.protocol)
    if filters.status is not None:
        query = query.where(SessionRow.status == filters.status)
    if filters.date_from is not None:
        query = query.where(SessionRow.started_at >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(SessionRow.started_at < filters.date_to)
    if subtree_is_everything(db, under):
        # Every station and subject lies in the subtree, so every session is in scope: no
        # scope condition, and the newest page is the first rows of ix_session_started_at_id.
        count_query = page_query = query
    else:
        count_query = query.where(session_scope(under, by_station=filters.by_station))
        # The page: the same conditions, but the scope written as a CASE. SQLite answers the
        # OR form from two indexes (fast to count) but then cannot read the rows in the
        # list's order; the CASE form walks ix_session_started_at_id newest first (or uses
        # the station/subject index when that filter is given) and stops after the page.
        page_query = query.where(
            session_scope(under, by_station=True)
            if filters.by_station
            else _session_scope_case(under)
        )
    # Narrow rows (ids) in the list's order, then the page's full rows loaded. The order is
    # the one ix_session_started_at_id is built in (r0003): NULLs last on every database.
    ids = list(
        db.scalars(
            page_query.with_only_columns(SessionRow.id)
            .order_by(SessionRow.started_at.desc().nulls_last(), SessionRow.id)
            .limit(page.limit)
            .offset(page.offset)
        )
    )
    if len(ids) < page.limit and (ids or page.offset == 0):
        total = page.offset + len(ids)  # the last page: the count is known without counting
    else:
        total = _count(db, count_query)
    loaded = {row.id: row for row in db.scalars(select(SessionRow).where(SessionRow.id.in_(ids)))}
    rows = [loaded[session_id] for session_id in ids]
    codes: dict[int, str] = {}
    whole: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # (metrics, quality)
    ratings: dict[str, dict[str, int]] = {session_id: {} for session_id in ids}
    if ids:
        subject_ids = {row.subject_id for row in rows if row.subject_id is not None}
        if subject_ids:
            code_rows = db.execute(
                select(SubjectRow.id, SubjectRow.code).where(SubjectRow.id.in_(subject_ids))
            )
            codes = {int(subject_id): str(code) for subject_id, code in code_rows}
        # Columns, not ORM rows: the list needs two of a summary's documents and three
        # columns of a rating.
        for session_id, metrics, quality in db.execute(
            select(
                SessionSummaryRow.session_id, SessionSummaryRow.metrics, SessionSummaryRow.quality
            ).where(
                SessionSummaryRow.session_id.in_(ids),
                SessionSummaryRow.phase_index == WHOLE_SESSION,
            )
        ):
            whole[session_id] = (metrics, quality)
        for session_id, when, value in db.execute(
            select(RatingRow.session_id, RatingRow.when, RatingRow.value).where(
                RatingRow.session_id.in_(ids), RatingRow.scale == RATING_SCALE
            )
        ):
            ratings[session_id][when.value] = value
    items = []
    for row in rows:
        found = whole.get(row.id)
        items.append(
            SessionListItem(
                row,
                codes.get(row.subject_id) if row.subject_id is not None else None,
                dict(found[0]) if found else None,
                dict(found[1]) if found else None,
                ratings[row.id],
            )
        )
    return items, total


def session_in_scope(
    db: OrmSession, session_id: str, under: int
) -> tuple[SessionRow, str | None] | None:
    """The session and its subject's code when the session lies in the subtree, else None."""
    found = db.execute(_session_base(under).where(SessionRow.id == session_id)).one_or_none()
    return None if found is None else (found[0], found[1])


@dataclass(frozen=True, slots=True)
class SessionDetail:
    """Everything the session detail shows, read in one query per table."""

    phases: list[SessionPhaseRow]
    summaries: list[SessionSummaryRow]
    events: list[SessionEventRow]
    ratings: list[RatingRow]
    curves: list[Any]


def session_detail(db: OrmSession, session_id: str) -> SessionDetail:
    """Phases, summaries (whole session first), events, ratings and display curves."""
    from shuxin.gateway.sql_models import DisplayCurveRow

    phases = list(
        db.scalars(
            select(SessionPhaseRow)
            .where(SessionPhaseRow.session_id == session_id)
            .order_by(SessionPhaseRow.phase_index)
        )
    )
    summaries = list(
        db.scalars(
            select(SessionSummaryRow)
            .where(SessionSummaryRow.session_id == session_id)
            .order_by(SessionSummaryRow.phase_index)
        )
    )
    events = list(
        db.scalars(
            select(SessionEventRow)
            .where(SessionEventRow.session_id == session_id)
            .order_by(SessionEventRow.t, SessionEventRow.seq, SessionEventRow.event_index)
        )
    )
    ratings = list(
        db.scalars(
            select(RatingRow).where(RatingRow.session_id == session_id).order_by(RatingRow.t)
        )
    )
    curves = list(
        db.scalars(
            select(DisplayCurveRow)
            .where(DisplayCurveRow.session_id == session_id)
            .order_by(DisplayCurveRow.series)
        )
    )
    return SessionDetail(phases, summaries, events, ratings, curves)


# --------------------------------------------------------------------------- trends


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One session's values on the trend chart (None: not measured or suppressed)."""

    session_id: str
    started_at: datetime
    resting_lnrmssd: float | None
    resting_hr_bpm: float | None
    scl_us: float | None
    coherence: float | None
    quality_passed: bool


@dataclass(frozen=True, slots=True)
class Band:
    """Mean ± 1 SD of quality-passed resting values."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Rolling:
    """Rolling mean and coefficient of variation (SD / mean) over the last sessions."""

    session_id: str
    mean7: float | None
    cv7: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


#: The summary values a trend point reads: (column, key) per value.
_TREND_FIELDS: Final = (
    ("metrics", "ln_rmssd"),
    ("metrics", "mean_hr_bpm"),
    ("metrics", "scl_mean_us"),
    ("metrics", "coherence_ratio"),
    ("quality", "artifact_pct"),
)


def _json_number(db: OrmSession, column: str, key: str) -> ColumnElement[float | None]:
    """One top-level value of a summary's JSON column when it is a JSON number, else NULL
    (what :func:`_number` keeps: no booleans, no strings; the store refuses NaN and ±inf).
    Read in SQL, so only the number crosses to Python, not the whole document."""
    document = getattr(SessionSummaryRow, column)
    if db.get_bind().dialect.name == "sqlite":
        path = "$." + json.dumps(key)
        is_number: ColumnElement[bool] = func.json_type(document, path).in_(("integer", "real"))
        value: ColumnElement[Any] = func.json_extract(document, path)
    else:
        is_number = func.jsonb_typeof(document[key]) == "number"
        value = document[key].as_float()
    return case((is_number, cast_sql(value, Float)), else_=None)


def trend_points(db: OrmSession, subject_id: int, *, limit: int = 500) -> list[TrendPoint]:
    """The subject's sessions (oldest first, the newest ``limit``) as trend points: the first
    baseline/rest phase gives the resting values, the first training phase (else the whole
    session) gives coherence. Two queries whatever the number of sessions; the summaries'
    numbers are read out of their JSON in SQL, only where used (loading and decoding whole
    summaries of hundreds of sessions was most of a session detail's time)."""
    sessions = list(
        db.execute(
            select(SessionRow.id, SessionRow.started_at)
            .where(SessionRow.subject_id == subject_id, SessionRow.started_at.is_not(None))
            .order_by(SessionRow.started_at.desc())
            .limit(limit)
        )
    )
    sessions.reverse()
    ids = [session_id for session_id, _ in sessions]
    kinds: dict[str, dict[int, str | None]] = {session_id: {} for session_id in ids}
    #: session -> phase index -> (ln_rmssd, mean_hr_bpm, scl_mean_us, coherence, artefact %)
    summaries: dict[str, dict[int, tuple[float | None, ...]]] = {
        session_id: {} for session_id in ids
    }
    if ids:
        # Each summary with its phase's kind; the JSON is read only where it is used (CASE
        # evaluates lazily): the resting values in resting phases, coherence in training
        # phases and the whole session.
        in_resting = SessionPhaseRow.kind.in_(RESTING_KINDS)
        scored = or_(
            SessionPhaseRow.kind == "training", SessionSummaryRow.phase_index == WHOLE_SESSION
        )
        values = [
            case(
                (scored if key == "coherence_ratio" else in_resting, _json_number(db, column, key))
            )
            for column, key in _TREND_FIELDS
        ]
        for session_id, index, kind, *fields in db.execute(
            select(
                SessionSummaryRow.session_id,
                SessionSummaryRow.phase_index,
                SessionPhaseRow.kind,
                *values,
            )
            .outerjoin(
                SessionPhaseRow,
                and_(
                    SessionPhaseRow.session_id == SessionSummaryRow.session_id,
                    SessionPhaseRow.phase_index == SessionSummaryRow.phase_index,
                ),
            )
            .where(SessionSummaryRow.session_id.in_(ids))
        ):
            summaries[session_id][index] = tuple(fields)
            if index != WHOLE_SESSION:
                kinds[session_id][index] = kind
    points = []
    for session_id, started_at in sessions:
        assert started_at is not None
        by_index = summaries[session_id]
        phase_kinds = kinds[session_id]
        resting = next(
            (
                by_index[i]
                for i in sorted(phase_kinds)
                if phase_kinds[i] in RESTING_KINDS and i in by_index
            ),
            None,
        )
        training = next(
            (
                by_index[i]
                for i in sorted(phase_kinds)
                if phase_kinds[i] == "training" and i in by_index
            ),
            None,
        )
        source = training or by_index.get(WHOLE_SESSION)
        ln = _number(resting[0]) if resting else None
        artefacts = _number(resting[4]) if resting else None
        points.append(
            TrendPoint(
                session_id=session_id,
                started_at=started_at,
                resting_lnrmssd=ln,
                resting_hr_bpm=_number(resting[1]) if resting else None,
                scl_us=_number(resting[2]) if resting else None,
                coherence=_number(source[3]) if source else None,
                quality_passed=(
                    ln is not None
                    and artefacts is not None
                    and artefacts <= RESTING_MAX_ARTIFACT_PCT
                ),
            )
        )
    return points


def band(values: Sequence[float]) -> Band | None:
    """Mean ± 1 sample SD of ``values``; None with fewer than two values."""
    if len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return Band(len(values), mean, sd, mean - sd, mean + sd)


def rolling(pairs: Sequence[tuple[str, float | None]]) -> list[Rolling]:
    """For each session, the mean and CV of the last :data:`ROLLING_WINDOW` available values
    up to and including it (None until :data:`ROLLING_MIN` values exist)."""
    out = []
    seen: list[float] = []
    for session_id, value in pairs:
        if value is not None:
            seen.append(value)
        window = seen[-ROLLING_WINDOW:]
        if len(window) < ROLLING_MIN:
            out.append(Rolling(session_id, None, None))
            continue
        stats = band(window)
        assert stats is not None
        cv = stats.sd / abs(stats.mean) if stats.mean != 0 else None
        out.append(Rolling(session_id, stats.mean, cv))
    return out


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert with its subject's code and the names of the people who handled it."""

    alert: AlertRow
    subject_code: str | None
    acknowledged_by: str | None
    resolved_by: str | None


def _alert_base(under: int) -> Select[AlertRow, str, str, str]:
    acker = aliased(UserRow)
    resolver = aliased(UserRow)
    return (
        select(AlertRow, SubjectRow.code, acker.username, resolver.username)
        .outerjoin(SubjectRow, SubjectRow.id == AlertRow.subject_id)
        .outerjoin(ReliefStationRow, ReliefStationRow.id == AlertRow.station_id)
        .outerjoin(acker, acker.id == AlertRow.acknowledged_by_id)
        .outerjoin(resolver, resolver.id == AlertRow.resolved_by_id)
        .where(
            or_(
                in_subtree(SubjectRow.org_unit_id, under),
                in_subtree(ReliefStationRow.org_unit_id, under),
            )
        )
    )


def list_alerts(
    db: OrmSession,
    under: int,
    page: Page,
    *,
    state: AlertState | None = None,
    kind: AlertKind | None = None,
) -> tuple[list[AlertView], int]:
    """Alerts in scope (by the subject's or the station's unit), newest first."""
    query = _alert_base(under)
    if state is not None:
        query = query.where(AlertRow.state == state)
    if kind is not None:
        query = query.where(AlertRow.kind == kind)
    total = _count(db, query)
    rows = db.execute(
        query.order_by(AlertRow.created_at.desc(), AlertRow.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return [AlertView(a, code, ack, res) for a, code, ack, res in rows], total


def alert_in_scope(db: OrmSession, alert_id: int, under: int) -> AlertView | None:
    """The alert when it lies in the subtree, else None."""
    found = db.execute(_alert_base(under).where(AlertRow.id == alert_id)).one_or_none()
    return None if found is None else AlertView(found[0], found[1], found[2], found[3])


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Filters of the audit log (None: not filtered)."""

    subject: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_audit(
    db: OrmSession, under: int, filters: AuditFilters, page: Page
) -> tuple[list[AuditLogRow], int]:
    """Audit records, newest first, that concern the subtree: the subject named lies in it,
    or the acting user is attached inside it."""
    in_scope_subjects = select(SubjectRow.code).where(in_subtree(SubjectRow.org_unit_id, under))
    in_scope_users = select(UserRow.id).where(in_subtree(UserRow.org_unit_id, under))
    query = select(AuditLogRow).where(
        or_(
            AuditLogRow.subject_code.in_(in_scope_subjects),
            AuditLogRow.actor_user_id.in_(in_scope_users),
        )
    )
    if filters.subject is not None:
        query = query.where(AuditLogRow.subject_code == filters.subject)
    if filters.actor is not None:
        query = query.where(AuditLogRow.actor == filters.actor)
    if filters.action is not None:
        query = query.where(AuditLogRow.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditLogRow.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditLogRow.at < filters.until)
    total = _count(db, query)
    rows = db.scalars(query.order_by(AuditLogRow.id.desc()).limit(page.limit).offset(page.offset))
    return list(rows), total


# --------------------------------------------------------------------------- users


def list_users(db: OrmSession, under: int, page: Page) -> tuple[list[tuple[UserRow, str]], int]:
    """Users attached inside the subtree, by username, with their unit's code."""
    query = (
        select(UserRow, OrgUnitRow.code)
        .join(OrgUnitRow, OrgUnitRow.id == UserRow.org_unit_id)
        .where(in_subtree(UserRow.org_unit_id, under))
    )
    total = _count(db, query)
    rows = db.execute(query.order_by(UserRow.username).limit(page.limit).offset(page.offset))
    return [(user, code) for user, code in rows], total


def user_in_scope(db: OrmSession, user_id: int, under: int) -> UserRow | None:
    """The user when attached inside the subtree, else None."""
    return db.scalar(
        select(UserRow).where(UserRow.id == user_id, in_subtree(UserRow.org_unit_id, under))
    )
