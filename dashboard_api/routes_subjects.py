"""``/api/v1/subjects``: pseudonymous subjects, their consents, trends and (by permission)
their real identity.

Audit (DESIGN §4): the list writes one ``subject.list`` record; a subject's detail, trends
and identity each write exactly one record naming the subject (``subject.read``,
``trend.read``; the identity reveal is recorded by ``SqlStore.reveal_identity`` itself as
``identity.reveal``, in the same transaction as the decryption). A subject outside the
caller's subtree is a 404 like a missing one. Never returns a name without the
``identity:read`` permission.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api import queries
from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import AuditLog, Services, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES, ApiError, ErrorBody, not_found
from shuxin.dashboard_api.schemas import (
    BandOut,
    ConsentOut,
    IdentityOut,
    ListResponse,
    Paging,
    ReadDb,
    RollingOut,
    SubjectDetailOut,
    SubjectOut,
    TrendBaselineOut,
    TrendPointOut,
    TrendRollingOut,
    TrendsOut,
)
from shuxin.gateway.sql_errors import IdentityCryptoError, NotFoundError
from shuxin.gateway.sql_models import SubjectRow

router = APIRouter(prefix="/api/v1", tags=["subjects"])

SubjectCode = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]


def _band(stats: queries.Band | None) -> BandOut | None:
    if stats is None:
        return None
    return BandOut(n=stats.n, mean=stats.mean, sd=stats.sd, low=stats.low, high=stats.high)


def _subject_out(view: queries.SubjectView) -> SubjectOut:
    s = view.subject
    return SubjectOut(
        code=s.code,
        org_unit_id=s.org_unit_id,
        org_unit_code=view.org_unit_code,
        active=s.active,
        consent_status=s.consent_status.value,
        session_count=view.session_count,
        last_session_at=view.last_session_at,
        open_alerts=view.open_alerts,
    )


def _in_scope(db: OrmSession, code: str, principal: Principal) -> SubjectRow:
    subject = queries.subject_in_scope(db, code, principal.org_unit_id)
    if subject is None:
        raise not_found("subject")
    return subject


@router.get("/subjects", response_model=ListResponse[SubjectOut], responses=ERROR_RESPONSES)
def list_subjects(
    *,
    db: ReadDb,
    audit: AuditLog,
    page: Paging,
    principal: Annotated[Principal, Depends(require(Permission.SUBJECT_READ))],
    org_unit: Annotated[
        str | None, Query(max_length=32, description="only this org unit's subtree (its code)")
    ] = None,
) -> ListResponse[SubjectOut]:
    """Subjects of the caller's subtree by code, with consent status, session count, last
    session and unresolved alerts. Audited once as ``subject.list``."""
    unit_id = None
    if org_unit is not None:
        unit = queries.org_unit_by_code(db, org_unit, principal.org_unit_id)
        if unit is None:
            raise not_found("org unit")
        unit_id = unit.id
    views, total = queries.list_subjects(db, principal.org_unit_id, page, org_unit_id=unit_id)
    db.close()  # end the read transaction before the audit write
    audit.event("subject.list", "/api/v1/subjects")
    return ListResponse[SubjectOut](data=[_subject_out(v) for v in views], count=total)


@router.get("/subjects/{code}", response_model=SubjectDetailOut, responses=ERROR_RESPONSES)
def get_subject(
    *,
    db: ReadDb,
    audit: AuditLog,
    code: SubjectCode,
    principal: Annotated[Principal, Depends(require(Permission.SUBJECT_READ))],
) -> SubjectDetailOut:
    """One subject with its consent records. Audited as ``subject.read``."""
    subject = _in_scope(db, code, principal)
    views, _ = queries.list_subjects(
        db, principal.org_unit_id, queries.Page(1, 0), org_unit_id=None, code=subject.code
    )
    consents = [
        ConsentOut(
            purpose=c.purpose,
            granted_at=c.granted_at,
            withdrawn_at=c.withdrawn_at,
            active=c.withdrawn_at is None,
        )
        for c in queries.subject_consents(db, subject.id)
    ]
    db.close()  # end the read transaction before the audit write
    audit.personal_read(subject.code, "subject.read", f"/api/v1/subjects/{subject.code}")
    base = _subject_out(views[0])
    return SubjectDetailOut(**base.model_dump(), created_at=subject.created_at, consents=consents)


@router.get(
    "/subjects/{code}/identity",
    response_model=IdentityOut,
    responses={**ERROR_RESPONSES, 503: {"model": ErrorBody, "description": "no identity keys"}},
)
def get_identity(
    *,
    db: ReadDb,
    services: Services,
    audit: AuditLog,
    code: SubjectCode,
    principal: Annotated[Principal, Depends(require(Permission.IDENTITY_READ))],
) -> IdentityOut:
    """The subject's real identity, decrypted. Needs ``identity:read``; every reveal is
    audited as ``identity.reveal`` with the stated purpose (``X-Shuxin-Purpose``)."""
    subject = _in_scope(db, code, principal)
    db.close()  # end the read transaction: the reveal writes its audit record
    try:
        person = services.sql.reveal_identity(
            subject.code, actor=principal.actor, purpose=audit.purpose, ip=audit.ip
        )
    except NotFoundError as exc:
        raise not_found("identity") from exc
    except IdentityCryptoError as exc:
        raise ApiError(503, "unavailable", "identities cannot be read here") from exc
    return IdentityOut(subject_code=subject.code, name=person.name, employee_no=person.employee_no)


@router.get("/subjects/{code}/trends", response_model=TrendsOut, responses=ERROR_RESPONSES)
def get_trends(
    *,
    db: ReadDb,
    audit: AuditLog,
    code: SubjectCode,
    principal: Annotated[Principal, Depends(require(Permission.TREND_READ))],
) -> TrendsOut:
    """Resting lnRMSSD, resting HR, SCL and coherence per session (oldest first), the
    personal band (mean ± 1 SD of the quality-passed resting values) and the rolling mean and
    CV of the last 7 sessions. Audited as ``trend.read``."""
    subject = _in_scope(db, code, principal)
    points = queries.trend_points(db, subject.id)
    passed = [p for p in points if p.quality_passed]
    ln_values = [p.resting_lnrmssd for p in passed if p.resting_lnrmssd is not None]
    hr_values = [p.resting_hr_bpm for p in passed if p.resting_hr_bpm is not None]

    def roll(values: list[tuple[str, float | None]]) -> list[RollingOut]:
        return [
            RollingOut(session_id=r.session_id, mean7=r.mean7, cv7=r.cv7)
            for r in queries.rolling(values)
        ]

    db.close()  # end the read transaction before the audit write

    audit.personal_read(subject.code, "trend.read", f"/api/v1/subjects/{subject.code}/trends")
    return TrendsOut(
        subject_code=subject.code,
        points=[
            TrendPointOut(
                session_id=p.session_id,
                started_at=p.started_at,
                resting_lnrmssd=p.resting_lnrmssd,
                resting_hr_bpm=p.resting_hr_bpm,
                scl_us=p.scl_us,
                coherence=p.coherence,
                quality_passed=p.quality_passed,
            )
            for p in points
        ],
        baseline=TrendBaselineOut(
            lnrmssd=_band(queries.band(ln_values)), hr_bpm=_band(queries.band(hr_values))
        ),
        rolling=TrendRollingOut(
            lnrmssd=roll(
                [(p.session_id, p.resting_lnrmssd if p.quality_passed else None) for p in points]
            ),
            hr_bpm=roll(
                [(p.session_id, p.resting_hr_bpm if p.quality_passed else None) for p in points]
            ),
        ),
    )
