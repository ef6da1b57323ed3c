"""``/api/v1/sessions``: the session list, one session's detail and its raw series.

Who sees what: counselors see sessions in their subtree with metrics; station staff (the
``session:list-today`` permission only) see today's sessions (Asia/Shanghai civil day) held
at their station with every metric field null — no screening results. Audit: the list
writes one ``session.list`` record; a detail writes one ``session.read`` record and a series
one ``series.read`` record naming the subject, before the response. A session outside the
caller's subtree is a 404 like a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api import queries
from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import AuditLog, Services, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES, not_found
from shuxin.dashboard_api.reports import ReportKind, civil_today, report_period
from shuxin.dashboard_api.schemas import (
    BandOut,
    CurveOut,
    EventOut,
    ListResponse,
    Paging,
    PhaseOut,
    RatingOut,
    ReadDb,
    SeriesOut,
    SeriesPointOut,
    SessionDetailOut,
    SessionListItemOut,
)
from shuxin.gateway.sql_models import WHOLE_SESSION, SessionRow, SessionStatus
from shuxin.gateway.timeseries import from_epoch_us

router = APIRouter(prefix="/api/v1", tags=["sessions"])

#: Unit of each measurement's values (metrics carry the unit in each field's name).
SERIES_UNITS: Final = {"rr": "ms", "hr": "bpm", "eda": "µS", "metrics": "per field"}

SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _duration_s(row: SessionRow) -> float | None:
    if row.started_at is None or row.ended_at is None:
        return None
    return (row.ended_at - row.started_at).total_seconds()


def _quality_ok(quality: dict[str, Any] | None) -> bool | None:
    """The whole session passed: HRV was computed and at most 5 % of beats were artefacts."""
    if quality is None:
        return None
    artefacts = quality.get("artifact_pct")
    return (
        "hrv" not in quality
        and isinstance(artefacts, int | float)
        and artefacts <= queries.RESTING_MAX_ARTIFACT_PCT
    )


def _delta_lnrmssd(metrics: dict[str, Any] | None) -> float | None:
    deltas = (metrics or {}).get("deltas") or {}
    value = (deltas.get("training_minus_baseline") or {}).get("ln_rmssd")
    return float(value) if isinstance(value, int | float) else None


def _today(now: datetime) -> tuple[datetime, datetime]:
    """The UTC bounds of the stations' civil day (the same day the daily report uses)."""
    period = report_period(ReportKind.DAILY, civil_today(now))
    return period.start, period.end


def _in_scope(
    db: OrmSession, session_id: str, principal: Principal
) -> tuple[SessionRow, str | None]:
    found = queries.session_in_scope(db, session_id, principal.org_unit_id)
    if found is None:
        raise not_found("session")
    return found


@router.get("/sessions", response_model=ListResponse[SessionListItemOut], responses=ERROR_RESPONSES)
def list_sessions(
    *,
    db: ReadDb,
    services: Services,
    audit: AuditLog,
    page: Paging,
    principal: Annotated[Principal, Depends(require(Permission.SESSION_LIST_TODAY))],
    station: Annotated[str | None, Query(max_length=32)] = None,
    subject: Annotated[str | None, Query(max_length=16)] = None,
    protocol: Annotated[str | None, Query(max_length=64)] = None,
    status: SessionStatus | None = None,
    date_from: Annotated[datetime | None, Query(description="started at or after")] = None,
    date_to: Annotated[datetime | None, Query(description="started before")] = None,
) -> ListResponse[SessionListItemOut]:
    """Sessions in scope, newest first, filtered by station, subject, protocol, status and
    start time. Station staff get today's sessions at their station without metrics.
    Audited once as ``session.list``."""
    full = principal.can(Permission.SESSION_READ)
    date_from, date_to = _aware(date_from), _aware(date_to)
    if not full:
        start, end = _today(services.clock())
        date_from = start if date_from is None else max(date_from, start)
        date_to = end if date_to is None else min(date_to, end)
    filters = queries.SessionFilters(
        station=station,
        subject=subject,
        protocol=protocol,
        status=status,
        date_from=date_from,
        date_to=date_to,
        by_station=not full,
    )
    items, total = queries.list_sessions(db, principal.org_unit_id, filters, page)
    db.close()  # end the read transaction before the audit write
    audit.event("session.list", "/api/v1/sessions")
    data = [
        SessionListItemOut(
            id=i.session.id,
            station_id=i.session.station_id,
            subject_code=i.subject_code,
            protocol_id=i.session.protocol_id,
            status=i.session.status.value,
            started_at=i.session.started_at,
            ended_at=i.session.ended_at,
            duration_s=_duration_s(i.session),
            quality_ok=_quality_ok(i.whole_quality) if full else None,
            rating_before=i.ratings.get("before") if full else None,
            rating_after=i.ratings.get("after") if full else None,
            delta_lnrmssd=_delta_lnrmssd(i.whole_metrics) if full else None,
        )
        for i in items
    ]
    return ListResponse[SessionListItemOut](data=data, count=total)


def _aware(moment: datetime | None) -> datetime | None:
    """A naive query time is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get("/sessions/{session_id}", response_model=SessionDetailOut, responses=ERROR_RESPONSES)
def get_session(
    *,
    db: ReadDb,
    audit: AuditLog,
    session_id: SessionId,
    principal: Annotated[Principal, Depends(require(Permission.SESSION_READ))],
) -> SessionDetailOut:
    """One session: phases with their metrics and quality, whole-session metrics, deltas
    (training − baseline, recovery − baseline), the subject's personal band, algorithm
    versions, events, ratings and display curves. Audited as ``session.read``."""
    row, code = _in_scope(db, session_id, principal)
    detail = queries.session_detail(db, row.id)
    by_index = {s.phase_index: s for s in detail.summaries}
    whole = by_index.get(WHOLE_SESSION)
    metrics = dict(whole.metrics) if whole else None
    deltas = metrics.pop("deltas", None) if metrics else None
    band = None
    if row.subject_id is not None:
        points = queries.trend_points(db, row.subject_id)
        stats = queries.band(
            [
                p.resting_lnrmssd
                for p in points
                if p.quality_passed and p.resting_lnrmssd is not None
            ]
        )
        if stats is not None:
            band = BandOut(n=stats.n, mean=stats.mean, sd=stats.sd, low=stats.low, high=stats.high)
    db.close()  # end the read transaction before the audit write
    audit.event("session.read", f"/api/v1/sessions/{row.id}", code)
    return SessionDetailOut(
        id=row.id,
        station_id=row.station_id,
        subject_code=code,
        protocol_id=row.protocol_id,
        protocol_version=row.protocol_version,
        status=row.status.value,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_s=_duration_s(row),
        end_reason=row.end_reason,
        devices=list(row.devices),
        phases=[
            PhaseOut(
                index=p.phase_index,
                name=p.name,
                kind=p.kind,
                planned_duration_s=p.planned_duration_s,
                pacer_bpm=p.pacer_bpm,
                started_at=p.started_at,
                ended_at=p.ended_at,
                metrics=dict(by_index[p.phase_index].metrics)
                if p.phase_index in by_index
                else None,
                quality=dict(by_index[p.phase_index].quality)
                if p.phase_index in by_index
                else None,
            )
            for p in detail.phases
        ],
        session_metrics=metrics,
        session_quality=dict(whole.quality) if whole else None,
        deltas=deltas,
        baseline=band,
        algorithm_versions=dict(whole.algorithm_versions) if whole else None,
        events=[EventOut(t=e.t, kind=e.kind, payload=dict(e.payload)) for e in detail.events],
        ratings=[
            RatingOut(when=r.when.value, scale=r.scale, value=r.value, t=r.t)
            for r in detail.ratings
        ],
        curves={
            c.series: CurveOut(t_offset_s=list(c.t_offset_s), values=list(c.values))
            for c in detail.curves
        },
    )


@router.get("/sessions/{session_id}/series", response_model=SeriesOut, responses=ERROR_RESPONSES)
def get_series(
    *,
    db: ReadDb,
    services: Services,
    audit: AuditLog,
    session_id: SessionId,
    principal: Annotated[Principal, Depends(require(Permission.SERIES_READ))],
    measurement: Literal["rr", "hr", "eda", "metrics"] = "rr",
) -> SeriesOut:
    """The session's full-resolution points of one measurement from the time-series store
    (its station and devices, from its start to its end). Audited as ``series.read``."""
    row, code = _in_scope(db, session_id, principal)
    points: list[SeriesPointOut] = []
    if row.started_at is not None:
        end = row.ended_at or services.clock()
        devices: list[str | None] = (
            [None] if measurement == "metrics" else list(dict.fromkeys(row.devices))
        )
        for device in devices:
            for p in services.tsdb.query(
                measurement, station=row.station_id, start=row.started_at, end=end, device=device
            ):
                points.append(
                    SeriesPointOut(
                        t=from_epoch_us(p.time_us),
                        device=p.tag("device"),
                        values={k: int(v) if isinstance(v, bool) else v for k, v in p.fields},
                    )
                )
        points.sort(key=lambda point: (point.t, point.device or ""))
    db.close()  # end the read transaction before the audit write
    audit.event("series.read", f"/api/v1/sessions/{row.id}/series?measurement={measurement}", code)
    return SeriesOut(measurement=measurement, unit=SERIES_UNITS[measurement], points=points)
