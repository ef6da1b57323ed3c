"""The gateway's MQTT ingest over TLS against a real Mosquitto with a TLS listener, built the way
``shuxin gateway run`` builds it (settings → service): stores what a station publishes over
``mqtts://`` when it trusts the site CA, and never subscribes when it trusts another CA."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from servers.messages import rr_payload
from servers.tls_certs import TestCA

from shuxin.contract.topics import session_topic
from shuxin.gateway.service import GatewayService, build_gateway
from shuxin.gateway.settings import GatewaySettings
from shuxin.runtime.backoff import Backoff

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0061"
TOPIC = session_topic(STATION, SESSION, "rr")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FAST = Backoff(initial_s=0.05, cap_s=0.3)


def _rr(seq: int) -> bytes:
    return rr_payload(STATION, SESSION, seq, T0)


async def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _gateway(broker: Any, data: Path, ca_file: Path) -> GatewayService:
    user, password = broker.credentials(broker.gateway_user)
    settings = GatewaySettings(
        broker_url=broker.url,
        username=user,
        password=password,
        tls_ca_file=ca_file,
        client_id="gw-tls-test",
        data_dir=data,
        http_port=0,
    )
    return build_gateway(settings, backoff=FAST)


async def _publish_over_tls(broker: Any, count: int) -> None:
    user, password = broker.credentials(STATION)
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=password,
        identifier="st-a-tls-pub",
        tls_params=aiomqtt.TLSParameters(ca_certs=str(broker.ca_file)),
    ) as client:
        for seq in range(count):
            await client.publish(TOPIC, _rr(seq), qos=1)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_gateway_ingests_over_tls_with_the_site_ca(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(tls=True)
    service = _gateway(broker, tmp_path / "gw", broker.ca_file)

    async def scenario() -> None:
        run = asyncio.create_task(service.run())
        await _wait_for(service.mqtt.ready.is_set, 30, "the gateway to subscribe over TLS")
        await _publish_over_tls(broker, 20)
        await _wait_for(lambda: service.ingest.counters.written >= 20, 30, "20 stored messages")
        await _stop(run)

    try:
        asyncio.run(scenario())
        assert service.ingest.counters.written == 20
        assert service.mqtt.counters.acknowledged == 20
        assert service.mqtt.counters.errors == {}
        beats = service.store.query("rr", station=STATION, start=T0, end=T0 + timedelta(hours=1))
        assert len(beats) == 40
    finally:
        service.close()


def test_gateway_does_not_connect_to_a_broker_it_cannot_verify(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(tls=True)
    other = TestCA.create(tmp_path / "other", name="unrelated test CA")
    service = _gateway(broker, tmp_path / "gw", other.ca_file)

    async def scenario() -> None:
        run = asyncio.create_task(service.run())
        await _wait_for(lambda: service.mqtt.counters.disconnects >= 3, 30, "3 refused attempts")
        await _stop(run)

    try:
        asyncio.run(scenario())
        gc.collect()  # a socket left open by a refused handshake would fail the test here
        assert service.mqtt.counters.connects == 0
        assert not service.mqtt.ready.is_set()
        assert set(service.mqtt.counters.errors) == {"TlsVerifyError"}
        assert service.mqtt.counters.errors["TlsVerifyError"] >= 3
    finally:
        service.close()
