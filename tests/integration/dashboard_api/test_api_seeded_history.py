"""The API over four weeks of simulated history (``seeded_gateway_db``: the edge pipeline's
sessions ingested by the real gateway), read by a counselor at the detachment.

The shared seeded store is read-only for the run, and every API read writes an audit record,
so the stores are copied to a temporary directory first. Checks that the endpoints agree with
each other and with what the seeding reports (subjects, sessions, advisory alerts), and that a
subject the gateway flagged with a ``watch`` alert shows its recent resting lnRMSSD below the
personal band's mean on the trends endpoint.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers.seeded import SeededGatewayDb

from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.sql_models import Role
from shuxin.gateway.sql_settings import SqlSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def history(
    seeded_gateway_db: SeededGatewayDb, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str], SeededGatewayDb]]:
    seeded = seeded_gateway_db
    tmp = tmp_path_factory.mktemp("history")
    for source in seeded.data_dir.iterdir():
        if source.name.startswith(("shuxin.sqlite3", "timeseries.sqlite3")):
            shutil.copy2(source, tmp / source.name)
    settings = ApiSettings(
        data_dir=tmp,
        sql=SqlSettings(url=f"sqlite:///{tmp / 'shuxin.sqlite3'}"),
        token_secret="h" * 40,
        tsdb_url=f"sqlite:///{tmp / 'timeseries.sqlite3'}",
    )
    services = build_services(settings)
    services.sql.create_user(
        "counselor-root", role=Role.COUNSELOR, org_unit_id=seeded.detachment_id,
        password_hash=hash_password(PASSWORD),
    )  # fmt: skip
    with TestClient(create_app(settings, services=services)) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "counselor-root", "password": PASSWORD}
        ).json()["access_token"]
        yield client, {"Authorization": f"Bearer {token}"}, seeded
    services.tsdb.close()
    services.sql.close()


def _get(history: Any, path: str, **params: Any) -> Any:
    client, headers, _ = history
    response = client.get(path, params=params or None, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_subjects_and_sessions_agree_with_the_seeding(history: Any) -> None:
    seeded: SeededGatewayDb = history[2]
    subjects = _get(history, "/api/v1/subjects", limit=500)
    assert {row["code"] for row in subjects["data"]} == set(seeded.subject_codes)
    sessions = _get(history, "/api/v1/sessions", limit=500)
    assert sessions["count"] == len(seeded.session_ids)
    assert {row["id"] for row in sessions["data"]} == set(seeded.session_ids)
    for row in subjects["data"]:
        own = _get(history, "/api/v1/sessions", subject=row["code"], limit=1)
        assert own["count"] == row["session_count"], row["code"]
        flagged = seeded.alerts_by_subject.get(row["code"], ())
        assert row["open_alerts"] == len(flagged), row["code"]


def test_every_session_detail_opens(history: Any) -> None:
    seeded: SeededGatewayDb = history[2]
    for session_id in seeded.session_ids:
        body = _get(history, f"/api/v1/sessions/{session_id}")
        assert body["id"] == session_id
        assert body["phases"], session_id
        assert body["session_metrics"] is not None, session_id


def test_watch_alerted_subjects_trend_below_their_band(history: Any) -> None:
    seeded: SeededGatewayDb = history[2]
    watched = [code for code, kinds in seeded.alerts_by_subject.items() if "watch" in kinds]
    assert watched  # the seeding makes declining subjects; the gateway flagged some
    for code in watched:
        trends = _get(history, f"/api/v1/subjects/{code}/trends")
        passed = [p["resting_lnrmssd"] for p in trends["points"] if p["quality_passed"]]
        band = trends["baseline"]["lnrmssd"]
        assert band is not None
        assert band["n"] == len(passed)
        # A watch means the recent resting values fell below the personal baseline.
        assert statistics.fmean(passed[-3:]) < band["mean"], code
    alerts = _get(history, "/api/v1/alerts", state="open", kind="watch")
    assert {row["subject_code"] for row in alerts["data"]} == set(watched)
    assert all(row["explanation"] for row in alerts["data"])
    assert alerts["count"] == len(watched)
