"""Login, lockout, tokens, the demo-password rule and the structured errors of the API spine,
over a real (SQLite) SQL store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import DEMO_PASSWORD, TokenService, hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.sql_models import OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings

PASSWORD = "correct horse battery"
SECRET = "s" * 40


def _settings(tmp_path: Path, **extra: object) -> ApiSettings:
    return ApiSettings(
        data_dir=tmp_path,
        sql=SqlSettings(url=f"sqlite:///{tmp_path / 'api.sqlite3'}"),
        token_secret=SECRET,
        **extra,  # type: ignore[arg-type]
    )


def _client(settings: ApiSettings) -> Iterator[TestClient]:
    services = build_services(settings)
    unit = services.sql.create_org_unit(OrgUnitKind.DETACHMENT, "zd-1", "一支队", parent_id=None)
    services.sql.create_user(
        "counselor", role=Role.COUNSELOR, org_unit_id=unit.id, password_hash=hash_password(PASSWORD)
    )
    services.sql.create_user(
        "demo", role=Role.COMMANDER, org_unit_id=unit.id, password_hash=hash_password(DEMO_PASSWORD)
    )
    with TestClient(create_app(settings, services=services)) as client:
        yield client
    services.sql.close()
    services.tsdb.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(_settings(tmp_path, lockout_after=3))


def _login(client: TestClient, username: str, password: str) -> object:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_login_returns_a_bearer_token_that_opens_me(client: TestClient) -> None:
    response = _login(client, "counselor", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "counselor"
    assert me.json()["org_unit_code"] == "zd-1"
    assert "session:read" in me.json()["permissions"]


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    wrong = _login(client, "counselor", "nope nope nope")
    unknown = _login(client, "nobody", "nope nope nope")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "unauthenticated"
    assert "nope" not in wrong.text


def test_lockout_after_repeated_failures_even_with_the_right_password(client: TestClient) -> None:
    for _ in range(3):
        assert _login(client, "counselor", "wrong password!").status_code == 401
    locked = _login(client, "counselor", PASSWORD)
    assert locked.status_code == 423
    assert locked.json()["error"]["code"] == "locked"


def test_a_success_resets_the_failure_count(client: TestClient) -> None:
    for _ in range(2):
        assert _login(client, "counselor", "wrong password!").status_code == 401
    assert _login(client, "counselor", PASSWORD).status_code == 200
    for _ in range(2):
        assert _login(client, "counselor", "wrong password!").status_code == 401
    assert _login(client, "counselor", PASSWORD).status_code == 200


def test_demo_password_refused_outside_demo_mode(client: TestClient) -> None:
    assert _login(client, "demo", DEMO_PASSWORD).status_code == 401


def test_demo_password_accepted_in_demo_mode(tmp_path: Path) -> None:
    for demo_client in _client(_settings(tmp_path, demo_mode=True)):
        assert _login(demo_client, "demo", DEMO_PASSWORD).status_code == 200


def test_missing_bad_and_expired_tokens_are_401(client: TestClient) -> None:
    assert client.get("/api/v1/me").json()["error"]["code"] == "unauthenticated"
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    past = TokenService(SECRET, 60, clock=lambda: datetime.now(UTC) - timedelta(hours=2))
    expired = client.get("/api/v1/me", headers={"Authorization": f"Bearer {past.issue(1).token}"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
    forged = TokenService("f" * 40, 60).issue(1).token
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )


def test_validation_errors_are_structured_and_do_not_echo_input(client: TestClient) -> None:
    response = client.post("/api/v1/auth/token", data={"username": "counselor"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["fields"][0]["loc"] == ["body", "password"]
    assert client.get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"sql": True, "tsdb": True}


def test_settings_require_a_token_secret_outside_demo_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHUXIN_API_TOKEN_SECRET is required"):
        ApiSettings(data_dir=tmp_path)
    with pytest.raises(ValueError, match="at least 32"):
        ApiSettings(data_dir=tmp_path, token_secret="short")  # type: ignore[arg-type]
    assert ApiSettings(data_dir=tmp_path, demo_mode=True).secret()
