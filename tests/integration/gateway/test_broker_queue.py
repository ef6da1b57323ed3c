"""The rendered Mosquitto config keeps what it acknowledged to a station for a gateway that is
behind: a persistent session offline while a station replays more than Mosquitto's default
queue (1000 messages) gets every message when it returns.

The station's outbox forgets a message once the broker acknowledged it, so a message the
broker then drops for the gateway's session is lost for good; this is the test that the
deployed `max_queued_messages` covers a replay burst.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

pytestmark = pytest.mark.integration

MESSAGES = 3000  # three times Mosquitto's default max_queued_messages


def _gateway_session(broker: Any, received: list[bytes]) -> mqtt.Client:
    user, password = broker.credentials(broker.gateway_user)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="gw-queue", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, password)
    client.on_message = lambda _c, _u, message: received.append(message.payload)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    return client


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_replay_burst_waits_in_the_broker_for_an_offline_gateway(
    mosquitto_factory: Callable[..., Any],
) -> None:
    broker = mosquitto_factory()
    received: list[bytes] = []
    gateway = _gateway_session(broker, received)
    gateway.loop_start()
    subscribed = gateway.subscribe("shuxin/v1/#", qos=1)
    assert subscribed[0] == mqtt.MQTT_ERR_SUCCESS
    time.sleep(0.5)  # SUBACK
    gateway.disconnect()
    gateway.loop_stop()

    user, password = broker.credentials("st-a")
    station = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="st-a-replay")
    station.username_pw_set(user, password)
    station.max_inflight_messages_set(100)
    station.connect(broker.host, broker.port)
    station.loop_start()
    try:
        infos = [
            station.publish("shuxin/v1/st-a/status", f"m{i}".encode(), qos=1)
            for i in range(MESSAGES)
        ]
        for info in infos:
            info.wait_for_publish(60)  # the broker acknowledged every one
    finally:
        station.disconnect()
        station.loop_stop()

    gateway = _gateway_session(broker, received)
    gateway.loop_start()
    try:
        _wait(lambda: len(received) >= MESSAGES, 60, f"{MESSAGES} queued messages")
    finally:
        gateway.disconnect()
        gateway.loop_stop()
    assert sorted(set(received)) == sorted(f"m{i}".encode() for i in range(MESSAGES))
