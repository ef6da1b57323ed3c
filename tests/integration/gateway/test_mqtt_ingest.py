"""MQTT ingest against a real Mosquitto: stored exactly once, duplicates absorbed, hostile payloads
quarantined while ingest continues, a store outage spooled and completed, unsaved messages
redelivered by the broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from shuxin.contract.topics import session_topic, station_status_topic
from shuxin.gateway.dedupe import SqliteSeqLedger
from shuxin.gateway.errors import SpoolError
from shuxin.gateway.ingest import Accepted, Ingest, MessageSink
from shuxin.gateway.mqtt_ingest import MqttIngest, MqttIngestSettings
from shuxin.gateway.quarantine import SqliteQuarantine
from shuxin.gateway.spool import Spool, SpoolingWriter
from shuxin.gateway.store_influx import InfluxMode, InfluxSettings, InfluxStore
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.timeseries import TimeSeriesSink, TimeSeriesStore, epoch_us
from shuxin.runtime.backoff import Backoff

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0042"
RR_TOPIC = session_topic(STATION, SESSION, "rr")
EDA_TOPIC = session_topic(STATION, SESSION, "eda")
LIFECYCLE_TOPIC = session_topic(STATION, SESSION, "lifecycle")
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
BEATS = 3
WINDOW = {"start": T0 - timedelta(minutes=1), "end": T0 + timedelta(hours=1)}
FAST = Backoff(initial_s=0.05, cap_s=0.3)


def _envelope(stream: str, seq: int, **fields: Any) -> dict[str, Any]:
    return {
        "schema": 1,
        "station": STATION,
        "session": SESSION,
        "stream": stream,
        "seq": seq,
        "sent_at": (T0 + timedelta(seconds=seq)).isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        **fields,
    }


def rr(seq: int, rr_ms: float = 800.0) -> bytes:
    return json.dumps(
        _envelope(
            "rr",
            seq,
            device="hrs-1",
            t0=(T0 + timedelta(seconds=seq)).isoformat(),
            source="sim",
            t_offset_ms=[i * 300.0 for i in range(BEATS)],
            rr_ms=[rr_ms + i for i in range(BEATS)],
        )
    ).encode()


def eda(seq: int) -> bytes:
    return json.dumps(
        _envelope(
            "eda",
            seq,
            device="gsr-1",
            t0=(T0 + timedelta(seconds=seq)).isoformat(),
            fs_hz=4.0,
            eda_us=[2.0, 2.1, 2.2, 2.3],
        )
    ).encode()


def expected_rr_times(seqs: range) -> list[int]:
    return sorted(
        epoch_us(T0 + timedelta(seconds=s)) + i * 300_000 for s in seqs for i in range(BEATS)
    )


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Gateway:
    """The ingest graph as the gateway's composition root will build it, with test adapters."""

    ledger: SqliteSeqLedger
    quarantine: SqliteQuarantine
    spool: Spool
    writer: SpoolingWriter
    ingest: Ingest
    mqtt: MqttIngest
    tasks: list[asyncio.Task[None]]

    def processed(self) -> int:
        c = self.ingest.counters
        return c.written + c.duplicates + c.failed + sum(c.quarantined.values())

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.ledger.close()
        self.quarantine.close()
        self.spool.close()


async def start_gateway(
    root: Path,
    broker: Any,
    store: TimeSeriesStore,
    *,
    protocol: str = "auto",
    shared_group: str | None = "gw",
    extra_sinks: Sequence[MessageSink] = (),
) -> Gateway:
    ledger = SqliteSeqLedger(root / "dedupe.sqlite3")
    quarantine = SqliteQuarantine(root / "quarantine.sqlite3")
    spool = Spool(root / "spool.sqlite3")
    writer = SpoolingWriter(store, spool, backoff=FAST, idle_poll_s=0.1)
    ingest = Ingest(
        sinks=[TimeSeriesSink(writer), *extra_sinks], ledger=ledger, quarantine=quarantine
    )
    user, password = broker.credentials(broker.gateway_user)
    mqtt = MqttIngest(
        MqttIngestSettings(
            host=broker.host,
            port=broker.port,
            username=user,
            password=password,
            client_id="shuxin-gateway-test-1",
            shared_group=shared_group,
            protocol=protocol,  # type: ignore[arg-type]
            max_batch=16,
        ),
        ingest,
        backoff=FAST,
    )
    tasks = [asyncio.create_task(mqtt.run()), asyncio.create_task(writer.drain_forever())]
    await wait_for(mqtt.ready.is_set, 60, "the gateway to subscribe")
    return Gateway(ledger, quarantine, spool, writer, ingest, mqtt, tasks)


async def publish(broker: Any, messages: Sequence[tuple[str, bytes]], retain: bool = False) -> None:
    user, password = broker.credentials(STATION)
    async with aiomqtt.Client(
        broker.host, broker.port, username=user, password=password, identifier=f"pub-{uuid.uuid4()}"
    ) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=retain)


def test_stored_exactly_once_duplicates_absorbed_hostile_quarantined(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    store = SqliteStore(tmp_path / "ts.sqlite3")

    async def scenario() -> None:
        gateway = await start_gateway(tmp_path, broker, store)
        assert gateway.mqtt.subscription == "shared"
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(30)])
        await publish(broker, [(EDA_TOPIC, eda(s)) for s in range(10)])
        await publish(broker, [(RR_TOPIC, rr(5)), (RR_TOPIC, rr(6, rr_ms=555.0))])
        name_subject = _envelope(
            "lifecycle",
            0,
            event="start",
            subject="王小明",
            protocol={"id": "resonance", "version": "1"},
            phases=[{"name": "baseline", "kind": "baseline", "duration_s": 300}],
            started_at=T0.isoformat(),
        )
        mismatch = json.loads(rr(40))
        mismatch["session"] = "st-a-20261123-9999"
        hostile = [
            (RR_TOPIC, b"\x00\xffnot json at all\x80"),
            (RR_TOPIC, rr(41).replace(b"800.0", b"NaN")),
            (RR_TOPIC, rr(42).replace(b'"schema": 1', b'"schema": 99')),
            (LIFECYCLE_TOPIC, json.dumps(name_subject, ensure_ascii=False).encode()),
            (RR_TOPIC, json.dumps(mismatch).encode()),
        ]
        await publish(broker, hostile)
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(30, 35)])
        await wait_for(lambda: gateway.processed() >= 52, 60, "52 messages to be handled")

        counters = gateway.ingest.counters
        assert counters.written == 45
        assert counters.duplicates == 2
        assert counters.quarantined == {
            "malformed_json": 2,
            "unsupported_version": 1,
            "invalid_payload": 2,
        }
        assert counters.failed == 0
        assert gateway.mqtt.counters.acknowledged == 52
        times = [p.time_us for p in store.query("rr", station=STATION, **WINDOW)]
        assert times == expected_rr_times(range(35)), "every beat exactly once"
        seq6 = store.query(
            "rr",
            station=STATION,
            start=T0 + timedelta(seconds=6),
            end=T0 + timedelta(seconds=6, milliseconds=1),
        )
        assert [p.field("rr_ms") for p in seq6] == [800.0], "the first version of seq 6 stays"
        assert store.count("eda") == 40
        rows = gateway.quarantine.recent()
        assert {r.code for r in rows} == set(counters.quarantined)
        assert all(r.topic in (RR_TOPIC, LIFECYCLE_TOPIC) and r.reason for r in rows)
        assert not any("王小明" in r.reason for r in rows)
        await gateway.stop()

        # A restarted gateway with the same ledger file, and a station replaying its outbox.
        restarted = await start_gateway(tmp_path, broker, store)
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(5)])
        await wait_for(lambda: restarted.processed() >= 5, 60, "the replay to be handled")
        assert restarted.ingest.counters.duplicates == 5
        assert store.count("rr") == 35 * BEATS
        await restarted.stop()

    asyncio.run(scenario())
    store.close()


def test_store_down_spools_then_everything_arrives_once(
    mosquitto_factory: Callable[..., Any], influxdb1_factory: Callable[[], Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    influx = influxdb1_factory()
    influx.create_database("shuxin")
    store = InfluxStore(
        InfluxSettings(url=influx.url, mode=InfluxMode.V1, database="shuxin", timeout_s=2.0)
    )

    async def scenario() -> None:
        gateway = await start_gateway(tmp_path, broker, store)
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(10)])
        await wait_for(lambda: gateway.processed() >= 10, 60, "10 messages stored")
        assert gateway.writer.counters.stored == 10 * BEATS

        await asyncio.to_thread(influx.stop)
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(10, 30)])
        await wait_for(lambda: gateway.processed() >= 30, 60, "30 messages handled")
        assert gateway.spool.stats().points > 0, "nothing was spooled while the store was down"
        assert gateway.ingest.counters.failed == 0
        assert gateway.mqtt.counters.acknowledged == 30, "spooled counts as durable"

        await asyncio.to_thread(influx.start)
        await wait_for(lambda: gateway.spool.stats().batches == 0, 60, "the spool to drain")
        await gateway.stop()

    asyncio.run(scenario())
    times = [p.time_us for p in store.query("rr", station=STATION, **WINDOW)]
    assert times == expected_rr_times(range(30)), "every beat exactly once after the outage"
    store.close()


class FailOnce:
    """A sink double that cannot make seq 3 durable the first time it sees it."""

    def __init__(self) -> None:
        self.failed = False

    def accept(self, messages: Sequence[Accepted]) -> None:
        if not self.failed and any(m.seq == 3 for m in messages):
            self.failed = True
            raise SpoolError("test: the disk is full")


def test_a_message_not_made_durable_is_redelivered_by_the_broker(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    store = SqliteStore(tmp_path / "ts.sqlite3")

    async def scenario() -> None:
        fail_once = FailOnce()
        gateway = await start_gateway(tmp_path, broker, store, extra_sinks=[fail_once])
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(6)])
        await wait_for(
            lambda: gateway.ledger.progress(RR_TOPIC).contiguous == 5, 20, "seq 0-5 stored"
        )
        assert fail_once.failed
        assert gateway.mqtt.counters.not_acknowledged >= 1
        assert gateway.mqtt.counters.connects >= 2, "no reconnect to get the redelivery"
        await gateway.stop()

    asyncio.run(scenario())
    times = [p.time_us for p in store.query("rr", station=STATION, **WINDOW)]
    assert times == expected_rr_times(range(6))
    store.close()


def test_mqtt_311_uses_a_plain_subscription_and_sees_retained_presence(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    store = SqliteStore(tmp_path / "ts.sqlite3")
    online = json.dumps(
        {"schema": 1, "station": STATION, "state": "online", "sent_at": T0.isoformat()}
    ).encode()

    async def scenario() -> None:
        await publish(broker, [(station_status_topic(STATION), online)], retain=True)
        gateway = await start_gateway(tmp_path, broker, store, protocol="3.1.1")
        assert gateway.mqtt.subscription == "plain"
        await publish(broker, [(RR_TOPIC, rr(s)) for s in range(3)])
        await wait_for(lambda: gateway.processed() >= 4, 60, "status and 3 messages")
        assert gateway.ingest.counters.written == 4
        await gateway.stop()

    asyncio.run(scenario())
    assert store.count("rr") == 3 * BEATS
    assert [p.time_us for p in store.query("rr", station=STATION, **WINDOW)] == (
        expected_rr_times(range(3))
    )
    store.close()
