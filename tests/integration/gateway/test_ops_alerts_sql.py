"""The operational-alert checker and the SQL store methods it uses (all stations, running
sessions, unresolved operational alerts, system resolution) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shuxin.contract.messages import (
    ClockInfo,
    DeviceStatus,
    LifecycleMessage,
    PhasePlan,
    ProtocolRef,
    StationStatus,
)
from shuxin.gateway.ops_alerts import OpsAlertChecker, OpsThresholds
from shuxin.gateway.sql_engine import make_engine
from shuxin.gateway.sql_models import AlertKind, AlertState, OrgUnitKind
from shuxin.gateway.sql_store import SqlStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_checker_round_trip(db_url: str) -> None:
    sql = SqlStore(make_engine(db_url))
    try:
        root = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "支队")
        for station in ("st-a", "st-b"):
            sql.register_station(station, org_unit_id=root.id, display_name=station)
            sql.record_station_status(
                StationStatus(schema_=1, station=station, state="online", sent_at=T0,
                              outbox_backlog=900), T0)  # fmt: skip
        sql.apply_lifecycle(LifecycleMessage(
            schema_=1, station="st-a", session="st-a-20261123-0900", seq=0, sent_at=T0,
            clock=ClockInfo(offset_ms=0.0, source="ntp"), stream="lifecycle", event="start",
            subject="S-7F3K2Q", devices=["h10-1"], started_at=T0,
            protocol=ProtocolRef(id="rest-only", version="1"),
            phases=[PhasePlan(name="rest", kind="rest", duration_s=300)]))  # fmt: skip
        sql.record_device_status(DeviceStatus(schema_=1, station="st-a", device="h10-1",
                                              sent_at=T0, profile="polar_h10",
                                              connected=False), T0)  # fmt: skip
        assert [s.id for s in sql.all_stations()] == ["st-a", "st-b"]
        assert [r.id for r in sql.running_sessions()] == ["st-a-20261123-0900"]

        checker = OpsAlertChecker(sql, OpsThresholds(device_lost_after_s=0, backlog_after_s=0))
        checker.tick(T0)
        opened = {(a.kind, a.station_id, a.device_id) for a in sql.list_alerts(root.id)}
        assert opened == {
            (AlertKind.DEVICE_LOST, "st-a", "h10-1"),
            (AlertKind.OUTBOX_BACKLOG, "st-a", None),
            (AlertKind.OUTBOX_BACKLOG, "st-b", None),
        }
        assert len(sql.unresolved_operational_alerts()) == 3

        for station in ("st-a", "st-b"):
            sql.record_station_status(
                StationStatus(schema_=1, station=station, state="online",
                              sent_at=T0 + timedelta(seconds=5), outbox_backlog=0), T0)  # fmt: skip
        checker.tick(T0 + timedelta(seconds=10))
        checker.tick(T0 + timedelta(seconds=40))  # clear hold 30 s
        states = {(a.kind, a.station_id): a.state for a in sql.list_alerts(root.id)}
        assert states[(AlertKind.OUTBOX_BACKLOG, "st-a")] is AlertState.RESOLVED
        assert states[(AlertKind.OUTBOX_BACKLOG, "st-b")] is AlertState.RESOLVED
        assert states[(AlertKind.DEVICE_LOST, "st-a")] is AlertState.OPEN  # still disconnected
        assert [a.kind for a in sql.unresolved_operational_alerts()] == [AlertKind.DEVICE_LOST]
    finally:
        sql.close()
