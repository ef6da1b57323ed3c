"""Source events → readings: beat times, duplicates, gaps, contact, and hostile bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuxin.edge.decode import (
    Battery,
    Beat,
    ContactChange,
    DataGap,
    EcgSamples,
    EdaSamples,
    EventDecoder,
    HeartRate,
    LinkChange,
    Reading,
)
from shuxin.edge.device_profile import load_profiles
from shuxin.edge.parse_eda import EdaCalibration, EdaFrameType, encode_eda_frame
from shuxin.edge.parse_hrs import SensorContact, encode_heart_rate_measurement
from shuxin.edge.parse_pmd import encode_pmd_ecg_frame
from shuxin.edge.sources import DeviceConnected, DeviceDisconnected, Notification

DEVICES = Path(__file__).resolve().parents[3] / "firmware_configs" / "devices"
PROFILES = load_profiles(DEVICES)
T0 = 1_800_000_000.0


def _decoder() -> EventDecoder:
    return EventDecoder(
        {
            "hrs-1": PROFILES["hrs_strap"],
            "h10-1": PROFILES["polar_h10"],
            "gsr-1": PROFILES["shuxin_gsr"],
        }
    )


def _hrs(
    t: float,
    rr_ms: tuple[float, ...],
    hr: int = 70,
    contact: SensorContact = SensorContact.DETECTED,
) -> Notification:
    ticks = tuple(round(r * 1.024) for r in rr_ms)
    data = encode_heart_rate_measurement(hr, sensor_contact=contact, rr_ticks=ticks)
    return Notification("hrs-1", "heart_rate", data, t)


def _of(readings: list[Reading], kind: type) -> list:  # type: ignore[type-arg]
    return [r for r in readings if isinstance(r, kind)]


def test_heart_rate_and_beats_with_times_from_the_rr_sum() -> None:
    dec = _decoder()
    first = dec.handle(_hrs(T0, (1000.0,)))
    (hr,) = _of(first, HeartRate)
    assert (hr.hr_bpm, hr.contact) == (70, "detected")
    (beat,) = _of(first, Beat)
    assert beat.t == T0  # the first beat anchors on arrival
    # Two RR values in the next notification, which arrives 40 ms late: the beat clock adds
    # RR to the previous beat, so beat times do not inherit the notification jitter.
    second = _of(dec.handle(_hrs(T0 + 1.84, (800.0, 1000.0))), Beat)
    # RR ticks are 1/1024 s: 800 ms -> 819 ticks -> 799.8 ms; tolerance 1 ms covers that.
    assert [b.t for b in second] == pytest.approx([T0 + 0.8, T0 + 1.8], abs=1e-3)
    assert [b.rr_ms for b in second] == pytest.approx([800.0, 1000.0], abs=1.0)
    assert all(b.source == "hrs" for b in second)


def test_beat_clock_reanchors_after_a_long_silence() -> None:
    dec = _decoder()
    dec.handle(_hrs(T0, (1000.0,)))
    (late,) = _of(dec.handle(_hrs(T0 + 60.0, (1000.0,))), Beat)
    assert late.t == T0 + 60.0  # not T0 + 1.0: the clock re-anchored on arrival


def test_duplicates_within_the_window_are_dropped() -> None:
    dec = _decoder()
    note = _hrs(T0, (1000.0,))
    assert dec.handle(note)
    assert dec.handle(Notification(note.device_id, note.role, note.data, T0 + 0.01)) == []
    assert dec.counters[("hrs-1", "duplicate")] == 1
    # The same bytes a second later are a genuine new beat (same HR, same RR).
    assert _of(dec.handle(Notification("hrs-1", "heart_rate", note.data, T0 + 1.0)), Beat)


def test_hostile_bytes_are_counted_per_device_and_kind() -> None:
    dec = _decoder()
    bad = [b"", b"\x11\x46\x00\x01", b"\x01"]  # empty, odd RR field, uint16 HR cut short
    for i, data in enumerate(bad):
        assert dec.handle(Notification("hrs-1", "heart_rate", data, T0 + i)) == []
    assert dec.parse_counters.count("hrs-1", "heart_rate", "truncated_frame") == 3
    assert dec.handle(Notification("gsr-1", "eda", b"\x07" + bytes(12), T0)) == []
    assert dec.parse_counters.count("gsr-1", "eda", "unknown_frame_type") == 1
    assert dec.failures() == 4
    assert dec.failures("hrs-1") == 3
    # Unknown devices and roles are counted, not decoded.
    assert dec.handle(Notification("nobody", "heart_rate", b"\x00\x40", T0)) == []
    assert dec.handle(Notification("hrs-1", "pmd_data", b"\x00", T0)) == []
    assert dec.counters[("nobody", "unknown_device")] == 1
    assert dec.counters[("hrs-1", "unknown_role")] == 1
    # Good data still flows after all that.
    assert _of(dec.handle(_hrs(T0 + 10, (900.0,))), Beat)


@settings(max_examples=300, deadline=None)
@given(
    role=st.sampled_from(["heart_rate", "pmd_data", "pmd_control", "eda", "battery", "x"]),
    device=st.sampled_from(["hrs-1", "h10-1", "gsr-1"]),
    data=st.binary(max_size=64),
)
def test_no_bytes_make_the_decoder_raise(role: str, device: str, data: bytes) -> None:
    dec = _decoder()
    readings = dec.handle(Notification(device, role, data, T0))
    assert isinstance(readings, list)


def test_link_loss_is_a_gap_from_last_data_to_reconnect() -> None:
    dec = _decoder()
    dec.handle(DeviceConnected("hrs-1", "hrs_strap", T0 - 1))
    dec.handle(_hrs(T0, (1000.0,)))
    down = dec.handle(DeviceDisconnected("hrs-1", T0 + 0.5))
    assert _of(down, LinkChange)[0].connected is False
    up = dec.handle(DeviceConnected("hrs-1", "hrs_strap", T0 + 12))
    (gap,) = _of(up, DataGap)
    assert (gap.start, gap.end, gap.reason) == (T0, T0 + 12, "link_lost")
    # A duplicate callback of the last pre-loss value right after reconnect is not a beat:
    # the bytes differ in time by more than the window here, so the beat clock re-anchors.
    (beat,) = _of(dec.handle(_hrs(T0 + 12.5, (1000.0,))), Beat)
    assert beat.t == T0 + 12.5


def test_gap_still_open_at_session_end_is_closed() -> None:
    dec = _decoder()
    dec.handle(_hrs(T0, (1000.0,)))
    dec.handle(DeviceDisconnected("hrs-1", T0 + 1, reason="watchdog"))
    (gap,) = dec.close_open_gaps("hrs-1", T0 + 30)
    assert (gap.start, gap.end, gap.reason) == (T0, T0 + 30, "watchdog")
    assert dec.close_open_gaps("unknown", T0) == []


def test_contact_loss_is_reported_and_becomes_a_gap() -> None:
    dec = _decoder()
    dec.handle(_hrs(T0, (1000.0,)))
    lost = dec.handle(_hrs(T0 + 1, (), hr=0, contact=SensorContact.NOT_DETECTED))
    assert _of(lost, ContactChange)[0].contact == "not_detected"
    back = dec.handle(_hrs(T0 + 9, (1000.0,)))
    (gap,) = _of(back, DataGap)
    assert (gap.start, gap.end, gap.reason) == (T0 + 1, T0 + 9, "contact_lost")


CAL = EdaCalibration(excitation_v=0.5, reference_ohm=200_000, amplifier_gain=4.0)


def _eda(seq: int, device_ms: int, t: float, *, off: bool = False) -> Notification:
    data = encode_eda_frame(
        EdaFrameType.CONDUCTANCE_NS,
        sequence=seq,
        device_time_ms=device_ms,
        sample_rate_hz=8,
        raw=[5000, 5010, 5020, 5030],
        electrode_off=off,
    )
    return Notification("gsr-1", "eda", data, t)


def test_eda_frames_sequence_gaps_and_duplicates() -> None:
    dec = _decoder()
    (first,) = _of(dec.handle(_eda(1, 10_000, T0)), EdaSamples)
    # The frame is sent when its last sample is taken: t0 = arrival - 3 samples at 8 Hz.
    assert first.t0 == pytest.approx(T0 - 3 / 8)
    assert first.eda_us == pytest.approx((5.0, 5.01, 5.02, 5.03))
    (second,) = _of(dec.handle(_eda(2, 10_500, T0 + 0.5)), EdaSamples)
    assert second.t0 == pytest.approx(first.t0 + 0.5)  # device clock, not arrival jitter
    assert dec.handle(_eda(2, 10_500, T0 + 0.9)) == []  # same sequence: duplicate
    assert dec.handle(_eda(1, 10_000, T0 + 1.0)) == []  # backwards: stale
    assert dec.counters[("gsr-1", "duplicate")] == 1
    assert dec.counters[("gsr-1", "stale")] == 1
    # Frames 3 and 4 lost over the air.
    out = dec.handle(_eda(5, 12_000, T0 + 2.0))
    (gap,) = _of(out, DataGap)
    assert gap.reason == "link_lost"
    assert gap.start == pytest.approx(first.t0 + 1.0)  # where frame 3 should have started
    assert gap.end == pytest.approx(first.t0 + 2.0)


def test_eda_electrode_off_is_contact_loss() -> None:
    dec = _decoder()
    dec.handle(_eda(1, 0, T0))
    off = dec.handle(_eda(2, 500, T0 + 0.5, off=True))
    assert _of(off, ContactChange)[0].contact == "not_detected"
    assert _of(off, EdaSamples)[0].electrode_off
    on = dec.handle(_eda(3, 1000, T0 + 1.0))
    (gap,) = _of(on, DataGap)
    assert gap.reason == "contact_lost"


def test_ecg_frames_are_timed_from_the_sensor_clock() -> None:
    dec = _decoder()
    samples = list(range(-36, 37))  # 73 samples, as an H10 sends them
    ts = 700_000_000_000_000_000
    (first,) = _of(
        dec.handle(Notification("h10-1", "pmd_data", encode_pmd_ecg_frame(ts, samples), T0)),
        EcgSamples,
    )
    assert first.fs_hz == 130
    assert first.t0 == pytest.approx(T0 - 72 / 130)
    ts2 = ts + round(73 / 130 * 1e9)
    (second,) = _of(
        dec.handle(Notification("h10-1", "pmd_data", encode_pmd_ecg_frame(ts2, samples), T0 + 0.6)),
        EcgSamples,
    )
    assert second.t0 == pytest.approx(first.t0 + 73 / 130, abs=1e-6)
    # A frame whose timestamp does not advance is a duplicate (sent again after reconnect).
    again = encode_pmd_ecg_frame(ts2, [0] * 73)
    assert dec.handle(Notification("h10-1", "pmd_data", again, T0 + 0.7)) == []
    assert dec.counters[("h10-1", "duplicate")] == 1


def test_battery_level() -> None:
    dec = _decoder()
    (battery,) = dec.handle(Notification("gsr-1", "battery", b"\x2a", T0))
    assert isinstance(battery, Battery)
    assert battery.percent == 42
    assert dec.handle(Notification("gsr-1", "battery", b"\xff", T0 + 1)) == []
    assert dec.parse_counters.count("gsr-1", "battery", "invalid_value") == 1
