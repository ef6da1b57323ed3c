"""Drains the durable outbox to the MQTT broker: QoS 1, oldest first, ack only after PUBACK.

One :class:`OutboxPublisher` per agent. It connects with aiomqtt (paho driven from the event
loop, no extra thread), sets a retained last will ``offline`` on the station status topic,
publishes ``online``, then repeatedly takes the oldest stored messages and publishes them with a
bounded number in flight; each message leaves the outbox only when its PUBACK arrives. When the
connection drops it reconnects with capped exponential backoff and full jitter and starts again
from the oldest unacknowledged message, so redeliveries carry their original ``seq``.

Only this module and the gateway's MQTT adapter import aiomqtt/paho. It never builds payloads
(the session runner does) and never drops messages (the outbox's caps do, with counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiomqtt

from shuxin.contract.codec import encode
from shuxin.contract.messages import StationStatus
from shuxin.contract.topics import station_status_topic
from shuxin.edge.outbox import Outbox, OutboxItem
from shuxin.runtime.backoff import Backoff
from shuxin.runtime.tls_files import mqtt_client_context, tls_failure_kind

log = logging.getLogger(__name__)

_POLL_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and how to reach the broker. Credentials come from configuration, never code.

    With ``tls`` the broker's certificate chain and host name are verified against
    ``ca_file`` (PEM), or the system trust store when it is None; ``client_cert_file`` and
    ``client_key_file`` present a client certificate (brokers with ``require_certificate``).
    """

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive_s: int = 30
    tls: bool = False
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        """The client's TLS context (None for plain MQTT); verification is always on."""
        if not self.tls:
            return None
        return mqtt_client_context(self.ca_file, self.client_cert_file, self.client_key_file)


@dataclass(slots=True)
class PublisherCounters:
    """Lifetime counters exposed in station status and /metrics."""

    published: int = 0
    connects: int = 0
    disconnects: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def error_kind(exc: aiomqtt.MqttError) -> str:
    """The counter key of a connection failure: ``TlsVerifyError`` / ``TlsError`` (see
    :func:`~shuxin.runtime.tls_files.tls_failure_kind`), otherwise the exception's class name."""
    return tls_failure_kind(str(exc)) or type(exc).__name__


def _status_payload(station: str, state: str, outbox: Outbox, reconnects: int) -> bytes:
    stats = outbox.stats()
    return encode(
        StationStatus(
            schema_=1,
            station=station,
            state="online" if state == "online" else "offline",
            sent_at=datetime.now(UTC),
            outbox_backlog=stats.backlog,
            outbox_dropped=stats.dropped,
            reconnects=reconnects,
        )
    )


class OutboxPublisher:
    """Publishes everything in ``outbox`` to the broker until cancelled."""

    def __init__(
        self,
        station: str,
        outbox: Outbox,
        broker: BrokerSettings,
        *,
        max_in_flight: int = 32,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self._station = station
        self._outbox = outbox
        self._broker = broker
        self._tls_context = broker.tls_context()  # files read once, checked at start-up
        self._max_in_flight = max_in_flight
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._on_connect = on_connect
        self._wake = asyncio.Event()
        self.counters = PublisherCounters()
        self.connected = asyncio.Event()

    def notify(self) -> None:
        """Tell the publisher new messages are in the outbox (saves a poll interval)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect, drain, and reconnect on failure, forever (until cancelled)."""
        attempt = 0
        status_topic = station_status_topic(self._station)
        while True:
            will = aiomqtt.Will(
                status_topic,
                _status_payload(self._station, "offline", self._outbox, self.counters.connects),
                qos=1,
                retain=True,
            )
            try:
                async with aiomqtt.Client(
                    self._broker.host,
                    self._broker.port,
                    username=self._broker.username,
                    password=self._broker.password,
                    identifier=f"shuxin-edge-{self._station}",
                    will=will,
                    clean_session=True,
                    keepalive=self._broker.keepalive_s,
                    max_inflight_messages=self._max_in_flight,
                    timeout=10,
                    tls_context=self._tls_context,
                ) as client:
                    attempt = 0
                    self.counters.connects += 1
                    self.connected.set()
                    log.info("connected to broker %s:%d", self._broker.host, self._broker.port)
                    if self._on_connect is not None:
                        self._on_connect()
                    await client.publish(
                        status_topic,
                        _status_payload(
                            self._station, "online", self._outbox, self.counters.connects - 1
                        ),
                        qos=1,
                        retain=True,
                    )
                    await self._drain_forever(client)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self.counters.disconnects += 1
                kind = error_kind(exc)
                self.counters.errors[kind] = self.counters.errors.get(kind, 0) + 1
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                log.warning("broker connection lost (%s: %s); retrying in %.1f s", kind, exc, delay)
                await asyncio.sleep(delay)

    async def _drain_forever(self, client: aiomqtt.Client) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        last_id = 0
        try:
            while True:
                room = self._max_in_flight - len(in_flight)
                batch = self._outbox.pending(limit=room, after_id=last_id) if room > 0 else []
                for item in batch:
                    last_id = item.id
                    task = asyncio.create_task(self._publish_one(client, item))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if in_flight:
                    done, _ = await asyncio.wait(
                        in_flight, timeout=_POLL_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        task.result()  # re-raise a publish failure: reconnect
                if not batch and not in_flight:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=_POLL_S * 4)
        finally:
            for task in in_flight:
                task.cancel()

    async def _publish_one(self, client: aiomqtt.Client, item: OutboxItem) -> None:
        await client.publish(item.topic, item.payload, qos=1, retain=item.retain, timeout=30)
        self._outbox.ack(item.id)
        self.counters.published += 1
