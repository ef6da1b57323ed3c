"""The access matrix: every role × every resource × inside / outside the user's subtree.

Expected outcomes come from ``access.ROLE_PERMISSIONS`` (the policy), not from a second
hand-written table: a role with the permission gets 200 inside its subtree and 404 outside it
(indistinguishable from a missing resource); a role without it gets 403 either way. Each
allowed read writes exactly the audit records the rule in docs/api.md names (one per
response containing personal data, naming the subject; one per list), and refusals write
none. The world (conftest.py): users of every role at brigade DA, station staff at station
SA1; subject S-AK2QA and its sessions lie under DA, S-BK2QB under DB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from api_seed import SUBJECT_IN, SUBJECT_OUT, ApiWorld

from shuxin.dashboard_api.access import ROLE_PERMISSIONS, Permission
from shuxin.gateway.sql_models import Role

pytestmark = pytest.mark.integration

USERS = {role: role.value for role in Role}


@dataclass(frozen=True)
class Resource:
    """One readable resource: its path inside and outside DA, what it needs, and the audit
    record an allowed read writes (action, and whether it names the subject)."""

    name: str
    permission: Permission
    path_in: str
    path_out: str | None
    audit_action: str | None
    names_subject: bool = False


def _resources(world: ApiWorld) -> list[Resource]:
    s_in, s_out = world.sessions_in[0], world.sessions_out[0]
    return [
        Resource("org-units", Permission.ORG_READ, "/api/v1/org-units", None, None),
        Resource("stations", Permission.STATION_READ, "/api/v1/stations", None, None),
        Resource("users", Permission.USER_ADMIN, "/api/v1/users", None, None),
        Resource("subjects", Permission.SUBJECT_READ, "/api/v1/subjects", None, "subject.list"),
        Resource("subject", Permission.SUBJECT_READ, f"/api/v1/subjects/{SUBJECT_IN}",
                 f"/api/v1/subjects/{SUBJECT_OUT}", "subject.read", names_subject=True),
        Resource("identity", Permission.IDENTITY_READ, f"/api/v1/subjects/{SUBJECT_IN}/identity",
                 f"/api/v1/subjects/{SUBJECT_OUT}/identity", "identity.reveal",
                 names_subject=True),
        Resource("trends", Permission.TREND_READ, f"/api/v1/subjects/{SUBJECT_IN}/trends",
                 f"/api/v1/subjects/{SUBJECT_OUT}/trends", "trend.read", names_subject=True),
        Resource("sessions", Permission.SESSION_LIST_TODAY, "/api/v1/sessions", None,
                 "session.list"),
        Resource("session", Permission.SESSION_READ, f"/api/v1/sessions/{s_in}",
                 f"/api/v1/sessions/{s_out}", "session.read", names_subject=True),
        Resource("series", Permission.SERIES_READ, f"/api/v1/sessions/{s_in}/series",
                 f"/api/v1/sessions/{s_out}/series", "series.read", names_subject=True),
        Resource("alerts", Permission.ALERT_READ, "/api/v1/alerts", None, "alert.list"),
        Resource("alert", Permission.ALERT_READ, f"/api/v1/alerts/{world.alert_in}",
                 f"/api/v1/alerts/{world.alert_out}", "alert.read", names_subject=True),
        Resource("audit", Permission.AUDIT_READ, "/api/v1/audit", None, "audit.list"),
    ]  # fmt: skip


def _new_audit(world: ApiWorld, before: int) -> list[Any]:
    entries = world.sql.audit_entries(limit=1_000_000)
    return entries[: len(entries) - before]  # newest first


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_resource_inside_and_outside_the_subtree(api_world: ApiWorld, role: Role) -> None:
    user = USERS[role]
    allowed = ROLE_PERMISSIONS[role]
    checked = 0
    for resource in _resources(api_world):
        may = resource.permission in allowed
        before = api_world.audit_count()
        inside = api_world.get(user, resource.path_in)
        new = _new_audit(api_world, before)
        if not may:
            assert inside.status_code == 403, (role, resource.name, inside.text)
            assert inside.json()["error"]["code"] == "forbidden"
            assert new == [], (role, resource.name)
        else:
            assert inside.status_code == 200, (role, resource.name, inside.text)
            if resource.audit_action is None:
                assert new == [], (role, resource.name)
            else:
                assert len(new) == 1, (role, resource.name, new)
                assert new[0].action == resource.audit_action
                assert new[0].actor == f"user:{user}"
                expected_subject = SUBJECT_IN if resource.names_subject else None
                assert new[0].subject_code == expected_subject, (role, resource.name)
        checked += 1
        if resource.path_out is None:
            continue
        before = api_world.audit_count()
        outside = api_world.get(user, resource.path_out)
        assert outside.status_code == (404 if may else 403), (role, resource.name, outside.text)
        assert api_world.audit_count() == before, (role, resource.name)
    assert checked == len(_resources(api_world))


def _ids(body: dict[str, Any], key: str) -> set[Any]:
    return {row[key] for row in body["data"]}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_lists_never_show_anything_outside_the_subtree(api_world: ApiWorld, role: Role) -> None:
    user = USERS[role]
    allowed = ROLE_PERMISSIONS[role]
    lists = {
        "/api/v1/org-units": (Permission.ORG_READ, "code", {"DB", "SB1", "ZD"}),
        "/api/v1/stations": (Permission.STATION_READ, "id", {"st-sb1"}),
        "/api/v1/subjects": (Permission.SUBJECT_READ, "code", {SUBJECT_OUT}),
        "/api/v1/sessions": (
            Permission.SESSION_LIST_TODAY, "id", set(api_world.sessions_out),
        ),
        "/api/v1/alerts": (Permission.ALERT_READ, "id", {api_world.alert_out}),
        "/api/v1/users": (Permission.USER_ADMIN, "username", {"counselor-zd"}),
    }  # fmt: skip
    seen_any = 0
    for path, (permission, key, forbidden_ids) in lists.items():
        response = api_world.get(user, path)
        if permission not in allowed:
            assert response.status_code == 403, (role, path)
            continue
        assert response.status_code == 200, (role, path, response.text)
        body = response.json()
        assert body["count"] == len(body["data"])  # every list here fits one page
        assert not (_ids(body, key) & forbidden_ids), (role, path)
        seen_any += len(body["data"])
    if role is not Role.AUDITOR and role is not Role.COMMANDER:
        assert seen_any > 0  # the lists are not trivially empty


def test_a_counselor_at_the_detachment_sees_both_brigades(api_world: ApiWorld) -> None:
    body = api_world.get("counselor-zd", "/api/v1/subjects").json()
    assert {SUBJECT_IN, SUBJECT_OUT} <= _ids(body, "code")
    session = api_world.get("counselor-zd", f"/api/v1/sessions/{api_world.sessions_out[0]}")
    assert session.status_code == 200
    assert session.json()["subject_code"] == SUBJECT_OUT


def test_outside_the_subtree_looks_exactly_like_missing(api_world: ApiWorld) -> None:
    pairs = [
        (f"/api/v1/sessions/{api_world.sessions_out[0]}", "/api/v1/sessions/st-zz-20261120-0000-9"),
        (f"/api/v1/subjects/{SUBJECT_OUT}", "/api/v1/subjects/S-ZZZZZZ"),
        (f"/api/v1/subjects/{SUBJECT_OUT}/trends", "/api/v1/subjects/S-ZZZZZZ/trends"),
        (f"/api/v1/alerts/{api_world.alert_out}", "/api/v1/alerts/999999"),
    ]  # fmt: skip
    for outside, missing in pairs:
        a, b = api_world.get("counselor", outside), api_world.get("counselor", missing)
        assert a.status_code == b.status_code == 404
        assert a.json() == b.json()


def test_unauthenticated_requests_are_401_everywhere(api_world: ApiWorld) -> None:
    for resource in _resources(api_world):
        response = api_world.client.get(resource.path_in)
        assert response.status_code == 401, resource.name
        assert response.json()["error"]["code"] == "unauthenticated"
