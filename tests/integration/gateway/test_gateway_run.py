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

from shuxin.contract.topics import session_topic
from shuxin.gateway.store_sqlite import SqliteStore

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0077"
TOPIC = session_topic(STATION, SESSION, "rr")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _rr(seq: int) -> bytes:
    return json.dumps(
        {
            "schema": 1,
            "station": STATION,
            "session": SESSION,
            "stream": "rr",
            "seq": seq,
            "sent_at": (T0 + timedelta(seconds=seq)).isoformat(),
            "clock": {"offset_ms": 0.0, "source": "ntp"},
            "device": "hrs-1",
            "t0": (T0 + timedelta(seconds=seq)).isoformat(),
            "source": "sim",
            "t_offset_ms": [0.0, 400.0],
            "rr_ms": [800.0 + seq % 7, 810.0],
        }
    ).encode()


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
        _wait((data / "dedupe.sqlite3").exists, 20, "the gateway to start")
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
