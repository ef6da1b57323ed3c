"""Contract messages → time-series points: times, tags, fields, determinism, and the schema doc."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shuxin.contract.codec import decode
from shuxin.contract.topics import device_status_topic, session_topic, station_status_topic
from shuxin.gateway.store_influx import to_line
from shuxin.gateway.timeseries import (
    SCHEMAS,
    Point,
    coerce_fields,
    epoch_us,
    from_epoch_us,
    points_from_message,
)

ROOT = Path(__file__).resolve().parents[3]
STATION = "st-a"
SESSION = "st-a-20261123-0001"
T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
T0_US = epoch_us(T0)


def _message(stream: str, **fields: Any) -> Any:
    payload = {
        "schema": 1,
        "station": STATION,
        "session": SESSION,
        "stream": stream,
        "seq": 3,
        "sent_at": "2026-11-23T08:00:01Z",
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        **fields,
    }
    _, message = decode(session_topic(STATION, SESSION, stream), json.dumps(payload).encode())
    return message


def _batch(stream: str, **fields: Any) -> Any:
    return _message(stream, device="hrs-1", t0="2026-11-23T08:00:00Z", **fields)


def test_epoch_conversion_is_exact_to_the_microsecond() -> None:
    moment = datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=UTC)
    assert from_epoch_us(epoch_us(moment)) == moment
    assert epoch_us(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    with pytest.raises(ValueError, match="naive"):
        epoch_us(datetime(2026, 1, 1))


def test_rr_point_time_is_t0_plus_each_offset() -> None:
    message = _batch(
        "rr",
        source="hrs",
        t_offset_ms=[0.0, 812.5, 1625.0009765625],
        rr_ms=[800, 812.5, 812.5],
        contact="detected",
    )
    points = points_from_message(message)
    # round(offset_ms * 1000): 1625.0009765625 ms → 1625001 µs (sub-µs part rounded).
    assert [p.time_us - T0_US for p in points] == [0, 812_500, 1_625_001]
    assert [p.field("rr_ms") for p in points] == [800.0, 812.5, 812.5]
    assert all(type(p.field("rr_ms")) is float for p in points), "an int would clash in Influx"
    assert all(p.field("contact") == 1 for p in points)
    assert points[0].tags == (("device", "hrs-1"), ("source", "hrs"), ("station", STATION))
    assert {p.measurement for p in points} == {"rr"}


def test_repeated_beat_times_become_strictly_increasing() -> None:
    # The contract allows equal offsets; two beats must not overwrite each other.
    message = _batch("rr", source="hrs", t_offset_ms=[500.0, 500.0, 500.0], rr_ms=[700, 710, 720])
    times = [p.time_us - T0_US for p in points_from_message(message)]
    assert times == [500_000, 500_001, 500_002]


def test_contact_unknown_is_no_field() -> None:
    for contact in ("unsupported", None):
        extra = {} if contact is None else {"contact": contact}
        message = _batch("rr", source="sim", t_offset_ms=[0.0], rr_ms=[900.0], **extra)
        assert points_from_message(message)[0].field("contact") is None
    not_detected = _batch("hr", t_offset_ms=[0.0], hr_bpm=[60.0], contact="not_detected")
    assert points_from_message(not_detected)[0].field("contact") == 0


def test_hr_energy_only_on_the_first_point() -> None:
    message = _batch("hr", t_offset_ms=[0.0, 1000.0], hr_bpm=[61, 62.5], energy_kj=12)
    points = points_from_message(message)
    assert [p.field("hr_bpm") for p in points] == [61.0, 62.5]
    assert [p.field("energy_kj") for p in points] == [12, None]
    assert points[0].tags == (("device", "hrs-1"), ("station", STATION))


def test_eda_samples_are_regular_and_flags_are_carried() -> None:
    message = _batch("eda", fs_hz=4.0, eda_us=[2.0, 2.1, 2.2], flags=["gap_before", "contact_lost"])
    points = points_from_message(message)
    assert [p.time_us - T0_US for p in points] == [0, 250_000, 500_000]
    assert [p.field("eda_us") for p in points] == [2.0, 2.1, 2.2]
    assert [p.field("gap_before") for p in points] == [1, None, None]
    assert [p.field("contact_lost") for p in points] == [1, 1, 1]
    assert all(p.field("clipped") is None for p in points)


def test_eda_time_rounding_at_an_awkward_rate() -> None:
    # 3 Hz: 333333.33… µs per sample, rounded per sample index (no drift accumulates).
    message = _batch("eda", fs_hz=3.0, eda_us=[1.0] * 4)
    assert [p.time_us - T0_US for p in points_from_message(message)] == [
        0,
        333_333,
        666_667,
        1_000_000,
    ]


def test_raw_waveforms_map_with_their_types() -> None:
    ecg = points_from_message(_batch("ecg", fs_hz=130.0, ecg_uv=[-120, 0, 455]))
    assert [p.field("ecg_uv") for p in ecg] == [-120, 0, 455]
    assert all(type(p.field("ecg_uv")) is int for p in ecg)
    assert ecg[1].time_us - T0_US == round(1e6 / 130)
    ppg = points_from_message(_batch("ppg", fs_hz=55.0, ppg=[1.5, -2]))
    assert [p.field("ppg") for p in ppg] == [1.5, -2.0]


def test_metrics_are_one_point_at_the_window_end() -> None:
    message = _message(
        "metrics",
        t="2026-11-23T08:05:00Z",
        window_s=64,
        values={"rmssd_ms": 42.5, "coherence": 1},
        algorithm_version="hrv-1.0",
    )
    (point,) = points_from_message(message)
    assert point.time_us == T0_US + 300_000_000
    assert point.tags == (("algorithm", "hrv-1.0"), ("station", STATION))
    assert dict(point.fields) == {"window_s": 64.0, "rmssd_ms": 42.5, "coherence": 1.0}


def test_non_series_messages_map_to_nothing() -> None:
    lifecycle = _message(
        "lifecycle",
        event="start",
        subject="S-7F3K2Q",
        protocol={"id": "resonance", "version": "1"},
        phases=[{"name": "baseline", "kind": "baseline", "duration_s": 300}],
        started_at="2026-11-23T08:00:00Z",
    )
    events = _message(
        "events", events=[{"kind": "marker", "t": "2026-11-23T08:00:02Z", "label": "x"}]
    )
    _, station = decode(
        station_status_topic(STATION),
        b'{"schema":1,"station":"st-a","state":"online","sent_at":"2026-11-23T08:00:00Z"}',
    )
    _, device = decode(
        device_status_topic(STATION, "hrs-1"),
        b'{"schema":1,"station":"st-a","device":"hrs-1","sent_at":"2026-11-23T08:00:00Z",'
        b'"profile":"polar-h10","connected":true,"battery_pct":80}',
    )
    for message in (lifecycle, events, station, device):
        assert points_from_message(message) == []


def _all_stream_messages() -> list[Any]:
    return [
        _batch("rr", source="ppi", t_offset_ms=[0.0, 900.0], rr_ms=[900, 905], contact="detected"),
        _batch("hr", t_offset_ms=[0.0], hr_bpm=[66], contact="detected", energy_kj=3),
        _batch("eda", fs_hz=8.0, eda_us=[3.0, 3.1], flags=["clipped", "gap_before"]),
        _batch("ecg", fs_hz=130.0, ecg_uv=[1, 2]),
        _batch("ppg", fs_hz=55.0, ppg=[0.5]),
        _message(
            "metrics",
            t="2026-11-23T08:05:00Z",
            window_s=64,
            values={"lnrmssd": 3.4},
            algorithm_version="hrv-1.0",
        ),
    ]


def test_mapping_is_deterministic_and_never_tags_a_session() -> None:
    for message in _all_stream_messages():
        first = points_from_message(message)
        again = points_from_message(message.model_copy())
        assert first == again
        assert first, f"{message.stream} produced no points"
        for point in first:
            assert "session" not in dict(point.tags)
            assert SESSION not in dict(point.tags).values()
        assert len({p.identity for p in first}) == len(first), "two points share an identity"


def test_points_follow_the_declared_schema() -> None:
    for message in _all_stream_messages():
        for point in points_from_message(message):
            schema = SCHEMAS[point.measurement]
            assert tuple(sorted(schema.tags)) == tuple(k for k, _ in point.tags)
            for name, value in point.fields:
                declared = schema.field_type(name)
                assert declared is not None, f"{point.measurement}.{name} is not in the schema"
                assert type(value) is declared, f"{point.measurement}.{name} has the wrong type"


def test_schema_doc_names_every_measurement_tag_and_field() -> None:
    doc = (ROOT / "docs" / "gateway-timeseries.md").read_text(encoding="utf-8")
    for name, schema in SCHEMAS.items():
        assert f"`{name}`" in doc, f"measurement {name} missing from the doc"
        for tag in schema.tags:
            assert f"`{tag}`" in doc, f"tag {tag} missing from the doc"
        for field_name in schema.fields:
            assert f"`{field_name}`" in doc, f"field {field_name} missing from the doc"
    assert re.search(r"session.{0,40}never a tag", doc, re.IGNORECASE | re.DOTALL)


def test_coerce_restores_schema_types_from_json_numbers() -> None:
    assert coerce_fields("rr", {"rr_ms": 800, "contact": 1.0, "junk": None}) == {
        "rr_ms": 800.0,
        "contact": 1,
    }
    assert type(coerce_fields("rr", {"rr_ms": 800})["rr_ms"]) is float
    assert coerce_fields("metrics", {"lnrmssd": 3, "window_s": 64}) == {
        "lnrmssd": 3.0,
        "window_s": 64.0,
    }
    assert coerce_fields("rr", {"station": "st-a", "unknown_field": 5}) == {}


def test_point_refuses_what_no_store_can_hold() -> None:
    with pytest.raises(ValueError, match="finite"):
        Point.make("rr", {"station": "a"}, {"rr_ms": math.nan}, 0)
    with pytest.raises(ValueError, match="at least one field"):
        Point.make("rr", {"station": "a"}, {}, 0)
    with pytest.raises(ValueError, match="non-empty"):
        Point.make("rr", {"station": ""}, {"rr_ms": 1.0}, 0)
    with pytest.raises(ValueError, match="sorted"):
        Point("rr", (("z", "1"), ("a", "2")), (("rr_ms", 1.0),), 0)
    with pytest.raises(ValueError, match="measurement"):
        Point.make("RR measurement", {"station": "a"}, {"rr_ms": 1.0}, 0)


def test_series_key_and_line_protocol_escape_special_characters() -> None:
    point = Point.make("rr", {"station": "a b,c=d", "device": "x"}, {"rr_ms": 1.5, "n": 2}, 7)
    assert point.series_key == "device=x,station=a\\ b\\,c\\=d"
    assert to_line(point) == "rr,device=x,station=a\\ b\\,c\\=d n=2i,rr_ms=1.5 7"
    flag = Point.make("x", {"station": "a"}, {"ok": True, "v": 1e-05}, 1)
    assert to_line(flag) == "x,station=a ok=true,v=1e-05 1"


def test_batch_spanning_an_hour_keeps_offsets_exact() -> None:
    # The contract allows offsets up to 3,600,000 ms; µs arithmetic stays exact in int.
    message = _batch("rr", source="sim", t_offset_ms=[3_599_999.999], rr_ms=[1000])
    (point,) = points_from_message(message)
    assert from_epoch_us(point.time_us) == T0 + timedelta(milliseconds=3_599_999.999)
