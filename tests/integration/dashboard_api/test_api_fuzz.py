"""Schemathesis fuzzing of every operation in the dashboard API's OpenAPI document, as each role.

The app runs in-process over a SQLite SQL store seeded through the gateway's public code
(``SqlStore``: org units, stations, sessions through ``apply_lifecycle``/``apply_events``,
summaries, curves, alerts, an identity). For every operation the OpenAPI document lists and
every role, a bounded, derandomised number of generated requests is sent; some path parameters
are replaced by ids that exist so that 2xx paths are exercised too. Checked per request:
schemathesis' checks (no 5xx, status code, content type and body conform to the documented
schema), every error body is ``{"error": {"code", "message"}}``, and the audit table grew by
exactly the records the route must write (one per personal-data read naming the subject; one
per list; none for a refusal before any data is read).

The routes are not listed here one by one to be fuzzed: the operations come from the OpenAPI
document. Only the audit expectation is per route, and an operation without one fails the test
until it is classified (so a new personal-data route cannot slip in unaudited). This module
must not write to any store other than through the API and the seeding helpers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from sqlalchemy import func, select

from shuxin.contract.messages import (
    ClockInfo,
    EventsMessage,
    LifecycleMessage,
    PhasePlan,
    ProtocolRef,
    RatingEvent,
)
from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.identity_crypto import PersonIdentity
from shuxin.gateway.sql_models import AlertKind, AuditLogRow, OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import (
    WHOLE_SESSION,
    Actor,
    DisplayCurve,
    SqlStore,
    Summary,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~35 s: 6 roles × all operations

PASSWORD = "correct horse battery"
SECRET = "z" * 40
#: Generated requests per operation and role. Small: 6 roles × ~25 operations stay well under
#: a minute; derandomised, so a failure reproduces on the next run.
MAX_EXAMPLES = 4
_CODE_CHARS = "ABCDEFGHJKMNPQRSTVWXYZ"
START = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
CLOCK = ClockInfo(offset_ms=0.0, source="ntp")
PLAN = (
    ("baseline", "baseline", 60.0, None),
    ("resonance", "training", 120.0, 6.0),
    ("recovery", "recovery", 60.0, None),
)
#: One user per role (station staff at a station, the others at the detachment root).
ROLE_USERS: dict[Role, tuple[str, str]] = {
    Role.STATION_STAFF: ("fz-staff", "SA1"),
    Role.COUNSELOR: ("fz-counselor", "ZD"),
    Role.PROGRAMME_LEAD: ("fz-lead", "ZD"),
    Role.COMMANDER: ("fz-commander", "ZD"),
    Role.ADMIN: ("fz-admin", "ZD"),
    Role.AUDITOR: ("fz-auditor", "ZD"),
}


def subject_code(i: int) -> str:
    """A pseudonymous code (no names, no employee numbers)."""
    return f"S-{_CODE_CHARS[i % 22]}{_CODE_CHARS[(i // 22) % 22]}F7Z"


@dataclass
class World:
    client: TestClient
    sql: SqlStore
    tokens: dict[Role, str]
    #: Existing values offered for path parameters, by parameter name.
    known: dict[str, list[Any]] = field(default_factory=dict)

    def audit_rows(self) -> int:
        with self.sql.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(AuditLogRow)).scalar_one()
            )

    def audit_since(self, count: int) -> list[tuple[str, str | None]]:
        with self.sql.engine.connect() as connection:
            rows = connection.execute(
                select(AuditLogRow.action, AuditLogRow.subject_code)
                .order_by(AuditLogRow.id)
                .offset(count)
            ).all()
        return [(action, code) for action, code in rows]


def _seed_sessions(sql: SqlStore) -> tuple[list[str], list[str]]:
    """Twelve ended sessions of eight subjects at three stations, with ratings, summaries and
    curves; return (session ids, subject codes)."""
    stations = ("st-sa1", "st-sa2", "st-sb1")
    sessions: list[str] = []
    codes: list[str] = []
    for n in range(12):
        station = stations[n % 3]
        code = subject_code(n % 8)
        started = START + timedelta(days=n % 4, minutes=7 * n)
        ended = started + timedelta(seconds=240)
        sid = f"{station}-{started:%Y%m%d-%H%M}-{n:03d}"
        env = {"schema": 1, "station": station, "session": sid, "sent_at": started, "clock": CLOCK}
        phases = [PhasePlan(name=a, kind=k, duration_s=d, pacer_bpm=p) for a, k, d, p in PLAN]  # type: ignore[arg-type]
        common = {
            **env,
            "stream": "lifecycle",
            "subject": code,
            "protocol": ProtocolRef(id="rest-resonance-recovery", version="1"),
            "phases": phases,
            "devices": ["h10-1", "gsr-1"],
            "started_at": started,
        }
        sql.apply_lifecycle(LifecycleMessage(**common, seq=0, event="start"))
        sql.apply_lifecycle(LifecycleMessage(**common, seq=1, event="end", ended_at=ended))
        sql.apply_events(
            EventsMessage(
                **env,
                seq=0,
                stream="events",
                events=[
                    RatingEvent(t=started, kind="rating", when="before", value=6),
                    RatingEvent(t=ended, kind="rating", when="after", value=4),
                ],
            )
        )
        for index, (name, _, _, _) in enumerate(PLAN):
            sql.store_summary(
                Summary(
                    sid,
                    index,
                    name,
                    {
                        "ln_rmssd": 3.4 + 0.05 * n,
                        "mean_hr_bpm": 70.0 - n,
                        "scl_mean_us": 4.0,
                        "coherence_ratio": 0.4,
                    },
                    {"artifact_pct": 1.0},
                    {"hrv": "1"},
                    "1",
                    ended,
                )
            )
        sql.store_summary(
            Summary(
                sid,
                WHOLE_SESSION,
                None,
                {"ln_rmssd": 3.5, "deltas": {"training_minus_baseline": {"ln_rmssd": 0.2}}},
                {"artifact_pct": 1.0},
                {"hrv": "1"},
                "1",
                ended,
            )
        )
        sql.store_curve(DisplayCurve(sid, "hr_bpm", (0.0, 1.0, 2.0), (70.0, None, 71.0), ended))
        sessions.append(sid)
        codes.append(code)
    return sessions, sorted(set(codes))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("fuzz")
    key = base64.b64encode(bytes(range(32))).decode()
    settings = ApiSettings(
        data_dir=tmp,
        sql=SqlSettings(
            url=f"sqlite:///{tmp / 'api.sqlite3'}",
            identity_keys={"k1": key},  # type: ignore[dict-item]
            identity_key_id="k1",
        ),
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
    sessions, codes = _seed_sessions(sql)
    for i, code in enumerate(codes):
        sql.put_identity(
            code,
            PersonIdentity(name=f"synthetic-person-{i}", employee_no=None),
            actor=Actor("system:test"),
            purpose="fixture",
        )
    alerts = [
        sql.open_alert(
            AlertKind.WATCH,
            {
                "inputs": {"ln_rmssd": 2.9},
                "baseline": {"mean": 3.5},
                "thresholds": {"z": -1.5},
                "quality": {"artifact_pct": 1.0},
            },
            created_at=START,
            subject_code=code,
        ).id
        for code in codes[:3]
    ]
    alerts.append(
        sql.open_alert(
            AlertKind.STATION_OFFLINE, {"inputs": {}}, created_at=START, station_id="st-sb1"
        ).id
    )
    tokens_users: list[int] = []
    for role, (username, unit) in ROLE_USERS.items():
        sql.create_user(
            username, role=role, org_unit_id=units[unit], password_hash=hash_password(PASSWORD)
        )
    # Deactivation targets: never one of the users the fuzzing logs in as.
    for i in range(3):
        victim = sql.create_user(
            f"fz-spare-{i}",
            role=Role.STATION_STAFF,
            org_unit_id=units["SB1"],
            password_hash=hash_password(PASSWORD),
        )
        tokens_users.append(victim.id)
    app = create_app(settings, services=services)
    with TestClient(app) as client:
        tokens = {}
        for role, (username, _) in ROLE_USERS.items():
            response = client.post(
                "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            tokens[role] = response.json()["access_token"]
        known: dict[str, list[Any]] = {
            "session_id": sessions,
            "code": codes,
            "alert_id": alerts,
            "user_id": tokens_users,
        }
        yield World(client, sql, tokens, known)
    services.tsdb.close()
    services.sql.close()


# --------------------------------------------------------------------------- audit rules

Expect = Callable[[Any, Any], list[tuple[str, str | None]]]


def _one(action: str, *, personal: bool) -> Expect:
    """Exactly one record ``action``; naming the subject the response is about when personal."""

    def expect(case: Any, body: Any) -> list[tuple[str, str | None]]:
        return [(action, _subject_of(case, body) if personal else None)]

    return expect


def _subject_of(case: Any, body: Any) -> str | None:
    if isinstance(body, dict) and "subject_code" in body:
        return body["subject_code"]  # type: ignore[no-any-return]
    return (case.path_parameters or {}).get("code")


def _series(case: Any, body: Any) -> list[tuple[str, str | None]]:
    return [("series.read", _session_subject(case))]


def _session_subject(case: Any) -> str | None:
    return _SESSION_SUBJECTS.get(str((case.path_parameters or {}).get("session_id")))


def _export(case: Any, body: Any) -> list[tuple[str, str | None]]:
    query = case.query or {}
    subject = _session_subject(case)
    records: list[tuple[str, str | None]] = []
    if str(query.get("identifiable", "false")).lower() in {"true", "1"}:
        records += [
            ("export.identifiable", subject),
            ("identity.reveal", subject),
        ]
    records.append((f"export.{query.get('format', 'csv')}", subject))
    return records


def _alert(action: str) -> Expect:
    def expect(case: Any, body: Any) -> list[tuple[str, str | None]]:
        return [(action, body.get("subject_code"))]

    return expect


def _nothing(case: Any, body: Any) -> list[tuple[str, str | None]]:
    return []


#: Session id → subject code, filled by the fixture-using test (exports and series do not
#: carry the subject in their body).
_SESSION_SUBJECTS: dict[str, str] = {}

#: What each operation writes to the audit log on a 2xx. Every operation of the OpenAPI
#: document must appear here.
AUDIT_ON_SUCCESS: dict[str, Expect] = {
    "POST /api/v1/auth/token": _nothing,
    "GET /api/v1/me": _nothing,
    "GET /api/v1/org-units": _nothing,
    "GET /api/v1/stations": _nothing,
    "GET /api/v1/subjects": _one("subject.list", personal=False),
    "GET /api/v1/subjects/{code}": _one("subject.read", personal=True),
    "GET /api/v1/subjects/{code}/identity": _one("identity.reveal", personal=True),
    "GET /api/v1/subjects/{code}/trends": _one("trend.read", personal=True),
    "GET /api/v1/sessions": _one("session.list", personal=False),
    "GET /api/v1/sessions/{session_id}": _one("session.read", personal=True),
    "GET /api/v1/sessions/{session_id}/series": _series,
    "GET /api/v1/sessions/{session_id}/export": _export,
    "GET /api/v1/alerts": _one("alert.list", personal=False),
    "GET /api/v1/alerts/{alert_id}": _alert("alert.read"),
    "POST /api/v1/alerts/{alert_id}/acknowledge": _alert("alert.acknowledge"),
    "POST /api/v1/alerts/{alert_id}/resolve": _alert("alert.resolve"),
    "GET /api/v1/audit": _one("audit.list", personal=False),
    "GET /api/v1/users": _nothing,
    "POST /api/v1/users": _one("user.create", personal=False),
    "POST /api/v1/users/{user_id}/deactivate": _one("user.deactivate", personal=False),
    "GET /api/v1/reports/{kind}": _one("report.read", personal=False),
    "GET /healthz": _nothing,
    "GET /readyz": _nothing,
    "GET /metrics": _nothing,  # process metrics (Prometheus text), no personal data
}

#: Refusals that come before any data is read write nothing.
NO_AUDIT_STATUSES = frozenset({401, 403, 422})


def _check_error_body(label: str, response: Any) -> None:
    body = response.json()
    assert isinstance(body, dict), f"{label}: {response.text[:300]}"
    assert set(body) == {"error"}, f"{label}: {response.text[:300]}"
    error = body["error"]
    assert isinstance(error.get("code"), str), f"{label}: {error}"
    assert error["code"], f"{label}: {error}"
    assert isinstance(error.get("message"), str), f"{label}: {error}"


def _fuzz_operation(world: World, operation: Any, role: Role) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    expect = AUDIT_ON_SUCCESS[label]
    headers = {"Authorization": f"Bearer {world.tokens[role]}"}
    names = [p.name for p in operation.path_parameters]
    replacements = {n: st.sampled_from(world.known[n]) for n in names if n in world.known}

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=operation.as_strategy(GenerationMode.POSITIVE), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        # Three times in four, an id that exists (so the 2xx path and its audit run too).
        for name, real in replacements.items():
            if data.draw(st.integers(0, 3), label=f"real {name}?") > 0:
                case.path_parameters[name] = data.draw(real, label=name)
        before = world.audit_rows()
        response = case.call(headers=headers)
        case.validate_response(response, headers=headers)
        what = f"{label} as {role.value} {case.path_parameters} {case.query}"
        assert response.status_code < 500, f"{what}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            _check_error_body(what, response)
        written = world.audit_since(before)
        if 200 <= response.status_code < 300:
            content_type = response.headers.get("content-type") or [""]  # values are lists
            is_json = content_type[0].startswith("application/json")
            body = response.json() if is_json else None
            expected = expect(case, body)
            assert sorted(written, key=str) == sorted(expected, key=str), (
                f"{what}: audit wrote {written}, expected {expected}"
            )
        elif response.status_code in NO_AUDIT_STATUSES:
            assert written == [], f"{what}: a {response.status_code} wrote audit {written}"

    run()


@pytest.mark.parametrize("role", list(ROLE_USERS), ids=lambda r: r.value)
def test_every_operation_as_every_role(world: World, role: Role) -> None:
    if not _SESSION_SUBJECTS:
        for sid in world.known["session_id"]:
            _SESSION_SUBJECTS[sid] = world.sql.get_session(sid).subject_code or ""
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {f"{op.method.upper()} {op.path}" for op in operations}
    unclassified = labels - set(AUDIT_ON_SUCCESS)
    assert not unclassified, f"classify the audit of these new operations: {unclassified}"
    assert "GET /api/v1/sessions/{session_id}" in labels  # the document really was read
    for operation in operations:
        _fuzz_operation(world, operation, role)
