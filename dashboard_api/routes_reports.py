"""``GET /api/v1/reports/{daily|weekly|monthly}``: k-suppressed aggregates of an org unit.

Reads the facts of the requested unit's whole tree (from its root detachment, so suppression
is the same in every report of the tree) and hands them to :mod:`shuxin.dashboard_api.reports`,
which does the aggregation and suppression. A report is not a personal read: it writes one
audit record ``report.read`` with no subject. This module must not return anything
individual (no subject codes, session ids or single values) and must not aggregate itself.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import AuditLog, Services, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES, ApiError, not_found
from shuxin.dashboard_api.reports import (
    K_MIN,
    LOW_BATTERY_PCT,
    AlertFact,
    Cell,
    Distribution,
    Period,
    ReportFacts,
    ReportKind,
    SessionFact,
    StationFact,
    SubjectFact,
    Unit,
    build_report,
    civil_today,
    report_period,
)
from shuxin.gateway.sql_models import (
    WHOLE_SESSION,
    AlertKind,
    AlertRow,
    DeviceRow,
    OrgUnitClosureRow,
    OrgUnitRow,
    Presence,
    RatingRow,
    RatingWhen,
    ReliefStationRow,
    SessionRow,
    SessionSummaryRow,
    SubjectRow,
)
from shuxin.gateway.sql_store import in_subtree

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

#: The self-rating scale whose before/after change the report summarises.
RATING_SCALE = "tension_0_10"
#: The dates a report may be asked for (outside: 422, not an overflow).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


class CellOut(BaseModel):
    """One cell: a value, or null with ``suppressed`` true and the reason."""

    value: float | None
    suppressed: bool
    reason: str | None = None


class DistributionOut(BaseModel):
    """Percentiles of a change measure, or only ``suppressed`` true."""

    suppressed: bool
    reason: str | None = None
    n: int | None = None
    p10: float | None = None
    p25: float | None = None
    median: float | None = None
    p75: float | None = None
    p90: float | None = None


class PeriodOut(BaseModel):
    """The civil days covered (Asia/Shanghai) and the UTC instants ``start <= t < end``."""

    start: date
    end: date
    start_utc: str
    end_utc: str
    timezone: str = "Asia/Shanghai"


class UnitOut(BaseModel):
    """The reported org unit."""

    code: str
    name_zh: str


class RowOut(BaseModel):
    """A child org unit's cells."""

    org_unit_code: str
    name_zh: str
    cells: dict[str, CellOut]


class ReportOut(BaseModel):
    """A report: the unit's cells, a row per child unit, and change distributions."""

    kind: ReportKind
    period: PeriodOut
    org_unit: UnitOut
    k_min: int = Field(K_MIN, description="fewest distinct people a shown cell rests on")
    cells: dict[str, CellOut]
    rows: list[RowOut]
    distributions: dict[str, DistributionOut]


def _cell(cell: Cell) -> CellOut:
    return CellOut(value=cell.value, suppressed=cell.suppressed, reason=cell.reason)


def _dist(d: Distribution) -> DistributionOut:
    return DistributionOut(
        suppressed=d.suppressed,
        reason=d.reason,
        n=d.n,
        p10=d.p10,
        p25=d.p25,
        median=d.median,
        p75=d.p75,
        p90=d.p90,
    )


def _iso(moment: datetime) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def _root_of(db: OrmSession, unit_id: int) -> int:
    row = db.execute(
        select(OrgUnitClosureRow.ancestor_id)
        .where(OrgUnitClosureRow.descendant_id == unit_id)
        .order_by(OrgUnitClosureRow.depth.desc())
        .limit(1)
    ).scalar_one()
    return int(row)


def read_facts(db: OrmSession, root_id: int, period: Period) -> tuple[list[Unit], ReportFacts]:
    """The units of the tree under ``root_id`` and the facts of ``period`` in it."""
    units = [
        Unit(row.id, row.parent_id, row.code, row.name_zh)
        for row in db.scalars(select(OrgUnitRow).where(in_subtree(OrgUnitRow.id, root_id)))
    ]
    in_period = (
        in_subtree(SubjectRow.org_unit_id, root_id),
        SessionRow.started_at >= period.start,
        SessionRow.started_at < period.end,
    )
    sessions = db.execute(
        select(SessionRow.id, SessionRow.subject_id, SubjectRow.org_unit_id)
        .join(SubjectRow, SubjectRow.id == SessionRow.subject_id)
        .where(*in_period)
    ).all()
    # Ratings and whole-session deltas of the same sessions, joined in SQL (no id lists).
    ratings: dict[str, dict[RatingWhen, int]] = defaultdict(dict)
    for session_id, when, value in db.execute(
        select(RatingRow.session_id, RatingRow.when, RatingRow.value)
        .join(SessionRow, SessionRow.id == RatingRow.session_id)
        .join(SubjectRow, SubjectRow.id == SessionRow.subject_id)
        .where(*in_period, RatingRow.scale == RATING_SCALE)
    ):
        ratings[session_id][when] = value
    deltas: dict[str, Any] = {}
    for session_id, metrics in db.execute(
        select(SessionSummaryRow.session_id, SessionSummaryRow.metrics)
        .join(SessionRow, SessionRow.id == SessionSummaryRow.session_id)
        .join(SubjectRow, SubjectRow.id == SessionRow.subject_id)
        .where(*in_period, SessionSummaryRow.phase_index == WHOLE_SESSION)
    ):
        found = metrics.get("deltas") if isinstance(metrics, dict) else None
        if isinstance(found, dict):
            deltas[session_id] = found
    session_facts = [
        SessionFact(
            subject_id=row.subject_id,
            unit_id=row.org_unit_id,
            rating_before=ratings[row.id].get(RatingWhen.BEFORE),
            rating_after=ratings[row.id].get(RatingWhen.AFTER),
            deltas=deltas.get(row.id, {}),
        )
        for row in sessions
    ]
    participants = {row.subject_id for row in sessions}
    subjects = [
        SubjectFact(row.id, row.org_unit_id)
        for row in db.execute(
            select(SubjectRow.id, SubjectRow.org_unit_id).where(
                in_subtree(SubjectRow.org_unit_id, root_id),
                SubjectRow.active.is_(True),
                or_(SubjectRow.created_at < period.end, SubjectRow.id.in_(participants)),
            )
        )
    ]
    unresolved = or_(AlertRow.resolved_at.is_(None), AlertRow.resolved_at >= period.end)
    person_alerts = db.execute(
        select(AlertRow.kind, AlertRow.subject_id, SubjectRow.org_unit_id)
        .join(SubjectRow, SubjectRow.id == AlertRow.subject_id)
        .where(
            in_subtree(SubjectRow.org_unit_id, root_id),
            AlertRow.created_at < period.end,
            unresolved,
        )
    ).all()
    station_alerts = db.execute(
        select(AlertRow.kind, ReliefStationRow.org_unit_id)
        .join(ReliefStationRow, ReliefStationRow.id == AlertRow.station_id)
        .where(
            AlertRow.subject_id.is_(None),
            in_subtree(ReliefStationRow.org_unit_id, root_id),
            AlertRow.created_at < period.end,
            unresolved,
        )
    ).all()
    alerts = [AlertFact(str(a.kind), a.org_unit_id, a.subject_id) for a in person_alerts] + [
        AlertFact(str(a.kind), a.org_unit_id, None) for a in station_alerts
    ]
    stations = _station_facts(db, root_id)
    facts = ReportFacts(session_facts, subjects, alerts, stations)
    return units, facts


def _station_facts(db: OrmSession, root_id: int) -> list[StationFact]:
    rows = db.scalars(
        select(ReliefStationRow).where(in_subtree(ReliefStationRow.org_unit_id, root_id))
    ).all()
    low: dict[str, int] = defaultdict(int)
    for device in db.scalars(
        select(DeviceRow).where(
            DeviceRow.station_id.in_([r.id for r in rows]),
            DeviceRow.battery_pct <= LOW_BATTERY_PCT,
        )
    ):
        low[device.station_id] += 1
    lost: dict[str, int] = defaultdict(int)
    for alert in db.scalars(
        select(AlertRow).where(
            and_(
                AlertRow.kind == AlertKind.DEVICE_LOST,
                AlertRow.resolved_at.is_(None),
                AlertRow.station_id.in_([r.id for r in rows]),
            )
        )
    ):
        if alert.station_id is not None:
            lost[alert.station_id] += 1
    return [
        StationFact(r.org_unit_id, r.presence == Presence.ONLINE, low[r.id], lost[r.id])
        for r in rows
    ]


@router.get(
    "/{kind}",
    response_model=ReportOut,
    responses=ERROR_RESPONSES,
    summary="A daily, weekly or monthly report of an org unit (k-suppressed)",
)
def get_report(
    *,
    kind: Annotated[ReportKind, Path(description="daily, weekly or monthly")],
    services: Services,
    audit: AuditLog,
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.REPORT_READ))],
    org_unit: Annotated[
        str | None, Query(max_length=32, description="org unit code (default: your own)")
    ] = None,
    date_: Annotated[
        date | None,
        Query(alias="date", description="a day in the period (Asia/Shanghai; default today)"),
    ] = None,
) -> ReportOut:
    """每日一研判、每周一汇报、每月一总结: sessions held, participation, open follow-ups,
    device health and the before/after change distributions of the org unit ``org_unit``
    (inside your subtree) over the period containing ``date``, with a row per child unit.

    Periods are civil days in Asia/Shanghai (UTC+8): daily = that day, weekly = the ISO week
    (Monday–Sunday) containing it, monthly = its calendar month. Every cell describing people
    that rests on fewer than 5 distinct people is null with ``suppressed`` true (reason
    ``k<5``), and further cells are suppressed (reason ``complementary``) so that none can be
    recovered as a total minus the other rows. Audited once as ``report.read`` (no subject).
    """
    # A short read transaction, closed before the audit write (SQLite takes the write lock
    # at BEGIN, so an open request-long transaction would block the audit record).
    with services.db() as db:
        if org_unit is None:
            unit_id = principal.org_unit_id
        else:
            found = db.execute(
                select(OrgUnitRow.id).where(
                    OrgUnitRow.code == org_unit, in_subtree(OrgUnitRow.id, principal.org_unit_id)
                )
            ).scalar_one_or_none()
            if found is None:
                raise not_found("org unit")
            unit_id = int(found)
        day = date_ or civil_today(services.clock())
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ApiError(
                422, "invalid_request", f"date must lie between {FIRST_DAY} and {LAST_DAY}"
            )
        period = report_period(kind, day)
        units, facts = read_facts(db, _root_of(db, unit_id), period)
    report = build_report(period, units, unit_id, facts)
    audit.event("report.read", str(request.url.path))
    return ReportOut(
        kind=kind,
        period=PeriodOut(
            start=period.first_day,
            end=period.last_day,
            start_utc=_iso(period.start),
            end_utc=_iso(period.end),
        ),
        org_unit=UnitOut(code=report.unit.code, name_zh=report.unit.name_zh),
        k_min=report.k_min,
        cells={name: _cell(cell) for name, cell in report.cells.items()},
        rows=[
            RowOut(
                org_unit_code=row.unit.code,
                name_zh=row.unit.name_zh,
                cells={name: _cell(cell) for name, cell in row.cells.items()},
            )
            for row in report.rows
        ],
        distributions={name: _dist(d) for name, d in report.distributions.items()},
    )
