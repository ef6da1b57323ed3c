"""Data lifecycle on the embedded stores: retention settings and purge, time-series deletion in
the SQLite adapter, consent withdrawal (delete / anonymise) and the subject export.

The scenario (:func:`populate`) is two subjects with one session each, back to back at the
same station on the same devices, each with events, ratings, a summary, a curve, an alert, a
consent, an identity, audit entries and raw points. ``tests/integration/gateway/
test_lifecycle_sql.py`` reuses it against PostgreSQL. Subjects are pseudonymous codes and the
identity is obviously synthetic.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from sqlalchemy import text

from shuxin.cli.main import main as cli_main
from shuxin.contract.codec import encode
from shuxin.contract.messages import EventsMessage, LifecycleMessage, RrMessage
from shuxin.contract.topics import session_topic
from shuxin.gateway.dedupe import SqliteSeqLedger
from shuxin.gateway.identity_crypto import IdentityCipher, PersonIdentity
from shuxin.gateway.ingest import Ingest, Outcome, Received
from shuxin.gateway.lifecycle import (
    DataKind,
    LifecycleError,
    RetentionSettings,
    WithdrawalMode,
    export_subject,
    purge,
    withdraw_subject,
)
from shuxin.gateway.quarantine import SqliteQuarantine, make_record
from shuxin.gateway.sql_engine import make_engine, upgrade
from shuxin.gateway.sql_errors import SqlDataError
from shuxin.gateway.sql_models import AlertKind, Base, ConsentStatus, OrgUnitKind, Role
from shuxin.gateway.sql_sink import SqlConsentGate, SqlSink
from shuxin.gateway.sql_store import (
    WHOLE_SESSION,
    Actor,
    DisplayCurve,
    SqlStore,
    Summary,
)
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.timeseries import Point, TimeSeriesSink, TimeSeriesStore, epoch_us

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
GONE = "S-7F3K2"  # the subject who withdraws
STAYS = "S-9M4QR"  # another subject at the same station, on the same devices
SESSIONS = {GONE: "st-1-20261123-0001", STAYS: "st-1-20261123-0002"}
#: Session starts: the second starts 2 minutes after the first ends (20 minutes long).
STARTS = {GONE: T0, STAYS: T0 + timedelta(minutes=22)}
DURATION = timedelta(minutes=20)
IDENTITY = PersonIdentity(name="测试人员甲", employee_no="TEST-EMP-A")
ADMIN = Actor("admin-1", user_id=None)
#: What stays after a withdrawal, per table: the subject row, its consent record, the audit
#: trail (identity.write, session.read, subject.withdraw) and the bare withdrawn session id.
PROOF = {"subject": 1, "consent": 1, "audit_log": 3, "withdrawn_session": 1}


# --------------------------------------------------------------------------- scenario


def _lifecycle(code: str, event: str, seq: int) -> LifecycleMessage:
    start = STARTS[code]
    payload: dict[str, Any] = {
        "schema": 1,
        "station": "st-1",
        "session": SESSIONS[code],
        "stream": "lifecycle",
        "seq": seq,
        "sent_at": start.isoformat(),
        "clock": {"offset_ms": 12.5, "source": "ntp", "uncertainty_ms": 3.0},
        "event": event,
        "subject": code,
        "protocol": {"id": "coherence-basic", "version": "1.2"},
        "started_at": start.isoformat(),
    }
    if event == "start":
        payload["phases"] = [
            {"name": "baseline", "kind": "baseline", "duration_s": 600.0},
            {"name": "breathing", "kind": "training", "duration_s": 600.0, "pacer_bpm": 6.0},
        ]
        payload["devices"] = ["hrs-1", "eda-1"]
    else:
        payload["ended_at"] = (start + DURATION).isoformat()
    return LifecycleMessage.model_validate_json(json.dumps(payload))


def _events(code: str) -> EventsMessage:
    start = STARTS[code]

    def at(minutes: float) -> str:
        return (start + timedelta(minutes=minutes)).isoformat()

    payload = {
        "schema": 1,
        "station": "st-1",
        "session": SESSIONS[code],
        "stream": "events",
        "seq": 0,
        "sent_at": start.isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        "events": [
            {"kind": "rating", "t": at(0), "when": "before", "value": 7},
            {"kind": "phase_start", "t": at(0.1), "phase": "baseline", "index": 0},
            {"kind": "phase_end", "t": at(10), "phase": "baseline", "index": 0},
            {"kind": "note", "t": at(12), "text": "参与者说话"},
            {"kind": "rating", "t": at(19), "when": "after", "value": 4},
        ],
    }
    return EventsMessage.model_validate_json(json.dumps(payload))


def raw_points(code: str) -> list[Point]:
    """One beat per second on hrs-1, one EDA sample per second on eda-1, one metrics point
    per minute, over the subject's session."""
    start_us = epoch_us(STARTS[code])
    points = []
    for second in range(int(DURATION.total_seconds())):
        time_us = start_us + second * 1_000_000
        points.append(
            Point.make(
                "rr",
                {"station": "st-1", "device": "hrs-1", "source": "ppi"},
                {"rr_ms": 850.0},
                time_us,
            )
        )
        points.append(
            Point.make("eda", {"station": "st-1", "device": "eda-1"}, {"eda_us": 2.5}, time_us)
        )
        if second % 60 == 0:
            points.append(
                Point.make(
                    "metrics",
                    {"station": "st-1", "algorithm": "hrv-1.0"},
                    {"window_s": 64.0, "rmssd_ms": 41.5},
                    time_us,
                )
            )
    return points


@dataclass(frozen=True)
class Scenario:
    admin_id: int
    subject_ids: dict[str, int]


def populate(store: SqlStore, tsdb: TimeSeriesStore) -> Scenario:
    """Both subjects' data in both stores (see the module docstring)."""
    detachment = store.create_org_unit(OrgUnitKind.DETACHMENT, "D01", "某市消防救援支队")
    brigade = store.create_org_unit(OrgUnitKind.BRIGADE, "B01", "甲大队", detachment.id)
    unit = store.create_org_unit(OrgUnitKind.STATION, "Z01", "一站", brigade.id)
    store.register_station("st-1", org_unit_id=unit.id, display_name="一站驿站")
    admin = store.create_user("admin-1", role=Role.ADMIN, org_unit_id=detachment.id)
    ids = {}
    for code in (GONE, STAYS):
        store.apply_lifecycle(_lifecycle(code, "start", 0))
        store.apply_events(_events(code))
        store.apply_lifecycle(_lifecycle(code, "end", 1))
        session_id = SESSIONS[code]
        store.store_summary(
            Summary(
                session_id=session_id,
                phase_index=WHOLE_SESSION,
                phase_name=None,
                metrics={"rmssd_ms": 42.0, "mean_hr_bpm": 70.5},
                quality={"artifact_pct": 1.5},
                algorithm_versions={"hrv": "1.0"},
                protocol_version="1.2",
                computed_at=STARTS[code] + DURATION + timedelta(minutes=1),
            )
        )
        store.store_curve(
            DisplayCurve(session_id, "hr_bpm", (0.0, 1.0), (70.0, 71.0), NOW - timedelta(hours=3))
        )
        store.open_alert(
            AlertKind.WATCH,
            {"inputs": {}, "baseline": {}, "thresholds": {}, "quality": {}},
            created_at=STARTS[code] + DURATION,
            subject_code=code,
        )
        store.grant_consent(code, "biofeedback", granted_at=T0, recorded_by=admin.id)
        store.put_identity(code, IDENTITY, actor=ADMIN, purpose="enrolment")
        store.append_audit(
            actor=ADMIN,
            action="session.read",
            resource=f"session/{session_id}",
            purpose="复盘",
            subject_code=code,
        )
        ids[code] = store.get_subject(code).id
        tsdb.write(raw_points(code))
    # A refused message that named the subject is personal data too.
    store.add_quarantine(
        [
            make_record(
                "shuxin/v1/st/st-1/session/x/lifecycle",
                json.dumps({"subject": GONE, "bad": True}).encode(),
                code="invalid_payload",
                reason="test",
                received_at=NOW,
            )
        ]
    )
    return Scenario(admin.id, ids)


def rows_mentioning(store: SqlStore, needles: list[str], subject_id: int) -> dict[str, int]:
    """Per table, rows whose text contains a needle or whose ``subject_id`` is the subject's."""
    found: dict[str, int] = {}
    with store.engine.connect() as connection:
        for name, table in Base.metadata.tables.items():
            has_subject_id = "subject_id" in table.columns
            for row in connection.execute(text(f'SELECT * FROM "{name}"')).mappings():
                text_of_row = repr(dict(row))
                if any(n in text_of_row for n in needles) or (
                    has_subject_id and row["subject_id"] == subject_id
                ):
                    found[name] = found.get(name, 0) + 1
    return found


def points_of(tsdb: TimeSeriesStore, code: str) -> list[Point]:
    start, end = STARTS[code] - timedelta(seconds=5), STARTS[code] + DURATION + timedelta(seconds=5)
    return [
        p
        for m in ("rr", "eda", "metrics")
        for p in tsdb.query(m, station="st-1", start=start, end=end)
    ]


def check_delete_leaves_only_the_proof(store: SqlStore, tsdb: TimeSeriesStore) -> None:
    """The withdrawal test body, shared with the PostgreSQL run."""
    scenario = populate(store, tsdb)
    stays_before = points_of(tsdb, STAYS)
    stays_rows_before = rows_mentioning(
        store, [STAYS, SESSIONS[STAYS]], scenario.subject_ids[STAYS]
    )

    report = withdraw_subject(
        GONE, WithdrawalMode.DELETE, sql=store, tsdb=tsdb, actor=ADMIN, purpose="consent withdrawn"
    )

    assert report.sql["sessions"] == 1
    assert report.sql["events"] == 5
    assert report.sql["alerts"] == report.sql["identity"] == report.sql["quarantine"] == 1
    # 1200 beats + 1200 EDA samples + 20 metrics points of the 20-minute session.
    assert report.points == 2420
    # Nothing names the subject or their session any more, except what proves the withdrawal:
    # the subject row (code, status), its consent record, and the audit trail (identity.write,
    # session.read, subject.withdraw); and the bare session id, so ingest discards its
    # late messages.
    remaining = rows_mentioning(store, [GONE, SESSIONS[GONE]], scenario.subject_ids[GONE])
    assert remaining == PROOF
    assert points_of(tsdb, GONE) == []
    # The other subject, back to back on the same devices, lost nothing.
    assert points_of(tsdb, STAYS) == stays_before
    assert len(stays_before) == 2420
    assert (
        rows_mentioning(store, [STAYS, SESSIONS[STAYS]], scenario.subject_ids[STAYS])
        == stays_rows_before
    )
    subject = store.get_subject(GONE)
    assert subject.consent_status is ConsentStatus.WITHDRAWN
    assert not subject.active
    [consent] = store.consents(GONE)
    assert consent.withdrawn_at == NOW
    withdrawals = [
        e for e in store.audit_entries(subject_code=GONE) if e.action == "subject.withdraw"
    ]
    assert [e.resource for e in withdrawals] == [f"subject/{GONE}?mode=delete&sessions=1"]

    again = withdraw_subject(
        GONE, WithdrawalMode.DELETE, sql=store, tsdb=tsdb, actor=ADMIN, purpose="consent withdrawn"
    )
    assert again.points == 0
    assert set(again.sql.values()) == {0}
    remaining = rows_mentioning(store, [GONE, SESSIONS[GONE]], scenario.subject_ids[GONE])
    assert remaining == {**PROOF, "audit_log": 4}  # one more withdrawal entry


def check_anonymise_keeps_aggregates_without_the_link(
    store: SqlStore, tsdb: TimeSeriesStore
) -> None:
    """The anonymisation test body, shared with the PostgreSQL run."""
    scenario = populate(store, tsdb)
    report = withdraw_subject(
        GONE, WithdrawalMode.ANONYMISE, sql=store, tsdb=tsdb, actor=ADMIN, purpose="withdrawn"
    )
    assert report.sql["sessions"] == 1
    assert report.points == 2420
    assert points_of(tsdb, GONE) == []
    remaining = rows_mentioning(store, [GONE, SESSIONS[GONE]], scenario.subject_ids[GONE])
    assert remaining == PROOF  # the anonymous copy carries a new id
    station_unit = store.get_station("st-1").org_unit_id
    anonymous = [s for s in store.list_sessions(station_unit, limit=10) if s.id.startswith("anon-")]
    assert len(anonymous) == 1
    kept = anonymous[0]
    assert kept.subject_code is None
    assert kept.devices == ()
    assert kept.clock_offset_ms is None
    # Times move to the start of the UTC day; the duration stays (reports use it).
    assert kept.started_at == datetime(2026, 11, 23, tzinfo=UTC)
    assert kept.ended_at == kept.started_at + DURATION
    [summary] = store.summaries(kept.id)
    assert summary.metrics == {"rmssd_ms": 42.0, "mean_hr_bpm": 70.5}
    assert [(r.when.value, r.value) for r in store.session_ratings(kept.id)] == [
        ("before", 7),
        ("after", 4),
    ]
    assert all(r.t == kept.started_at for r in store.session_ratings(kept.id))
    assert [p.started_at for p in store.session_phases(kept.id)] == [None, None]
    assert store.session_events(kept.id) == []
    assert store.curves(kept.id) == []
    again = withdraw_subject(
        GONE, WithdrawalMode.ANONYMISE, sql=store, tsdb=tsdb, actor=ADMIN, purpose="withdrawn"
    )
    assert again.sql["sessions"] == 0
    assert [s.id for s in store.list_sessions(station_unit, limit=10)] == sorted(
        [kept.id, SESSIONS[STAYS]], key=lambda i: i != SESSIONS[STAYS]
    )


def _received(*messages: Any) -> list[Received]:
    return [
        Received(session_topic(m.station, m.session, m.stream), encode(m), NOW) for m in messages
    ]


def _rr(code: str, session: str, seq: int) -> RrMessage:
    return RrMessage(
        schema=1,
        station="st-1",
        session=session,
        stream="rr",
        seq=seq,
        sent_at=STARTS[code],
        clock={"offset_ms": 0.0, "source": "ntp"},
        device="hrs-1",
        t0=STARTS[code] + timedelta(minutes=1),
        source="ppi",
        t_offset_ms=[0.0, 850.0],
        rr_ms=[850.0, 851.0],
    )


def check_late_messages_are_discarded(store: SqlStore, tsdb: TimeSeriesStore, work: Path) -> None:
    """After a withdrawal, nothing of the subject comes back through ingest: not a session an
    offline outbox delivers late, not a new session a station records, and a placeholder its
    events created first goes too. Other subjects are untouched; a new consent reopens."""
    scenario = populate(store, tsdb)
    withdraw_subject(
        GONE, WithdrawalMode.DELETE, sql=store, tsdb=tsdb, actor=ADMIN, purpose="withdrawn"
    )
    ledger = SqliteSeqLedger(work / "dedupe.sqlite3")
    quarantine = SqliteQuarantine(work / "quarantine.sqlite3")
    ingest = Ingest(
        sinks=[TimeSeriesSink(tsdb), SqlSink(store)],
        ledger=ledger,
        quarantine=quarantine,
        gate=SqlConsentGate(store),
    )
    try:
        # The erased session, delivered again by an outbox that was offline.
        late = _received(
            _lifecycle(GONE, "start", 0),
            _events(GONE),
            _rr(GONE, SESSIONS[GONE], 0),
            _lifecycle(GONE, "end", 1),
        )
        assert ingest.handle_batch(late) == [Outcome.DISCARDED] * 4
        assert points_of(tsdb, GONE) == []
        assert rows_mentioning(store, [GONE, SESSIONS[GONE]], scenario.subject_ids[GONE]) == PROOF

        # A new session recorded for them; its events arrive before its lifecycle.
        new = "st-1-20261123-0003"
        start = _lifecycle(GONE, "start", 0).model_copy(update={"session": new})
        events = _events(GONE).model_copy(update={"session": new})
        assert ingest.handle_batch(_received(events)) == [Outcome.WRITTEN]  # not known yet
        assert store.get_session(new).subject_code is None  # a placeholder
        outcomes = ingest.handle_batch(_received(start, _rr(GONE, new, 0)))
        assert outcomes == [Outcome.DISCARDED] * 2
        with pytest.raises(SqlDataError):
            store.get_session(new)  # the placeholder and its events went with it
        assert store.session_events(new) == []
        assert points_of(tsdb, GONE) == []
        later = events.model_copy(update={"seq": 1})
        assert ingest.handle_batch(_received(later)) == [Outcome.DISCARDED]
        assert ingest.counters.discarded == {"consent_withdrawn": 7}

        # The other subject's messages flow as before.
        assert ingest.handle_batch(_received(_rr(STAYS, SESSIONS[STAYS], 5))) == [Outcome.WRITTEN]
        # A new consent (they came back) lets new sessions in again.
        store.grant_consent(GONE, "biofeedback", granted_at=NOW, recorded_by=scenario.admin_id)
        again = _lifecycle(GONE, "start", 0).model_copy(update={"session": "st-1-20261123-0004"})
        assert ingest.handle_batch(_received(again)) == [Outcome.WRITTEN]
        assert store.get_session("st-1-20261123-0004").subject_code == GONE
    finally:
        ledger.close()
        quarantine.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lifecycle-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def cipher() -> IdentityCipher:
    return IdentityCipher({"k1": AESGCM.generate_key(bit_length=256)}, "k1")


@pytest.fixture
def store(sqlite_template: Path, tmp_path: Path, cipher: IdentityCipher) -> Iterator[SqlStore]:
    path = tmp_path / "shuxin.sqlite3"
    shutil.copyfile(sqlite_template, path)
    sql_store = SqlStore(make_engine(f"sqlite:///{path}"), cipher, clock=lambda: NOW)
    yield sql_store
    sql_store.close()


@pytest.fixture
def tsdb(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "timeseries.sqlite3")
    yield store
    store.close()


# --------------------------------------------------------------------------- settings


def test_retention_settings_refuse_an_audit_log_shorter_than_six_months() -> None:
    with pytest.raises(ValidationError, match="at least 183 days"):
        RetentionSettings(audit_days=182)
    assert RetentionSettings(audit_days=183).audit_days == 183


def test_retention_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUXIN_RETENTION_RAW_DAYS", "30")
    monkeypatch.setenv("SHUXIN_RETENTION_DERIVED_DAYS", "none")
    monkeypatch.setenv("SHUXIN_RETENTION_AUDIT_DAYS", "400")
    settings = RetentionSettings()
    assert (settings.raw_days, settings.derived_days, settings.audit_days) == (30, None, 400)
    monkeypatch.setenv("SHUXIN_RETENTION_AUDIT_DAYS", "90")
    with pytest.raises(ValidationError, match="audit_days"):
        RetentionSettings()


# --------------------------------------------------------------------------- sqlite delete


def test_sqlite_delete_takes_only_the_chosen_station_device_and_range(tsdb: SqliteStore) -> None:
    def beat(station: str, device: str, second: int) -> Point:
        return Point.make(
            "rr",
            {"station": station, "device": device, "source": "ppi"},
            {"rr_ms": 800.0},
            epoch_us(T0) + second * 1_000_000,
        )

    points = [
        beat(s, d, t) for s in ("st-1", "st-2") for d in ("hrs-1", "hrs-2") for t in range(10)
    ]
    tsdb.write(points)
    start, end = T0 + timedelta(seconds=3), T0 + timedelta(seconds=7)
    assert tsdb.delete(["rr"], station="st-1", device="hrs-1", start=start, end=end) == 4
    gone = {(p.identity) for p in points[3:7]}
    left = tsdb.query("rr", station="st-1", start=T0, end=T0 + timedelta(minutes=1))
    left += tsdb.query("rr", station="st-2", start=T0, end=T0 + timedelta(minutes=1))
    assert sorted(p.identity for p in left) == sorted(
        p.identity for p in points if p.identity not in gone
    )
    assert tsdb.delete(["rr"], station="st-1", device="hrs-1", start=start, end=end) == 0
    assert tsdb.delete(["eda", "rr"], station=None, start=None, end=start) == 12  # 3 per series
    assert tsdb.count_between(["rr"], start=None, end=None) == 40 - 4 - 12
    assert tsdb.delete([], station=None, start=None, end=None) == 0


# --------------------------------------------------------------------------- withdrawal


def test_withdraw_delete_leaves_nothing_but_the_proof(store: SqlStore, tsdb: SqliteStore) -> None:
    check_delete_leaves_only_the_proof(store, tsdb)


def test_withdraw_anonymise_keeps_aggregates_without_the_link(
    store: SqlStore, tsdb: SqliteStore
) -> None:
    check_anonymise_keeps_aggregates_without_the_link(store, tsdb)


def test_late_and_new_messages_of_a_withdrawn_subject_are_discarded(
    store: SqlStore, tsdb: SqliteStore, tmp_path: Path
) -> None:
    check_late_messages_are_discarded(store, tsdb, tmp_path)


def test_withdraw_of_an_unknown_subject_is_a_clear_error(
    store: SqlStore, tsdb: SqliteStore
) -> None:
    with pytest.raises(LifecycleError, match="S-0000000"):
        withdraw_subject(
            "S-0000000", WithdrawalMode.DELETE, sql=store, tsdb=tsdb, actor=ADMIN, purpose="x"
        )


# --------------------------------------------------------------------------- purge


def test_purge_dry_run_counts_and_the_real_run_deletes_per_kind(
    store: SqlStore, tsdb: SqliteStore
) -> None:
    populate(store, tsdb)
    store.append_audit(
        actor=ADMIN, action="old.entry", resource="r", purpose="p", at=NOW - timedelta(days=800)
    )
    # No limit on raw and derived data: only the quarantined message and the old entry go.
    settings = RetentionSettings(
        raw_days=None, derived_days=None, quarantine_days=1, audit_days=2 * 365
    )
    report = purge(settings, sql=store, tsdb=tsdb, now=NOW + timedelta(days=2), dry_run=True)
    counts = {line.kind: line.count for line in report.lines}
    assert counts == {
        DataKind.RAW: 0,
        DataKind.METRICS: 0,
        DataKind.SUMMARIES: 0,
        DataKind.CURVES: 0,
        DataKind.QUARANTINE: 1,
        DataKind.AUDIT: 1,
    }
    assert store.quarantine_counts() == {"invalid_payload": 1}

    # One day after 08:21, between the two sessions: the first one's points and rows go.
    later = T0 + timedelta(days=1, minutes=21)
    cut = RetentionSettings(raw_days=1, derived_days=1, quarantine_days=1, audit_days=2 * 365)
    dry = purge(cut, sql=store, tsdb=tsdb, now=later, dry_run=True)
    assert {line.kind: line.count for line in dry.lines}[DataKind.RAW] == 2400
    assert tsdb.count() == 2 * 2420

    done = purge(cut, sql=store, tsdb=tsdb, now=later)
    counts = {line.kind: line.count for line in done.lines}
    assert counts == {
        DataKind.RAW: 2400,
        DataKind.METRICS: 20,
        DataKind.SUMMARIES: 1,
        DataKind.CURVES: 1,
        DataKind.QUARANTINE: 0,
        DataKind.AUDIT: 1,
    }
    assert points_of(tsdb, GONE) == []
    assert len(points_of(tsdb, STAYS)) == 2420
    assert store.summaries(SESSIONS[GONE]) == []
    assert len(store.summaries(SESSIONS[STAYS])) == 1
    assert [e.action for e in store.audit_entries() if e.action == "old.entry"] == []


# --------------------------------------------------------------------------- export


def test_export_holds_everything_with_a_manifest_and_is_audited(
    store: SqlStore, tsdb: SqliteStore, tmp_path: Path
) -> None:
    populate(store, tsdb)
    out = tmp_path / "export.zip"
    report = export_subject(
        GONE, out, sql=store, tsdb=tsdb, actor=ADMIN, purpose="subject access request"
    )
    assert not report.includes_identity
    assert out.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        for entry in manifest["files"]:
            content = archive.read(entry["name"])
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
            assert len(content) == entry["bytes"]
        sessions = json.loads(archive.read("sessions.json"))
        rr_rows = list(
            csv.DictReader(
                io.StringIO(archive.read(f"timeseries/{SESSIONS[GONE]}/rr.csv").decode())
            )
        )
        audit = json.loads(archive.read("audit.json"))
        readme = archive.read("README.txt").decode()
        every_text = b"".join(archive.read(n) for n in names)
    assert names[:2] == ["manifest.json", "README.txt"]
    assert "identity.json" not in names
    assert {"subject.json", "consents.json", "sessions.json", "alerts.json", "audit.json"} <= set(
        names
    )
    assert {f"timeseries/{SESSIONS[GONE]}/{m}.csv" for m in ("rr", "eda", "metrics")} <= set(names)
    assert manifest["subject_code"] == GONE
    [document] = sessions
    assert document["session"]["id"] == SESSIONS[GONE]
    assert len(document["events"]) == 5
    assert [r["value"] for r in document["ratings"]] == [7, 4]
    assert document["summaries"][0]["metrics"]["rmssd_ms"] == 42.0
    assert len(rr_rows) == 1200
    assert rr_rows[0]["rr_ms"] == "850.0"
    assert rr_rows[0]["time_utc"] == T0.isoformat()
    # Nothing of the other subject, who shares the station and the devices.
    assert STAYS.encode() not in every_text
    assert SESSIONS[STAYS].encode() not in every_text
    assert GONE in readme
    assert "subject.export" in [e["action"] for e in audit]
    assert IDENTITY.name.encode() not in every_text


def test_export_with_identity_reveals_it_and_audits_the_reveal(
    store: SqlStore, tsdb: SqliteStore, tmp_path: Path
) -> None:
    populate(store, tsdb)
    out = tmp_path / "with-identity.zip"
    export_subject(
        GONE, out, sql=store, tsdb=tsdb, actor=ADMIN, purpose="court order", include_identity=True
    )
    with zipfile.ZipFile(out) as archive:
        identity = json.loads(archive.read("identity.json"))
    assert identity == {"name": IDENTITY.name, "employee_no": IDENTITY.employee_no}
    actions = [e.action for e in store.audit_entries(subject_code=GONE)]
    assert actions[:2] == ["identity.reveal", "subject.export"]


# --------------------------------------------------------------------------- CLI


def test_cli_withdraw_export_and_purge(
    store: SqlStore,
    tsdb: SqliteStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    populate(store, tsdb)
    sql_url = str(store.engine.url)
    ts_url = f"sqlite:///{tsdb.path}"
    store.close()
    tsdb.close()
    flags = ["--sql", sql_url, "--tsdb", ts_url, "--data", str(tmp_path / "data")]
    out = tmp_path / "S.zip"
    assert (
        cli_main(
            ["gateway", "export-subject", GONE, "--out", str(out), "--purpose", "request", *flags]
        )
        == 0
    )
    assert zipfile.is_zipfile(out)
    assert (
        cli_main(
            ["gateway", "withdraw", GONE, "--mode", "delete", "--purpose", "withdrawn", *flags]
        )
        == 0
    )
    assert "sessions 1" in capsys.readouterr().out
    assert (
        cli_main(["gateway", "withdraw", "S-0000000", "--mode", "delete", "--purpose", "x", *flags])
        == 1
    )
    assert "S-0000000" in capsys.readouterr().err
    monkeypatch.setenv("SHUXIN_RETENTION_AUDIT_DAYS", "30")
    assert cli_main(["gateway", "purge", "--dry-run", *flags]) == 2
    assert "at least 183 days" in capsys.readouterr().err
    monkeypatch.setenv("SHUXIN_RETENTION_AUDIT_DAYS", "365")
    assert cli_main(["gateway", "purge", "--dry-run", *flags]) == 0
    printed = capsys.readouterr().out
    assert "raw" in printed
    assert "would delete" in printed
