"""The embedded SQLite time-series store: round trip, idempotent upsert, range and filters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shuxin.gateway.errors import StoreUnavailableError
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.timeseries import Point, epoch_us, from_epoch_us

T0_US = epoch_us(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))


def _rr(station: str, device: str, index: int, rr_ms: float) -> Point:
    return Point.make(
        "rr",
        {"station": station, "device": device, "source": "sim"},
        {"rr_ms": rr_ms, "contact": 1},
        T0_US + index * 800_000,
    )


def test_round_trip_keeps_tags_fields_and_types(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3")
    points = [_rr("st-a", "hrs-1", i, 800.0 + i) for i in range(5)]
    store.write(points)
    got = store.query(
        "rr", station="st-a", start=from_epoch_us(T0_US), end=from_epoch_us(T0_US + 10**7)
    )
    assert got == points
    assert all(type(p.field("rr_ms")) is float and type(p.field("contact")) is int for p in got)
    store.close()


def test_writing_the_same_points_again_changes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3")
    points = [_rr("st-a", "hrs-1", i, 800.0) for i in range(10)]
    store.write(points)
    store.write(points)
    store.write(points[3:7])
    assert store.count("rr") == 10
    store.close()


def test_a_point_written_twice_merges_fields_like_influxdb(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3")
    tags = {"station": "st-a", "device": "d1"}
    store.write([Point.make("eda", tags, {"eda_us": 2.0, "clipped": 1}, T0_US)])
    store.write([Point.make("eda", tags, {"eda_us": 2.5, "gap_before": 1}, T0_US)])
    (point,) = store.query(
        "eda", station="st-a", start=from_epoch_us(T0_US), end=from_epoch_us(T0_US + 1)
    )
    assert dict(point.fields) == {"eda_us": 2.5, "clipped": 1, "gap_before": 1}
    store.close()


def test_query_filters_by_station_device_and_half_open_range(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3")
    store.write(
        [_rr("st-a", "hrs-1", i, 800.0) for i in range(4)]
        + [_rr("st-a", "hrs-2", i, 900.0) for i in range(4)]
        + [_rr("st-b", "hrs-1", i, 700.0) for i in range(4)]
    )
    start, end = from_epoch_us(T0_US + 800_000), from_epoch_us(T0_US + 3 * 800_000)
    one_device = store.query("rr", station="st-a", device="hrs-2", start=start, end=end)
    # [start, end): indices 1 and 2; index 3 sits exactly on `end` and is excluded.
    assert [p.time_us for p in one_device] == [T0_US + 800_000, T0_US + 1_600_000]
    assert {p.tag("device") for p in one_device} == {"hrs-2"}
    both = store.query("rr", station="st-a", start=start, end=end)
    assert len(both) == 4
    assert [p.time_us for p in both] == sorted(p.time_us for p in both)
    assert store.query("eda", station="st-a", start=start, end=end) == []
    store.close()


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ts.sqlite3"
    store = SqliteStore(path)
    store.write([_rr("st-a", "hrs-1", 0, 812.5)])
    store.close()
    reopened = SqliteStore(path)
    assert reopened.ping()
    assert reopened.count() == 1
    reopened.write([_rr("st-a", "hrs-1", 0, 812.5)])
    assert reopened.count() == 1
    reopened.close()


def test_concurrent_writers_are_serialised(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3")

    def write(device: str) -> None:
        for i in range(50):
            store.write([_rr("st-a", device, i, 800.0)])

    threads = [threading.Thread(target=write, args=(f"d{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count("rr") == 200
    store.close()


def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite3")
    store.close()
    assert not store.ping()
    with pytest.raises(StoreUnavailableError):
        store.write([_rr("st-a", "hrs-1", 0, 800.0)])
