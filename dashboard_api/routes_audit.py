"""``/api/v1/audit``: the audit log for auditors and programme leads.

Read-only (the log is append-only in the database too). Shows the records that concern the
caller's subtree: the subject named lies in it, or the acting user is attached inside it.
Reading the log is not itself audited as a personal read (it holds no health data), but it
is recorded once per request as ``audit.list`` so that review is visible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from shuxin.dashboard_api import queries
from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import AuditLog, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES
from shuxin.dashboard_api.schemas import AuditOut, ListResponse, Paging, ReadDb

router = APIRouter(prefix="/api/v1", tags=["audit"])


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get("/audit", response_model=ListResponse[AuditOut], responses=ERROR_RESPONSES)
def list_audit(
    *,
    db: ReadDb,
    audit: AuditLog,
    page: Paging,
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    subject: Annotated[str | None, Query(max_length=16)] = None,
    actor: Annotated[str | None, Query(max_length=64, description="e.g. user:NAME")] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. session.read")] = None,
    since: Annotated[datetime | None, Query(description="at or after")] = None,
    until: Annotated[datetime | None, Query(description="before")] = None,
) -> ListResponse[AuditOut]:
    """Audit records of the caller's subtree, newest first: who read or changed whose data,
    what, when, why (the stated purpose) and from where."""
    filters = queries.AuditFilters(subject, actor, action, _aware(since), _aware(until))
    rows, total = queries.list_audit(db, principal.org_unit_id, filters, page)
    db.close()  # end the read transaction before the audit write
    audit.event("audit.list", "/api/v1/audit")
    data = [
        AuditOut(
            id=r.id,
            at=r.at,
            actor=r.actor,
            subject_code=r.subject_code,
            action=r.action,
            resource=r.resource,
            purpose=r.purpose,
            ip=r.ip,
        )
        for r in rows
    ]
    return ListResponse[AuditOut](data=data, count=total)
