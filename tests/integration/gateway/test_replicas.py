"""Two `shuxin gateway run` replicas on one MQTT 5 shared subscription split one station's
stream: both get a share, each message is handled by exactly one of them, and the shared
InfluxDB 1.x holds every beat.

SQL store: both replicas use the SAME SQLite file, migrated by the test before they start. That is
the deployment shape (replicas share one SQL store — PostgreSQL in production; SQLite in WAL mode
with a busy timeout serialises two local writers), and migrating up front avoids two processes
running Alembic at once, which only PostgreSQL guards with an advisory lock. Each replica keeps
its own --data (spool, dedupe ledger, quarantine): those are per-process state.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
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
from shuxin.gateway.sql_engine import upgrade

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0042"
TOPIC = session_topic(STATION, SESSION, "rr")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MESSAGES = 200
BEATS_PER_MESSAGE = 2
DATABASE = "shuxin_replicas"
GROUP = "shuxin-replicas"


def _rr(seq: int) -> bytes:
    start = T0 + timedelta(seconds=2 * seq)
    return json.dumps(
        {
            "schema": 1,
            "station": STATION,
            "session": SESSION,
            "stream": "rr",
            "seq": seq,
            "sent_at": start.isoformat(),
            "clock": {"offset_ms": 0.0, "source": "ntp"},
            "device": "hrs-1",
            "t0": start.isoformat(),
            "source": "sim",
            "t_offset_ms": [0.0, 800.0],
            "rr_ms": [800.0 + seq % 7, 810.0],
        }
    ).encode()


def _start_replica(
    broker: Any, influx: Any, sql_url: str, name: str, root: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    user, password = broker.credentials(broker.gateway_user)
    env = {**os.environ, "SHUXIN_GATEWAY_PASSWORD": password}
    log = root / f"{name}.log"
    argv = [sys.executable, "-m", "shuxin.cli", "gateway", "run", "--broker", broker.url]
    argv += ["--username", user, "--data", str(root / name), "--client-id", name]
    argv += ["--shared-group", GROUP, "--mqtt-protocol", "5", "--sql", sql_url]
    argv += ["--tsdb", f"influxdb1://{influx.host}:{influx.http_port}/{DATABASE}"]
    with log.open("ab") as log_file:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    return process, log


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stored_beats(influx: Any) -> int:
    result = influx.query(
        f'SELECT COUNT("rr_ms") FROM "rr" WHERE "station" = \'{STATION}\'', DATABASE
    )
    series = result["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def _handled(data: Path) -> int:
    """Messages this replica made durable, from its dedupe ledger (contiguous mark + above)."""
    with sqlite3.connect(data / "dedupe.sqlite3") as db:
        (contiguous,) = db.execute(
            "SELECT COALESCE(SUM(contiguous + 1), 0) FROM topic_progress"
        ).fetchone()
        (above,) = db.execute("SELECT COUNT(*) FROM seq_above").fetchone()
    return int(contiguous) + int(above)


def test_two_replicas_split_one_stream_nothing_lost_or_doubled(
    mosquitto_factory: Callable[..., Any],
    influxdb1_factory: Callable[[], Any],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory(stations=(STATION,))
    influx = influxdb1_factory()
    influx.create_database(DATABASE)
    sql_url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    upgrade(sql_url)

    replicas = [_start_replica(broker, influx, sql_url, f"gw-{i}", tmp_path) for i in (1, 2)]
    user, password = broker.credentials(STATION)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="st-a-replicas-pub")
    publisher.username_pw_set(user, password)
    try:
        for _process, log in replicas:
            _wait(
                lambda log=log: "shared subscription" in log.read_text(encoding="utf-8"),
                30,
                f"{log.stem} to subscribe",
            )
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        for seq in range(MESSAGES):
            publisher.publish(TOPIC, _rr(seq), qos=1).wait_for_publish(10)
        total = MESSAGES * BEATS_PER_MESSAGE
        _wait(lambda: _stored_beats(influx) >= total, 60, f"all {total} beats in InfluxDB")
        for process, log in replicas:
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0, log.read_text(encoding="utf-8")
        shares = [_handled(tmp_path / name) for name in ("gw-1", "gw-2")]
        assert all(share > 0 for share in shares), shares
        # Each message made durable by exactly one replica: none lost, none handled twice.
        assert sum(shares) == MESSAGES, shares
        assert _stored_beats(influx) == total
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        for process, _log in replicas:
            if process.poll() is None:
                process.kill()
                process.wait(10)
