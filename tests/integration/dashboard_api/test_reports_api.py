"""Reports over a store seeded through the real gateway code path (contract messages → Ingest →
time-series, SQL and summary sinks): cells, k-suppression, periods, roles and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_seed import SimSession, ingest_sessions, subject_code
from fastapi.testclient import TestClient

from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.sql_models import OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import SqlStore

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
SECRET = "r" * 40
#: 2026-11-18 is a Wednesday; its ISO week is Mon 16 – Sun 22 November.
DAY = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


@dataclass
class World:
    client: TestClient
    sql: SqlStore
    units: dict[str, int]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def token(self, username: str) -> dict[str, str]:
        if username in self.tokens:  # logging in hashes a password (slow): once per user
            return self.tokens[username]
        response = self.client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        self.tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self.tokens[username]


# Station SA1 (brigade DA): 6 people, one of them at 00:30 Shanghai time (16:30 UTC the day
# before); SA2 (DA): 3 people; SB1 (brigade DB): 5 people. All on 2026-11-18 (Shanghai).
LAYOUT = {"st-sa1": 6, "st-sa2": 3, "st-sb1": 5}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("reports")
    settings = ApiSettings(
        data_dir=tmp,
        sql=SqlSettings(url=f"sqlite:///{tmp / 'api.sqlite3'}"),
        token_secret=SECRET,
        tsdb_url=f"sqlite:///{tmp / 'ts.sqlite3'}",
    )
    services = build_services(settings)
    sql = services.sql
    zd = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "一支队", None)
    da = sql.create_org_unit(OrgUnitKind.BRIGADE, "DA", "甲大队", zd.id)
    db = sql.create_org_unit(OrgUnitKind.BRIGADE, "DB", "乙大队", zd.id)
    units = {"ZD": zd.id, "DA": da.id, "DB": db.id}
    for code, parent in (("SA1", da.id), ("SA2", da.id), ("SB1", db.id)):
        unit = sql.create_org_unit(OrgUnitKind.STATION, code, f"{code}站", parent)
        units[code] = unit.id
        sql.register_station(f"st-{code.lower()}", org_unit_id=unit.id, display_name=code)
    sims: list[SimSession] = []
    n = 0
    for station, people in LAYOUT.items():
        for i in range(people):
            start = DAY + timedelta(minutes=10 * i)
            if station == "st-sa1" and i == 0:
                start = datetime(2026, 11, 17, 16, 30, tzinfo=UTC)
            sims.append(
                SimSession(station, subject_code(n), start, rating_before=6 + i % 3,
                           rating_after=3 + i % 2, seed=n)
            )  # fmt: skip
            n += 1
    ingest_sessions(sql, services.tsdb, tmp, sims)  # type: ignore[arg-type]
    for username, role, unit in (
        ("commander", Role.COMMANDER, "ZD"),
        ("lead", Role.PROGRAMME_LEAD, "ZD"),
        ("counselor-db", Role.COUNSELOR, "DB"),
        ("staff", Role.STATION_STAFF, "SA1"),
        ("admin", Role.ADMIN, "ZD"),
        ("auditor", Role.AUDITOR, "ZD"),
    ):
        sql.create_user(
            username, role=role, org_unit_id=units[unit], password_hash=hash_password(PASSWORD)
        )
    with TestClient(create_app(settings, services=services)) as client:
        yield World(client, sql, units)
    services.tsdb.close()
    services.sql.close()


def _report(world: World, user: str, kind: str = "daily", **params: str) -> Any:
    query = {"date": "2026-11-18", **params}
    return world.client.get(f"/api/v1/reports/{kind}", params=query, headers=world.token(user))


def test_detachment_daily_report_counts_and_rows(world: World) -> None:
    response = _report(world, "commander", org_unit="ZD")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "daily"
    assert body["k_min"] == 5
    assert body["period"]["start"] == body["period"]["end"] == "2026-11-18"
    assert body["period"]["start_utc"] == "2026-11-17T16:00:00Z"
    cells = body["cells"]
    assert cells["sessions_held"] == {"value": 14, "suppressed": False, "reason": None}
    assert cells["participants"]["value"] == 14
    assert cells["subjects_registered"]["value"] == 14
    assert cells["participation_pct"]["value"] == 100.0
    assert cells["stations_total"]["value"] == 3
    rows = {row["org_unit_code"]: row["cells"] for row in body["rows"]}
    assert set(rows) == {"DA", "DB"}
    assert rows["DA"]["sessions_held"]["value"] == 9
    assert rows["DB"]["sessions_held"]["value"] == 5
    # Rating after − before: 14 sessions of 14 people; every change is negative here.
    change = body["distributions"]["rating_change"]
    assert change["suppressed"] is False
    assert change["n"] == 14
    assert change["p90"] < 0
    assert body["distributions"]["delta_lnrmssd_training"]["n"] == 14


def test_a_cell_of_fewer_than_five_people_is_suppressed_with_its_complement(
    world: World,
) -> None:
    body = _report(world, "lead", org_unit="DA").json()
    rows = {row["org_unit_code"]: row["cells"] for row in body["rows"]}
    assert rows["SA2"]["sessions_held"] == {"value": None, "suppressed": True, "reason": "k<5"}
    # DA (9) minus SA1 (6) would give SA2 away: SA1 is suppressed as its complement.
    assert rows["SA1"]["sessions_held"] == {
        "value": None,
        "suppressed": True,
        "reason": "complementary",
    }
    assert body["cells"]["sessions_held"]["value"] == 9
    assert rows["SA2"]["participation_pct"]["suppressed"] is True
    # Operational cells describe no person and stay visible.
    assert rows["SA2"]["stations_total"] == {"value": 1, "suppressed": False, "reason": None}


def test_a_unit_of_three_people_has_every_people_cell_and_distribution_suppressed(
    world: World,
) -> None:
    body = _report(world, "commander", org_unit="SA2").json()
    for name in ("sessions_held", "participants", "subjects_registered", "participation_pct"):
        assert body["cells"][name]["value"] is None
        assert body["cells"][name]["suppressed"] is True
    for dist in body["distributions"].values():
        assert dist["suppressed"] is True
        assert dist["median"] is None


def test_the_day_is_the_shanghai_civil_day(world: World) -> None:
    # The SA1 session at 16:30 UTC on the 17th is 00:30 on the 18th in Shanghai.
    day17 = _report(world, "commander", org_unit="ZD", date="2026-11-17").json()
    assert day17["cells"]["sessions_held"]["suppressed"] is True  # 0 people: k<5
    weekly = _report(world, "commander", "weekly", org_unit="ZD", date="2026-11-22").json()
    assert (weekly["period"]["start"], weekly["period"]["end"]) == ("2026-11-16", "2026-11-22")
    assert weekly["cells"]["sessions_held"]["value"] == 14
    monthly = _report(world, "commander", "monthly", org_unit="ZD", date="2026-11-02").json()
    assert (monthly["period"]["start"], monthly["period"]["end"]) == ("2026-11-01", "2026-11-30")
    assert monthly["cells"]["sessions_held"]["value"] == 14
    next_week = _report(world, "commander", "weekly", org_unit="ZD", date="2026-11-23").json()
    assert next_week["cells"]["sessions_held"]["suppressed"] is True


def test_roles_scope_and_the_single_audit_record(world: World) -> None:
    for user in ("staff", "admin", "auditor"):
        refused = _report(world, user, org_unit="ZD")
        assert refused.status_code == 403, user
        assert refused.json()["error"]["code"] == "forbidden"
    assert _report(world, "counselor-db", org_unit="DB").status_code == 200
    outside = _report(world, "counselor-db", org_unit="DA")
    missing = _report(world, "counselor-db", org_unit="NOPE")
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == missing.json()
    before = len(world.sql.audit_entries(actor="user:commander"))
    body = _report(world, "commander", org_unit="DB").json()
    entries = world.sql.audit_entries(actor="user:commander")
    assert len(entries) == before + 1
    newest = entries[0]  # newest first
    assert newest.action == "report.read"
    assert newest.subject_code is None
    # Nothing individual in a commander's report: no subject code anywhere in it.
    assert "S-" not in str(body)


def test_invalid_kind_and_date_are_422(world: World) -> None:
    headers = world.token("commander")
    assert world.client.get("/api/v1/reports/yearly", headers=headers).status_code == 422
    bad_date = world.client.get("/api/v1/reports/daily?date=2026-13-01", headers=headers)
    assert bad_date.status_code == 422
    far = world.client.get("/api/v1/reports/monthly?date=9999-12-31", headers=headers)
    assert far.status_code == 422
    assert far.json()["error"]["code"] == "invalid_request"
