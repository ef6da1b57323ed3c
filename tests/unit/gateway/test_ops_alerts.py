"""Operational alerts: the pure decision function (holds, hysteresis band, clearing) and the
checker against a real SQLite SQL store (opens once per target, auto-resolves, never touches
advisory alerts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shuxin.contract.messages import (
    ClockInfo,
    DeviceStatus,
    LifecycleMessage,
    PhasePlan,
    ProtocolRef,
    StationStatus,
)
from shuxin.gateway.ops_alerts import (
    OpsAlertChecker,
    OpsTarget,
    OpsThresholds,
    evaluate_operational,
)
from shuxin.gateway.sql_errors import InvalidTransitionError
from shuxin.gateway.sql_models import AlertKind, AlertState, OrgUnitKind, Presence
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import Device, SqlStore, Station, open_store

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TH = OpsThresholds(station_offline_after_s=60, device_lost_after_s=30, backlog_open=500,
                   backlog_clear=50, backlog_after_s=60, clear_after_s=30)  # fmt: skip
OFFLINE = OpsTarget(AlertKind.STATION_OFFLINE, "st-a")
BACKLOG = OpsTarget(AlertKind.OUTBOX_BACKLOG, "st-a")
LOST = OpsTarget(AlertKind.DEVICE_LOST, "st-a", "h10-1")


def _station(presence: Presence = Presence.ONLINE, backlog: int | None = 0,
             seen: datetime = T0) -> Station:  # fmt: skip
    return Station("st-a", 1, "甲站", presence, T0, seen, "1.0", backlog, 0, 0, None, None)


def _device(connected: bool) -> Device:
    return Device("st-a", "h10-1", "polar_h10", connected, 80, "detected", None, -60, T0, T0)


def _run(stations: list[Station], times_s: list[float], *, unresolved: dict[OpsTarget, int]
         | None = None, devices: list[Device] | None = None, running: frozenset[str] =
         frozenset(), th: OpsThresholds = TH):  # type: ignore[no-untyped-def]  # fmt: skip
    """Evaluate at each time in turn (carrying timers and backlogs); the last evaluation."""
    timers, backlogs, evaluation = None, None, None
    for station, t in zip(stations, times_s, strict=True):
        evaluation = evaluate_operational(
            [station], {"st-a": devices or []}, {"st-a": running}, unresolved or {},
            now=T0 + timedelta(seconds=t), thresholds=th, timers=timers, backlogs=backlogs,
        )  # fmt: skip
        timers, backlogs = evaluation.timers, evaluation.backlogs
    assert evaluation is not None
    return evaluation


def test_offline_opens_only_after_the_hold() -> None:
    off = _station(Presence.OFFLINE)
    assert _run([off, off], [0, 59]).to_open == ()
    opened = _run([off, off], [0, 60]).to_open
    assert [d.target for d in opened] == [OFFLINE]
    explanation = opened[0].explanation
    assert explanation["advisory"] is False
    assert explanation["inputs"]["presence"] == "offline"
    assert explanation["thresholds"]["station_offline_after_s"] == 60
    # Back online in between: the hold starts again.
    assert _run([off, _station(), off, off], [0, 30, 40, 90]).to_open == ()


def test_offline_never_opens_twice_and_clears_after_its_hold() -> None:
    off, on = _station(Presence.OFFLINE), _station()
    assert _run([off, off], [0, 120], unresolved={OFFLINE: 7}).to_open == ()
    assert _run([on, on], [0, 29], unresolved={OFFLINE: 7}).to_resolve == ()
    resolved = _run([on, on], [0, 30], unresolved={OFFLINE: 7}).to_resolve
    assert [(d.target, d.resolve_alert_id) for d in resolved] == [(OFFLINE, 7)]


def test_unknown_station_is_not_alerted_and_silence_is_optional() -> None:
    unknown = _station(Presence.UNKNOWN)
    assert _run([unknown, unknown], [0, 600]).to_open == ()
    quiet = _station(seen=T0 - timedelta(seconds=400))
    assert _run([quiet, quiet], [0, 600]).to_open == ()  # silence check off by default
    th = replace(TH, station_silent_after_s=300)
    opened = _run([quiet, quiet], [0, 60], th=th).to_open
    assert [d.target for d in opened] == [OFFLINE]
    assert "not seen" in opened[0].explanation["inputs"]["reason"]


def test_backlog_opens_when_high_and_growing_with_a_band() -> None:
    rising = [_station(backlog=b) for b in (600, 700, 800)]
    assert [d.target for d in _run(rising, [0, 30, 60]).to_open] == [BACKLOG]
    shrinking = [_station(backlog=b) for b in (900, 800, 700)]
    assert _run(shrinking, [0, 30, 60]).to_open == ()
    # 200 is inside the band (50 < 200 < 500): neither opens nor clears.
    band = [_station(backlog=200)] * 3
    assert _run(band, [0, 60, 120], unresolved={BACKLOG: 3}).to_resolve == ()
    low = [_station(backlog=10)] * 2
    assert [d.resolve_alert_id for d in _run(low, [0, 30], unresolved={BACKLOG: 3}).to_resolve] == [
        3
    ]
    # An offline station's backlog is stale: not judged.
    off = [_station(Presence.OFFLINE, backlog=900)] * 2
    assert BACKLOG not in {d.target for d in _run(off, [0, 120]).to_open}


def test_device_lost_only_in_a_running_session() -> None:
    on = [_station(), _station()]
    lost = [_device(connected=False)]
    assert _run(on, [0, 60], devices=lost).to_open == ()  # no running session lists it
    opened = _run(on, [0, 30], devices=lost, running=frozenset({"h10-1"})).to_open
    assert [d.target for d in opened] == [LOST]
    # The session ended: the condition is false and the alert clears after the hold.
    resolved = _run(on, [0, 30], devices=lost, unresolved={LOST: 9}).to_resolve
    assert [d.resolve_alert_id for d in resolved] == [9]
    # The station went offline: its devices are not judged (the station alert covers them).
    off = [_station(Presence.OFFLINE)] * 2
    assert LOST not in {d.target for d in _run(off, [0, 90], devices=lost,
                                               running=frozenset({"h10-1"})).to_open}  # fmt: skip


def _store(tmp_path: Path) -> tuple[SqlStore, int]:
    sql = open_store(SqlSettings(), tmp_path)
    root = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "支队")
    brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, "DD", "大队", root.id)
    st = sql.create_org_unit(OrgUnitKind.STATION, "ZA", "站", brigade.id)
    sql.register_station("st-a", org_unit_id=st.id, display_name="甲站")
    return sql, root.id


def _status(state: str, at: datetime, backlog: int = 0) -> StationStatus:
    return StationStatus(schema_=1, station="st-a", state=state, sent_at=at,  # type: ignore[arg-type]
                         outbox_backlog=backlog)  # fmt: skip


def test_checker_opens_and_auto_resolves_in_sql(tmp_path: Path) -> None:
    sql, root = _store(tmp_path)
    try:
        checker = OpsAlertChecker(sql, TH)
        sql.record_station_status(_status("online", T0), T0)
        sql.record_station_status(_status("offline", T0 + timedelta(seconds=1)), T0)
        checker.tick(T0)
        assert sql.list_alerts(root) == []
        checker.tick(T0 + timedelta(seconds=61))
        checker.tick(T0 + timedelta(seconds=90))  # still offline: still one alert
        (alert,) = sql.list_alerts(root)
        assert (alert.kind, alert.state, alert.station_id) == (
            AlertKind.STATION_OFFLINE, AlertState.OPEN, "st-a")  # fmt: skip
        sql.record_station_status(_status("online", T0 + timedelta(seconds=100)), T0)
        checker.tick(T0 + timedelta(seconds=100))
        checker.tick(T0 + timedelta(seconds=130))
        (alert,) = sql.list_alerts(root)
        assert alert.state is AlertState.RESOLVED
        assert alert.resolved_by_id is None
        assert alert.resolve_note is not None
        assert alert.resolve_note.startswith("system:gateway")
        assert (checker.counters.opened, checker.counters.resolved) == (1, 1)
    finally:
        sql.close()


def test_checker_device_lost_during_a_running_session(tmp_path: Path) -> None:
    sql, root = _store(tmp_path)
    try:
        sql.record_station_status(_status("online", T0), T0)
        sql.apply_lifecycle(LifecycleMessage(
            schema_=1, station="st-a", session="st-a-20261123-0900", seq=0, sent_at=T0,
            clock=ClockInfo(offset_ms=0.0, source="ntp"), stream="lifecycle", event="start",
            subject="S-7F3K2Q", devices=["h10-1"], started_at=T0,
            protocol=ProtocolRef(id="rest-only", version="1"),
            phases=[PhasePlan(name="rest", kind="rest", duration_s=300)]))  # fmt: skip
        sql.record_device_status(DeviceStatus(schema_=1, station="st-a", device="h10-1",
                                              sent_at=T0, profile="polar_h10",
                                              connected=False), T0)  # fmt: skip
        checker = OpsAlertChecker(sql, TH)
        checker.tick(T0)
        checker.tick(T0 + timedelta(seconds=30))
        (alert,) = sql.list_alerts(root)
        assert (alert.kind, alert.device_id) == (AlertKind.DEVICE_LOST, "h10-1")
    finally:
        sql.close()


def test_the_system_cannot_resolve_an_advisory_alert(tmp_path: Path) -> None:
    sql, _ = _store(tmp_path)
    try:
        sql.register_subject("S-7F3K2Q", sql.get_station("st-a").org_unit_id)
        alert = sql.open_alert(
            AlertKind.WATCH,
            {"inputs": {}, "baseline": {}, "thresholds": {}, "quality": {}},
            created_at=T0, subject_code="S-7F3K2Q",
        )  # fmt: skip
        with pytest.raises(InvalidTransitionError):
            sql.resolve_operational_alert(alert.id, actor=OpsAlertChecker(sql).actor,
                                          note="no", at=T0)  # fmt: skip
        assert sql.unresolved_operational_alerts() == []
    finally:
        sql.close()


def test_last_will_of_the_online_connection_is_applied_although_older(tmp_path: Path) -> None:
    sql, _ = _store(tmp_path)
    try:

        def status(state: str, second: int, reconnects: int) -> StationStatus:
            at = T0 + timedelta(seconds=second)
            return StationStatus(schema_=1, station="st-a", state=state,  # type: ignore[arg-type]
                                 sent_at=at, reconnects=reconnects)  # fmt: skip

        # The will (composed at connect, t=0) arrives after the online status (t=1).
        sql.record_station_status(status("online", 1, 3), T0)
        assert sql.record_station_status(status("offline", 0, 3), T0).presence is Presence.OFFLINE
        assert sql.record_station_status(status("online", 5, 0), T0).presence is Presence.ONLINE
        # A stale will of an earlier connection (another reconnects count) changes nothing.
        assert sql.record_station_status(status("offline", 0, 3), T0).presence is Presence.ONLINE
    finally:
        sql.close()
