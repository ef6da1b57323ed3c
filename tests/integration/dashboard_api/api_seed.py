"""The seeded API world for the resource and access-matrix tests (fixture ``api_world``).

Sessions are built by running simulated contract messages through the gateway's real code
path (``Ingest`` → time-series, SQL and summary sinks), never by writing session or summary
rows by hand. Alerts are opened through ``SqlStore.open_alert`` (the gateway's public call).

Grid: ZD (detachment) → DA (brigade) → SA1 (station st-sa1); ZD → DB → SB1 (st-sb1).
Subjects: S-AK2QA (SA1, four sessions on four days plus one "today"), S-BK2QB (SB1, two
sessions). Users: one per role at DA (so SA1 is inside, SB1 outside their subtree), station
staff at SA1, and a detachment-level counselor. The API's clock is fixed at ``NOW``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shuxin.contract.codec import encode
from shuxin.contract.messages import (
    ClockInfo,
    EdaMessage,
    EventsMessage,
    LifecycleMessage,
    PhaseEvent,
    PhasePlan,
    ProtocolRef,
    RatingEvent,
    RrMessage,
)
from shuxin.contract.topics import session_topic
from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.dedupe import SqliteSeqLedger
from shuxin.gateway.identity_crypto import PersonIdentity
from shuxin.gateway.ingest import Ingest, Received
from shuxin.gateway.quarantine import SqliteQuarantine
from shuxin.gateway.sql_models import AlertKind, OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_sink import SqlSink
from shuxin.gateway.sql_store import GATEWAY, SqlStore
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.summaries import SummarySink
from shuxin.gateway.timeseries import TimeSeriesSink
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.rr_simulate import rr_simulate

PASSWORD = "correct horse battery"
SECRET = "q" * 40
IDENTITY_KEY = base64.b64encode(bytes(range(32))).decode()
#: baseline 60 s, resonance 120 s at 6/min, recovery 60 s.
PLAN = (("baseline", "baseline", 60.0, None), ("resonance", "training", 120.0, 6.0),
        ("recovery", "recovery", 60.0, None))  # fmt: skip
CLOCK = ClockInfo(offset_ms=0.0, source="ntp")
#: "Now" for the API: 2026-11-20 12:00 in Asia/Shanghai.
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
SUBJECT_IN = "S-AK2QA"
SUBJECT_OUT = "S-BK2QB"
#: Roles attached at brigade DA (their subtree holds SA1, not SB1).
ROLES_AT_DA = (Role.COUNSELOR, Role.PROGRAMME_LEAD, Role.COMMANDER, Role.ADMIN, Role.AUDITOR)


_CODE_CHARS = "ABCDEFGHJKMNPQRSTVWXYZ"


def subject_code(i: int) -> str:
    """A pseudonymous code (no names, no employee numbers)."""
    return f"S-{_CODE_CHARS[i % 22]}{_CODE_CHARS[(i // 22) % 22]}K2Q"


@dataclass(frozen=True)
class SimSession:
    """One simulated session to push through the gateway."""

    station: str
    subject: str
    start: datetime
    seed: int = 0
    rating_before: int = 6
    rating_after: int = 3


def session_messages(sim: SimSession) -> tuple[str, list[Any], LifecycleMessage]:
    """The contract messages of one session, and its end message (sent last)."""
    sid = f"{sim.station}-{sim.start:%Y%m%d-%H%M}-{sim.seed:03d}"
    total = sum(d for _, _, d, _ in PLAN)
    env = {"schema": 1, "station": sim.station, "session": sid, "sent_at": sim.start,
           "clock": CLOCK}  # fmt: skip
    phases = [PhasePlan(name=n, kind=k, duration_s=d, pacer_bpm=p) for n, k, d, p in PLAN]  # type: ignore[arg-type]
    common = {**env, "stream": "lifecycle", "subject": sim.subject,
              "protocol": ProtocolRef(id="rest-resonance-recovery", version="1"),
              "phases": phases, "devices": ["h10-1", "gsr-1"], "started_at": sim.start}  # fmt: skip
    start = LifecycleMessage(**common, seq=0, event="start")
    end = LifecycleMessage(
        **common, seq=1, event="end", ended_at=sim.start + timedelta(seconds=total)
    )
    events: list[Any] = [RatingEvent(t=sim.start, kind="rating", when="before",
                                     value=sim.rating_before)]  # fmt: skip
    offset = 0.0
    for index, (name, _, duration, _) in enumerate(PLAN):
        events.append(PhaseEvent(t=sim.start + timedelta(seconds=offset), kind="phase_start",
                                 phase=name, index=index))  # fmt: skip
        offset += duration
        events.append(PhaseEvent(t=sim.start + timedelta(seconds=offset), kind="phase_end",
                                 phase=name, index=index))  # fmt: skip
    events.append(RatingEvent(t=sim.start + timedelta(seconds=total), kind="rating",
                              when="after", value=sim.rating_after))  # fmt: skip
    messages: list[Any] = [start, EventsMessage(**env, seq=0, stream="events", events=events)]
    rr = rr_simulate(total, np.random.default_rng(sim.seed),
                     breathing_schedule=[(0, 12.0), (60, 6.0), (180, 12.0)]).rr_ms  # fmt: skip
    beat_ms = np.cumsum(rr)
    for seq, lo in enumerate(range(0, rr.size, 500)):
        t0_ms = float(beat_ms[lo])
        messages.append(
            RrMessage(**env, seq=seq, stream="rr", device="h10-1", source="sim",
                      t0=sim.start + timedelta(milliseconds=t0_ms),
                      t_offset_ms=[float(t - t0_ms) for t in beat_ms[lo : lo + 500]],
                      rr_ms=[float(v) for v in rr[lo : lo + 500]])
        )  # fmt: skip
    eda = eda_simulate(total, 8.0, np.random.default_rng(sim.seed + 1000)).eda_us
    for seq, lo in enumerate(range(0, eda.size, 4000)):
        messages.append(
            EdaMessage(**env, seq=seq, stream="eda", device="gsr-1", fs_hz=8.0,
                       t0=sim.start + timedelta(seconds=lo / 8.0),
                       eda_us=[float(v) for v in eda[lo : lo + 4000]])
        )  # fmt: skip
    return sid, messages, end


def ingest_sessions(
    sql: SqlStore, tsdb: SqliteStore, work: Path, sims: list[SimSession]
) -> list[str]:
    """Push ``sims`` through the gateway's Ingest with its real sinks; their session ids."""
    ingest = Ingest(
        sinks=[TimeSeriesSink(tsdb), SqlSink(sql), SummarySink(sql, tsdb)],
        ledger=SqliteSeqLedger(work / "dedupe.sqlite3"),
        quarantine=SqliteQuarantine(work / "quarantine.sqlite3"),
    )
    ids = []
    for sim in sims:
        sid, messages, end = session_messages(sim)
        for batch in (messages, [end]):
            received = [
                Received(session_topic(m.station, m.session, m.stream), encode(m), sim.start)
                for m in batch
            ]
            assert all(o.acknowledge for o in ingest.handle_batch(received))
        ids.append(sid)
    assert ingest.counters.quarantined == {}
    assert ingest.counters.failed == 0
    return ids


@dataclass
class ApiWorld:
    """The seeded app and what the tests need to know about its contents."""

    client: TestClient
    sql: SqlStore
    units: dict[str, int]
    sessions_in: list[str]
    sessions_out: list[str]
    today_session: str
    alert_in: int
    alert_out: int
    station_alert_in: int
    users: dict[str, int] = field(default_factory=dict)
    _tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def auth(self, username: str) -> dict[str, str]:
        """Bearer headers for ``username`` (logs in once per user)."""
        if username not in self._tokens:
            response = self.client.post(
                "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self._tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self._tokens[username]

    def get(self, username: str, path: str, **params: Any) -> Any:
        """GET ``path`` as ``username``."""
        return self.client.get(path, params=params or None, headers=self.auth(username))

    def audit_count(self) -> int:
        """All audit records (read straight from the store, not through the API)."""
        return len(self.sql.audit_entries(limit=1_000_000))


def _explanation() -> dict[str, Any]:
    return {
        "advisory": True,
        "inputs": {"resting_lnrmssd": [3.1, 3.0, 2.9]},
        "baseline": {"mean": 3.6, "sd": 0.2},
        "thresholds": {"z": -1.5},
        "quality": {"passed": 3},
    }


@pytest.fixture(scope="session")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    """The seeded world, shared by the test modules of this folder. Tests that change it
    (alert handling, user admin) touch only what the other tests do not depend on."""
    tmp = tmp_path_factory.mktemp("api")
    settings = ApiSettings(
        data_dir=tmp,
        sql=SqlSettings(
            url=f"sqlite:///{tmp / 'api.sqlite3'}",
            identity_keys={"k1": IDENTITY_KEY},  # type: ignore[dict-item]
            identity_key_id="k1",
        ),
        token_secret=SECRET,
        tsdb_url=f"sqlite:///{tmp / 'ts.sqlite3'}",
    )
    services = build_services(settings)
    services.clock = lambda: NOW
    sql = services.sql
    zd = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "一支队", None)
    da = sql.create_org_unit(OrgUnitKind.BRIGADE, "DA", "甲大队", zd.id)
    db = sql.create_org_unit(OrgUnitKind.BRIGADE, "DB", "乙大队", zd.id)
    sa1 = sql.create_org_unit(OrgUnitKind.STATION, "SA1", "甲一站", da.id)
    sb1 = sql.create_org_unit(OrgUnitKind.STATION, "SB1", "乙一站", db.id)
    units = {"ZD": zd.id, "DA": da.id, "DB": db.id, "SA1": sa1.id, "SB1": sb1.id}
    sql.register_station("st-sa1", org_unit_id=sa1.id, display_name="甲一站")
    sql.register_station("st-sb1", org_unit_id=sb1.id, display_name="乙一站")
    sql.register_subject(SUBJECT_IN, sa1.id)
    sql.register_subject(SUBJECT_OUT, sb1.id)
    day0 = NOW - timedelta(days=4)
    sims = [SimSession("st-sa1", SUBJECT_IN, day0 + timedelta(days=d), seed=d) for d in range(4)]
    sims.append(SimSession("st-sa1", SUBJECT_IN, NOW - timedelta(hours=1), seed=4, rating_before=7))
    sims += [SimSession("st-sb1", SUBJECT_OUT, day0 + timedelta(days=d, hours=1), seed=10 + d)
             for d in range(2)]  # fmt: skip
    ids = ingest_sessions(sql, services.tsdb, tmp, sims)  # type: ignore[arg-type]
    users: dict[str, int] = {}
    password_hash = hash_password(PASSWORD)  # one Argon2 hash for every account: faster
    for role in ROLES_AT_DA:
        user = sql.create_user(role.value, role=role, org_unit_id=da.id,
                               password_hash=password_hash)  # fmt: skip
        users[role.value] = user.id
    staff = sql.create_user("station_staff", role=Role.STATION_STAFF, org_unit_id=sa1.id,
                            password_hash=password_hash)  # fmt: skip
    users["station_staff"] = staff.id
    top = sql.create_user("counselor-zd", role=Role.COUNSELOR, org_unit_id=zd.id,
                          password_hash=password_hash)  # fmt: skip
    users["counselor-zd"] = top.id
    sql.grant_consent(SUBJECT_IN, "biofeedback", granted_at=day0, recorded_by=top.id)
    sql.put_identity(SUBJECT_IN, PersonIdentity(name="测试对象甲"), actor=GATEWAY,
                     purpose="enrolment")  # fmt: skip
    alert_in = sql.open_alert(AlertKind.CHECK_IN, _explanation(), created_at=NOW,
                              subject_code=SUBJECT_IN)  # fmt: skip
    alert_out = sql.open_alert(AlertKind.CHECK_IN, _explanation(), created_at=NOW,
                               subject_code=SUBJECT_OUT)  # fmt: skip
    station_alert = sql.open_alert(AlertKind.STATION_OFFLINE, {"last_seen_at": None},
                                   created_at=NOW, station_id="st-sa1")  # fmt: skip
    with TestClient(create_app(settings, services=services)) as client:
        yield ApiWorld(
            client=client,
            sql=sql,
            units=units,
            sessions_in=ids[:5],
            sessions_out=ids[5:],
            today_session=ids[4],
            alert_in=alert_in.id,
            alert_out=alert_out.id,
            station_alert_in=station_alert.id,
            users=users,
        )
    services.tsdb.close()
    services.sql.close()
