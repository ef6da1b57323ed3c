"""The dashboard API's resources over a store seeded through the gateway: org units,
stations, subjects, trends, sessions (filters, paging, detail, series), alerts (acknowledge →
resolve with notes), the audit log, users, and structured 422s."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from api_seed import NOW, PASSWORD, SUBJECT_IN, SUBJECT_OUT, ApiWorld

pytestmark = pytest.mark.integration


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_org_units_roots_first_and_stations_with_devices(api_world: ApiWorld) -> None:
    units = _ok(api_world.get("counselor-zd", "/api/v1/org-units"))["data"]
    assert units[0]["code"] == "ZD"
    assert {u["code"] for u in units} == {"ZD", "DA", "DB", "SA1", "SB1"}
    by_code = {u["code"]: u for u in units}
    assert by_code["SA1"]["parent_id"] == by_code["DA"]["id"]
    assert by_code["SA1"]["kind"] == "station"
    stations = _ok(api_world.get("admin", "/api/v1/stations"))["data"]
    assert [s["id"] for s in stations] == ["st-sa1"]
    assert stations[0]["org_unit_code"] == "SA1"
    assert stations[0]["presence"] in {"online", "offline", "unknown"}
    assert isinstance(stations[0]["devices"], list)


def test_subjects_list_counts_and_org_unit_filter(api_world: ApiWorld) -> None:
    body = _ok(api_world.get("counselor-zd", "/api/v1/subjects"))
    rows = {row["code"]: row for row in body["data"]}
    assert body["count"] == 2
    assert rows[SUBJECT_IN]["session_count"] == len(api_world.sessions_in)
    assert rows[SUBJECT_OUT]["session_count"] == len(api_world.sessions_out)
    assert rows[SUBJECT_IN]["consent_status"] == "granted"
    assert rows[SUBJECT_IN]["open_alerts"] >= 1
    assert rows[SUBJECT_IN]["last_session_at"].endswith("Z")
    only_db = _ok(api_world.get("counselor-zd", "/api/v1/subjects", org_unit="DB"))
    assert [row["code"] for row in only_db["data"]] == [SUBJECT_OUT]
    # An org unit outside the caller's subtree is unknown to them.
    assert api_world.get("counselor", "/api/v1/subjects", org_unit="DB").status_code == 404


def test_subject_detail_with_consents(api_world: ApiWorld) -> None:
    body = _ok(api_world.get("counselor", f"/api/v1/subjects/{SUBJECT_IN}"))
    assert body["code"] == SUBJECT_IN
    assert [c["purpose"] for c in body["consents"]] == ["biofeedback"]
    assert body["consents"][0]["active"] is True


def test_identity_is_revealed_and_audited_with_the_stated_purpose(api_world: ApiWorld) -> None:
    headers = {**api_world.auth("counselor"), "X-Shuxin-Purpose": "follow-up call"}
    response = api_world.client.get(f"/api/v1/subjects/{SUBJECT_IN}/identity", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "subject_code": SUBJECT_IN,
        "name": "测试对象甲",
        "employee_no": None,
    }
    newest = api_world.sql.audit_entries(limit=1)[0]
    assert (newest.action, newest.subject_code, newest.purpose) == (
        "identity.reveal", SUBJECT_IN, "follow-up call"
    )  # fmt: skip
    # No identity stored for the other subject (inside the detachment counselor's scope).
    assert (
        api_world.get("counselor-zd", f"/api/v1/subjects/{SUBJECT_OUT}/identity").status_code == 404
    )


def test_trends_band_is_mean_plus_minus_one_sd_of_passed_resting_values(
    api_world: ApiWorld,
) -> None:
    body = _ok(api_world.get("counselor", f"/api/v1/subjects/{SUBJECT_IN}/trends"))
    points = body["points"]
    assert [p["session_id"] for p in points] == api_world.sessions_in  # oldest first
    passed = [p["resting_lnrmssd"] for p in points if p["quality_passed"]]
    assert len(passed) >= 2
    band = body["baseline"]["lnrmssd"]
    # Same arithmetic in another implementation (statistics module); 1e-9 is float noise.
    assert band["n"] == len(passed)
    assert band["mean"] == pytest.approx(statistics.fmean(passed), abs=1e-9)
    assert band["sd"] == pytest.approx(statistics.stdev(passed), abs=1e-9)
    assert band["low"] == pytest.approx(band["mean"] - band["sd"], abs=1e-9)
    assert band["high"] == pytest.approx(band["mean"] + band["sd"], abs=1e-9)
    # Resting lnRMSSD of simulated adults at ~65 bpm: ln(10..150 ms).
    assert all(math.log(10) < v < math.log(150) for v in passed)
    rolling = body["rolling"]["lnrmssd"]
    assert [r["mean7"] is None for r in rolling][:2] == [True, True]
    third = rolling[2]
    assert third["mean7"] == pytest.approx(statistics.fmean(passed[:3]), abs=1e-9)
    expected_cv = statistics.stdev(passed[:3]) / statistics.fmean(passed[:3])
    assert third["cv7"] == pytest.approx(expected_cv, abs=1e-9)


def test_sessions_filters_and_paging(api_world: ApiWorld) -> None:
    everything = _ok(api_world.get("counselor-zd", "/api/v1/sessions"))
    all_ids = api_world.sessions_in + api_world.sessions_out
    assert everything["count"] == len(all_ids)
    starts = [row["started_at"] for row in everything["data"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    pages = [
        _ok(api_world.get("counselor-zd", "/api/v1/sessions", limit=3, offset=o)) for o in (0, 3, 6)
    ]
    assert all(p["count"] == len(all_ids) for p in pages)
    paged = [row["id"] for p in pages for row in p["data"]]
    assert paged == [row["id"] for row in everything["data"]]
    by_station = _ok(api_world.get("counselor-zd", "/api/v1/sessions", station="st-sb1"))
    assert {row["id"] for row in by_station["data"]} == set(api_world.sessions_out)
    by_subject = _ok(api_world.get("counselor-zd", "/api/v1/sessions", subject=SUBJECT_IN))
    assert by_subject["count"] == len(api_world.sessions_in)
    assert _ok(api_world.get("counselor-zd", "/api/v1/sessions", protocol="nope"))["count"] == 0
    assert _ok(api_world.get("counselor-zd", "/api/v1/sessions", status="aborted"))["count"] == 0
    today = _ok(
        api_world.get("counselor-zd", "/api/v1/sessions", date_from="2026-11-20T00:00:00Z",
                      date_to="2026-11-21T00:00:00Z")
    )  # fmt: skip
    assert [row["id"] for row in today["data"]] == [api_world.today_session]
    row = today["data"][0]
    assert row["rating_before"] == 7
    assert row["rating_after"] == 3
    assert row["duration_s"] == pytest.approx(240.0)
    assert row["quality_ok"] is True
    assert isinstance(row["delta_lnrmssd"], float)


def test_station_staff_see_only_todays_sessions_without_results(api_world: ApiWorld) -> None:
    body = _ok(api_world.get("station_staff", "/api/v1/sessions"))
    assert [row["id"] for row in body["data"]] == [api_world.today_session]
    row = body["data"][0]
    for key in ("quality_ok", "rating_before", "rating_after", "delta_lnrmssd"):
        assert row[key] is None, key
    # Asking for earlier days does not widen the window.
    wide = _ok(api_world.get("station_staff", "/api/v1/sessions", date_from="2026-01-01T00:00:00Z"))
    assert wide["count"] == 1


def test_session_detail_has_phases_deltas_events_ratings_and_curves(api_world: ApiWorld) -> None:
    sid = api_world.sessions_in[1]
    body = _ok(api_world.get("counselor", f"/api/v1/sessions/{sid}"))
    assert body["subject_code"] == SUBJECT_IN
    assert [p["name"] for p in body["phases"]] == ["baseline", "resonance", "recovery"]
    assert body["phases"][1]["pacer_bpm"] == 6.0
    assert body["phases"][0]["metrics"]["ln_rmssd"] > 0
    assert "artifact_pct" in body["phases"][0]["quality"]
    assert set(body["deltas"]) == {"training_minus_baseline", "recovery_minus_baseline"}
    assert "deltas" not in body["session_metrics"]
    assert body["algorithm_versions"]["summary"]
    assert {e["kind"] for e in body["events"]} >= {"phase_start", "phase_end", "rating"}
    assert {(r["when"], r["value"]) for r in body["ratings"]} == {("before", 6), ("after", 3)}
    assert {"hr_bpm", "scl_us"} <= set(body["curves"])  # the names the gateway stores
    for curve in body["curves"].values():
        assert len(curve["t_offset_s"]) == len(curve["values"]) > 0
    assert body["baseline"]["n"] >= 2


def test_series_returns_full_resolution_points(api_world: ApiWorld) -> None:
    sid = api_world.sessions_in[0]
    rr = _ok(api_world.get("counselor", f"/api/v1/sessions/{sid}/series", measurement="rr"))
    assert rr["unit"] == "ms"
    # 240 s at ~65 bpm: about 260 beats (50–100 bpm gives 200–400).
    assert 200 <= len(rr["points"]) <= 400
    assert all(p["device"] == "h10-1" for p in rr["points"])
    assert all(300 < p["values"]["rr_ms"] < 2000 for p in rr["points"])
    eda = _ok(api_world.get("counselor", f"/api/v1/sessions/{sid}/series", measurement="eda"))
    assert len(eda["points"]) == 240 * 8  # 8 Hz for 240 s, every sample stored
    assert eda["unit"] == "µS"


def test_alert_acknowledge_then_resolve_with_notes(api_world: ApiWorld) -> None:
    alert_id = api_world.alert_in
    path = f"/api/v1/alerts/{alert_id}"
    headers = api_world.auth("counselor")
    before = api_world.audit_count()
    ack = api_world.client.post(f"{path}/acknowledge", json={"note": "called, will visit"},
                                headers=headers)  # fmt: skip
    assert ack.status_code == 200, ack.text
    assert ack.json()["state"] == "acknowledged"
    assert ack.json()["acknowledged_by"] == "counselor"
    assert ack.json()["acknowledge_note"] == "called, will visit"
    again = api_world.client.post(f"{path}/acknowledge", json={"note": "x"}, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    done = api_world.client.post(f"{path}/resolve", json={"note": "visited; fine"}, headers=headers)
    assert done.status_code == 200
    assert done.json()["state"] == "resolved"
    assert done.json()["resolve_note"] == "visited; fine"
    assert done.json()["resolved_by"] == "counselor"
    actions = [e.action for e in api_world.sql.audit_entries(limit=2)]
    assert actions == ["alert.resolve", "alert.acknowledge"]
    assert api_world.audit_count() == before + 2
    resolved = _ok(api_world.get("counselor", "/api/v1/alerts", state="resolved"))
    assert alert_id in {row["id"] for row in resolved["data"]}
    still_open = _ok(api_world.get("counselor", "/api/v1/alerts", state="open"))
    assert alert_id not in {row["id"] for row in still_open["data"]}
    # The programme lead may read the worklist but not handle alerts.
    lead = api_world.client.post(
        f"/api/v1/alerts/{api_world.station_alert_in}/resolve", json={"note": "x"},
        headers=api_world.auth("programme_lead"),
    )  # fmt: skip
    assert lead.status_code == 403
    # Outside the subtree: 404, nothing changed.
    outside = api_world.client.post(
        f"/api/v1/alerts/{api_world.alert_out}/acknowledge", json={"note": "x"}, headers=headers
    )
    assert outside.status_code == 404


def test_alert_kind_filter(api_world: ApiWorld) -> None:
    body = _ok(api_world.get("counselor", "/api/v1/alerts", kind="station_offline"))
    assert [row["id"] for row in body["data"]] == [api_world.station_alert_in]
    assert body["data"][0]["station_id"] == "st-sa1"
    assert body["data"][0]["subject_code"] is None


def test_audit_log_filters(api_world: ApiWorld) -> None:
    api_world.get("counselor", f"/api/v1/subjects/{SUBJECT_IN}/trends")
    body = _ok(api_world.get("auditor", "/api/v1/audit", action="trend.read",
                             actor="user:counselor", subject=SUBJECT_IN))  # fmt: skip
    assert body["count"] >= 1
    assert all(row["action"] == "trend.read" for row in body["data"])
    assert all(row["subject_code"] == SUBJECT_IN for row in body["data"])
    later = _ok(api_world.get("auditor", "/api/v1/audit", since="2100-01-01T00:00:00Z"))
    assert later["count"] == 0
    page = _ok(api_world.get("auditor", "/api/v1/audit", limit=2))
    assert len(page["data"]) == 2
    assert page["count"] > 2
    # The other brigade's subject is outside a DA auditor's view of the log.
    api_world.get("counselor-zd", f"/api/v1/subjects/{SUBJECT_OUT}")
    other = _ok(api_world.get("auditor", "/api/v1/audit", subject=SUBJECT_OUT))
    assert other["count"] == 0


def test_admin_creates_and_deactivates_users_in_their_subtree(api_world: ApiWorld) -> None:
    headers = api_world.auth("admin")
    new = {"username": "counselor-2", "role": "counselor", "org_unit": "SA1",
           "password": PASSWORD}  # fmt: skip
    created = api_world.client.post("/api/v1/users", json=new, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["org_unit_code"] == "SA1"
    assert "password" not in created.text
    assert api_world.client.post("/api/v1/users", json=new, headers=headers).status_code == 409
    weak_body = {**new, "username": "counselor-3", "password": "short"}
    weak = api_world.client.post("/api/v1/users", headers=headers, json=weak_body)
    assert weak.status_code == 422
    assert weak.json()["error"]["code"] == "weak_password"
    outside_body = {**new, "username": "counselor-4", "org_unit": "DB"}
    outside = api_world.client.post("/api/v1/users", headers=headers, json=outside_body)
    assert outside.status_code == 404
    assert api_world.get("counselor-2", "/api/v1/me").status_code == 200
    user_id = created.json()["id"]
    off = api_world.client.post(f"/api/v1/users/{user_id}/deactivate", headers=headers)
    assert off.status_code == 200
    assert off.json()["active"] is False
    # The token issued before deactivation stops working at once.
    assert api_world.get("counselor-2", "/api/v1/me").status_code == 401
    zd_user = api_world.users["counselor-zd"]
    assert (
        api_world.client.post(f"/api/v1/users/{zd_user}/deactivate", headers=headers).status_code
        == 404
    )
    own = api_world.users["admin"]
    assert (
        api_world.client.post(f"/api/v1/users/{own}/deactivate", headers=headers).status_code == 409
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/sessions", {"limit": 0}),
        ("/api/v1/sessions", {"limit": 501}),
        ("/api/v1/sessions", {"offset": -1}),
        ("/api/v1/sessions", {"status": "bogus"}),
        ("/api/v1/sessions", {"date_from": "yesterday"}),
        ("/api/v1/alerts", {"state": "closed"}),
        ("/api/v1/alerts/0", {}),
        ("/api/v1/sessions/{sid}/series", {"measurement": "ecg"}),
    ],
)
def test_bad_parameters_are_structured_422s(
    api_world: ApiWorld, path: str, params: dict[str, Any]
) -> None:
    before = api_world.audit_count()
    response = api_world.get("counselor", path.format(sid=api_world.sessions_in[0]), **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["fields"]
    assert api_world.audit_count() == before  # nothing was read


def test_bad_notes_are_422(api_world: ApiWorld) -> None:
    path = f"/api/v1/alerts/{api_world.station_alert_in}/acknowledge"
    headers = api_world.auth("counselor")
    for body in ({"note": ""}, {"note": "x" * 2001}, {}):
        response = api_world.client.post(path, json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["fields"][0]["loc"][0] == "body"


def test_times_are_utc_with_offset(api_world: ApiWorld) -> None:
    body = _ok(api_world.get("counselor", "/api/v1/sessions", limit=1))
    assert body["data"][0]["started_at"] == NOW.replace(hour=3).isoformat().replace("+00:00", "Z")
