"""Pydantic response (and request) models of the dashboard API's resources.

Field names follow the shapes agreed with the web UI (docs/api.md): times are aware UTC
datetimes (serialised ISO 8601 with an offset), numbers carry their unit in the name. Only
declarations here, plus the paging and read-session dependencies every router shares: no
queries, no I/O, no access decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api.deps import Services
from shuxin.dashboard_api.queries import Page
from shuxin.gateway.sql_models import Role

T = TypeVar("T")


def paging(
    limit: Annotated[int, Query(ge=1, le=500, description="rows per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")] = 0,
) -> Page:
    """The ``limit``/``offset`` query parameters of every list."""
    return Page(limit, offset)


Paging = Annotated[Page, Depends(paging)]


def read_session(services: Services) -> Iterator[OrmSession]:
    """An ORM session for a route's reads (``ApiServices.read_db``: it cannot write). The route
    should ``close()`` it before it writes an audit record, so no transaction spans the write."""
    with services.read_db() as db:
        yield db


ReadDb = Annotated[OrmSession, Depends(read_session)]


class ListResponse(BaseModel, Generic[T]):
    """A list: this page's rows and the total number matching (before paging)."""

    data: list[T]
    count: int


# --------------------------------------------------------------------------- org


class OrgUnitOut(BaseModel):
    """A node of the 支队 → 大队 → 站 grid."""

    id: int
    code: str
    name_zh: str
    kind: str
    parent_id: int | None


class DeviceOut(BaseModel):
    """A sensor at a station with its last reported state."""

    device_id: str
    kind: str | None = Field(description="the device profile, e.g. polar_h10")
    connected: bool | None
    battery_pct: int | None
    contact: str | None
    firmware: str | None
    rssi_dbm: int | None
    last_seen_at: datetime | None


class StationOut(BaseModel):
    """A relief station with its health and devices."""

    id: str
    org_unit_id: int
    org_unit_code: str
    name_zh: str
    presence: str
    presence_at: datetime | None
    last_seen_at: datetime | None
    agent_version: str | None
    outbox_backlog: int | None
    outbox_dropped: int | None
    reconnects: int | None
    devices: list[DeviceOut]


# --------------------------------------------------------------------------- subjects


class SubjectOut(BaseModel):
    """A pseudonymous subject in the list."""

    code: str
    org_unit_id: int
    org_unit_code: str
    active: bool
    consent_status: str
    session_count: int
    last_session_at: datetime | None
    open_alerts: int


class ConsentOut(BaseModel):
    """One consent for one purpose."""

    purpose: str
    granted_at: datetime
    withdrawn_at: datetime | None
    active: bool


class SubjectDetailOut(SubjectOut):
    """A subject with its consent records."""

    created_at: datetime
    consents: list[ConsentOut]


class IdentityOut(BaseModel):
    """A subject's real identity (revealed and audited as ``identity.reveal``)."""

    subject_code: str
    name: str
    employee_no: str | None


class BandOut(BaseModel):
    """The personal band: mean ± 1 SD of the quality-passed resting values."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


class TrendPointOut(BaseModel):
    """One session on the trend chart."""

    session_id: str
    started_at: datetime
    resting_lnrmssd: float | None
    resting_hr_bpm: float | None
    scl_us: float | None
    coherence: float | None
    quality_passed: bool


class RollingOut(BaseModel):
    """Rolling mean and CV (SD / mean, a ratio) of the last 7 sessions' values."""

    session_id: str
    mean7: float | None
    cv7: float | None


class TrendBaselineOut(BaseModel):
    """Personal bands of resting lnRMSSD and HR (None: fewer than two passed values)."""

    lnrmssd: BandOut | None
    hr_bpm: BandOut | None


class TrendRollingOut(BaseModel):
    """Rolling statistics per session."""

    lnrmssd: list[RollingOut]
    hr_bpm: list[RollingOut]


class TrendsOut(BaseModel):
    """A subject's resting values over sessions, the personal band and rolling statistics."""

    subject_code: str
    points: list[TrendPointOut]
    baseline: TrendBaselineOut
    rolling: TrendRollingOut


# --------------------------------------------------------------------------- sessions


class SessionListItemOut(BaseModel):
    """One row of the session list (metric fields null for station staff)."""

    id: str
    station_id: str
    subject_code: str | None
    protocol_id: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    quality_ok: bool | None
    rating_before: int | None
    rating_after: int | None
    delta_lnrmssd: float | None


class PhaseOut(BaseModel):
    """A phase: plan, actual times, metrics and quality."""

    index: int
    name: str
    kind: str | None
    planned_duration_s: float | None
    pacer_bpm: float | None
    started_at: datetime | None
    ended_at: datetime | None
    metrics: dict[str, Any] | None
    quality: dict[str, Any] | None


class EventOut(BaseModel):
    """One session event (phase boundaries, markers, VR events, ratings, gaps)."""

    t: datetime
    kind: str
    payload: dict[str, Any]


class RatingOut(BaseModel):
    """A before/after self-rating."""

    when: str
    scale: str
    value: int
    t: datetime


class CurveOut(BaseModel):
    """A display curve: seconds from the session's start and values (null = gap)."""

    t_offset_s: list[float]
    values: list[float | None]


class SessionDetailOut(BaseModel):
    """Everything about one session (its raw series come from ``/series``)."""

    id: str
    station_id: str
    subject_code: str | None
    protocol_id: str | None
    protocol_version: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    end_reason: str | None
    devices: list[str]
    phases: list[PhaseOut]
    session_metrics: dict[str, Any] | None
    session_quality: dict[str, Any] | None
    deltas: dict[str, Any] | None
    baseline: BandOut | None = Field(
        description="the subject's personal resting lnRMSSD band (mean ± 1 SD)"
    )
    algorithm_versions: dict[str, Any] | None
    events: list[EventOut]
    ratings: list[RatingOut]
    curves: dict[str, CurveOut]


class SeriesPointOut(BaseModel):
    """One stored point: time, device (None for computed metrics) and its fields."""

    t: datetime
    device: str | None
    values: dict[str, float | int]


class SeriesOut(BaseModel):
    """A session's full-resolution series of one measurement."""

    measurement: str
    unit: str
    points: list[SeriesPointOut]


# --------------------------------------------------------------------------- alerts


class AlertOut(BaseModel):
    """An alert, its explanation and who handled it."""

    id: int
    kind: str
    state: str
    subject_code: str | None
    station_id: str | None
    device_id: str | None
    created_at: datetime
    explanation: dict[str, Any]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None


class NoteIn(BaseModel):
    """A person's note on handling an alert."""

    note: str = Field(min_length=1, max_length=2000)


# --------------------------------------------------------------------------- audit, users


class AuditOut(BaseModel):
    """One audit record."""

    id: int
    at: datetime
    actor: str
    subject_code: str | None
    action: str
    resource: str
    purpose: str
    ip: str | None


class UserOut(BaseModel):
    """A dashboard user (never the password hash)."""

    id: int
    username: str
    role: str
    org_unit_id: int
    org_unit_code: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreateIn(BaseModel):
    """A new user: name, role, the org unit that bounds their scope, an initial password."""

    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    role: Role
    org_unit: str = Field(min_length=1, max_length=32, description="the org unit's code")
    password: str = Field(min_length=1, max_length=256)
