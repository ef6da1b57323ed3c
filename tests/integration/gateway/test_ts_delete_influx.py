"""Deleting points through the time-series port against real servers: InfluxDB 1.6 (InfluxQL
``DELETE`` on ``/query``) and VictoriaMetrics (export → ``delete_series`` → re-import of what
lies outside the range). Each test proves the chosen points are gone and every other point
(another device, another station, outside the range, another measurement) stays."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shuxin.gateway.store_influx import DeleteApi, InfluxMode, InfluxSettings, InfluxStore
from shuxin.gateway.timeseries import Point, epoch_us

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
#: The session whose points go: [T0 + 10 s, T0 + 20 s) on device hrs-1.
START, END = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)


def _points(station: str) -> list[Point]:
    """One beat per second for 30 s on two devices of ``station``, plus one eda sample/s."""
    points = []
    for second in range(30):
        time_us = epoch_us(T0) + second * 1_000_000
        for device in ("hrs-1", "hrs-2"):
            points.append(
                Point.make(
                    "rr",
                    {"station": station, "device": device, "source": "ppi"},
                    {"rr_ms": 800.0 + second},
                    time_us,
                )
            )
        points.append(
            Point.make("eda", {"station": station, "device": "hrs-1"}, {"eda_us": 2.5}, time_us)
        )
    return points


def _expected_after_delete(points: list[Point], station: str) -> list[Point]:
    start_us, end_us = epoch_us(START), epoch_us(END)
    return [
        p
        for p in points
        if not (
            p.measurement == "rr"
            and p.tag("station") == station
            and p.tag("device") == "hrs-1"
            and start_us <= p.time_us < end_us
        )
    ]


# --- InfluxDB 1.x ------------------------------------------------------------------------------


@pytest.fixture
def influx1_store(influxdb1: Any) -> Iterator[InfluxStore]:
    database = f"shuxin_{uuid.uuid4().hex[:12]}"
    influxdb1.create_database(database)
    store = InfluxStore(InfluxSettings(url=influxdb1.url, mode=InfluxMode.V1, database=database))
    assert store.settings.resolved_delete_api is DeleteApi.INFLUXQL
    yield store
    store.close()


def _all_points(store: InfluxStore, stations: list[str]) -> list[Point]:
    window = {"start": T0 - timedelta(minutes=1), "end": T0 + timedelta(minutes=1)}
    found = [
        p for s in stations for m in ("rr", "eda") for p in store.query(m, station=s, **window)
    ]
    return sorted(found, key=lambda p: (p.measurement, p.series_key, p.time_us))


def test_influxdb1_deletes_one_device_range_and_keeps_the_rest(
    influx1_store: InfluxStore,
) -> None:
    points = _points("st-a") + _points("st-b")
    influx1_store.write(points)
    assert len(_all_points(influx1_store, ["st-a", "st-b"])) == len(points)

    result = influx1_store.delete(["rr"], station="st-a", device="hrs-1", start=START, end=END)

    assert result is None  # InfluxQL DELETE does not count
    expected = sorted(
        _expected_after_delete(points, "st-a"),
        key=lambda p: (p.measurement, p.series_key, p.time_us),
    )
    assert _all_points(influx1_store, ["st-a", "st-b"]) == expected
    assert len(points) - len(expected) == 10  # beats at 10 … 19 s of one device
    # Deleting again finds nothing and is not an error.
    influx1_store.delete(["rr"], station="st-a", device="hrs-1", start=START, end=END)
    assert _all_points(influx1_store, ["st-a", "st-b"]) == expected


def test_influxdb1_unbounded_delete_is_a_retention_purge(influx1_store: InfluxStore) -> None:
    points = _points("st-a") + _points("st-b")
    influx1_store.write(points)
    influx1_store.delete(["rr", "eda"], station=None, start=None, end=START)
    kept = _all_points(influx1_store, ["st-a", "st-b"])
    assert kept
    assert all(p.time_us >= epoch_us(START) for p in kept)
    assert len(kept) == len([p for p in points if p.time_us >= epoch_us(START)])


# --- VictoriaMetrics -----------------------------------------------------------------------------


@pytest.fixture
def vm_store(victoriametrics: Any) -> Iterator[InfluxStore]:
    store = InfluxStore(
        InfluxSettings(
            url=victoriametrics.url,
            mode=InfluxMode.V2,
            bucket="shuxin",
            delete_api=DeleteApi.VICTORIAMETRICS,
        )
    )
    yield store
    store.close()


def _vm_samples(server: Any, metric: str, station: str) -> dict[str, list[int]]:
    """Device → sample timestamps (ms) of ``metric`` at ``station``."""
    server.force_flush()
    return {
        series["metric"].get("device", ""): sorted(series["timestamps"])
        for series in server.export(f'{{__name__="{metric}",station="{station}"}}')
    }


def test_victoriametrics_deletes_one_device_range_and_keeps_the_rest(
    vm_store: InfluxStore, victoriametrics: Any
) -> None:
    # Station ids unique to this test: the VictoriaMetrics server is shared by the run.
    mine, other = f"vm-{uuid.uuid4().hex[:8]}", f"vm-{uuid.uuid4().hex[:8]}"
    vm_store.write(_points(mine) + _points(other))
    every_second_ms = [int(T0.timestamp() * 1000) + s * 1000 for s in range(30)]
    before = _vm_samples(victoriametrics, "rr_rr_ms", mine)
    assert before == {"hrs-1": every_second_ms, "hrs-2": every_second_ms}

    deleted = vm_store.delete(["rr"], station=mine, device="hrs-1", start=START, end=END)

    assert deleted == 10  # beats at 10 … 19 s; the adapter counts what it dropped
    after = _vm_samples(victoriametrics, "rr_rr_ms", mine)
    assert after["hrs-2"] == every_second_ms
    assert after["hrs-1"] == every_second_ms[:10] + every_second_ms[20:]
    assert _vm_samples(victoriametrics, "eda_eda_us", mine) == {"hrs-1": every_second_ms}
    assert _vm_samples(victoriametrics, "rr_rr_ms", other) == {
        "hrs-1": every_second_ms,
        "hrs-2": every_second_ms,
    }
    assert vm_store.delete(["rr"], station=mine, device="hrs-1", start=START, end=END) == 0


def test_victoriametrics_unbounded_delete_drops_whole_series(
    vm_store: InfluxStore, victoriametrics: Any
) -> None:
    mine, other = f"vm-{uuid.uuid4().hex[:8]}", f"vm-{uuid.uuid4().hex[:8]}"
    vm_store.write(_points(mine) + _points(other))
    victoriametrics.force_flush()
    assert vm_store.delete(["rr", "eda"], station=mine, start=None, end=None) == 90
    assert _vm_samples(victoriametrics, "rr_rr_ms", mine) == {}
    assert _vm_samples(victoriametrics, "eda_eda_us", mine) == {}
    assert len(_vm_samples(victoriametrics, "rr_rr_ms", other)) == 2
