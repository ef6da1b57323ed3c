"""The v1 MQTT contract: topics, round trips, and rejection of bad or hostile payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuxin.contract import codec, messages
from shuxin.contract.errors import (
    ContractError,
    InvalidPayloadError,
    InvalidTopicError,
    MalformedJsonError,
    PayloadTooLargeError,
    UnsupportedVersionError,
)
from shuxin.contract.ids import is_subject_code, new_subject_code
from shuxin.contract.schema import diff_schema_dir
from shuxin.contract.topics import (
    DeviceStatusTopic,
    SessionTopic,
    StationStatusTopic,
    Stream,
    device_status_topic,
    parse_topic,
    session_topic,
    shared_subscription,
    station_filter,
    station_status_topic,
)

ROOT = Path(__file__).resolve().parents[3]
STATION = "st-a"
SESSION = "st-a-20261123-0001"
T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
ENVELOPE: dict[str, Any] = {
    "schema": 1,
    "station": STATION,
    "session": SESSION,
    "seq": 7,
    "sent_at": "2026-11-23T08:00:01.250Z",
    "clock": {"offset_ms": -12.5, "source": "ntp", "uncertainty_ms": 3.0},
}


def _payloads() -> dict[str, dict[str, Any]]:
    batch = {**ENVELOPE, "device": "hrs-1", "t0": "2026-11-23T08:00:00Z"}
    return {
        "lifecycle": {
            **ENVELOPE,
            "stream": "lifecycle",
            "event": "start",
            "subject": "S-7F3K2Q",
            "protocol": {"id": "rest-resonance-recovery", "version": "1"},
            "phases": [
                {"name": "baseline", "kind": "baseline", "duration_s": 300},
                {
                    "name": "resonance",
                    "kind": "training",
                    "duration_s": 600,
                    "pacer_bpm": 6.0,
                    "inhale_exhale_ratio": 0.67,
                },
                {"name": "recovery", "kind": "recovery", "duration_s": 300},
            ],
            "devices": ["hrs-1", "gsr-1"],
            "started_at": "2026-11-23T08:00:00+08:00",
        },
        "rr": {
            **batch,
            "stream": "rr",
            "source": "hrs",
            "t_offset_ms": [0.0, 812.5],
            "rr_ms": [830.1, 812.5],
            "contact": "detected",
        },
        "hr": {**batch, "stream": "hr", "t_offset_ms": [0.0], "hr_bpm": [72.0], "energy_kj": 3},
        "eda": {**batch, "stream": "eda", "fs_hz": 8.0, "eda_us": [2.1, 2.11, 2.13, 2.2]},
        "ecg": {**batch, "stream": "ecg", "fs_hz": 130.0, "ecg_uv": [-120, 35, 1400, -80]},
        "ppg": {**batch, "stream": "ppg", "fs_hz": 55.0, "ppg": [1021.0, 1033.5]},
        "metrics": {
            **ENVELOPE,
            "stream": "metrics",
            "t": "2026-11-23T08:01:00Z",
            "window_s": 60.0,
            "values": {"hr_bpm": 71.2, "rmssd_ms": 41.0, "coherence_ratio": 2.4},
            "algorithm_version": "hrv_stream/1.0.0",
        },
        "events": {
            **ENVELOPE,
            "stream": "events",
            "events": [
                {
                    "kind": "phase_start",
                    "t": "2026-11-23T08:00:00Z",
                    "phase": "baseline",
                    "index": 0,
                },
                {"kind": "rating", "t": "2026-11-23T08:00:00Z", "when": "before", "value": 6},
                {"kind": "marker", "t": "2026-11-23T08:02:00Z", "label": "movement"},
                {
                    "kind": "vr_event",
                    "t": "2026-11-23T08:05:00Z",
                    "scene": "forest",
                    "label": "start",
                },
                {"kind": "note", "t": "2026-11-23T08:06:00Z", "text": "参与者自述睡眠不足"},
                {
                    "kind": "gap",
                    "t": "2026-11-23T08:07:00Z",
                    "device": "hrs-1",
                    "start": "2026-11-23T08:06:50Z",
                    "end": "2026-11-23T08:07:00Z",
                    "reason": "link_lost",
                },
            ],
        },
    }


def _topic(stream: str) -> str:
    return session_topic(STATION, SESSION, stream)


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


# --- topics --------------------------------------------------------------------------------


def test_topic_builders_and_parser_round_trip() -> None:
    assert station_status_topic(STATION) == "shuxin/v1/st-a/status"
    assert parse_topic("shuxin/v1/st-a/status") == StationStatusTopic(STATION)
    assert device_status_topic(STATION, "hrs-1") == "shuxin/v1/st-a/devices/hrs-1/status"
    assert parse_topic("shuxin/v1/st-a/devices/hrs-1/status") == DeviceStatusTopic(STATION, "hrs-1")
    for stream in Stream:
        topic = session_topic(STATION, SESSION, stream)
        assert parse_topic(topic) == SessionTopic(STATION, SESSION, stream)
        assert str(parse_topic(topic)) == topic
    assert station_filter(STATION) == "shuxin/v1/st-a/#"
    assert shared_subscription("gw") == "$share/gw/shuxin/v1/#"


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "shuxin/v2/st-a/status",
        "shuxin/v1/st-a",
        "shuxin/v1/ST-A/status",
        "shuxin/v1/st-a/sessions/short/rr",
        "shuxin/v1/st-a/sessions/st-a-20261123-0001/video",
        "shuxin/v1/+/status",
        "shuxin/v1/st-a/devices/#/status",
        "shuxin/v1/st-a/sessions/st-a-20261123-0001/rr/extra",
        "x" * 300,
    ],
)
def test_bad_topics_are_rejected(topic: str) -> None:
    with pytest.raises(InvalidTopicError):
        parse_topic(topic)


def test_builders_reject_wildcards_in_ids() -> None:
    with pytest.raises(InvalidTopicError):
        station_status_topic("st/a")
    with pytest.raises(InvalidTopicError):
        session_topic(STATION, "#", "rr")
    with pytest.raises(InvalidTopicError):
        session_topic(STATION, SESSION, "video")
    with pytest.raises(ValueError, match="group"):
        shared_subscription("a/b")


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [s.value for s in Stream])
def test_every_stream_round_trips(stream: str) -> None:
    payload = _payloads()[stream]
    topic, message = codec.decode(_topic(stream), _dump(payload))
    assert isinstance(topic, SessionTopic)
    assert message.stream == stream
    assert message.seq == 7
    encoded = codec.encode(message)
    _, again = codec.decode(_topic(stream), encoded)
    assert again == message
    # Timestamps come back in UTC whatever zone the edge wrote.
    assert message.sent_at.utcoffset() == timedelta(0)


def test_lifecycle_start_time_normalised_to_utc() -> None:
    _, message = codec.decode(_topic("lifecycle"), _dump(_payloads()["lifecycle"]))
    assert isinstance(message, messages.LifecycleMessage)
    assert message.started_at == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def test_status_payloads_round_trip() -> None:
    station = messages.StationStatus(
        schema=1,
        station=STATION,
        state="online",
        sent_at=T0.astimezone(timezone(timedelta(hours=8))),
        agent_version="0.1.0",
        outbox_backlog=0,
    )
    topic, decoded = codec.decode(station_status_topic(STATION), codec.encode(station))
    assert decoded == station
    assert isinstance(topic, StationStatusTopic)
    device = messages.DeviceStatus(
        schema=1,
        station=STATION,
        device="hrs-1",
        sent_at=T0,
        profile="polar-h10",
        connected=True,
        battery_pct=80,
        contact="detected",
    )
    _, decoded_device = codec.decode(device_status_topic(STATION, "hrs-1"), codec.encode(device))
    assert decoded_device == device


# --- rejections with clear reasons -----------------------------------------------------------


def _rejected(stream: str, payload: Any, error: type[ContractError] = InvalidPayloadError) -> str:
    with pytest.raises(error) as info:
        codec.decode(_topic(stream), payload if isinstance(payload, bytes) else _dump(payload))
    assert info.value.reason
    return info.value.reason


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ("张三", "pseudonymous"),
        ("Zhang San", "pseudonymous"),
        ("110105199003071234", "pseudonymous"),
        ("11010519900307123X", "pseudonymous"),
        ("S-123456", "employee or ID number"),
        ("S-ABCDE\n", "pseudonymous"),
        ("s-7f3k2", "pseudonymous"),
    ],
)
def test_subject_that_looks_like_a_name_or_id_is_rejected(subject: str, why: str) -> None:
    payload = {**_payloads()["lifecycle"], "subject": subject}
    reason = _rejected("lifecycle", payload)
    assert why in reason
    assert subject.strip() not in reason  # the offending value is never echoed


def test_notes_with_id_numbers_are_rejected() -> None:
    payload = _payloads()["events"]
    payload["events"] = [
        {"kind": "note", "t": "2026-11-23T08:06:00Z", "text": "工号 20230518 的队员"}
    ]
    assert "6 or more digits" in _rejected("events", payload)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda p: p.update(rr_ms=[800.0]), "same length"),
        (lambda p: p.update(rr_ms=[0.0, 800.0]), "rr_ms"),
        (lambda p: p.update(rr_ms=["800", 812.0]), "rr_ms"),
        (lambda p: p.update(seq=-1), "seq"),
        (lambda p: p.update(seq=1.0), "seq"),
        (lambda p: p.update(seq=2**60), "seq"),
        (lambda p: p.update(sent_at="2026-11-23T08:00:00"), "sent_at"),
        (lambda p: p.update(unknown_field=1), "unknown_field"),
        (lambda p: p.update(station="st-b"), "does not match the topic"),
        (lambda p: p.update(stream="hr"), "hr"),
        (lambda p: p.update(t_offset_ms=[10.0, 5.0]), "must not decrease"),
        (lambda p: p.update(rr_ms=[800.0] * 600, t_offset_ms=[0.0] * 600), "at most 512"),
        (lambda p: p.update(device="x" * 600), "device"),
        (lambda p: p.pop("clock"), "clock"),
    ],
)
def test_invalid_rr_payloads_say_why(mutate: Any, fragment: str) -> None:
    payload = _payloads()["rr"]
    mutate(payload)
    assert fragment in _rejected("rr", payload)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"schema": 1, "x": NaN}', MalformedJsonError),
        (b'{"schema": 1, "x": -Infinity}', MalformedJsonError),
        (b'{"schema": 1, "schema": 1}', MalformedJsonError),
        (b"[1, 2]", MalformedJsonError),
        (b"\xff\xfe", MalformedJsonError),
        (b"", MalformedJsonError),
        (b"[" * 100_000 + b"]" * 100_000, MalformedJsonError),
        (b'{"schema": 2}', UnsupportedVersionError),
        (b'{"schema": "1"}', UnsupportedVersionError),
        (b'{"schema": true}', UnsupportedVersionError),
        (b"{}", UnsupportedVersionError),
        (b" " * (messages.MAX_PAYLOAD_BYTES + 1), PayloadTooLargeError),
    ],
)
def test_malformed_json_is_classified(raw: bytes, error: type[ContractError]) -> None:
    _rejected("rr", raw, error)


def test_nan_inside_an_otherwise_valid_payload_is_rejected() -> None:
    raw = _dump(_payloads()["rr"]).replace(b"812.5]", b"NaN]")
    _rejected("rr", raw, MalformedJsonError)


def test_error_dict_is_structured() -> None:
    payload = {**_payloads()["hr"], "hr_bpm": [500.0]}
    with pytest.raises(InvalidPayloadError) as info:
        codec.decode(_topic("hr"), _dump(payload))
    as_dict = info.value.as_dict()
    assert as_dict["code"] == "invalid_payload"
    assert {"loc", "type", "msg"} <= set(as_dict["errors"][0])  # type: ignore[index]
    assert "500" not in json.dumps(as_dict)


# --- property-based: nothing but ContractError, whatever arrives -----------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.sampled_from([s.value for s in Stream]), data=st.data())
def test_random_mutations_only_raise_contract_errors(stream: str, data: st.DataObject) -> None:
    payload = _payloads()[stream]
    key = data.draw(st.sampled_from(sorted(payload)))
    payload[key] = data.draw(json_values)
    raw = json.dumps(payload, allow_nan=True).encode()
    try:
        _, message = codec.decode(_topic(stream), raw)
    except ContractError as exc:
        assert exc.reason
        assert isinstance(exc.as_dict()["errors"], list)
    else:
        assert message.stream == stream


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=512), topic=st.text(max_size=80))
def test_random_bytes_and_topics_only_raise_contract_errors(raw: bytes, topic: str) -> None:
    for t in (topic, _topic("rr"), station_status_topic(STATION)):
        with pytest.raises(ContractError):
            codec.decode(t, raw)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_random_json_documents_only_raise_contract_errors(value: Any) -> None:
    raw = json.dumps(value, allow_nan=True).encode()
    with pytest.raises(ContractError):
        codec.decode(_topic("events"), raw)


# --- ids and schema --------------------------------------------------------------------------


def test_generated_subject_codes_are_valid() -> None:
    rng = np.random.default_rng(7)
    codes = {new_subject_code(rng) for _ in range(200)}
    assert len(codes) == 200
    assert all(is_subject_code(c) for c in codes)


def test_exported_json_schema_matches_the_models() -> None:
    stale = diff_schema_dir(ROOT / "docs" / "contract")
    assert stale == [], f"run `shuxin contract export-schema`; stale: {stale}"


def test_schema_check_detects_a_stale_file(tmp_path: Path) -> None:
    from shuxin.contract.schema import write_schema_dir

    write_schema_dir(tmp_path)
    assert diff_schema_dir(tmp_path) == []
    (tmp_path / "rr.schema.json").write_text("{}", encoding="utf-8")
    (tmp_path / "old.schema.json").write_text("{}", encoding="utf-8")
    assert diff_schema_dir(tmp_path) == ["rr.schema.json", "old.schema.json"]
