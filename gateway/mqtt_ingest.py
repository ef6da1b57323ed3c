"""The MQTT side of ingest: subscribe to every station, hand batches to the pipeline, acknowledge.

One :class:`MqttIngest` per gateway process, built on aiomqtt (paho driven from the event loop;
no extra thread). A connection is an ``async with``; messages arrive as ``async for`` and are
converted at this boundary into :class:`~shuxin.gateway.ingest.Received` (topic ``str``,
payload ``bytes``, receive time) — no aiomqtt or paho type goes further.

Subscription: MQTT 5 with a shared subscription ``$share/<group>/shuxin/v1/#`` when a group is
configured, so gateway replicas split the load; if the broker refuses it (SUBACK failure), or
the broker speaks only MQTT 3.1.1, a plain ``shuxin/v1/#``. ``protocol="auto"`` falls back to
3.1.1 when the CONNACK refuses the protocol version; a broker that just drops an MQTT 5
CONNECT is not detected, so configure ``protocol="3.1.1"`` for amqtt (the demo broker). Under
a shared subscription the retained presence topics are also subscribed plainly, because MQTT 5
never sends retained messages to a shared subscription and every replica needs station
presence. QoS 1.

Delivery guarantees:

- **Acknowledge after durable.** paho's manual acknowledgement is switched on, and a PUBACK is
  sent only after the pipeline says the message is written, a duplicate or quarantined. A
  message the pipeline could not make durable is not acknowledged; the connection is then
  closed and re-opened (with backoff), and the broker delivers it again.
- **Persistent session.** A fixed client id with ``clean_session=False`` (3.1.1) or
  ``clean_start=False`` and a session expiry (5), so messages that arrive while the gateway is
  down or restarting wait in the broker.
- **Backpressure.** A bounded ``asyncio.Queue`` sits between the receive loop and the writer;
  when it is full the receive loop stops reading, and since unacknowledged messages count
  against the broker's in-flight window (MQTT 5 Receive Maximum, ``max_in_flight``), the broker
  stops sending. The writer takes whatever is queued (up to ``max_batch``) as one batch, so
  batches grow with the load without adding latency when idle.
- **Reconnect** with capped exponential backoff and full jitter.

Broker requirements: the broker queues QoS 1 messages for the session (offline, or behind a
burst) only up to its limit (Mosquitto ``max_queued_messages``, default 1000, then drops), so
the gateway's broker needs a limit that covers the longest gateway outage, and Mosquitto's
``max_inflight_messages`` (default 20) also caps what is in flight to the gateway, which keeps
batches small. :mod:`shuxin.gateway.broker_config` writes 1,000,000 queued (1 GiB) and 256 in
flight; see docs/gateway.md for the loss the default caused.

aiomqtt 2.5 has no public manual-acknowledgement API yet (empicano/aiomqtt#345, PR #346); this
module reaches the paho client for ``manual_ack_set``/``ack`` in exactly two places. It never
decodes payloads (the pipeline does) and never touches a store.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, Protocol

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from shuxin.contract.topics import ALL_STATIONS_FILTER, PREFIX, shared_subscription
from shuxin.gateway.ingest import Outcome, Received
from shuxin.runtime.backoff import Backoff
from shuxin.runtime.threads import to_thread_settled
from shuxin.runtime.tls_files import mqtt_client_context, tls_failure_kind

log = logging.getLogger(__name__)

#: Retained presence topics (subscribed plainly next to a shared subscription).
STATUS_FILTERS: Final = (f"{PREFIX}/+/status", f"{PREFIX}/+/devices/+/status")
#: CONNACK codes that mean "this broker does not speak that protocol version".
_PROTOCOL_REFUSED: Final = frozenset({1, 132})

MqttProtocol = Literal["auto", "5", "3.1.1"]


@dataclass(frozen=True, slots=True)
class MqttIngestSettings:
    """Broker connection and subscription settings. Credentials come from configuration.

    Attributes
    ----------
    client_id : str
        Fixed per replica (the broker keeps its session under this id).
    shared_group : str or None
        Shared-subscription group; None for a plain subscription.
    protocol : "auto", "5" or "3.1.1"
        "auto" tries MQTT 5 and falls back to 3.1.1 when the broker refuses the version.
    max_in_flight : int
        MQTT 5 Receive Maximum: unacknowledged messages the broker may send at once.
    queue_size : int
        Messages held between the receive loop and the writer.
    max_batch : int
        Most messages handed to the pipeline at once.
    session_expiry_s : int
        How long the broker keeps the session (and queues messages) while disconnected.
    tls : bool
        ``mqtts://``: TLS with the broker's certificate chain and host name verified.
    tls_ca_file : Path or None
        PEM bundle to verify the broker against (the site CA); None: the system trust store.
    tls_cert_file, tls_key_file : Path or None
        Client certificate and key (PEM), for brokers with ``require_certificate``.
    """

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "shuxin-gateway"
    shared_group: str | None = "shuxin-gateway"
    protocol: MqttProtocol = "auto"
    topic_filter: str = ALL_STATIONS_FILTER
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    max_in_flight: int = 256
    queue_size: int = 1024
    max_batch: int = 512
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def __post_init__(self) -> None:
        if min(self.max_in_flight, self.queue_size, self.max_batch) < 1:
            raise ValueError("max_in_flight, queue_size and max_batch must be >= 1")
        if not 1 <= self.max_in_flight <= 65535:
            raise ValueError("max_in_flight must be 1-65535 (MQTT 5 Receive Maximum)")


class BatchHandler(Protocol):
    """The pipeline as this adapter sees it (``shuxin.gateway.ingest.Ingest`` fits)."""

    def handle_batch(self, batch: Sequence[Received]) -> list[Outcome]:
        """Handle ``batch``; one outcome per message; never raises."""
        ...


@dataclass(slots=True)
class MqttCounters:
    """Lifetime counters of the MQTT side."""

    connects: int = 0
    disconnects: int = 0
    received: int = 0
    acknowledged: int = 0
    not_acknowledged: int = 0
    batches: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Item:
    received: Received
    connection: int
    mid: int
    qos: int


class _RedeliveryNeededError(Exception):
    """Some messages could not be made durable: reconnect so the broker resends them."""


class MqttIngest:
    """Subscribes, batches, hands batches to the pipeline, acknowledges. Runs until cancelled."""

    def __init__(
        self,
        settings: MqttIngestSettings,
        handler: BatchHandler,
        *,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._handler = handler
        # TLS files are read once (the settings checked them at start-up).
        self._tls_context: ssl.SSLContext | None = (
            mqtt_client_context(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
            if settings.tls
            else None
        )
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._protocol = (
            aiomqtt.ProtocolVersion.V311
            if settings.protocol == "3.1.1"
            else aiomqtt.ProtocolVersion.V5
        )
        self._connection = 0
        self._client: aiomqtt.Client | None = None
        self._redeliver = asyncio.Event()
        self.counters = MqttCounters()
        #: "shared" or "plain" once subscribed; "" while not connected.
        self.subscription = ""
        #: Set while connected and subscribed.
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Receive and write until cancelled; reconnects on its own."""
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=self._settings.queue_size)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._write_loop(queue))
            group.create_task(self._connection_loop(queue))

    # --- connection and receive -------------------------------------------------------------------

    def _make_client(self) -> aiomqtt.Client:
        s = self._settings
        v5 = self._protocol is aiomqtt.ProtocolVersion.V5
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s
            properties.ReceiveMaximum = s.max_in_flight
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            protocol=self._protocol,
            clean_session=None if v5 else False,
            clean_start=False if v5 else MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
            keepalive=s.keepalive_s,
            timeout=10,
            tls_context=self._tls_context,
        )
        # Acknowledge only after the pipeline made the message durable (see module docstring).
        client._client.manual_ack_set(True)
        return client

    async def _connection_loop(self, queue: asyncio.Queue[_Item]) -> None:
        attempt = 0
        while True:
            try:
                async with self._make_client() as client:
                    self._connection += 1
                    self._client = client
                    self.counters.connects += 1
                    attempt = 0
                    await self._subscribe(client)
                    self._redeliver.clear()
                    self.ready.set()
                    log.info(
                        "ingest connected to %s:%d (MQTT %s, %s subscription)",
                        self._settings.host,
                        self._settings.port,
                        "5" if self._protocol is aiomqtt.ProtocolVersion.V5 else "3.1.1",
                        self.subscription,
                    )
                    await self._receive_until_redelivery(client, queue)
            except (aiomqtt.MqttError, _RedeliveryNeededError) as exc:
                self._fallback_if_refused(exc)
                self._disconnected(exc)
                delay = self._backoff.delay(attempt, self._rng)
                attempt += 1
                await asyncio.sleep(delay)

    def _disconnected(self, exc: Exception) -> None:
        self.ready.clear()
        self._client = None
        self.subscription = ""
        self.counters.disconnects += 1
        kind = tls_failure_kind(str(exc)) or type(exc).__name__
        self.counters.errors[kind] = self.counters.errors.get(kind, 0) + 1
        log.warning("ingest connection ended (%s: %s); reconnecting", kind, exc)

    def _fallback_if_refused(self, exc: Exception) -> None:
        if (
            self._settings.protocol == "auto"
            and self._protocol is aiomqtt.ProtocolVersion.V5
            and isinstance(exc, MqttConnectError)
            and _code(exc.rc) in _PROTOCOL_REFUSED
        ):
            log.warning("broker refused MQTT 5; using MQTT 3.1.1 with a plain subscription")
            self._protocol = aiomqtt.ProtocolVersion.V311

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        s = self._settings
        if s.shared_group and self._protocol is aiomqtt.ProtocolVersion.V5:
            granted = await client.subscribe(shared_subscription(s.shared_group, s.topic_filter), 1)
            if not _failed(granted):
                for status_filter in STATUS_FILTERS:
                    await client.subscribe(status_filter, 1)
                self.subscription = "shared"
                return
            log.warning("broker refused the shared subscription; subscribing plainly")
        granted = await client.subscribe(s.topic_filter, 1)
        if _failed(granted):
            raise aiomqtt.MqttError(f"broker refused the subscription to {s.topic_filter}")
        self.subscription = "plain"

    async def _receive_until_redelivery(
        self, client: aiomqtt.Client, queue: asyncio.Queue[_Item]
    ) -> None:
        receive = asyncio.create_task(self._receive(client, queue))
        redeliver = asyncio.create_task(self._redeliver.wait())
        try:
            await asyncio.wait({receive, redeliver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            receive.cancel()
            redeliver.cancel()
        if receive.done() and not receive.cancelled():
            receive.result()  # re-raise the MqttError that ended the connection
        raise _RedeliveryNeededError("messages not made durable; reconnecting for redelivery")

    async def _receive(self, client: aiomqtt.Client, queue: asyncio.Queue[_Item]) -> None:
        connection = self._connection
        async for message in client.messages:
            payload = message.payload
            item = _Item(
                Received(
                    topic=message.topic.value,
                    payload=bytes(payload) if isinstance(payload, bytes | bytearray) else b"",
                    received_at=self._clock(),
                ),
                connection,
                message.mid,
                message.qos,
            )
            self.counters.received += 1
            await queue.put(item)
        raise aiomqtt.MqttError("message stream ended")

    # --- writer -----------------------------------------------------------------------------------

    async def _write_loop(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = [await queue.get()]
            while len(items) < self._settings.max_batch and not queue.empty():
                items.append(queue.get_nowait())
            outcomes = await to_thread_settled(
                self._handler.handle_batch, [item.received for item in items]
            )
            self.counters.batches += 1
            redeliver = False
            for item, outcome in zip(items, outcomes, strict=True):
                if outcome.acknowledge:
                    self._ack(item)
                else:
                    self.counters.not_acknowledged += 1
                    # One from an earlier connection comes again anyway after that reconnect.
                    redeliver |= item.connection == self._connection
            if redeliver:
                self._redeliver.set()

    def _ack(self, item: _Item) -> None:
        client = self._client
        if item.qos == 0 or client is None or item.connection != self._connection:
            # The connection it came on is gone; the broker redelivers it, dedupe absorbs it.
            return
        client._client.ack(item.mid, item.qos)
        self.counters.acknowledged += 1


def _code(rc: int | ReasonCode | None) -> int | None:
    if isinstance(rc, ReasonCode):
        return int(rc.value)
    return rc


def _failed(granted: tuple[int, ...] | list[ReasonCode]) -> bool:
    """True when any SUBACK entry is a failure (MQTT 5 code ≥ 0x80, 3.1.1 0x80)."""
    for entry in granted:
        value = entry.value if isinstance(entry, ReasonCode) else entry
        if value >= 0x80:
            return True
    return False
