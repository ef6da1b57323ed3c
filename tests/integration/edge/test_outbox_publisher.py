"""The outbox publisher against a real Mosquitto: everything arrives, in order, with
contiguous ``seq``, across a broker outage and across a SIGKILL of the publishing process."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from servers.messages import rr_payload

from shuxin.contract.codec import decode
from shuxin.contract.messages import RrMessage, StationStatus
from shuxin.contract.topics import SessionTopic, session_topic
from shuxin.edge.outbox import Outbox
from shuxin.edge.outbox_publisher import BrokerSettings, OutboxPublisher
from shuxin.runtime.backoff import Backoff

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0042"
TOPIC = session_topic(STATION, SESSION, "rr")


def _rr_payload(seq: int) -> bytes:
    return rr_payload(STATION, SESSION, seq, datetime.now(UTC), [800.0 + seq % 50])


class Collector:
    """A gateway-user subscriber that records (seq, payload) of every session message.

    Like the gateway it holds a persistent session (fixed client id, clean_session off), so
    what the broker accepts while this subscriber is away is queued for it, also across a
    broker restart (the test broker persists sessions). Without that, a publisher that
    reconnects before the subscriber does would have its messages acknowledged and dropped.
    """

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.status: list[str] = []
        self.ready = asyncio.Event()

    async def run(self, host: str, port: int, user: str, password: str) -> None:
        async with aiomqtt.Client(
            host,
            port,
            username=user,
            password=password,
            identifier="test-collector",
            clean_session=False,
        ) as client:
            await client.subscribe("shuxin/v1/#", qos=1)
            self.ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                topic, decoded = decode(str(message.topic), message.payload)
                if isinstance(topic, SessionTopic):
                    assert isinstance(decoded, RrMessage)
                    self.seqs.append(decoded.seq)
                else:
                    assert isinstance(decoded, StationStatus)
                    self.status.append(decoded.state)


async def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _settings(broker: Any) -> BrokerSettings:
    user, password = broker.credentials(STATION)
    return BrokerSettings(host=broker.host, port=broker.port, username=user, password=password)


def test_everything_arrives_across_a_broker_outage(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()

    async def scenario() -> None:
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        collector = Collector()
        gw_user, gw_password = broker.credentials(broker.gateway_user)
        collect = asyncio.create_task(collector.run(broker.host, broker.port, gw_user, gw_password))
        await asyncio.wait_for(collector.ready.wait(), 60)
        publisher = OutboxPublisher(
            STATION, outbox, _settings(broker), backoff=Backoff(initial_s=0.1, cap_s=0.5)
        )
        publish = asyncio.create_task(publisher.run())
        for _ in range(100):
            outbox.enqueue(TOPIC, _rr_payload)
        publisher.notify()
        await _wait_for(lambda: len(collector.seqs) >= 100, 60)

        # Broker down: the session goes on; messages wait on disk.
        collect.cancel()
        broker.stop()
        for _ in range(150):
            outbox.enqueue(TOPIC, _rr_payload)
        await asyncio.sleep(1.0)
        assert outbox.stats().backlog >= 150
        broker.start()

        collector2 = Collector()
        collect2 = asyncio.create_task(
            collector2.run(broker.host, broker.port, gw_user, gw_password)
        )
        await asyncio.wait_for(collector2.ready.wait(), 60)
        await _wait_for(lambda: outbox.stats().backlog == 0, 30)
        publish.cancel()
        collect2.cancel()
        # The retained "online" status and the replayed messages after the restart.
        seen = collector.seqs + collector2.seqs
        assert sorted(set(seen)) == list(range(250)), "a seq is missing"
        assert collector.seqs[:100] == list(range(100)), "first 100 not in order"
        assert publisher.counters.connects >= 2
        outbox.close()

    asyncio.run(scenario())


def _publish_forever(outbox_path: str, host: str, port: int, user: str, password: str) -> None:
    async def main() -> None:
        outbox = Outbox(Path(outbox_path))
        publisher = OutboxPublisher(
            STATION, outbox, BrokerSettings(host=host, port=port, username=user, password=password)
        )
        task = asyncio.create_task(publisher.run())
        while True:
            outbox.enqueue(TOPIC, _rr_payload)
            publisher.notify()
            await asyncio.sleep(0.002)
        await task

    asyncio.run(main())


def test_sigkill_of_the_agent_loses_nothing(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    user, password = broker.credentials(STATION)
    outbox_path = tmp_path / "outbox.sqlite3"

    async def scenario() -> None:
        collector = Collector()
        gw_user, gw_password = broker.credentials(broker.gateway_user)
        collect = asyncio.create_task(collector.run(broker.host, broker.port, gw_user, gw_password))
        await asyncio.wait_for(collector.ready.wait(), 60)
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(
            target=_publish_forever,
            args=(str(outbox_path), broker.host, broker.port, user, password),
        )
        proc.start()
        await _wait_for(lambda: len(collector.seqs) >= 200, 30)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)

        # Restart the agent: it replays what was never acknowledged, with the same seq.
        outbox = Outbox(outbox_path)
        written = outbox.next_seq(TOPIC)
        publisher = OutboxPublisher(STATION, outbox, _settings(broker))
        publish = asyncio.create_task(publisher.run())
        await _wait_for(lambda: outbox.stats().backlog == 0, 30)
        await _wait_for(lambda: set(range(written)) <= set(collector.seqs), 60)
        publish.cancel()
        collect.cancel()
        assert sorted(set(collector.seqs)) == list(range(written))
        duplicates = len(collector.seqs) - len(set(collector.seqs))
        # Redelivery is allowed (at-least-once) but only of messages in flight at the kill.
        assert duplicates <= 32
        outbox.close()

    asyncio.run(scenario())
