"""The demo's embedded amqtt broker: passwords, per-station ACL, loopback only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from shuxin.gateway.broker_amqtt import embedded_broker

pytestmark = pytest.mark.integration

USERS = {"st-a": "pw-a", "st-b": "pw-b", "gateway": "pw-gw"}
V311 = aiomqtt.ProtocolVersion.V311


def test_station_acl_and_passwords(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        received: list[tuple[str, bytes]] = []
        async with embedded_broker(tmp_path, stations=["st-a", "st-b"], users=USERS) as broker:
            assert broker.host == "127.0.0.1"
            async with aiomqtt.Client(
                broker.host, broker.port, username="gateway", password="pw-gw", protocol=V311
            ) as gateway:
                await gateway.subscribe("shuxin/v1/#", qos=1)
                async with aiomqtt.Client(
                    broker.host, broker.port, username="st-a", password="pw-a", protocol=V311
                ) as station:
                    await station.publish("shuxin/v1/st-b/status", b"forged", qos=1)
                    await station.publish("shuxin/v1/st-a/status", b"own", qos=1)

                async def collect() -> None:
                    async for message in gateway.messages:
                        assert isinstance(message.payload, bytes)
                        received.append((str(message.topic), message.payload))
                        if message.payload == b"own":
                            return

                await asyncio.wait_for(collect(), 60)
            with pytest.raises(aiomqtt.MqttError, match="Not authorized"):
                async with aiomqtt.Client(
                    broker.host, broker.port, username="st-a", password="wrong", protocol=V311
                ):
                    pass
        return received

    received = asyncio.run(scenario())
    # The forged publish was sent first; only the station's own message arrived.
    assert received == [("shuxin/v1/st-a/status", b"own")]


def test_every_user_needs_a_password(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with embedded_broker(tmp_path, stations=["st-a", "st-c"], users=USERS):
            pass

    with pytest.raises(ValueError, match="st-c"):
        asyncio.run(scenario())
