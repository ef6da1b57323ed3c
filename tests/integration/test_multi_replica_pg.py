"""The central site's deployment shape on real servers: two gateway replicas on an MQTT 5
shared subscription and two dashboard API processes, all sharing one PostgreSQL database.

A simulated station (the real edge agent, `shuxin sim station`) runs one session through
Mosquitto; the replicas split its stream, store the beats in InfluxDB 1.x and the session, its
authoritative summary and the subject in PostgreSQL. A counselor logs in on API 1 and uses the
token on API 2 (replicas share the token key), finds the session, reads its detail — the audit
record written through API 2 is visible through API 1 — and every process stops cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers.postgres import PostgresServer

from shuxin.gateway.sql_engine import make_engine, upgrade
from shuxin.gateway.sql_models import OrgUnitKind
from shuxin.gateway.sql_store import WHOLE_SESSION, SqlStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STATION = "st-a"
INFLUX_DB = "shuxin_multi"
GROUP = "shuxin-multi"
TOKEN_SECRET = "multi-replica-test-secret-" + "x" * 24
PASSWORD = "counselor pass 1234"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "shuxin.cli", *argv],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then the exit status (None: it had to be killed)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return None


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_gateways_and_two_apis_share_one_postgresql(
    postgres: PostgresServer,
    mosquitto_factory: Callable[..., Any],
    influxdb1_factory: Callable[[], Any],
    tmp_path: Path,
) -> None:
    sql_url = postgres.create_database("shuxin_multi_replica")
    upgrade(sql_url)
    store = SqlStore(make_engine(sql_url))
    detachment = store.create_org_unit(OrgUnitKind.DETACHMENT, "ZD-T", "测试支队")
    brigade = store.create_org_unit(OrgUnitKind.BRIGADE, "DD-T1", "一大队", detachment.id)
    unit = store.create_org_unit(OrgUnitKind.STATION, "ZN-T1", "甲站", brigade.id)
    store.register_station(STATION, org_unit_id=unit.id, display_name="甲站")

    broker = mosquitto_factory(stations=(STATION,))
    influx = influxdb1_factory()
    influx.create_database(INFLUX_DB)
    tsdb = f"influxdb1://{influx.host}:{influx.http_port}/{INFLUX_DB}"
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        gw_user, gw_password = broker.credentials(broker.gateway_user)
        for name in ("gw-1", "gw-2"):
            log = tmp_path / f"{name}.log"
            argv = ["gateway", "run", "--broker", broker.url, "--username", gw_user]
            argv += ["--data", str(tmp_path / name), "--client-id", name, "--sql", sql_url]
            argv += ["--shared-group", GROUP, "--mqtt-protocol", "5", "--tsdb", tsdb]
            processes.append((_spawn(argv, {"SHUXIN_GATEWAY_PASSWORD": gw_password}, log), log))
        for _process, log in processes:
            _wait(
                lambda log=log: "shared subscription" in log.read_text(encoding="utf-8"),
                60,
                f"{log.stem} to subscribe",
            )

        st_user, st_password = broker.credentials(STATION)
        station_log = tmp_path / "station.log"
        station = _spawn(
            ["sim", "station", "--broker", broker.url, "--username", st_user,
             "--station", STATION, "--data", str(tmp_path / "station"), "--subjects", "1",
             "--sessions", "1", "--protocol", "rest-only", "--time-scale", "20",
             "--seed", "7"],
            {"SHUXIN_EDGE_BROKER__PASSWORD": st_password},
            station_log,
        )  # fmt: skip
        assert station.wait(180) == 0, station_log.read_text(encoding="utf-8")

        def summarised() -> bool:
            sessions = store.list_sessions(detachment.id)
            return len(sessions) == 1 and any(
                s.phase_index == WHOLE_SESSION for s in store.summaries(sessions[0].id)
            )

        _wait(summarised, 90, "the session's summary in PostgreSQL")
        (session,) = store.list_sessions(detachment.id)

        created = subprocess.run(
            [sys.executable, "-m", "shuxin.cli", "api", "create-user", "counselor",
             "--role", "counselor", "--org-unit", "ZD-T", "--password-env", "PW",
             "--sql", sql_url, "--data", str(tmp_path / "api")],
            env={**os.environ, "PW": PASSWORD, "SHUXIN_API_TOKEN_SECRET": TOKEN_SECRET},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr

        urls = []
        for name in ("api-1", "api-2"):
            port = _free_port()
            log = tmp_path / f"{name}.log"
            argv = ["api", "run", "--port", str(port), "--sql", sql_url, "--tsdb", tsdb]
            argv += ["--data", str(tmp_path / name)]
            processes.append((_spawn(argv, {"SHUXIN_API_TOKEN_SECRET": TOKEN_SECRET}, log), log))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait(lambda url=url: _ready(url), 60, f"{url} to be ready")

        login = httpx.post(
            f"{urls[0]}/api/v1/auth/token",
            data={"username": "counselor", "password": PASSWORD},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = httpx.get(f"{urls[1]}/api/v1/sessions", headers=auth, timeout=10)
        assert listed.status_code == 200, listed.text
        assert [row["id"] for row in listed.json()["data"]] == [session.id]
        detail = httpx.get(f"{urls[1]}/api/v1/sessions/{session.id}", headers=auth, timeout=10)
        assert detail.status_code == 200, detail.text
        assert detail.json()["subject_code"] == session.subject_code
        assert detail.json()["session_metrics"]["n_beats"] > 200  # 5 min of beats at 20x
        reads = [
            entry
            for entry in store.audit_entries(subject_code=session.subject_code)
            if entry.action == "session.read"
        ]
        assert len(reads) == 1
        assert reads[0].actor == "user:counselor"
    finally:
        stopped = [(log, _stop(process)) for process, log in reversed(processes)]
        store.close()
    for log, code in stopped:
        # A clean stop on SIGTERM exits 0; anything else is a crash or a hang.
        assert code == 0, f"{log.stem}: {code}\n" + log.read_text(encoding="utf-8")[-3000:]
