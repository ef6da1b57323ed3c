"""Property tests: random or hostile bytes never raise anything but ParseError from any parser,
and every encoder round-trips through its parser.

Random bytes alone rarely get past a header, so each parser is also fed a valid header with a
random tail. ``deadline=None``: the machine is shared and timing must not fail a test.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from shuxin.edge.errors import ParseError
from shuxin.edge.parse_battery import parse_battery_level
from shuxin.edge.parse_counters import ParseCounters, ParseFailure, safe_parse
from shuxin.edge.parse_eda import (
    EdaCalibration,
    EdaFrameType,
    encode_eda_frame,
    parse_eda_control_request,
    parse_eda_frame,
)
from shuxin.edge.parse_hrs import (
    SensorContact,
    encode_heart_rate_measurement,
    parse_heart_rate_measurement,
)
from shuxin.edge.parse_pmd import (
    PmdEcgFrame,
    PmdPpiFrame,
    PpiSample,
    encode_pmd_ecg_frame,
    encode_pmd_ppi_frame,
    parse_pmd_control_point,
    parse_pmd_data,
    parse_pmd_settings,
)

CAL = EdaCalibration(excitation_v=0.5, reference_ohm=200_000, amplifier_gain=4.0)

PARSERS: dict[str, Callable[[bytes], object]] = {
    "hrs": parse_heart_rate_measurement,
    "battery": parse_battery_level,
    "pmd_data": parse_pmd_data,
    "pmd_control": parse_pmd_control_point,
    "pmd_settings": parse_pmd_settings,
    "eda": partial(parse_eda_frame, calibration=CAL),
    "eda_control": parse_eda_control_request,
}

FUZZ = settings(max_examples=150, deadline=None)


def _only_parse_errors(parser: Callable[[bytes], object], data: bytes) -> None:
    try:
        parser(data)
    except ParseError as exc:
        assert exc.kind in {"truncated_frame", "unknown_frame_type", "invalid_value"}
        assert exc.reason


@FUZZ
@given(name=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=300))
def test_random_bytes_raise_only_parse_errors(name: str, data: bytes) -> None:
    _only_parse_errors(PARSERS[name], data)


@FUZZ
@given(
    type_byte=st.sampled_from([0x00, 0x03, 0x40, 0x43]),
    frame_byte=st.sampled_from([0x00, 0x80]),
    tail=st.binary(max_size=240),
)
def test_pmd_frames_with_valid_headers(type_byte: int, frame_byte: int, tail: bytes) -> None:
    _only_parse_errors(parse_pmd_data, bytes([type_byte]) + bytes(8) + bytes([frame_byte]) + tail)


@FUZZ
@given(
    code=st.sampled_from([0xF0, 0x01, 0x0F]),
    tail=st.binary(max_size=40),
)
def test_pmd_control_point_with_valid_codes(code: int, tail: bytes) -> None:
    _only_parse_errors(parse_pmd_control_point, bytes([code]) + tail)


@FUZZ
@given(
    frame_type=st.sampled_from([0x01, 0x02]),
    flags=st.integers(0, 255),
    rate=st.integers(0, 40),
    count=st.integers(0, 40),
    tail=st.binary(max_size=140),
)
def test_eda_frames_with_plausible_headers(
    frame_type: int, flags: int, rate: int, count: int, tail: bytes
) -> None:
    header = bytes([frame_type, flags]) + bytes(6) + bytes([rate, count])
    _only_parse_errors(PARSERS["eda"], header + tail)


@FUZZ
@given(flags=st.integers(0, 255), tail=st.binary(max_size=30))
def test_hrs_with_every_flag_combination(flags: int, tail: bytes) -> None:
    _only_parse_errors(parse_heart_rate_measurement, bytes([flags]) + tail)


@FUZZ
@given(data=st.binary(max_size=64))
def test_safe_parse_never_raises_and_counts_everything(data: bytes) -> None:
    counters = ParseCounters()
    for name, parser in PARSERS.items():
        safe_parse(parser, data, profile="fuzz", characteristic=name, counters=counters)
    assert sum(c.count for c in counters.snapshot()) == len(PARSERS)


# --- round trips


@FUZZ
@given(
    bpm=st.integers(0, 0xFFFF),
    contact=st.sampled_from(list(SensorContact)),
    energy=st.none() | st.integers(0, 0xFFFF),
    rr=st.none() | st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple),
)
def test_hrs_round_trip(
    bpm: int, contact: SensorContact, energy: int | None, rr: tuple[int, ...] | None
) -> None:
    data = encode_heart_rate_measurement(
        bpm, sensor_contact=contact, energy_expended_kj=energy, rr_ticks=rr
    )
    result = parse_heart_rate_measurement(data)
    assert result.heart_rate_bpm == bpm
    assert result.sensor_contact is contact
    assert result.energy_expended_kj == energy
    assert result.rr_ticks == (rr or ())
    assert result.rr_ms == tuple(t * 1000 / 1024 for t in (rr or ()))


@FUZZ
@given(
    timestamp=st.integers(0, (1 << 64) - 1),
    samples=st.lists(st.integers(-(1 << 23), (1 << 23) - 1), max_size=73),
)
def test_ecg_round_trip(timestamp: int, samples: list[int]) -> None:
    frame = parse_pmd_data(encode_pmd_ecg_frame(timestamp, samples))
    assert frame == PmdEcgFrame(timestamp_ns=timestamp, samples_uv=tuple(samples))


ppi_samples = st.builds(
    PpiSample,
    heart_rate_bpm=st.integers(0, 255),
    pp_ms=st.integers(0, 0xFFFF),
    pp_error_ms=st.integers(0, 0xFFFF),
    blocker=st.booleans(),
    skin_contact=st.booleans(),
    skin_contact_supported=st.booleans(),
)


@FUZZ
@given(samples=st.lists(ppi_samples, max_size=30).map(tuple))
def test_ppi_round_trip(samples: tuple[PpiSample, ...]) -> None:
    assert parse_pmd_data(encode_pmd_ppi_frame(samples)) == PmdPpiFrame(0, samples)


@FUZZ
@given(
    frame_type=st.sampled_from(list(EdaFrameType)),
    sequence=st.integers(0, 0xFFFF),
    device_time=st.integers(0, 0xFFFFFFFF),
    rate=st.sampled_from([4, 8, 16, 32]),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    data=st.data(),
)
def test_eda_round_trip(
    frame_type: EdaFrameType,
    sequence: int,
    device_time: int,
    rate: int,
    flags: tuple[bool, bool, bool],
    data: st.DataObject,
) -> None:
    top = 0xFFFF if frame_type is EdaFrameType.VOLTAGE_0P1MV else 0xFFFFFFFF
    raw = data.draw(st.lists(st.integers(0, top), min_size=1, max_size=32))
    encoded = encode_eda_frame(
        frame_type,
        sequence=sequence,
        device_time_ms=device_time,
        sample_rate_hz=rate,
        raw=raw,
        electrode_off=flags[0],
        adc_saturated=flags[1],
        battery_low=flags[2],
    )
    frame = parse_eda_frame(encoded, CAL)
    assert (frame.frame_type, frame.sequence, frame.device_time_ms) == (
        frame_type,
        sequence,
        device_time,
    )
    assert (frame.electrode_off, frame.adc_saturated, frame.battery_low) == flags
    assert frame.raw == tuple(raw)
    assert [v is None for v in frame.eda_us] == [
        r == top or (frame_type is EdaFrameType.VOLTAGE_0P1MV and CAL.conductance_us(r) is None)
        for r in raw
    ]


def test_safe_parse_returns_failure_record_for_garbage() -> None:
    counters = ParseCounters()
    result = safe_parse(
        PARSERS["pmd_data"], b"\x02" * 12, profile="p", characteristic="pmd_data", counters=counters
    )
    assert isinstance(result, ParseFailure)
    assert result.kind == "unknown_frame_type"
