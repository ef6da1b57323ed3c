"""The edge outbox publisher over MQTT/TLS against a real Mosquitto with a TLS listener:
delivery over ``mqtts://`` with the site CA, no connection when the broker's certificate does
not verify (wrong CA), and client certificates for a ``require_certificate`` listener."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from servers.messages import rr_payload
from servers.tls_certs import TestCA

from shuxin.contract.codec import decode
from shuxin.contract.messages import LifecycleMessage, RrMessage
from shuxin.contract.topics import SessionTopic, session_topic
from shuxin.edge.outbox import Outbox
from shuxin.edge.outbox_publisher import BrokerSettings, OutboxPublisher
from shuxin.edge.settings import build_settings, check_settings
from shuxin.runtime.backoff import Backoff

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0051"
TOPIC = session_topic(STATION, SESSION, "rr")
FAST = Backoff(initial_s=0.1, cap_s=0.5)


def _rr_payload(seq: int) -> bytes:
    return rr_payload(STATION, SESSION, seq, datetime.now(UTC), [800.0 + seq])


async def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class TlsCollector:
    """The gateway user, subscribed over TLS (verifying the broker with its CA)."""

    def __init__(self) -> None:
        self.seqs: list[int] = []  # rr messages
        self.lifecycle: list[str] = []  # lifecycle events
        self.ready = asyncio.Event()

    async def run(self, broker: Any, *, client_cert: bool = False) -> None:
        user, password = broker.credentials(broker.gateway_user)
        tls = broker.tls
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=user,
            password=password,
            identifier="test-tls-collector",
            tls_params=aiomqtt.TLSParameters(
                ca_certs=str(broker.ca_file),
                certfile=str(tls.client.cert_file) if client_cert else None,
                keyfile=str(tls.client.key_file) if client_cert else None,
            ),
        ) as client:
            await client.subscribe("shuxin/v1/#", qos=1)
            self.ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                topic, decoded = decode(str(message.topic), message.payload)
                if isinstance(decoded, LifecycleMessage):
                    self.lifecycle.append(decoded.event)
                elif isinstance(topic, SessionTopic) and isinstance(decoded, RrMessage):
                    self.seqs.append(decoded.seq)


def _broker_settings(broker: Any, ca_file: Path, *, client_cert: bool = False) -> BrokerSettings:
    user, password = broker.credentials(STATION)
    return BrokerSettings(
        host=broker.host,
        port=broker.port,
        username=user,
        password=password,
        tls=True,
        ca_file=ca_file,
        client_cert_file=broker.tls.client.cert_file if client_cert else None,
        client_key_file=broker.tls.client.key_file if client_cert else None,
    )


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_publisher_delivers_over_tls_with_the_site_ca(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(tls=True)
    assert broker.url.startswith("mqtts://127.0.0.1:")
    # The agent's own settings path: an mqtts:// url with the CA file passes the start-up check
    # and carries the file to the publisher's settings.
    user, password = broker.credentials(STATION)
    settings = build_settings(
        station=STATION,
        broker={
            "url": broker.url,
            "username": user,
            "password": password,
            "ca_file": broker.ca_file,
        },
        data_dir=tmp_path / "agent",
    )
    check_settings(settings)
    assert (settings.broker.tls, settings.broker.ca_file) == (True, broker.ca_file)

    async def scenario() -> None:
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        collector = TlsCollector()
        collect = asyncio.create_task(collector.run(broker))
        await asyncio.wait_for(collector.ready.wait(), 30)
        publisher = OutboxPublisher(
            STATION, outbox, _broker_settings(broker, broker.ca_file), backoff=FAST
        )
        publish = asyncio.create_task(publisher.run())
        for _ in range(50):
            outbox.enqueue(TOPIC, _rr_payload)
        publisher.notify()
        await _wait_for(lambda: len(collector.seqs) >= 50, 30, "50 messages over TLS")
        await _wait_for(lambda: outbox.stats().backlog == 0, 10, "every PUBACK")
        await _stop(publish, collect)
        assert collector.seqs == list(range(50))
        assert publisher.counters.connects == 1
        assert publisher.counters.errors == {}
        outbox.close()

    asyncio.run(scenario())


def test_a_broker_certificate_from_another_ca_is_refused(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(tls=True)
    other_ca = TestCA.create(tmp_path / "other", name="unrelated test CA")

    async def scenario() -> None:
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        collector = TlsCollector()
        collect = asyncio.create_task(collector.run(broker))
        await asyncio.wait_for(collector.ready.wait(), 30)  # the broker is up and serving TLS
        for _ in range(5):
            outbox.enqueue(TOPIC, _rr_payload)
        wrong = OutboxPublisher(
            STATION, outbox, _broker_settings(broker, other_ca.ca_file), backoff=FAST
        )
        publish = asyncio.create_task(wrong.run())
        await _wait_for(
            lambda: wrong.counters.errors.get("TlsVerifyError", 0) >= 3, 30, "3 refused attempts"
        )
        await _stop(publish)
        assert wrong.counters.connects == 0
        assert set(wrong.counters.errors) == {"TlsVerifyError"}
        assert collector.seqs == []
        assert outbox.stats().backlog == 5

        # The same outbox with the right CA: everything that waited arrives.
        right = OutboxPublisher(
            STATION, outbox, _broker_settings(broker, broker.ca_file), backoff=FAST
        )
        publish = asyncio.create_task(right.run())
        await _wait_for(lambda: len(collector.seqs) >= 5, 30, "the 5 waiting messages")
        await _stop(publish, collect)
        assert collector.seqs == list(range(5))
        outbox.close()

    # A refused handshake leaves no socket open (paho 2.2 alone would leak one per attempt;
    # the suite's filterwarnings=error turns that ResourceWarning into a failure here).
    asyncio.run(scenario())
    gc.collect()


def test_require_certificate_refuses_a_client_without_one(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(tls=True, require_certificate=True)
    user, password = broker.credentials(STATION)

    async def without_cert() -> None:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=user,
            password=password,
            identifier="test-no-client-cert",
            timeout=3,
            tls_params=aiomqtt.TLSParameters(ca_certs=str(broker.ca_file)),
        ) as client:
            await client.publish(TOPIC, _rr_payload(0), qos=1, timeout=3)

    async def scenario() -> None:
        # TLS 1.3 reports the missing certificate after the handshake: CONNACK never comes.
        with pytest.raises(aiomqtt.MqttError):
            await without_cert()
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        collector = TlsCollector()
        collect = asyncio.create_task(collector.run(broker, client_cert=True))
        await asyncio.wait_for(collector.ready.wait(), 30)
        publisher = OutboxPublisher(
            STATION,
            outbox,
            _broker_settings(broker, broker.ca_file, client_cert=True),
            backoff=FAST,
        )
        publish = asyncio.create_task(publisher.run())
        for _ in range(10):
            outbox.enqueue(TOPIC, _rr_payload)
        publisher.notify()
        await _wait_for(lambda: len(collector.seqs) >= 10, 30, "10 messages with a client cert")
        await _stop(publish, collect)
        assert collector.seqs == list(range(10))
        assert publisher.counters.errors == {}
        outbox.close()

    asyncio.run(scenario())


SHORT_PROTOCOL = """\
format: 1
id: tls-short
version: "test-1"
names: {zh: 短时测试, en: Short test}
phases:
  - {id: rest, names: {zh: 静息, en: Rest}, kind: baseline, duration_s: 30}
"""


def test_sim_station_runs_a_session_over_tls(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory(tls=True)
    protocols = tmp_path / "protocols"
    protocols.mkdir()
    (protocols / "tls-short.yaml").write_text(SHORT_PROTOCOL, encoding="utf-8")
    user, password = broker.credentials(STATION)
    command = [
        sys.executable,
        "-m",
        "shuxin.edge.sim_commands",
        "station",
        *("--broker", broker.url, "--username", user, "--station", STATION),
        *("--ca-file", str(broker.ca_file), "--data", str(tmp_path / "station")),
        *("--subjects", "1", "--sessions", "1", "--time-scale", "20", "--seed", "5"),
        *("--protocol-dir", str(protocols), "--protocol", "tls-short", "--progress-s", "5"),
    ]
    env = {**os.environ, "SHUXIN_EDGE_BROKER__PASSWORD": password, "PYTHONUNBUFFERED": "1"}

    async def scenario() -> subprocess.CompletedProcess[str]:
        collector = TlsCollector()
        collect = asyncio.create_task(collector.run(broker))
        await asyncio.wait_for(collector.ready.wait(), 30)
        # The station exits once its session has ended and its outbox is drained (or after
        # the timeout: 30 s of protocol at 20x plus start-up, generously).
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
        )
        await _wait_for(lambda: collector.lifecycle == ["start", "end"], 30, "start and end")
        await _stop(collect)
        assert collector.seqs, "no rr data arrived"
        return done

    done = asyncio.run(scenario())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("[sim] done ")][-1]
    result = json.loads(line.removeprefix("[sim] done "))
    assert result["sessions_ended"] == 1
    assert result["outbox_backlog"] == 0
