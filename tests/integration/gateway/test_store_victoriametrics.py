"""InfluxStore in v2 mode (influxdb-client's /api/v2/write) against a real VictoriaMetrics,
verified through VictoriaMetrics' own export API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shuxin.contract.codec import decode
from shuxin.contract.topics import session_topic
from shuxin.gateway.errors import StoreQueryError
from shuxin.gateway.store_influx import InfluxMode, InfluxSettings, InfluxStore
from shuxin.gateway.timeseries import Point, points_from_message

pytestmark = pytest.mark.integration

SESSION = "vm-test-20261123-0001"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _message(station: str, stream: str, seq: int, **fields: Any) -> Any:
    payload = {
        "schema": 1,
        "station": station,
        "session": SESSION,
        "stream": stream,
        "seq": seq,
        "sent_at": T0.isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        **fields,
    }
    return decode(session_topic(station, SESSION, stream), json.dumps(payload).encode())[1]


@pytest.fixture
def station() -> str:
    """A station id no other test writes, so the shared server's series stay apart."""
    return f"vm-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(victoriametrics: Any) -> Any:
    influx = InfluxStore(
        InfluxSettings(url=victoriametrics.url, mode=InfluxMode.V2, bucket="shuxin", batch_size=3)
    )
    yield influx
    influx.close()


def _export(server: Any, metric: str, station: str) -> dict[str, Any]:
    server.force_flush()
    series = server.export(f'{{__name__="{metric}",station="{station}"}}')
    assert len(series) == 1, f"expected one series of {metric}, got {len(series)}"
    result: dict[str, Any] = series[0]
    return result


def test_v2_write_path_lands_every_sample(
    store: InfluxStore, victoriametrics: Any, station: str
) -> None:
    rr = points_from_message(
        _message(
            station,
            "rr",
            0,
            device="hrs-1",
            t0=T0.isoformat(),
            source="ppi",
            t_offset_ms=[0.0, 850.0, 1700.5],
            rr_ms=[850, 850, 850.5],
            contact="detected",
        )
    )
    eda = points_from_message(
        _message(
            station, "eda", 0, device="gsr-1", t0=T0.isoformat(), fs_hz=4.0, eda_us=[1.5, 1.75]
        )
    )
    store.write(rr + eda)  # 5 lines in requests of at most 3

    rr_series = _export(victoriametrics, "rr_rr_ms", station)
    assert rr_series["metric"] == {
        "__name__": "rr_rr_ms",
        "station": station,
        "device": "hrs-1",
        "source": "ppi",
    }
    assert rr_series["values"] == [850, 850, 850.5]
    # VictoriaMetrics keeps milliseconds: 1700.5 ms after t0 is stored as 1700 ms.
    t0_ms = int(T0.timestamp() * 1000)
    assert rr_series["timestamps"] == [t0_ms, t0_ms + 850, t0_ms + 1700]
    assert _export(victoriametrics, "rr_contact", station)["values"] == [1, 1, 1]
    eda_series = _export(victoriametrics, "eda_eda_us", station)
    assert eda_series["values"] == [1.5, 1.75]
    assert eda_series["timestamps"] == [t0_ms, t0_ms + 250]


def test_metrics_become_one_series_per_metric_name(
    store: InfluxStore, victoriametrics: Any, station: str
) -> None:
    message = _message(
        station,
        "metrics",
        4,
        t=(T0 + timedelta(minutes=5)).isoformat(),
        window_s=64,
        values={"rmssd_ms": 41.5, "coherence": 2.25},
        algorithm_version="hrv-1.0",
    )
    store.write(points_from_message(message))
    coherence = _export(victoriametrics, "metrics_coherence", station)
    assert coherence["metric"]["algorithm"] == "hrv-1.0"
    assert coherence["values"] == [2.25]
    assert _export(victoriametrics, "metrics_window_s", station)["values"] == [64]


def test_victoriametrics_has_no_influxql_and_the_adapter_says_so(
    store: InfluxStore, station: str
) -> None:
    assert store.ping()
    store.write([Point.make("rr", {"station": station, "device": "d"}, {"rr_ms": 1.0}, 10**15)])
    # VictoriaMetrics answers /query with a canned SHOW DATABASES result, never our points.
    with pytest.raises(StoreQueryError, match="InfluxQL"):
        store.query("rr", station=station, start=T0 - timedelta(days=1), end=T0)
