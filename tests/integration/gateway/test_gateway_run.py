"""`shuxin gateway run` as a real process against a real Mosquitto: stores what stations send,
stops cleanly on SIGTERM, and after a SIGKILL mid-stream and a restart every beat is stored
exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from servers.messages import rr_payload

from shuxin.contract.topics import session_topic
from shuxin.gateway.store_sqlite import SqliteStore

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0077"
TOPIC = session_topic(STATION, SESSION, "rr")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _rr(seq: int) -> bytes:
    return rr_payload(STATION, SESSION, seq, T0, [800.0 + seq % 7, 810.0])


def _start_gateway(broker: Any, data: Path, log: Path) -> subprocess.Popen[bytes]:
    user, password = broker.credentials(broker.gateway_user)
    env = {**os.environ, "SHUXIN_GATEWAY_PASSWORD": password}
    with log.open("ab") as log_file:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shuxin.cli",
                "gateway",
                "run",
                "--broker",
                broker.url,
                "--username",
                user,
                "--data",
                str(data),
                "--client-id",
                "gw-e2e",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )


def _publisher(broker: Any) -> mqtt.Client:
    user, password = broker.credentials(STATION)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="st-a-pub")
    client.username_pw_set(user, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _stored_beats(data: Path) -> int:
    path = data / "timeseries.sqlite3"
    if not path.exists():
        return 0
    store = SqliteStore(path)
    try:
        return len(store.query("rr", station=STATION, start=T0, end=T0 + timedelta(hours=2)))
    finally:
        store.close()


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_gateway_process_survives_sigkill_with_every_beat_once(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    data = tmp_path / "gw"
    log = tmp_path / "gateway.log"
    gateway = _start_gateway(broker, data, log)
    publisher = _publisher(broker)
    try:
        # Wait until the gateway is subscribed: its persistent session then queues for it.
        _wait((data / "dedupe.sqlite3").exists, 60, "the gateway to start")
        time.sleep(1.0)
        for seq in range(300):
            publisher.publish(TOPIC, _rr(seq), qos=1).wait_for_publish(10)
            if seq == 150:
                gateway.send_signal(signal.SIGKILL)
                gateway.wait(10)
        gateway = _start_gateway(broker, data, log)
        _wait(lambda: _stored_beats(data) >= 600, 60, "all 600 beats")
        time.sleep(1.0)  # any duplicate write would land now
        assert _stored_beats(data) == 600
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(20) == 0, log.read_text(encoding="utf-8")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)


def _lifecycle(station: str, session: str, seq: int, event: str) -> bytes:
    payload: dict[str, Any] = {
        "schema": 1,
        "station": station,
        "session": session,
        "stream": "lifecycle",
        "seq": seq,
        "sent_at": (T0 + timedelta(minutes=seq)).isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        "event": event,
        "subject": "S-7F3K2Q",
        "protocol": {"id": "rest-only", "version": "1"},
        "phases": [{"name": "rest", "kind": "rest", "duration_s": 300}],
        "started_at": T0.isoformat(),
    }
    if event != "start":
        payload["ended_at"] = (T0 + timedelta(minutes=5)).isoformat()
    return json.dumps(payload).encode()


def test_sessions_reach_sql_and_unregistered_stations_are_quarantined(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    from shuxin.gateway.quarantine import SqliteQuarantine
    from shuxin.gateway.sql_models import OrgUnitKind
    from shuxin.gateway.sql_settings import SqlSettings
    from shuxin.gateway.sql_store import open_store

    broker = mosquitto_factory(stations=("st-a", "st-b"))
    data = tmp_path / "gw"
    data.mkdir()
    sql = open_store(SqlSettings(), data)
    detachment = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD01", "测试支队")
    brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, "DD01", "一大队", detachment.id)
    unit = sql.create_org_unit(OrgUnitKind.STATION, "ZA", "甲站", brigade.id)
    sql.register_station("st-a", org_unit_id=unit.id, display_name="甲站")  # st-b is not
    sql.close()

    log = tmp_path / "gateway.log"
    gateway = _start_gateway(broker, data, log)
    publishers = {}
    try:
        _wait((data / "dedupe.sqlite3").exists, 60, "the gateway to start")
        time.sleep(1.0)
        for station in ("st-a", "st-b"):
            user, password = broker.credentials(station)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{station}-pub")
            client.username_pw_set(user, password)
            client.connect(broker.host, broker.port)
            client.loop_start()
            publishers[station] = client
            session = f"{station}-20261123-0100"
            topic = session_topic(station, session, "lifecycle")
            for seq, event in enumerate(("start", "end")):
                client.publish(
                    topic, _lifecycle(station, session, seq, event), qos=1
                ).wait_for_publish(10)

        def stored() -> bool:
            store = open_store(SqlSettings(migrate_on_start=False), data)
            try:
                return store.get_session("st-a-20261123-0100").status.value == "ended"
            except Exception:
                return False
            finally:
                store.close()

        _wait(stored, 30, "the session in SQL")

        def quarantined() -> list[str]:
            box = SqliteQuarantine(data / "quarantine.sqlite3")
            try:
                return [r.topic for r in box.recent()]
            finally:
                box.close()

        _wait(lambda: len(quarantined()) == 2, 30, "st-b's messages in quarantine")
        assert all("/st-b/" in topic for topic in quarantined())
    finally:
        for client in publishers.values():
            client.loop_stop()
            client.disconnect()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(20)
