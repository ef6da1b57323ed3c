"""``GET /api/v1/sessions/{id}/export``: one session as CSV (zip), Kubios RR text or EDF+.

Checks the permission and the org-unit scope, reads the session from the SQL store and its
beats and samples from the time-series store, audits, and returns the file that
:mod:`shuxin.dashboard_api.exports` builds. Every export writes ``export.<format>`` naming the
subject; an identifiable export (``identifiable=true``) additionally needs
``export:identifiable`` and writes ``export.identifiable`` (the store's ``identity.reveal``
record comes with the decryption). This module must not build file
contents itself, and must not put a name into a file name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import AuditLog, Services, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES, forbidden, not_found
from shuxin.dashboard_api.exports import (
    MEDIA_TYPES,
    Beat,
    EdaSample,
    ExportData,
    ExportFormat,
    export_filename,
    render,
)
from shuxin.gateway.sql_errors import IdentityCryptoError, NotFoundError
from shuxin.gateway.sql_models import ReliefStationRow, SessionRow, SubjectRow
from shuxin.gateway.sql_store import in_subtree

router = APIRouter(prefix="/api/v1/sessions", tags=["exports"])

#: Beats and samples this long before the start and after the end belong to the session
#: (the same margin the gateway's summaries read).
MARGIN: Final = timedelta(seconds=5)

_FILE_RESPONSES: Final = {
    **ERROR_RESPONSES,
    200: {
        "description": "the export file (attachment)",
        "content": {
            "application/zip": {},
            "text/plain": {},
            "application/octet-stream": {},
        },
    },
}


def _in_scope(db: OrmSession, session_id: str, under: int) -> bool:
    found = db.execute(
        select(SessionRow.id)
        .outerjoin(SubjectRow, SubjectRow.id == SessionRow.subject_id)
        .join(ReliefStationRow, ReliefStationRow.id == SessionRow.station_id)
        .where(
            SessionRow.id == session_id,
            or_(
                in_subtree(SubjectRow.org_unit_id, under),
                and_(
                    SessionRow.subject_id.is_(None),
                    in_subtree(ReliefStationRow.org_unit_id, under),
                ),
            ),
        )
    ).scalar_one_or_none()
    return found is not None


def read_export(services: Services, session_id: str) -> ExportData:
    """The session, its phases, events, ratings, summaries, beats and EDA samples."""
    sql, tsdb = services.sql, services.tsdb
    record = sql.get_session(session_id)
    if record.subject_code is None or record.started_at is None:
        raise not_found("session")
    start = record.started_at - MARGIN
    end = (record.ended_at or services.clock()) + MARGIN
    beats: list[Beat] = []
    samples: list[EdaSample] = []
    for device in record.devices:
        for point in tsdb.query("rr", station=record.station_id, start=start, end=end,
                                device=device):  # fmt: skip
            rr = point.field("rr_ms")
            if rr is not None:
                contact = point.field("contact")
                beats.append(
                    Beat(point.time_us, device, float(rr),
                         None if contact is None else int(contact))
                )  # fmt: skip
        for point in tsdb.query("eda", station=record.station_id, start=start, end=end,
                                device=device):  # fmt: skip
            value = point.field("eda_us")
            if value is not None:
                samples.append(
                    EdaSample(
                        point.time_us, device, float(value),
                        int(point.field("contact_lost") or 0), int(point.field("clipped") or 0),
                        int(point.field("gap_before") or 0),
                    )
                )  # fmt: skip
    return ExportData(
        session=record,
        subject_code=record.subject_code,
        phases=sql.session_phases(session_id),
        events=sql.session_events(session_id),
        ratings=sql.session_ratings(session_id),
        summaries=sql.summaries(session_id),
        beats=beats,
        eda=samples,
    )


@router.get(
    "/{session_id}/export",
    response_class=Response,
    responses=_FILE_RESPONSES,
    summary="Export one session as CSV (zip), Kubios RR text or EDF+",
)
def export_session(
    *,
    session_id: Annotated[str, Path(max_length=64)],
    services: Services,
    audit: AuditLog,
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.EXPORT))],
    format_: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.CSV,
    identifiable: Annotated[bool, Query(description="include the real name")] = False,
) -> Response:
    """Download one session: ``csv`` (a zip of session, beats with artifact flags, EDA,
    events and per-phase metrics with versions), ``kubios`` (RR in seconds, one per line,
    after ``#`` header lines) or ``edf`` (EDF+ with a 4 Hz RR tachogram, EDA and annotations).

    Pseudonymous by default. ``identifiable=true`` needs the ``export:identifiable``
    permission and adds the real name from the identity store. Audited as ``export.<format>``
    naming the subject (plus ``export.identifiable`` and the store's ``identity.reveal`` when
    identifiable).
    A session outside your subtree is a 404.
    """
    if identifiable and not principal.can(Permission.EXPORT_IDENTIFIABLE):
        raise forbidden(
            f"role {principal.role.value} may not do this "
            f"(needs {Permission.EXPORT_IDENTIFIABLE.value})"
        )
    with services.db() as db:  # closed before the audit writes (see routes_reports)
        in_scope = _in_scope(db, session_id, principal.org_unit_id)
    if not in_scope:
        raise not_found("session")
    data = read_export(services, session_id)
    resource = str(request.url.path)
    subject = data.subject_code
    if identifiable:
        audit.event("export.identifiable", resource, subject)
        # The store audits the decryption itself (identity.reveal, same transaction).
        try:
            identity = services.sql.reveal_identity(
                subject, actor=principal.actor, purpose=audit.purpose, ip=audit.ip
            )
        except (NotFoundError, IdentityCryptoError):
            raise not_found("identity") from None
        data = ExportData(
            session=data.session,
            subject_code=subject,
            phases=data.phases,
            events=data.events,
            ratings=data.ratings,
            summaries=data.summaries,
            beats=data.beats,
            eda=data.eda,
            real_name=identity.name,
        )
    content = render(data, format_)
    audit.personal_read(subject, f"export.{format_.value}", resource)
    filename = export_filename(session_id, format_)
    return Response(
        content,
        media_type=MEDIA_TYPES[format_],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
