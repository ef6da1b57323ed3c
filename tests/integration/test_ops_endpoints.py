"""Operations endpoints against real servers: the gateway's ``/metrics`` while it ingests from a
real Mosquitto, its ``/healthz`` and ``/readyz``; the edge console's ``/metrics`` while a
simulated station publishes; and no personal data in the gateway's logs when it quarantines
hostile payloads (a subject code in an unknown field, a name where a subject code belongs).

Everything runs on one event loop per test; the HTTP endpoints are scraped over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from pydantic import SecretStr
from servers.messages import rr_payload

from shuxin.contract.topics import session_topic
from shuxin.edge.agent import build_agent
from shuxin.edge.clock import ManualClock
from shuxin.edge.console import ConsoleServer
from shuxin.edge.settings import build_settings, check_settings
from shuxin.gateway.http_ops import OpsServer
from shuxin.gateway.service import build_gateway
from shuxin.gateway.settings import GatewaySettings
from shuxin.runtime.backoff import Backoff
from shuxin.runtime.entry import JsonFormatter

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0042"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: Planted in hostile payloads; neither may appear in any log line.
SUBJECT_CODE = "S-7F3K2"
FAKE_NAME = "Fakename Testperson"


def _rr(seq: int) -> bytes:
    return rr_payload(STATION, SESSION, seq, T0, [800.0 + seq % 7, 810.0])


def _hostile_payloads() -> list[tuple[str, bytes]]:
    """Two messages the contract refuses, each carrying the planted subject code and name."""
    extra_fields = json.loads(_rr(1000))
    extra_fields["subject"] = SUBJECT_CODE
    extra_fields["name"] = FAKE_NAME
    lifecycle = {
        "schema": 1,
        "station": STATION,
        "session": SESSION,
        "stream": "lifecycle",
        "seq": 0,
        "sent_at": T0.isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        "event": "start",
        "subject": FAKE_NAME,
        "note": f"{SUBJECT_CODE} {FAKE_NAME}",
    }
    return [
        (session_topic(STATION, SESSION, "rr"), json.dumps(extra_fields).encode()),
        (session_topic(STATION, SESSION, "lifecycle"), json.dumps(lifecycle).encode()),
    ]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, label_text = key.partition("{")
        if sample != name:
            continue
        have = ",".join(sorted(p for p in label_text.rstrip("}").split(",") if p))
        if have == wanted:
            return float(value)
    return 0.0


async def _until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_gateway_metrics_and_readiness_while_ingesting(
    mosquitto_factory: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory()
    user, password = broker.credentials(broker.gateway_user)
    settings = GatewaySettings(
        broker_url=broker.url,
        username=user,
        password=SecretStr(password),
        client_id="gw-ops-test",
        data_dir=tmp_path / "gw",
    )
    service = build_gateway(settings, backoff=Backoff(initial_s=0.05, cap_s=0.5))
    ops = OpsServer(service, "127.0.0.1", 0)  # port 0: a free port, read back once bound
    station_user, station_password = broker.credentials(STATION)
    caplog.set_level(logging.DEBUG)

    async def main() -> tuple[str, int, dict[str, Any], int]:
        run = asyncio.create_task(service.run())
        serve = asyncio.create_task(ops.serve())
        try:
            await _until(lambda: ops.started, 10, "the ops listener")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}") as http:
                health = await http.get("/healthz")
                assert health.status_code == 200
                await _until(service.mqtt.ready.is_set, 20, "the gateway to subscribe")
                async with aiomqtt.Client(
                    broker.host, broker.port, username=station_user, password=station_password
                ) as publisher:
                    for seq in range(40):
                        await publisher.publish(session_topic(STATION, SESSION, "rr"), _rr(seq), 1)
                    for topic, payload in _hostile_payloads():
                        await publisher.publish(topic, payload, 1)
                counters = service.ingest.counters
                await _until(
                    lambda: counters.written >= 40 and sum(counters.quarantined.values()) >= 2,
                    20,
                    "the gateway to ingest",
                )
                ready = await http.get("/readyz")
                scraped = await http.get("/metrics")
                assert scraped.headers["content-type"].startswith("text/plain")
                return scraped.text, ready.status_code, ready.json(), health.status_code
        finally:
            serve.cancel()
            run.cancel()
            await asyncio.gather(serve, run, return_exceptions=True)
            service.close()

    text, ready_status, ready_body, _ = asyncio.run(main())

    assert ready_status == 200, ready_body
    assert ready_body == {"ready": True, "checks": {"broker": True, "sql": True, "tsdb": True}}
    assert _metric(text, "shuxin_gateway_mqtt_received_total") >= 42
    assert _metric(text, "shuxin_gateway_ingest_written_total") >= 40
    assert _metric(text, "shuxin_gateway_tsdb_points_stored_total") > 0
    assert _metric(text, "shuxin_gateway_mqtt_connected") == 1.0
    quarantined = [
        line for line in text.splitlines() if line.startswith("shuxin_gateway_ingest_quarantined")
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in quarantined) >= 2
    assert _metric(text, "process_cpu_seconds_total") > 0

    # Privacy: the quarantine was logged (reason codes), but no planted value in any form.
    json_lines = [JsonFormatter("gateway").format(record) for record in caplog.records]
    assert any("quarantined a message" in line for line in json_lines)
    for rendered in [*json_lines, caplog.text, text]:
        assert SUBJECT_CODE not in rendered
        assert FAKE_NAME not in rendered
        assert "Fakename" not in rendered


def test_edge_console_metrics_while_publishing(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    user, password = broker.credentials(STATION)
    settings = build_settings(
        station=STATION,
        broker={"url": broker.url, "username": user, "password": password},
        data_dir=tmp_path / "edge",
        seed=11,
        devices=[{"id": "sim-h10-1", "profile": "polar_h10", "sim": {"subject": 1}}],
    )
    clock = ManualClock(1_800_000_000.0, auto_advance=False)
    agent = build_agent(check_settings(settings), clock=clock)
    console = ConsoleServer(agent, "127.0.0.1", 0)

    async def drive() -> None:  # about 50x virtual time, in 0.1 s steps
        while True:
            clock.advance(0.1)
            await asyncio.sleep(0.002)

    async def main() -> tuple[str, int, dict[str, Any]]:
        agent_task = asyncio.create_task(agent.run())
        serve_task = asyncio.create_task(console.serve())
        driver = asyncio.create_task(drive())
        try:
            await agent.started.wait()
            await _until(lambda: console.started, 10, "the console")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{console.port}") as http:
                assert (await http.get("/healthz")).status_code == 200
                started = await http.post(
                    "/api/sessions",
                    json={
                        "subject": SUBJECT_CODE,
                        "protocol": "rest-resonance-recovery",
                        "devices": ["sim-h10-1"],
                    },
                )
                assert started.status_code == 201, started.text
                await _until(lambda: agent.outbox.stats().acked >= 20, 30, "acknowledged publishes")
                ready = await http.get("/readyz")
                scraped = await http.get("/metrics")
                return scraped.text, ready.status_code, ready.json()
        finally:
            driver.cancel()
            serve_task.cancel()
            agent_task.cancel()
            await asyncio.gather(driver, serve_task, agent_task, return_exceptions=True)
            agent.close()

    text, ready_status, ready_body = asyncio.run(main())

    assert ready_status == 200, ready_body
    assert ready_body["checks"] == {"started": True, "outbox": True, "broker": True}
    assert _metric(text, "shuxin_edge_outbox_acked_total") >= 20
    assert _metric(text, "shuxin_edge_outbox_enqueued_total") >= 20
    assert _metric(text, "shuxin_edge_publisher_published_total") >= 20
    assert _metric(text, "shuxin_edge_publisher_connects_total") >= 1
    assert _metric(text, "shuxin_edge_publisher_connected") == 1.0
    assert _metric(text, "shuxin_edge_device_connected", device="sim-h10-1") == 1.0
    decoded = [
        line for line in text.splitlines() if line.startswith("shuxin_edge_ble_values_decoded")
    ]
    assert decoded
    assert all('device="sim-h10-1"' in line for line in decoded)
    assert _metric(text, "shuxin_edge_sessions_running") == 1.0
    assert _metric(text, "shuxin_edge_info", station=STATION, version="0.1.0") == 1.0
    assert SUBJECT_CODE not in text  # labels carry device ids, never the subject code


def test_gateway_not_ready_without_broker_and_port_conflict_is_not_fatal(tmp_path: Path) -> None:
    settings = GatewaySettings(
        broker_url="mqtt://127.0.0.1:1",  # nothing listens on port 1
        password=SecretStr("unused"),
        client_id="gw-ops-nobroker",
        data_dir=tmp_path / "gw",
    )
    service = build_gateway(settings, backoff=Backoff(initial_s=0.05, cap_s=0.2))
    ops = OpsServer(service, "127.0.0.1", 0)

    async def main() -> tuple[int, dict[str, Any], bool]:
        run = asyncio.create_task(service.run())
        serve = asyncio.create_task(ops.serve())
        try:
            await _until(lambda: ops.started, 10, "the ops listener")
            await _until(lambda: service.mqtt.counters.disconnects >= 1, 10, "a failed connect")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}") as http:
                ready = await http.get("/readyz")
            # A second listener on the same port logs an error and returns; ingest goes on.
            clash = OpsServer(service, "127.0.0.1", ops.port)
            await asyncio.wait_for(clash.serve(), timeout=5)
            assert not run.done()
            return ready.status_code, ready.json(), clash.started
        finally:
            serve.cancel()
            run.cancel()
            await asyncio.gather(serve, run, return_exceptions=True)
            service.close()

    status, body, clash_started = asyncio.run(main())
    assert status == 503
    assert body == {"ready": False, "checks": {"broker": False, "sql": True, "tsdb": True}}
    assert clash_started is False
