"""The central SQL store on SQLite: migrations, grid scoping, sessions, identities, audit.

Every test that takes ``db_url`` or ``empty_db_url`` runs here against SQLite and, through
``tests/integration/gateway/test_sql_postgres.py``, against a real PostgreSQL with the same
body (that module collects these functions; its conftest parametrizes the URLs over both).
The test data are pseudonymous codes and an obviously synthetic identity.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from shuxin.contract.messages import DeviceStatus, EventsMessage, LifecycleMessage, StationStatus
from shuxin.gateway.errors import GatewayError
from shuxin.gateway.identity_crypto import IdentityCipher, PersonIdentity
from shuxin.gateway.quarantine import make_record
from shuxin.gateway.sql_engine import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    normalize_url,
    upgrade,
)
from shuxin.gateway.sql_errors import (
    ConflictError,
    IdentityCryptoError,
    InvalidTransitionError,
    NotFoundError,
    SqlDataError,
    SqlSchemaError,
    SqlStoreError,
    SqlUnavailableError,
    TooLargeError,
    UnknownStationError,
)
from shuxin.gateway.sql_models import (
    AlertKind,
    AlertState,
    Base,
    ConsentStatus,
    OrgUnitKind,
    Presence,
    RatingWhen,
    Role,
    SessionStatus,
    for_dialect,
)
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import (
    GATEWAY,
    WHOLE_SESSION,
    Actor,
    DisplayCurve,
    OrgUnit,
    SqlQuarantine,
    SqlStore,
    Summary,
    User,
    open_store,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SESSION = "st-1-20261123-0001"
SUBJECT = "S-7F3K2"
#: Obviously synthetic identity (no real name, no digits that could pass for a number).
IDENTITY = PersonIdentity(name="测试人员甲", employee_no="TEST-EMP-A")
PHASES = [
    {"name": "baseline", "kind": "baseline", "duration_s": 300.0},
    {"name": "breathing", "kind": "training", "duration_s": 600.0, "pacer_bpm": 6.0},
    {"name": "recovery", "kind": "recovery", "duration_s": 300.0},
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sql-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "shuxin.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'empty.sqlite3'}"


@pytest.fixture
def key1() -> bytes:
    return AESGCM.generate_key(bit_length=256)


@pytest.fixture
def cipher(key1: bytes) -> IdentityCipher:
    return IdentityCipher({"k1": key1}, "k1")


@pytest.fixture
def store(db_url: str, cipher: IdentityCipher) -> Iterator[SqlStore]:
    sql_store = SqlStore(make_engine(db_url), cipher, clock=lambda: NOW)
    yield sql_store
    sql_store.close()


@dataclass(frozen=True)
class Grid:
    """1 detachment → 2 brigades → 3 stations, a relief station at each, and an admin."""

    detachment: OrgUnit
    brigade_a: OrgUnit
    brigade_b: OrgUnit
    unit: dict[str, OrgUnit]  # relief station id → its 救援站 unit
    admin: User


@pytest.fixture
def grid(store: SqlStore) -> Grid:
    detachment = store.create_org_unit(OrgUnitKind.DETACHMENT, "D01", "某市消防救援支队")
    brigade_a = store.create_org_unit(OrgUnitKind.BRIGADE, "B01", "甲大队", detachment.id)
    brigade_b = store.create_org_unit(OrgUnitKind.BRIGADE, "B02", "乙大队", detachment.id)
    units = {
        "st-1": store.create_org_unit(OrgUnitKind.STATION, "Z01", "一站", brigade_a.id),
        "st-2": store.create_org_unit(OrgUnitKind.STATION, "Z02", "二站", brigade_a.id),
        "st-3": store.create_org_unit(OrgUnitKind.STATION, "Z03", "三站", brigade_b.id),
    }
    for station_id, unit in units.items():
        store.register_station(station_id, org_unit_id=unit.id, display_name=f"{unit.name_zh}驿站")
    admin = store.create_user("admin-1", role=Role.ADMIN, org_unit_id=detachment.id)
    return Grid(detachment, brigade_a, brigade_b, units, admin)


# --------------------------------------------------------------------------- messages


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def lifecycle(
    event: str,
    seq: int,
    *,
    session: str = SESSION,
    station: str = "st-1",
    subject: str = SUBJECT,
    reason: str | None = None,
) -> LifecycleMessage:
    payload: dict[str, Any] = {
        "schema": 1,
        "station": station,
        "session": session,
        "stream": "lifecycle",
        "seq": seq,
        "sent_at": _iso(T0 + timedelta(minutes=seq)),
        "clock": {"offset_ms": 12.5, "source": "ntp", "uncertainty_ms": 3.0},
        "event": event,
        "subject": subject,
        "protocol": {"id": "coherence-basic", "version": "1.2"},
        "started_at": _iso(T0),
    }
    if event == "start":
        payload["phases"] = PHASES
        payload["devices"] = ["hrs-1", "eda-1"]
    else:  # the end leaves the device list out
        payload["ended_at"] = _iso(T0 + timedelta(minutes=20))
    if reason is not None:
        payload["reason"] = reason
    return LifecycleMessage.model_validate_json(json.dumps(payload))


def events(
    seq: int, items: list[dict[str, Any]], *, session: str = SESSION, station: str = "st-1"
) -> EventsMessage:
    payload = {
        "schema": 1,
        "station": station,
        "session": session,
        "stream": "events",
        "seq": seq,
        "sent_at": _iso(T0 + timedelta(minutes=seq)),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        "events": items,
    }
    return EventsMessage.model_validate_json(json.dumps(payload))


def at(minutes: float) -> str:
    return _iso(T0 + timedelta(minutes=minutes))


def session_messages(session: str = SESSION) -> list[LifecycleMessage | EventsMessage]:
    """A whole session: start, four events messages (one with a corrected rating), end."""
    return [
        lifecycle("start", 0, session=session),
        events(
            0,
            [
                {"kind": "rating", "t": at(0), "when": "before", "value": 7},
                {"kind": "phase_start", "t": at(0.1), "phase": "baseline", "index": 0},
            ],
            session=session,
        ),
        events(
            1,
            [
                {"kind": "phase_end", "t": at(5), "phase": "baseline", "index": 0},
                {"kind": "phase_start", "t": at(5), "phase": "breathing", "index": 1},
                {"kind": "marker", "t": at(6), "label": "movement"},
                {"kind": "vr_event", "t": at(7), "scene": "forest", "label": "scene_start"},
            ],
            session=session,
        ),
        events(
            2,
            [
                {
                    "kind": "gap",
                    "t": at(9),
                    "device": "hrs-1",
                    "start": at(8.5),
                    "end": at(8.9),
                    "reason": "link_lost",
                },
                {"kind": "note", "t": at(10), "text": "参与者说话"},
                {"kind": "phase_end", "t": at(15), "phase": "breathing", "index": 1},
            ],
            session=session,
        ),
        events(
            3,
            [
                {"kind": "rating", "t": at(19), "when": "after", "value": 5},
                {"kind": "rating", "t": at(19.5), "when": "after", "value": 4},  # corrected
            ],
            session=session,
        ),
        lifecycle("end", 1, session=session),
    ]


def apply(store: SqlStore, message: LifecycleMessage | EventsMessage) -> None:
    if isinstance(message, LifecycleMessage):
        store.apply_lifecycle(message)
    else:
        store.apply_events(message)


def session_view(store: SqlStore, session_id: str) -> dict[str, Any]:
    """Everything the public API says about a session, with its id blanked out."""
    return {
        "session": replace(store.get_session(session_id), id=""),
        "phases": [replace(p, session_id="") for p in store.session_phases(session_id)],
        "events": [replace(e, session_id="") for e in store.session_events(session_id)],
        "ratings": [replace(r, session_id="") for r in store.session_ratings(session_id)],
    }


def raw_rows(engine: Engine, tables: list[str]) -> dict[str, list[str]]:
    with engine.connect() as connection:
        return {
            table: sorted(
                repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            )
            for table in tables
        }


# --------------------------------------------------------------------------- migrations


def test_migrations_from_empty_produce_exactly_the_models_schema(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        upgrade(engine)  # already at head: nothing to do
        with engine.connect() as connection:
            opts = {
                "compare_type": True,
                "include_object": for_dialect(connection.dialect.name),
            }
            context = MigrationContext.configure(connection, opts=opts)
            assert compare_metadata(context, Base.metadata) == []
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {
            "alembic_version"
        }
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_from_newer_code_is_refused(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(SqlSchemaError):
            upgrade(engine)
    finally:
        engine.dispose()


def test_upgrade_takes_a_url(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- grid


def test_subtree_and_ancestors_across_the_grid(store: SqlStore, grid: Grid) -> None:
    codes = [u.code for u in store.subtree(grid.detachment.id)]
    assert codes == ["D01", "B01", "B02", "Z01", "Z02", "Z03"]
    assert [u.code for u in store.subtree(grid.brigade_a.id)] == ["B01", "Z01", "Z02"]
    assert [u.code for u in store.subtree(grid.brigade_b.id)] == ["B02", "Z03"]
    assert [u.code for u in store.subtree(grid.unit["st-2"].id)] == ["Z02"]
    assert [u.code for u in store.ancestors(grid.unit["st-3"].id)] == ["D01", "B02", "Z03"]
    assert store.get_org_unit_by_code("B01") == grid.brigade_a
    with pytest.raises(NotFoundError):
        store.subtree(10_000)


def test_grid_rules_are_enforced(store: SqlStore, grid: Grid) -> None:
    with pytest.raises(ConflictError):
        store.create_org_unit(OrgUnitKind.STATION, "Z09", "错站", grid.detachment.id)
    with pytest.raises(ConflictError):
        store.create_org_unit(OrgUnitKind.BRIGADE, "B09", "错大队", grid.brigade_a.id)
    with pytest.raises(ConflictError):
        store.create_org_unit(OrgUnitKind.DETACHMENT, "D09", "错支队", grid.detachment.id)
    with pytest.raises(NotFoundError):
        store.create_org_unit(OrgUnitKind.BRIGADE, "B09", "无上级")
    with pytest.raises(ConflictError):
        store.create_org_unit(OrgUnitKind.BRIGADE, "B01", "重复", grid.detachment.id)


def test_moving_a_station_moves_its_scope(store: SqlStore, grid: Grid) -> None:
    store.register_subject("S-9XQ4M", grid.unit["st-2"].id)
    assert [s.code for s in store.list_subjects(grid.brigade_b.id)] == []
    moved = store.move_org_unit(grid.unit["st-2"].id, grid.brigade_b.id)
    assert moved.parent_id == grid.brigade_b.id
    assert [u.code for u in store.subtree(grid.brigade_a.id)] == ["B01", "Z01"]
    assert [u.code for u in store.subtree(grid.brigade_b.id)] == ["B02", "Z02", "Z03"]
    assert [u.code for u in store.ancestors(grid.unit["st-2"].id)] == ["D01", "B02", "Z02"]
    assert [s.code for s in store.list_subjects(grid.brigade_b.id)] == ["S-9XQ4M"]
    assert [s.id for s in store.list_stations(grid.brigade_b.id)] == ["st-2", "st-3"]
    with pytest.raises(ConflictError):
        store.move_org_unit(grid.unit["st-2"].id, grid.detachment.id)


def test_lists_are_scoped_to_the_subtree(store: SqlStore, grid: Grid) -> None:
    store.register_subject("S-A1B2C", grid.unit["st-1"].id)
    store.register_subject("S-KTW3P", grid.unit["st-3"].id)
    store.apply_lifecycle(lifecycle("start", 0, subject="S-A1B2C"))
    store.apply_lifecycle(
        lifecycle("start", 0, session="st-3-20261123-0001", station="st-3", subject="S-KTW3P")
    )
    # A session whose lifecycle has not arrived yet belongs to its station's unit.
    store.apply_events(
        events(
            0,
            [{"kind": "marker", "t": at(1), "label": "early"}],
            session="st-2-20261123-0001",
            station="st-2",
        )
    )

    def sessions(unit: OrgUnit) -> list[str]:
        return sorted(s.id for s in store.list_sessions(unit.id))

    assert [s.id for s in store.list_stations(grid.detachment.id)] == ["st-1", "st-2", "st-3"]
    assert [s.id for s in store.list_stations(grid.brigade_a.id)] == ["st-1", "st-2"]
    assert [s.code for s in store.list_subjects(grid.brigade_a.id)] == ["S-A1B2C"]
    assert [s.code for s in store.list_subjects(grid.detachment.id)] == ["S-A1B2C", "S-KTW3P"]
    assert sessions(grid.detachment) == [
        "st-1-20261123-0001",
        "st-2-20261123-0001",
        "st-3-20261123-0001",
    ]
    assert sessions(grid.brigade_a) == ["st-1-20261123-0001", "st-2-20261123-0001"]
    assert sessions(grid.brigade_b) == ["st-3-20261123-0001"]
    assert sessions(grid.unit["st-2"]) == ["st-2-20261123-0001"]
    only = store.list_sessions(grid.detachment.id, subject_code="S-KTW3P")
    assert [s.id for s in only] == ["st-3-20261123-0001"]


# --------------------------------------------------------------------------- stations


def test_station_status_newest_wins_and_credentials_round_trip(store: SqlStore, grid: Grid) -> None:
    def status(state: str, minute: int, backlog: int) -> StationStatus:
        return StationStatus.model_validate_json(
            json.dumps(
                {
                    "schema": 1,
                    "station": "st-1",
                    "state": state,
                    "sent_at": at(minute),
                    "agent_version": "0.1.0",
                    "outbox_backlog": backlog,
                }
            )
        )

    station = store.record_station_status(status("online", 10, 4), NOW)
    assert (station.presence, station.outbox_backlog, station.last_seen_at) == (
        Presence.ONLINE,
        4,
        NOW,
    )
    late = store.record_station_status(status("offline", 5, 99), NOW + timedelta(seconds=1))
    assert (late.presence, late.outbox_backlog) == (Presence.ONLINE, 4)  # older sent_at
    assert late.last_seen_at == NOW + timedelta(seconds=1)
    store.touch_station("st-1", NOW - timedelta(hours=1))  # never moves last_seen back
    assert store.get_station("st-1").last_seen_at == NOW + timedelta(seconds=1)

    rotated = store.set_station_credential("st-1", "$7$101$c2FsdA==$aGFzaA==", NOW)
    assert rotated.credential_hash == "$7$101$c2FsdA==$aGFzaA=="
    assert "c2FsdA" not in repr(rotated)
    with pytest.raises(ConflictError):
        store.register_station("st-1", org_unit_id=grid.unit["st-1"].id, display_name="again")
    with pytest.raises(SqlDataError):
        store.register_station("ST 1", org_unit_id=grid.unit["st-1"].id, display_name="bad")
    with pytest.raises(UnknownStationError):
        store.get_station("st-9")


def test_device_status_registers_the_device(store: SqlStore, grid: Grid) -> None:
    def status(minute: int, battery: int) -> DeviceStatus:
        return DeviceStatus.model_validate_json(
            json.dumps(
                {
                    "schema": 1,
                    "station": "st-1",
                    "device": "hrs-1",
                    "sent_at": at(minute),
                    "profile": "polar-h10",
                    "connected": True,
                    "battery_pct": battery,
                    "contact": "detected",
                    "firmware": "3.1.1",
                }
            )
        )

    store.record_device_status(status(10, 80), NOW)
    store.record_device_status(status(5, 95), NOW)  # older: ignored
    (device,) = store.list_devices("st-1")
    assert (device.device_id, device.profile, device.battery_pct) == ("hrs-1", "polar-h10", 80)
    assert store.register_device("st-1", "hrs-1") == device  # idempotent
    assert [d.device_id for d in store.list_devices("st-2")] == []


# --------------------------------------------------------------------------- sessions


def test_a_session_round_trips(store: SqlStore, grid: Grid) -> None:
    for message in session_messages():
        apply(store, message)
    session = store.get_session(SESSION)
    assert session.status is SessionStatus.ENDED
    assert session.subject_code == SUBJECT
    assert (session.protocol_id, session.protocol_version) == ("coherence-basic", "1.2")
    assert session.started_at == T0
    assert session.ended_at == T0 + timedelta(minutes=20)
    assert session.devices == ("hrs-1", "eda-1")
    assert (session.clock_offset_ms, session.clock_source) == (12.5, "ntp")

    phases = store.session_phases(SESSION)
    assert [(p.name, p.kind, p.planned_duration_s) for p in phases] == [
        ("baseline", "baseline", 300.0),
        ("breathing", "training", 600.0),
        ("recovery", "recovery", 300.0),
    ]
    assert phases[1].pacer_bpm == 6.0
    assert (phases[0].started_at, phases[0].ended_at) == (
        T0 + timedelta(minutes=0.1),
        T0 + timedelta(minutes=5),
    )
    assert phases[2].started_at is None

    kinds = [e.kind for e in store.session_events(SESSION)]
    assert kinds == [
        "rating",
        "phase_start",
        "phase_end",
        "phase_start",
        "marker",
        "vr_event",
        "gap",
        "note",
        "phase_end",
        "rating",
        "rating",
    ]
    gap = next(e for e in store.session_events(SESSION) if e.kind == "gap")
    assert gap.payload == {
        "device": "hrs-1",
        "start": "2026-11-23T08:08:30Z",
        "end": "2026-11-23T08:08:54Z",
        "reason": "link_lost",
    }
    ratings = store.session_ratings(SESSION)
    assert [(r.when, r.value) for r in ratings] == [(RatingWhen.BEFORE, 7), (RatingWhen.AFTER, 4)]
    # The subject was first seen in this session: registered under the station's unit.
    subject = store.get_subject(SUBJECT)
    assert subject.org_unit_id == grid.unit["st-1"].id
    assert subject.consent_status is ConsentStatus.UNKNOWN


def test_reapplying_messages_changes_nothing(store: SqlStore, grid: Grid) -> None:
    messages = session_messages()
    for message in messages:
        apply(store, message)
    tables = ["session", "session_phase", "session_event", "rating", "subject"]
    before = raw_rows(store.engine, tables)
    for message in messages:
        apply(store, message)
    assert raw_rows(store.engine, tables) == before
    assert store.apply_events(messages[2]) == 0  # type: ignore[arg-type]


def test_arrival_order_does_not_matter(store: SqlStore, grid: Grid) -> None:
    in_order = "st-1-20261123-0001"
    for message in session_messages(in_order):
        apply(store, message)
    expected = session_view(store, in_order)
    shuffler = random.Random(20261123)
    for n in range(3):
        session_id = f"st-1-20261123-01{n:02d}"
        messages = session_messages(session_id)
        messages += messages[:3]  # redeliveries
        shuffler.shuffle(messages)
        for message in messages:
            apply(store, message)
        assert session_view(store, session_id) == expected, f"order {n}"


def test_a_terminal_status_is_not_undone(store: SqlStore, grid: Grid) -> None:
    store.apply_lifecycle(lifecycle("end", 1))
    store.apply_lifecycle(lifecycle("start", 0))  # late start: plan added, status kept
    session = store.get_session(SESSION)
    assert session.status is SessionStatus.ENDED
    assert len(store.session_phases(SESSION)) == 3


def test_gateway_timeout_then_the_edge_end_wins(store: SqlStore, grid: Grid) -> None:
    store.apply_lifecycle(lifecycle("start", 0))
    timed_out = store.mark_session_timeout(SESSION, ended_at=T0 + timedelta(hours=1))
    assert (timed_out.status, timed_out.end_reason) == (SessionStatus.TIMEOUT, "gateway_timeout")
    ended = store.apply_lifecycle(lifecycle("end", 1))
    assert ended.status is SessionStatus.ENDED
    assert ended.ended_at == T0 + timedelta(minutes=20)
    again = store.mark_session_timeout(SESSION, ended_at=T0 + timedelta(hours=2))
    assert again.status is SessionStatus.ENDED  # only a running session times out


def test_session_messages_are_checked_against_stored_data(store: SqlStore, grid: Grid) -> None:
    store.apply_lifecycle(lifecycle("start", 0))
    with pytest.raises(ConflictError):  # same session id from another station
        store.apply_events(
            events(0, [{"kind": "marker", "t": at(1), "label": "x"}], station="st-2")
        )
    with pytest.raises(ConflictError):  # same session, another subject
        store.apply_lifecycle(lifecycle("end", 1, subject="S-9XQ4M"))
    with pytest.raises(UnknownStationError):
        store.apply_lifecycle(lifecycle("start", 0, station="st-9", session="st-9-20261123-0001"))
    assert isinstance(UnknownStationError("x"), SqlDataError)
    assert isinstance(SqlStoreError("x"), GatewayError)


# --------------------------------------------------------------------------- summaries


def test_summaries_and_curves_are_upserts(store: SqlStore, grid: Grid) -> None:
    store.apply_lifecycle(lifecycle("start", 0))
    whole = Summary(
        session_id=SESSION,
        phase_index=WHOLE_SESSION,
        phase_name=None,
        metrics={"delta_training_lnrmssd": 0.31, "z_rest_lnrmssd": -0.4},
        quality={"corrected_pct": 1.2, "analysable_min": 19.5, "passed": True},
        algorithm_versions={"hrv": "1.0.0", "rr_clean": "1.0.0"},
        protocol_version="1.2",
        computed_at=NOW,
    )
    baseline = replace(whole, phase_index=0, phase_name="baseline", metrics={"rmssd_ms": 41.0})
    store.store_summary(baseline)
    store.store_summary(whole)
    store.store_summary(replace(baseline, metrics={"rmssd_ms": 42.5}))  # recomputed
    assert store.summaries(SESSION) == [whole, replace(baseline, metrics={"rmssd_ms": 42.5})]
    with pytest.raises(SqlDataError):
        store.store_summary(replace(whole, metrics={"rmssd_ms": float("nan")}))
    with pytest.raises(TooLargeError):
        store.store_summary(replace(whole, quality={"x": "y" * 70_000}))
    with pytest.raises(NotFoundError):
        store.store_summary(replace(whole, session_id="st-1-20261123-9999"))

    curve = DisplayCurve(SESSION, "hr_bpm", (0.0, 5.0, 10.0), (70.5, None, 68.0), NOW)
    store.store_curve(curve)
    store.store_curve(replace(curve, values=(71.0, 69.0, 68.0)))
    assert store.curves(SESSION) == [replace(curve, values=(71.0, 69.0, 68.0))]
    with pytest.raises(SqlDataError):
        store.store_curve(replace(curve, values=(1.0,)))


# --------------------------------------------------------------------------- alerts


def test_alert_lifecycle_and_hysteresis(store: SqlStore, grid: Grid) -> None:
    store.register_subject(SUBJECT, grid.unit["st-3"].id)
    explanation = {
        "inputs": [-0.2, -0.5, -0.6],
        "baseline": {"mean": 3.6, "sd": 0.3, "n": 8},
        "thresholds": {"rule": "mean_below_baseline_minus_0.5sd"},
        "quality": {"valid_sessions": 8},
    }
    first = store.open_alert(AlertKind.WATCH, explanation, created_at=NOW, subject_code=SUBJECT)
    newer = {**explanation, "inputs": [-0.7, -0.8, -0.9]}
    again = store.open_alert(AlertKind.WATCH, newer, created_at=NOW, subject_code=SUBJECT)
    assert again == first  # one unresolved alert per target; it keeps its explanation
    assert first.explanation == explanation
    offline = store.open_alert(AlertKind.STATION_OFFLINE, {}, created_at=NOW, station_id="st-1")

    acked = store.acknowledge_alert(first.id, user_id=grid.admin.id, note="已联系", at=NOW)
    assert (acked.state, acked.acknowledged_by_id) == (AlertState.ACKNOWLEDGED, grid.admin.id)
    with pytest.raises(InvalidTransitionError):
        store.acknowledge_alert(first.id, user_id=grid.admin.id, note="再次", at=NOW)
    resolved = store.resolve_alert(first.id, user_id=grid.admin.id, note="已回访", at=NOW)
    assert resolved.state is AlertState.RESOLVED
    with pytest.raises(InvalidTransitionError):
        store.resolve_alert(first.id, user_id=grid.admin.id, note="再次", at=NOW)
    fresh = store.open_alert(AlertKind.WATCH, explanation, created_at=NOW, subject_code=SUBJECT)
    assert fresh.id != first.id

    def ids(unit: OrgUnit, state: AlertState | None = None) -> list[int]:
        return sorted(a.id for a in store.list_alerts(unit.id, state=state))

    assert ids(grid.detachment) == sorted([first.id, offline.id, fresh.id])
    assert ids(grid.brigade_a) == [offline.id]
    assert ids(grid.brigade_b) == sorted([first.id, fresh.id])
    assert ids(grid.brigade_b, AlertState.OPEN) == [fresh.id]
    with pytest.raises(SqlDataError):
        store.open_alert(AlertKind.WATCH, explanation, created_at=NOW, station_id="st-1")
    with pytest.raises(SqlDataError, match="lacks"):
        store.open_alert(AlertKind.CHECK_IN, {"inputs": []}, created_at=NOW, subject_code=SUBJECT)
    with pytest.raises(NotFoundError):
        store.open_alert(
            AlertKind.DEVICE_LOST, {}, created_at=NOW, station_id="st-1", device_id="hrs-9"
        )
    with pytest.raises(NotFoundError):
        store.resolve_alert(fresh.id, user_id=9999, note="无此人", at=NOW)
    with pytest.raises(SqlDataError):
        store.acknowledge_alert(offline.id, user_id=grid.admin.id, note="", at=NOW)


# --------------------------------------------------------------------------- subjects


def test_consent_grant_is_idempotent_and_withdrawal_is_kept(store: SqlStore, grid: Grid) -> None:
    store.register_subject(SUBJECT, grid.unit["st-1"].id)
    by = grid.admin.id
    granted = store.grant_consent(SUBJECT, "biofeedback", granted_at=T0, recorded_by=by)
    assert store.grant_consent(SUBJECT, "biofeedback", granted_at=NOW, recorded_by=by) == granted
    store.grant_consent(SUBJECT, "research", granted_at=T0, recorded_by=by)
    assert store.get_subject(SUBJECT).consent_status is ConsentStatus.GRANTED
    store.withdraw_consent(SUBJECT, "research", withdrawn_at=NOW, recorded_by=by)
    assert store.get_subject(SUBJECT).consent_status is ConsentStatus.GRANTED
    withdrawn = store.withdraw_consent(SUBJECT, "biofeedback", withdrawn_at=NOW, recorded_by=by)
    assert (withdrawn.withdrawn_at, withdrawn.active) == (NOW, False)
    assert store.get_subject(SUBJECT).consent_status is ConsentStatus.WITHDRAWN
    assert [(c.purpose, c.active) for c in store.consents(SUBJECT)] == [
        ("biofeedback", False),
        ("research", False),
    ]
    with pytest.raises(NotFoundError):
        store.withdraw_consent(SUBJECT, "biofeedback", withdrawn_at=NOW, recorded_by=by)
    with pytest.raises(SqlDataError):
        store.register_subject("张三", grid.unit["st-1"].id)
    with pytest.raises(ConflictError):
        store.register_subject(SUBJECT, grid.unit["st-2"].id)


def test_identity_is_ciphertext_at_rest(store: SqlStore, grid: Grid) -> None:
    store.register_subject(SUBJECT, grid.unit["st-1"].id)
    counselor = Actor("counselor-1", user_id=7)
    store.put_identity(SUBJECT, IDENTITY, actor=counselor, purpose="enrolment")
    assert store.has_identity(SUBJECT)

    dump = json.dumps(raw_rows(store.engine, list(Base.metadata.tables)), ensure_ascii=False)
    assert IDENTITY.name not in dump
    assert "TEST-EMP-A" not in dump
    with store.engine.connect() as connection:
        key_id, nonce, ciphertext = connection.execute(
            text("SELECT key_id, nonce, ciphertext FROM identity")
        ).one()
    assert key_id == "k1"
    assert len(bytes(nonce)) == 12
    assert IDENTITY.name.encode() not in bytes(ciphertext)
    assert "测试" not in repr(IDENTITY)

    revealed = store.reveal_identity(
        SUBJECT, actor=counselor, purpose="follow-up call", ip="10.0.0.5"
    )
    assert revealed == IDENTITY
    actions = [
        (e.action, e.actor, e.subject_code) for e in store.audit_entries(subject_code=SUBJECT)
    ]
    assert actions == [
        ("identity.reveal", "counselor-1", SUBJECT),
        ("identity.write", "counselor-1", SUBJECT),
    ]


def test_identity_opens_only_with_the_right_key_and_subject(
    store: SqlStore, grid: Grid, db_url: str
) -> None:
    store.register_subject(SUBJECT, grid.unit["st-1"].id)
    store.register_subject("S-9XQ4M", grid.unit["st-1"].id)
    store.put_identity(SUBJECT, IDENTITY, actor=GATEWAY, purpose="enrolment")

    wrong_key = IdentityCipher({"k1": AESGCM.generate_key(bit_length=256)}, "k1")
    other = SqlStore(make_engine(db_url), wrong_key, clock=lambda: NOW)
    no_keys = SqlStore(make_engine(db_url), None, clock=lambda: NOW)
    try:
        with pytest.raises(IdentityCryptoError, match="does not decrypt"):
            other.reveal_identity(SUBJECT, actor=GATEWAY, purpose="test")
        with pytest.raises(IdentityCryptoError, match="no identity keys"):
            no_keys.reveal_identity(SUBJECT, actor=GATEWAY, purpose="test")
    finally:
        other.close()
        no_keys.close()
    # The failed attempt is audited too.
    assert [e.action for e in store.audit_entries(subject_code=SUBJECT)][:1] == ["identity.reveal"]

    # A ciphertext copied onto another subject's row does not open there.
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO identity (subject_id, key_id, nonce, ciphertext, created_at, "
                "updated_at) SELECT s2.id, i.key_id, i.nonce, i.ciphertext, i.created_at, "
                "i.updated_at FROM identity i JOIN subject s1 ON s1.id = i.subject_id "
                "JOIN subject s2 ON s2.code = 'S-9XQ4M' WHERE s1.code = :code"
            ),
            {"code": SUBJECT},
        )
    with pytest.raises(IdentityCryptoError):
        store.reveal_identity("S-9XQ4M", actor=GATEWAY, purpose="test")
    store.register_subject("S-KTW3P", grid.unit["st-1"].id)
    with pytest.raises(NotFoundError):
        store.reveal_identity("S-KTW3P", actor=GATEWAY, purpose="test")


def test_rekey_moves_identities_to_the_active_key(
    store: SqlStore, grid: Grid, key1: bytes, db_url: str
) -> None:
    store.register_subject(SUBJECT, grid.unit["st-1"].id)
    store.put_identity(SUBJECT, IDENTITY, actor=GATEWAY, purpose="enrolment")
    ring = {"k1": key1, "k2": AESGCM.generate_key(bit_length=256)}
    rotated = SqlStore(make_engine(db_url), IdentityCipher(ring, "k2"), clock=lambda: NOW)
    only_new = SqlStore(
        make_engine(db_url), IdentityCipher({"k2": ring["k2"]}, "k2"), clock=lambda: NOW
    )
    try:
        assert rotated.rekey_identities(actor=GATEWAY) == 1
        assert rotated.rekey_identities(actor=GATEWAY) == 0
        assert only_new.reveal_identity(SUBJECT, actor=GATEWAY, purpose="test") == IDENTITY
    finally:
        rotated.close()
        only_new.close()


# --------------------------------------------------------------------------- quarantine, audit


def test_quarantine_round_trip(store: SqlStore) -> None:
    port = SqlQuarantine(store)
    text_record = make_record(
        "shuxin/v1/st-1/sessions/st-1-20261123-0001/rr",
        b'{"schema": 1, "seq": "x"}',
        NOW,
        code="invalid_payload",
        reason="seq: not an integer",
        errors=[{"loc": "seq", "msg": "Input should be a valid integer"}],
    )
    binary_record = make_record(
        "shuxin/v1/bad topic",
        b"\x00\xff" * 3000,
        NOW + timedelta(seconds=1),
        code="bad_topic",
        reason="x",
    )
    port.add([text_record, binary_record])
    port.add([])
    assert store.recent_quarantine() == [binary_record, text_record]
    assert binary_record.payload_truncated
    assert store.quarantine_counts() == {"invalid_payload": 1, "bad_topic": 1}
    assert store.purge_quarantine(NOW + timedelta(milliseconds=500)) == 1
    assert store.recent_quarantine() == [binary_record]


def test_audit_log_is_append_only(store: SqlStore) -> None:
    entry = store.append_audit(
        actor=Actor("counselor-1", user_id=3),
        action="session.read",
        resource=f"session/{SESSION}",
        purpose="复盘",
        subject_code=SUBJECT,
        ip="10.0.0.9",
    )
    assert store.audit_entries(actor="counselor-1") == [entry]
    statements = ["UPDATE audit_log SET purpose = 'changed'", "DELETE FROM audit_log"]
    if store.engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert store.audit_entries() == [entry]
    with pytest.raises(SqlDataError):
        store.append_audit(actor=GATEWAY, action="bad action!", resource="r", purpose="p")


def test_times_come_back_as_the_same_instant_in_utc(store: SqlStore, grid: Grid) -> None:
    beijing = timezone(timedelta(hours=8))
    store.record_station_status(
        StationStatus.model_validate_json(
            json.dumps({"schema": 1, "station": "st-2", "state": "online", "sent_at": at(0)})
        ),
        NOW.astimezone(beijing),
    )
    seen = store.get_station("st-2").last_seen_at
    assert seen == NOW
    assert seen is not None
    assert seen.utcoffset() == timedelta(0)
    with pytest.raises(SqlDataError):
        store.touch_station("st-2", datetime(2026, 11, 23, 9, 0))  # naive


def test_users_round_trip(store: SqlStore, grid: Grid) -> None:
    user = store.create_user(
        "counselor-a",
        role=Role.COUNSELOR,
        org_unit_id=grid.brigade_a.id,
        password_hash="$argon2id$x",
    )
    assert store.get_user("counselor-a") == user
    assert "argon2" not in repr(user)
    assert (user.failed_logins, user.locked_until, user.active) == (0, None, True)
    with pytest.raises(ConflictError):
        store.create_user("counselor-a", role=Role.AUDITOR, org_unit_id=grid.brigade_a.id)


# --------------------------------------------------------------------------- SQLite, settings


def test_sqlite_connections_use_wal_and_foreign_keys(store: SqlStore) -> None:
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_sqlite_unreachable_file_is_unavailable(tmp_path: Path) -> None:
    missing = SqlStore(make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"))
    try:
        with pytest.raises(SqlUnavailableError):
            missing.get_station("st-1")
    finally:
        missing.close()


def test_settings_keys_urls_and_open_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
    monkeypatch.setenv("SHUXIN_SQL_IDENTITY_KEYS", json.dumps({"k1": key}))
    monkeypatch.setenv("SHUXIN_SQL_IDENTITY_KEY_ID", "k1")
    settings = SqlSettings()
    assert key not in repr(settings)
    assert settings.resolved_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'shuxin.sqlite3'}"
    opened = open_store(settings, tmp_path, clock=lambda: NOW)
    try:
        detachment = opened.create_org_unit(OrgUnitKind.DETACHMENT, "D01", "支队")
        opened.register_subject(SUBJECT, detachment.id)
        opened.put_identity(SUBJECT, IDENTITY, actor=GATEWAY, purpose="enrolment")
        assert opened.reveal_identity(SUBJECT, actor=GATEWAY, purpose="test") == IDENTITY
    finally:
        opened.close()

    with pytest.raises(ValidationError, match="32 bytes"):
        SqlSettings(identity_keys={"k1": base64.b64encode(b"short").decode()}, identity_key_id="k1")
    with pytest.raises(ValidationError, match="not in identity_keys"):
        SqlSettings(identity_keys={"k1": key}, identity_key_id="k2")
    monkeypatch.delenv("SHUXIN_SQL_IDENTITY_KEYS")
    with pytest.raises(ValidationError, match="not in identity_keys"):
        SqlSettings()  # a key id without keys
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "shuxin_sql_identity_keys").write_text(json.dumps({"k1": key}), encoding="utf-8")
    from_file = SqlSettings(_secrets_dir=secrets).identity_cipher()
    assert from_file is not None
    assert from_file.key_ids == {"k1"}
    monkeypatch.delenv("SHUXIN_SQL_IDENTITY_KEY_ID")
    assert SqlSettings().identity_cipher() is None
    secret_url = SqlSettings(url="postgresql://u:hunter2@db.example:5432/shuxin")
    assert "hunter2" not in repr(secret_url)


def test_urls_pick_psycopg_and_refuse_other_backends() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(SqlStoreError, match="unsupported"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(SqlStoreError, match="does not parse"):
        normalize_url("not a url")
