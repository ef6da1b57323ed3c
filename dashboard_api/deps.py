"""What routes depend on: the services of this process, the principal, permissions, audit.

The composition root (``app.create_app``) puts one :class:`ApiServices` on ``app.state``;
routes reach it only through these dependencies, so tests can build an app over any stores.

Auditing (DESIGN §4: every read of a person's data is recorded with who, whom, what, when and
the stated purpose): a route that returns one person's data calls :meth:`Audit.personal_read`
once per person it returns, in the same request, before responding. The purpose is what the
client states in the ``X-Shuxin-Purpose`` header (the web UI sends the view's purpose), else
the role's default purpose. Routes read through short sessions of ``ApiServices.db`` and close
them before auditing: on SQLite every transaction takes the write lock (``BEGIN IMMEDIATE``), so
a request-long transaction would block the audit write. The audit write returns once the
record is committed; records of concurrent requests share one transaction
(:class:`~shuxin.dashboard_api.audit_writer.AuditWriter`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.audit_writer import AuditWriter
from shuxin.dashboard_api.auth import TokenService, unauthenticated
from shuxin.dashboard_api.errors import forbidden
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.sql_engine import make_session_factory
from shuxin.gateway.sql_models import Role, UserRow
from shuxin.gateway.sql_store import SqlStore
from shuxin.gateway.timeseries import TimeSeriesStore

PURPOSE_HEADER: Final = "X-Shuxin-Purpose"
MAX_PURPOSE_CHARS: Final = 200

DEFAULT_PURPOSE: Final[dict[Role, str]] = {
    Role.STATION_STAFF: "station operations",
    Role.COUNSELOR: "counselling follow-up",
    Role.PROGRAMME_LEAD: "programme oversight",
    Role.COMMANDER: "aggregate reporting",
    Role.ADMIN: "administration",
    Role.AUDITOR: "audit review",
}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass
class ApiServices:
    """Everything a request may use, built once per process by the composition root."""

    settings: ApiSettings
    sql: SqlStore
    tsdb: TimeSeriesStore
    tokens: TokenService
    #: Engine for reads only: on SQLite a deferred BEGIN with ``query_only`` (readers run side
    #: by side under WAL); on PostgreSQL ``sql.engine`` itself.
    read_engine: Engine
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: Sessions that may write (logins, alert handling), on ``sql.engine``.
    db: sessionmaker[OrmSession] = field(init=False)
    #: Sessions for reads, on ``read_engine``.
    read_db: sessionmaker[OrmSession] = field(init=False)
    #: Commits the audit records of concurrent requests together (``Audit`` writes here).
    audit_writer: AuditWriter = field(init=False)

    def __post_init__(self) -> None:
        self.db = make_session_factory(self.sql.engine)
        self.read_db = make_session_factory(self.read_engine)
        self.audit_writer = AuditWriter(self.sql)

    def close_read_engine(self) -> None:
        """Stop the audit writer (later records are written directly) and dispose the read
        engine when it is a separate one (SQLite)."""
        self.audit_writer.close()
        if self.read_engine is not self.sql.engine:
            self.read_engine.dispose()


def get_services(request: Request) -> ApiServices:
    """The process's services (set by ``create_app``)."""
    services = request.app.state.services
    assert isinstance(services, ApiServices)
    return services


Services = Annotated[ApiServices, Depends(get_services)]


def get_principal(
    services: Services, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The logged-in user; 401 without a valid token or when the account is disabled."""
    if token is None:
        raise unauthenticated("log in first (Authorization: Bearer TOKEN)")
    user_id = services.tokens.verify(token)
    with services.read_db() as db:
        row = db.get(UserRow, user_id)
        if row is None or not row.active:
            raise unauthenticated("the account is disabled")
        return Principal(row.id, row.username, row.role, row.org_unit_id)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(*permissions: Permission) -> Callable[[Principal], Principal]:
    """A dependency admitting principals whose role grants ALL of ``permissions``."""

    def check(principal: CurrentPrincipal) -> Principal:
        missing = [p for p in permissions if not principal.can(p)]
        if missing:
            raise forbidden(
                f"role {principal.role.value} may not do this (needs {missing[0].value})"
            )
        return principal

    return check


class Audit:
    """Writes audit records for this request's principal (one per person's data read)."""

    def __init__(self, services: ApiServices, principal: Principal, request: Request) -> None:
        self._services = services
        self.principal = principal
        # Headers are Latin-1, so clients percent-encode a purpose in Chinese (the web UI does).
        stated = unquote(request.headers.get(PURPOSE_HEADER) or "").strip()
        # Printable text only, bounded: the header is client input.
        stated = "".join(ch for ch in stated if ch.isprintable())[:MAX_PURPOSE_CHARS]
        self.purpose = stated or DEFAULT_PURPOSE[principal.role]
        self.ip = request.client.host[:45] if request.client else None

    def personal_read(self, subject_code: str, action: str, resource: str) -> None:
        """Record that this request read ``subject_code``'s data (``action`` such as
        ``session.read``; ``resource`` such as ``/api/v1/sessions/ID``)."""
        self.event(action, resource, subject_code)

    def event(self, action: str, resource: str, subject_code: str | None = None) -> None:
        """Record an action (a read, an acknowledgement, an identity reveal, an export…);
        return once the record is committed (it may share its transaction with the records of
        concurrent requests: :mod:`shuxin.dashboard_api.audit_writer`)."""
        self._services.audit_writer.append(
            actor=self.principal.actor,
            action=action,
            resource=resource,
            purpose=self.purpose,
            subject_code=subject_code,
            ip=self.ip,
        )


def get_audit(services: Services, principal: CurrentPrincipal, request: Request) -> Audit:
    """The audit writer for this request."""
    return Audit(services, principal, request)


AuditLog = Annotated[Audit, Depends(get_audit)]
