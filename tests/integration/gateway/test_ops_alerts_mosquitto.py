"""Operational alerts end to end: `shuxin gateway run` over a real Mosquitto; a station client
process is killed (SIGKILL), the broker publishes its last will "offline", and the gateway
opens a station_offline alert; the station comes back online and the gateway resolves it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shuxin.gateway.sql_models import AlertKind, AlertState, OrgUnitKind
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import Alert, open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about 25 s: two processes, holds

STATION = "st-a"

# A minimal edge like edge/outbox_publisher.py: the retained "offline" last will is composed
# at connect (so it is older than the "online" status; same reconnects count), then idle.
STATION_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime
    import paho.mqtt.client as mqtt
    host, port, user, password, topic = sys.argv[1:6]
    def status(state):
        return json.dumps({"schema": 1, "station": user, "state": state,
                           "sent_at": datetime.now(UTC).isoformat(), "outbox_backlog": 0,
                           "reconnects": 0})
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user + "-edge")
    client.username_pw_set(user, password)
    client.will_set(topic, status("offline"), qos=1, retain=True)
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    client.publish(topic, status("online"), qos=1, retain=True).wait_for_publish(10)
    print("online", flush=True)
    while True:
        time.sleep(1)
    """
)


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _start_station(broker: Any) -> subprocess.Popen[str]:
    from shuxin.contract.topics import station_status_topic

    user, password = broker.credentials(STATION)
    process = subprocess.Popen(
        [sys.executable, "-c", STATION_SCRIPT, broker.host, str(broker.port), user, password,
         station_status_topic(STATION)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    with process.stdout:  # the child prints one line only
        assert process.stdout.readline().strip() == "online"
    return process


def _start_gateway(broker: Any, data: Path, log: Path) -> subprocess.Popen[bytes]:
    user, password = broker.credentials(broker.gateway_user)
    env = {
        **os.environ,
        "SHUXIN_GATEWAY_PASSWORD": password,
        "SHUXIN_GATEWAY_OPS_CHECK_INTERVAL_S": "0.3",
        "SHUXIN_GATEWAY_OPS_STATION_OFFLINE_AFTER_S": "1",
        "SHUXIN_GATEWAY_OPS_CLEAR_AFTER_S": "1",
    }
    with log.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "shuxin.cli", "gateway", "run", "--broker", broker.url,
             "--username", user, "--data", str(data), "--client-id", "gw-ops"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )  # fmt: skip


def _alerts(data: Path, root: int) -> list[Alert]:
    store = open_store(SqlSettings(migrate_on_start=False), data)
    try:
        return [a for a in store.list_alerts(root) if a.kind is AlertKind.STATION_OFFLINE]
    finally:
        store.close()


def _presence(data: Path) -> str:
    store = open_store(SqlSettings(migrate_on_start=False), data)
    try:
        return store.get_station(STATION).presence.value
    finally:
        store.close()


def test_killed_station_raises_station_offline_and_return_resolves_it(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(stations=(STATION,))
    data = tmp_path / "gw"
    data.mkdir()
    sql = open_store(SqlSettings(), data)
    root = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD01", "测试支队")
    brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, "DD01", "一大队", root.id)
    unit = sql.create_org_unit(OrgUnitKind.STATION, "ZA", "甲站", brigade.id)
    sql.register_station(STATION, org_unit_id=unit.id, display_name="甲站")
    sql.close()

    gateway = _start_gateway(broker, data, tmp_path / "gateway.log")
    station = _start_station(broker)
    try:
        _wait(lambda: _presence(data) == "online", 30, "the station to be online")
        assert _alerts(data, root.id) == []

        station.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the last will
        station.wait(10)
        _wait(lambda: _presence(data) == "offline", 30, "the last will to arrive")
        _wait(lambda: bool(_alerts(data, root.id)), 30, "a station_offline alert")
        (alert,) = _alerts(data, root.id)
        assert alert.state is AlertState.OPEN
        assert alert.station_id == STATION
        assert alert.explanation["inputs"]["presence"] == "offline"
        assert alert.explanation["advisory"] is False
        json.dumps(alert.explanation)  # stored as a JSON document

        station = _start_station(broker)
        _wait(
            lambda: all(a.state is AlertState.RESOLVED for a in _alerts(data, root.id)),
            30,
            "the alert to be resolved",
        )
        (resolved,) = _alerts(data, root.id)  # resolved, and no second alert opened
        assert resolved.id == alert.id
        assert resolved.resolved_by_id is None  # the system, not a person
        assert resolved.resolve_note is not None
        assert "auto-resolved" in resolved.resolve_note
    finally:
        station.kill()
        station.wait(10)
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(20)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait(10)
