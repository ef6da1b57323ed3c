"""Who may do what: roles, their permissions, and the principal a request acts as.

Pure policy, no I/O. Scope is separate from permission: every role acts only inside the
org-unit subtree its account is attached to (a 支队 user sees the whole detachment, a 站 user
one station); the queries apply that through ``in_subtree`` on the SQL store's closure table.

Role summary (DESIGN §4, issue 6):

- station staff: their station; run sessions, see today's session list; no screening results
  (no metrics, trends or alerts).
- counselor: subjects, sessions with metrics, trends, alerts (acknowledge/resolve, notes),
  exports; real names only through the identity permission, audited separately.
- programme lead: k-suppressed aggregates (reports), the alert worklist (escalations) and the
  audit log for review.
- commander: k-suppressed aggregates only; no individual data.
- admin: users, org units, stations and devices; no health data.
- auditor: the audit log only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shuxin.gateway.sql_models import Role
from shuxin.gateway.sql_store import Actor


class Permission(StrEnum):
    """One capability; routes require one of these."""

    ORG_READ = "org:read"
    ORG_ADMIN = "org:admin"
    STATION_READ = "station:read"
    USER_ADMIN = "user:admin"
    SESSION_LIST_TODAY = "session:list-today"
    SUBJECT_READ = "subject:read"
    SESSION_READ = "session:read"
    SERIES_READ = "series:read"
    TREND_READ = "trend:read"
    ALERT_READ = "alert:read"
    ALERT_HANDLE = "alert:handle"
    REPORT_READ = "report:read"
    EXPORT = "export"
    EXPORT_IDENTIFIABLE = "export:identifiable"
    IDENTITY_READ = "identity:read"
    AUDIT_READ = "audit:read"


P = Permission

ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.STATION_STAFF: frozenset({P.ORG_READ, P.STATION_READ, P.SESSION_LIST_TODAY}),
    Role.COUNSELOR: frozenset(
        {
            P.ORG_READ,
            P.STATION_READ,
            P.SESSION_LIST_TODAY,
            P.SUBJECT_READ,
            P.SESSION_READ,
            P.SERIES_READ,
            P.TREND_READ,
            P.ALERT_READ,
            P.ALERT_HANDLE,
            P.REPORT_READ,
            P.EXPORT,
            P.EXPORT_IDENTIFIABLE,
            P.IDENTITY_READ,
        }
    ),
    Role.PROGRAMME_LEAD: frozenset(
        {P.ORG_READ, P.STATION_READ, P.REPORT_READ, P.ALERT_READ, P.AUDIT_READ}
    ),
    Role.COMMANDER: frozenset({P.ORG_READ, P.REPORT_READ}),
    Role.ADMIN: frozenset({P.ORG_READ, P.ORG_ADMIN, P.STATION_READ, P.USER_ADMIN}),
    Role.AUDITOR: frozenset({P.ORG_READ, P.AUDIT_READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user a request acts as (from a verified token and the user row)."""

    user_id: int
    username: str
    role: Role
    org_unit_id: int

    @property
    def permissions(self) -> frozenset[Permission]:
        """What this principal's role allows."""
        return ROLE_PERMISSIONS[self.role]

    def can(self, permission: Permission) -> bool:
        """Whether the role grants ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def actor(self) -> Actor:
        """The audit log's name for this user."""
        return Actor(f"user:{self.username}", self.user_id)
