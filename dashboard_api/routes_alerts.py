"""``/api/v1/alerts``: the alert worklist, one alert, and acknowledging / resolving with a note.

State changes go through ``SqlStore.acknowledge_alert`` / ``resolve_alert`` (the gateway owns
the transitions: open → acknowledged → resolved, or open → resolved; anything else is 409).
Audit: the worklist writes one ``alert.list`` record; reading one alert (its explanation of
one subject) writes ``alert.read``; acknowledging and resolving write ``alert.acknowledge`` /
``alert.resolve``, each naming the alert's subject when it has one. An alert outside the
caller's subtree is a 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api import queries
from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import AuditLog, Services, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES, ErrorBody, not_found
from shuxin.dashboard_api.schemas import AlertOut, ListResponse, NoteIn, Paging, ReadDb
from shuxin.gateway.sql_models import AlertKind, AlertState

router = APIRouter(prefix="/api/v1", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_WRITE_RESPONSES = {
    **ERROR_RESPONSES,
    409: {"model": ErrorBody, "description": "the alert is not in a state that allows this"},
}


def alert_out(view: queries.AlertView) -> AlertOut:
    """The response model of one alert."""
    a = view.alert
    return AlertOut(
        id=a.id,
        kind=a.kind.value,
        state=a.state.value,
        subject_code=view.subject_code,
        station_id=a.station_id,
        device_id=a.device_id,
        created_at=a.created_at,
        explanation=dict(a.explanation),
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=view.acknowledged_by,
        acknowledge_note=a.acknowledge_note,
        resolved_at=a.resolved_at,
        resolved_by=view.resolved_by,
        resolve_note=a.resolve_note,
    )


def _in_scope(db: OrmSession, alert_id: int, principal: Principal) -> queries.AlertView:
    view = queries.alert_in_scope(db, alert_id, principal.org_unit_id)
    if view is None:
        raise not_found("alert")
    return view


@router.get("/alerts", response_model=ListResponse[AlertOut], responses=ERROR_RESPONSES)
def list_alerts(
    *,
    db: ReadDb,
    audit: AuditLog,
    page: Paging,
    principal: Annotated[Principal, Depends(require(Permission.ALERT_READ))],
    state: AlertState | None = None,
    kind: AlertKind | None = None,
) -> ListResponse[AlertOut]:
    """The alert worklist of the caller's subtree, newest first, by state and kind.
    Audited once as ``alert.list``."""
    views, total = queries.list_alerts(db, principal.org_unit_id, page, state=state, kind=kind)
    db.close()  # end the read transaction before the audit write
    audit.event("alert.list", "/api/v1/alerts")
    return ListResponse[AlertOut](data=[alert_out(v) for v in views], count=total)


@router.get("/alerts/{alert_id}", response_model=AlertOut, responses=ERROR_RESPONSES)
def get_alert(
    *,
    db: ReadDb,
    audit: AuditLog,
    alert_id: AlertId,
    principal: Annotated[Principal, Depends(require(Permission.ALERT_READ))],
) -> AlertOut:
    """One alert with its explanation (inputs, baseline, thresholds, quality). Audited as
    ``alert.read``."""
    view = _in_scope(db, alert_id, principal)
    db.close()  # end the read transaction before the audit write
    audit.event("alert.read", f"/api/v1/alerts/{alert_id}", view.subject_code)
    return alert_out(view)


def _transition(
    db: OrmSession, services: Services, audit: AuditLog, alert_id: int, note: str, *, resolve: bool
) -> AlertOut:
    principal = audit.principal
    view = _in_scope(db, alert_id, principal)
    db.close()  # end the read transaction before the store's write and the audit write
    change = services.sql.resolve_alert if resolve else services.sql.acknowledge_alert
    change(alert_id, user_id=principal.user_id, note=note, at=services.clock())
    action = "alert.resolve" if resolve else "alert.acknowledge"
    audit.event(action, f"/api/v1/alerts/{alert_id}", view.subject_code)
    return alert_out(_in_scope(db, alert_id, principal))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=_WRITE_RESPONSES)
def acknowledge_alert(
    *,
    db: ReadDb,
    services: Services,
    audit: AuditLog,
    alert_id: AlertId,
    body: NoteIn,
    _principal: Annotated[Principal, Depends(require(Permission.ALERT_HANDLE))],
) -> AlertOut:
    """Acknowledge an open alert with a note (1–2000 characters). Audited as
    ``alert.acknowledge``."""
    return _transition(db, services, audit, alert_id, body.note, resolve=False)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses=_WRITE_RESPONSES)
def resolve_alert(
    *,
    db: ReadDb,
    services: Services,
    audit: AuditLog,
    alert_id: AlertId,
    body: NoteIn,
    _principal: Annotated[Principal, Depends(require(Permission.ALERT_HANDLE))],
) -> AlertOut:
    """Resolve an open or acknowledged alert with a note (1–2000 characters); the target
    may then raise a new alert. Audited as ``alert.resolve``."""
    return _transition(db, services, audit, alert_id, body.note, resolve=True)
