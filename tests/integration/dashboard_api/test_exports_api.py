"""Session exports read back: the CSV bundle parsed, Kubios RR equal to the stored beats, EDF+
read with edfio; pseudonymous by default, identifiable only with the permission; audited.

The session is pushed through the gateway's real ingest path (the helpers of
``test_reports_api``, importable because pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from api_seed import SimSession, ingest_sessions, subject_code
from edfio import read_edf
from fastapi.testclient import TestClient

from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.gateway.identity_crypto import PersonIdentity
from shuxin.gateway.sql_models import OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import Actor, SqlStore
from shuxin.gateway.store_sqlite import SqliteStore

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
START = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
#: Placeholders standing in for real names (fixtures hold no names): one ASCII, one not.
ASCII_NAME = "PLACEHOLDER-NAME-A"
CJK_NAME = "测试占位"


@dataclass
class World:
    client: TestClient
    sql: SqlStore
    tsdb: SqliteStore
    session_id: str
    other_session_id: str
    subject: str
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        if username in self.tokens:  # logging in hashes a password (slow): once per user
            return self.tokens[username]
        response = self.client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        self.tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self.tokens[username]

    def export(self, username: str, fmt: str, session: str | None = None, **extra: str) -> Any:
        return self.client.get(
            f"/api/v1/sessions/{session or self.session_id}/export",
            params={"format": fmt, **extra},
            headers=self.headers(username),
        )

    def stored_rr(self) -> list[float]:
        record = self.sql.get_session(self.session_id)
        assert record.started_at is not None
        assert record.ended_at is not None
        points = self.tsdb.query(
            "rr",
            station=record.station_id,
            start=record.started_at - timedelta(seconds=5),
            end=record.ended_at + timedelta(seconds=5),
            device="h10-1",
        )
        return [float(p.field("rr_ms")) for p in points]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("exports")
    key = base64.b64encode(bytes(range(32))).decode()
    settings = ApiSettings(
        data_dir=tmp,
        sql=SqlSettings(
            url=f"sqlite:///{tmp / 'api.sqlite3'}",
            identity_keys={"k1": key},  # type: ignore[dict-item]
            identity_key_id="k1",
        ),
        token_secret="e" * 40,
        tsdb_url=f"sqlite:///{tmp / 'ts.sqlite3'}",
    )
    services = build_services(settings)
    sql = services.sql
    zd = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "一支队", None)
    da = sql.create_org_unit(OrgUnitKind.BRIGADE, "DA", "甲大队", zd.id)
    db = sql.create_org_unit(OrgUnitKind.BRIGADE, "DB", "乙大队", zd.id)
    sa = sql.create_org_unit(OrgUnitKind.STATION, "SA1", "甲站", da.id)
    sb = sql.create_org_unit(OrgUnitKind.STATION, "SB1", "乙站", db.id)
    sql.register_station("st-sa1", org_unit_id=sa.id, display_name="SA1")
    sql.register_station("st-sb1", org_unit_id=sb.id, display_name="SB1")
    mine, other = subject_code(1), subject_code(2)
    ingest_sessions(
        sql,
        services.tsdb,  # type: ignore[arg-type]
        tmp,
        [SimSession("st-sa1", mine, START, seed=11), SimSession("st-sb1", other, START, seed=12)],
    )
    for username, role, unit in (
        ("counselor", Role.COUNSELOR, zd.id),
        ("counselor-db", Role.COUNSELOR, db.id),
        ("commander", Role.COMMANDER, zd.id),
        ("lead", Role.PROGRAMME_LEAD, zd.id),
        ("staff", Role.STATION_STAFF, sa.id),
    ):
        sql.create_user(
            username, role=role, org_unit_id=unit, password_hash=hash_password(PASSWORD)
        )
    sql.put_identity(
        mine, PersonIdentity(name=ASCII_NAME), actor=Actor("system:test"), purpose="fixture"
    )
    sql.put_identity(
        other, PersonIdentity(name=CJK_NAME), actor=Actor("system:test"), purpose="fixture"
    )
    sessions = {s.subject_code: s.id for s in sql.list_sessions(zd.id)}
    with TestClient(create_app(settings, services=services)) as client:
        yield World(
            client,
            sql,
            services.tsdb,
            sessions[mine],
            sessions[other],
            mine,  # type: ignore[arg-type]
        )
    services.tsdb.close()
    services.sql.close()


def _members(content: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        return {
            name: list(csv.DictReader(io.StringIO(bundle.read(name).decode("utf-8"))))
            for name in bundle.namelist()
        }


def test_csv_bundle_parses_and_holds_the_stored_beats(world: World) -> None:
    response = world.export("counselor", "csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    disposition = response.headers["content-disposition"]
    assert f'filename="{world.session_id}.csv.zip"' in disposition
    members = _members(response.content)
    assert set(members) == {"session.csv", "beats.csv", "eda.csv", "events.csv", "metrics.csv"}
    meta = {row["key"]: row["value"] for row in members["session.csv"]}
    assert meta["subject_code"] == world.subject
    assert meta["protocol_version"] == "1"
    assert "real_name" not in meta
    assert meta["beat_classifier_version"].startswith("rr_clean/")
    beats = [row for row in members["beats.csv"] if row["device"] == "h10-1"]
    assert [float(row["rr_ms"]) for row in beats] == world.stored_rr()
    assert {row["artifact"] for row in beats} <= {"0", "1"}
    assert all(row["beat_class"] for row in beats)
    assert len(members["eda.csv"]) > 1000  # 240 s at 8 Hz
    kinds = [row["kind"] for row in members["events.csv"]]
    assert "phase_start" in kinds
    assert "rating" in kinds
    metrics = members["metrics.csv"]
    ln_rmssd = [row for row in metrics if row["metric"] == "ln_rmssd" and row["scope"] == "phase"]
    assert len(ln_rmssd) == 3  # one per phase
    assert all("hrv" in row["algorithm_versions"] for row in ln_rmssd)
    assert any(row["metric"] == "training_minus_baseline.ln_rmssd" for row in metrics)
    assert ASCII_NAME not in response.content.decode("latin-1")


def test_kubios_text_equals_the_stored_rr_in_seconds(world: World) -> None:
    response = world.export("counselor", "kubios")
    assert response.status_code == 200
    lines = response.text.splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert lines[: len(header)] == header  # header first
    assert f"header lines: {len(header)}" in header[0]
    assert any(world.subject in line for line in header)
    values = np.array([float(line) for line in lines[len(header) :]])
    stored = np.array(world.stored_rr()) / 1000.0
    # Six decimals in seconds: within half a microsecond of the stored value.
    np.testing.assert_allclose(values, stored, rtol=0, atol=5e-7)
    assert ASCII_NAME not in response.text


def test_edf_reads_back_with_signals_and_annotations_and_no_name(world: World) -> None:
    response = world.export("counselor", "edf")
    assert response.status_code == 200
    edf = read_edf(response.content)
    assert [s.label for s in edf.signals] == ["RR tachogram", "EDA"]
    rr_signal, eda_signal = edf.signals
    assert rr_signal.sampling_frequency == 4.0
    assert rr_signal.physical_dimension == "ms"
    assert eda_signal.physical_dimension == "uS"
    assert edf.duration == 240.0  # the protocol's 60 + 120 + 60 s
    stored = np.array(world.stored_rr())
    # The tachogram stays within the stored RR range (16-bit quantisation: < 0.1 ms here).
    assert rr_signal.data.min() >= stored.min() - 0.1
    assert rr_signal.data.max() <= stored.max() + 0.1
    texts = [a.text for a in edf.annotations]
    assert any(t.startswith("phase 1 resonance") for t in texts)
    assert any(t.startswith("rating before") for t in texts)
    assert edf.patient.code == world.subject
    assert edf.patient.name == "X"
    assert ASCII_NAME.encode() not in response.content


def test_identifiable_exports_need_the_permission_and_are_audited(world: World) -> None:
    before = {e.id for e in world.sql.audit_entries(subject_code=world.subject, limit=500)}
    response = world.export("counselor", "edf", identifiable="true")
    assert response.status_code == 200, response.text
    edf = read_edf(response.content)
    assert edf.patient.name == ASCII_NAME
    assert ASCII_NAME not in response.headers["content-disposition"]
    new = [
        e
        for e in world.sql.audit_entries(subject_code=world.subject, limit=500)
        if e.id not in before
    ]
    actions = sorted(e.action for e in new)
    assert actions == ["export.edf", "export.identifiable", "identity.reveal"]
    # A non-ASCII name cannot go into EDF's ASCII header: it becomes a UTF-8 annotation.
    cjk = world.export("counselor", "edf", session=world.other_session_id, identifiable="true")
    cjk_edf = read_edf(cjk.content)
    assert cjk_edf.patient.name == "X"
    assert f"subject name: {CJK_NAME}" in [a.text for a in cjk_edf.annotations]
    csv_named = _members(world.export("counselor", "csv", identifiable="true").content)
    assert {r["key"]: r["value"] for r in csv_named["session.csv"]}["real_name"] == ASCII_NAME


def test_each_export_writes_one_audit_record_naming_the_subject(world: World) -> None:
    for fmt in ("csv", "kubios", "edf"):
        before = {e.id for e in world.sql.audit_entries(actor="user:counselor", limit=500)}
        assert world.export("counselor", fmt).status_code == 200
        new = [
            e
            for e in world.sql.audit_entries(actor="user:counselor", limit=500)
            if e.id not in before
        ]
        assert [(e.action, e.subject_code) for e in new] == [(f"export.{fmt}", world.subject)]


def test_roles_and_scope(world: World) -> None:
    for user in ("commander", "lead", "staff"):
        refused = world.export(user, "csv")
        assert refused.status_code == 403, user
    outside = world.export("counselor-db", "csv")
    missing = world.export("counselor-db", "csv", session="st-sa1-20991231-0000-999")
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == missing.json()
    assert world.export("counselor-db", "csv", session=world.other_session_id).status_code == 200
    assert world.export("counselor", "xml").status_code == 422
