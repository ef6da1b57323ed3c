"""InfluxStore in InfluxDB 1.x mode against a real InfluxDB 1.6: v1 /write + InfluxQL round trip."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shuxin.contract.codec import decode
from shuxin.contract.topics import session_topic
from shuxin.gateway.errors import StoreQueryError, StoreRejectedError, StoreUnavailableError
from shuxin.gateway.store_influx import InfluxMode, InfluxSettings, InfluxStore
from shuxin.gateway.timeseries import Point, epoch_us, points_from_message

pytestmark = pytest.mark.integration

STATION = "st-a"
SESSION = "st-a-20261123-0001"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WINDOW = {"start": T0 - timedelta(minutes=1), "end": T0 + timedelta(minutes=10)}


def _message(stream: str, seq: int, **fields: Any) -> Any:
    payload = {
        "schema": 1,
        "station": STATION,
        "session": SESSION,
        "stream": stream,
        "seq": seq,
        "sent_at": T0.isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        "t0": (T0 + timedelta(seconds=seq)).isoformat(),
        **fields,
    }
    return decode(session_topic(STATION, SESSION, stream), json.dumps(payload).encode())[1]


def _rr_points(seq: int, device: str = "hrs-1") -> list[Point]:
    message = _message(
        "rr",
        seq,
        device=device,
        source="hrs",
        t_offset_ms=[0.0, 812.5, 1625.0],
        rr_ms=[812.5, 812.5, 790.25],
        contact="detected",
    )
    return points_from_message(message)


@pytest.fixture
def store(influxdb1: Any) -> Any:
    database = f"shuxin_{uuid.uuid4().hex[:12]}"
    influxdb1.create_database(database)
    influx = InfluxStore(
        InfluxSettings(url=influxdb1.url, mode=InfluxMode.V1, database=database, batch_size=4)
    )
    yield influx
    influx.close()


def test_v1_write_and_influxql_read_round_trip(store: InfluxStore) -> None:
    rr = _rr_points(0) + _rr_points(1)
    eda = points_from_message(
        _message("eda", 0, device="gsr-1", fs_hz=4.0, eda_us=[2.0, 2.25, 2.5], flags=["clipped"])
    )
    store.write(rr + eda)  # 9 lines in requests of at most 4 (batch_size)
    # The two batches' beats interleave in time; a query returns them in time order.
    assert store.query("rr", station=STATION, **WINDOW) == sorted(rr, key=lambda p: p.time_us)
    assert store.query("eda", station=STATION, device="gsr-1", **WINDOW) == eda
    got = store.query("rr", station=STATION, **WINDOW)
    assert all(type(p.field("rr_ms")) is float for p in got), "812.5 and 790.25 stay floats"
    assert all(p.field("contact") == 1 for p in got)


def test_writing_again_overwrites_instead_of_adding(store: InfluxStore) -> None:
    points = _rr_points(0)
    store.write(points)
    store.write(points)
    store.write(points[1:])
    assert store.query("rr", station=STATION, **WINDOW) == points


def test_query_filters_device_and_uses_a_half_open_range(store: InfluxStore) -> None:
    store.write(_rr_points(0, "hrs-1") + _rr_points(0, "hrs-2"))
    second_beat = epoch_us(T0) + 812_500
    got = store.query(
        "rr",
        station=STATION,
        device="hrs-2",
        start=T0,
        end=datetime.fromtimestamp(second_beat / 1e6, UTC),
    )
    assert [(p.tag("device"), p.time_us) for p in got] == [("hrs-2", epoch_us(T0))]
    assert store.query("rr", station="st-b", **WINDOW) == []


def test_retention_policy_is_used_for_writes_and_reads(influxdb1: Any) -> None:
    database = f"shuxin_{uuid.uuid4().hex[:12]}"
    influxdb1.create_database(database)
    influxdb1.query(f'CREATE RETENTION POLICY "short" ON "{database}" DURATION 1000d REPLICATION 1')
    store = InfluxStore(
        InfluxSettings(
            url=influxdb1.url, mode=InfluxMode.V1, database=database, retention_policy="short"
        )
    )
    points = _rr_points(2)
    store.write(points)
    assert store.query("rr", station=STATION, **WINDOW) == points
    raw = influxdb1.query(f'SELECT COUNT(*) FROM "{database}"."short"."rr"', db=database)
    assert raw["results"][0]["series"][0]["values"][0][1:] == [3, 3]
    store.close()


def test_a_field_type_conflict_is_rejected(store: InfluxStore) -> None:
    store.write(_rr_points(0))
    # Same shard (InfluxDB 1.x checks field types per shard), rr_ms as an integer.
    clash = Point.make(
        "rr", {"station": STATION, "device": "hrs-9", "source": "hrs"}, {"rr_ms": 5}, epoch_us(T0)
    )
    with pytest.raises(StoreRejectedError, match="HTTP 400"):
        store.write([clash])


def test_missing_database_and_dead_server_are_unavailable(influxdb1: Any) -> None:
    missing = InfluxStore(
        InfluxSettings(url=influxdb1.url, mode=InfluxMode.V1, database="shuxin_missing_db")
    )
    assert missing.ping()
    with pytest.raises(StoreUnavailableError, match="HTTP 404"):
        missing.write(_rr_points(0))
    with pytest.raises(StoreQueryError, match="database not found"):
        missing.query("rr", station=STATION, **WINDOW)
    missing.close()

    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    dead = InfluxStore(
        InfluxSettings(url="http://127.0.0.1:9", mode=InfluxMode.V1, database="x", timeout_s=2)
    )
    assert not dead.ping()
    with pytest.raises(StoreUnavailableError):
        dead.write(_rr_points(0))
    with pytest.raises(StoreQueryError):
        dead.query("rr", station=STATION, **WINDOW)
    dead.close()


def test_requests_reuse_one_pooled_connection(store: InfluxStore) -> None:
    """Writes, reads and pings share one keep-alive connection: an unreleased response would
    make every request open a new TCP connection (what ingest paid before)."""
    for seq in range(10):
        store.write(_rr_points(seq))  # 3 points, batch_size 4: one request each
        assert store.ping()
    assert (
        len(
            store.query(
                "rr", station=STATION, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1)
            )
        )
        == 30
    )
    manager = store._client.api_client.rest_client.pool_manager
    assert len(manager.pools) == 1
    pool = manager.connection_from_url(store.settings.url)  # the same pool, not a new one
    assert len(manager.pools) == 1
    assert pool.num_connections == 1  # urllib3 counts every connection it ever opened
