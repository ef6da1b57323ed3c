"""``/api/v1/users``: the admin's list of users in their subtree, creating and deactivating.

Passwords go through ``auth.check_password_policy`` and ``auth.hash_password`` (Argon2id); a
password or its hash never leaves the API. A user outside the admin's subtree is a 404 like a
missing one, and a new user can only be attached inside it. Every change is audited
(``user.create``, ``user.deactivate``). No health data here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from shuxin.dashboard_api import queries
from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.auth import PasswordPolicyError, check_password_policy, hash_password
from shuxin.dashboard_api.deps import AuditLog, Services, require
from shuxin.dashboard_api.errors import ERROR_RESPONSES, ApiError, ErrorBody, not_found
from shuxin.dashboard_api.schemas import ListResponse, Paging, ReadDb, UserCreateIn, UserOut
from shuxin.gateway.sql_models import UserRow

router = APIRouter(prefix="/api/v1", tags=["users"])

Admin = Annotated[Principal, Depends(require(Permission.USER_ADMIN))]
_WRITE_RESPONSES = {
    **ERROR_RESPONSES,
    409: {"model": ErrorBody, "description": "the username exists, or the change is refused"},
}


def _user_out(row: UserRow, unit_code: str) -> UserOut:
    return UserOut(
        id=row.id,
        username=row.username,
        role=row.role.value,
        org_unit_id=row.org_unit_id,
        org_unit_code=unit_code,
        active=row.active,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


@router.get("/users", response_model=ListResponse[UserOut], responses=ERROR_RESPONSES)
def list_users(db: ReadDb, page: Paging, principal: Admin) -> ListResponse[UserOut]:
    """Users attached inside the admin's subtree, by username."""
    rows, total = queries.list_users(db, principal.org_unit_id, page)
    return ListResponse[UserOut](data=[_user_out(u, code) for u, code in rows], count=total)


@router.post("/users", response_model=UserOut, status_code=201, responses=_WRITE_RESPONSES)
def create_user(
    *, db: ReadDb, services: Services, audit: AuditLog, body: UserCreateIn, principal: Admin
) -> UserOut:
    """Create a user with a role, attached to an org unit inside the admin's subtree (which
    becomes their scope), with an initial password that meets the policy."""
    unit = queries.org_unit_by_code(db, body.org_unit, principal.org_unit_id)
    if unit is None:
        raise not_found("org unit")
    try:
        check_password_policy(body.password, demo_mode=services.settings.demo_mode)
    except PasswordPolicyError as exc:
        raise ApiError(422, "weak_password", str(exc)) from exc
    unit_code = unit.code
    db.close()  # end the read transaction before the store's write
    user = services.sql.create_user(
        body.username,
        role=body.role,
        org_unit_id=unit.id,
        password_hash=hash_password(body.password),
    )
    audit.event("user.create", f"/api/v1/users/{user.id}")
    row = db.get(UserRow, user.id)
    assert row is not None
    return _user_out(row, unit_code)


@router.post("/users/{user_id}/deactivate", response_model=UserOut, responses=_WRITE_RESPONSES)
def deactivate_user(
    *,
    db: ReadDb,
    services: Services,
    audit: AuditLog,
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: Admin,
) -> UserOut:
    """Deactivate a user of the admin's subtree: their tokens stop working at once."""
    row = queries.user_in_scope(db, user_id, principal.org_unit_id)
    if row is None:
        raise not_found("user")
    if row.id == principal.user_id:
        raise ApiError(409, "conflict", "you cannot deactivate your own account")
    db.close()  # end the read transaction before the write below
    # A short transaction of its own, committed before the audit record is appended.
    with services.db.begin() as tx:
        target = tx.get(UserRow, row.id)
        assert target is not None
        target.active = False
    audit.event("user.deactivate", f"/api/v1/users/{row.id}")
    found = queries.user_in_scope(db, user_id, principal.org_unit_id)
    unit = queries.unit_in_scope(db, row.org_unit_id, principal.org_unit_id)
    assert found is not None
    assert unit is not None
    return _user_out(found, unit.code)
