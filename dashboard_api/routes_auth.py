"""``/api/v1/auth/token`` (OAuth2 password flow) and ``/api/v1/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from shuxin.dashboard_api.access import Principal
from shuxin.dashboard_api.auth import authenticate
from shuxin.dashboard_api.deps import CurrentPrincipal, Services
from shuxin.dashboard_api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from shuxin.gateway.sql_models import OrgUnitRow

router = APIRouter(prefix="/api/v1", tags=["auth"])


class TokenResponse(BaseModel):
    """OAuth2 bearer token response."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type
    expires_in: int
    role: str
    username: str


class Me(BaseModel):
    """The logged-in user: role, scope and what the role allows."""

    username: str
    role: str
    org_unit_id: int
    org_unit_code: str
    org_unit_name: str
    permissions: list[str]


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses={
        401: {"model": ErrorBody, "description": "wrong username or password"},
        423: {"model": ErrorBody, "description": "locked after repeated failures"},
    },
)
def login(
    services: Services, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenResponse:
    """Log in with ``username`` and ``password`` (form fields); returns a bearer token."""
    settings = services.settings
    with services.db.begin() as db:
        outcome = authenticate(
            db,
            form.username[:128],
            form.password[:1024],
            now=services.clock(),
            lockout_after=settings.lockout_after,
            lockout_s=settings.lockout_s,
            demo_mode=settings.demo_mode,
        )
        if isinstance(outcome, ApiError):
            refusal = outcome
        else:
            refusal = None
            user_id, username, role = outcome.id, outcome.username, outcome.role.value
    # The transaction has committed the failure counter (or the success) by now.
    if refusal is not None:
        raise refusal
    issued = services.tokens.issue(user_id)
    return TokenResponse(
        access_token=issued.token,
        expires_in=settings.token_ttl_s,
        role=role,
        username=username,
    )


@router.get("/me", response_model=Me, responses=ERROR_RESPONSES)
def me(services: Services, principal: CurrentPrincipal) -> Me:
    """Who the token belongs to, the org unit that bounds what they see, and their rights."""
    return _me(services, principal)


def _me(services: Services, principal: Principal) -> Me:
    with services.db() as db:
        unit = db.get(OrgUnitRow, principal.org_unit_id)
        assert unit is not None
        return Me(
            username=principal.username,
            role=principal.role.value,
            org_unit_id=unit.id,
            org_unit_code=unit.code,
            org_unit_name=unit.name_zh,
            permissions=sorted(p.value for p in principal.permissions),
        )
