"""The shuxin EDA profile (``shuxin_eda_v1``): frame vectors derived by hand from the layout in
``shuxin.edge.parse_eda`` / docs/edge-ble.md, calibration, loss/reorder detection, control.

Calibration constants are those of firmware_configs/devices/shuxin_gsr.yaml (0.5 V excitation,
200 kΩ reference, gain 4, 0.1 mV per unit). With them G·R = 1 at 5 µS, so V_r = V_ex / 2 =
0.25 V and the ADC sees 1.0 V = raw 10000: a vector whose conductance is known exactly.
"""

from __future__ import annotations

import pytest

from shuxin.edge.errors import InvalidValueError, TruncatedFrameError, UnknownFrameTypeError
from shuxin.edge.parse_eda import (
    EdaCalibration,
    EdaControlRequest,
    EdaFrameType,
    SequenceStatus,
    classify_sequence,
    eda_set_frame_type_request,
    eda_set_rate_request,
    encode_eda_frame,
    parse_eda_control_request,
    parse_eda_frame,
    voltage_raw_for_conductance,
)

CAL = EdaCalibration(excitation_v=0.5, reference_ohm=200_000, amplifier_gain=4.0)

# type 01 | flags 00 | seq 0x0102 | t 10000 ms | 8 Hz | 4 samples: 0, 10000, 0xFFFF, 20000
VOLTAGE_VECTOR = "0100020110270000080400001027FFFF204E"

# Floating-point rounding of 1e-4 × raw and the division: relative error ≤ 1e-12 is far
# below any physiological resolution (0.01 µS SCR threshold); 1e-9 leaves margin.
REL = 1e-9


def test_voltage_frame_hand_vector() -> None:
    frame = parse_eda_frame(bytes.fromhex(VOLTAGE_VECTOR), CAL)
    assert frame.frame_type is EdaFrameType.VOLTAGE_0P1MV
    assert frame.sequence == 0x0102
    assert frame.device_time_ms == 10_000
    assert frame.sample_rate_hz == 8
    assert frame.raw == (0, 10_000, 0xFFFF, 20_000)
    zero, five, invalid, impossible = frame.eda_us
    assert zero == 0.0  # open circuit: no current through the reference
    assert five == pytest.approx(5.0, rel=REL)
    assert invalid is None  # 0xFFFF = invalid sample sentinel
    assert impossible is None  # V_r = 2.0 V / 4 = V_ex: infinite conductance
    assert (frame.electrode_off, frame.adc_saturated, frame.battery_low) == (False, False, False)


def test_conductance_frame_hand_vector() -> None:
    # type 02 | flags 05 (electrode off + battery low) | seq 0xFFFF | t 0xFFFFFFF0 | 32 Hz | 2
    # samples: 5000 nS and the 0xFFFFFFFF sentinel.
    data = bytes.fromhex("0205FFFFF0FFFFFF200288130000FFFFFFFF")
    frame = parse_eda_frame(data, CAL)
    assert frame.frame_type is EdaFrameType.CONDUCTANCE_NS
    assert (frame.electrode_off, frame.adc_saturated, frame.battery_low) == (True, False, True)
    assert (frame.sequence, frame.device_time_ms, frame.sample_rate_hz) == (
        0xFFFF,
        0xFFFFFFF0,
        32,
    )
    assert frame.eda_us == (5.0, None)


def test_reserved_flag_bits_are_ignored() -> None:
    plain = parse_eda_frame(bytes.fromhex(VOLTAGE_VECTOR), CAL)
    data = bytearray(bytes.fromhex(VOLTAGE_VECTOR))
    data[1] = 0xF8
    assert parse_eda_frame(bytes(data), CAL) == plain


def test_calibration_formula_against_independent_arithmetic() -> None:
    # G = V_r / (R (V_ex - V_r)) with V_r = raw × 1e-4 / 4, written out for raw = 1234.
    v_r = 1234 * 1e-4 / 4
    expected_us = 1e6 * v_r / (200_000 * (0.5 - v_r))
    assert CAL.conductance_us(1234) == pytest.approx(expected_us, rel=REL)


@pytest.mark.parametrize("eda_us", [0.05, 0.5, 2.0, 5.0, 12.5, 30.0, 100.0])
def test_inverse_calibration_round_trips_within_half_a_step(eda_us: float) -> None:
    raw = voltage_raw_for_conductance(eda_us, CAL)
    back = CAL.conductance_us(raw)
    step = CAL.conductance_us(raw + 1)
    assert back is not None
    assert step is not None
    # Rounding to the nearest 0.1 mV moves the value by at most half a quantisation step.
    assert abs(back - eda_us) <= 0.5 * (step - back) * (1 + 1e-9)


def test_full_scale_of_the_profile_fits_the_adc() -> None:
    # 100 µS (top of valid_range_us) must stay under the ESP32 ADC's 2.45 V recommended top.
    assert voltage_raw_for_conductance(100.0, CAL) * 1e-4 < 2.45


def test_round_trip_encode_parse() -> None:
    raw = [voltage_raw_for_conductance(v, CAL) for v in (1.0, 1.1, 1.2, 1.3)]
    data = encode_eda_frame(
        EdaFrameType.VOLTAGE_0P1MV,
        sequence=70_000,  # wraps to 70000 - 65536 = 4464
        device_time_ms=(1 << 32) + 5,  # wraps to 5
        sample_rate_hz=8,
        raw=raw,
        adc_saturated=True,
    )
    assert len(data) == 10 + 4 * 2  # 18 bytes: fits a default-MTU (23) notification
    frame = parse_eda_frame(data, CAL)
    assert (frame.sequence, frame.device_time_ms) == (4464, 5)
    assert frame.adc_saturated
    assert list(frame.raw) == raw


def test_sample_times_and_expected_next_frame_time() -> None:
    frame = parse_eda_frame(bytes.fromhex(VOLTAGE_VECTOR), CAL)
    assert frame.sample_times_ms() == (10_000.0, 10_125.0, 10_250.0, 10_375.0)
    assert frame.next_device_time_ms() == 10_500.0


@pytest.mark.parametrize(
    ("previous", "current", "status", "lost"),
    [
        (10, 11, SequenceStatus.CONTIGUOUS, 0),
        (65535, 0, SequenceStatus.CONTIGUOUS, 0),  # wrap
        (10, 10, SequenceStatus.DUPLICATE, 0),
        (10, 14, SequenceStatus.GAP, 3),
        (65534, 2, SequenceStatus.GAP, 3),  # gap across the wrap
        (10, 9, SequenceStatus.STALE, 0),  # reordered: arrived after its successor
        (3, 65533, SequenceStatus.STALE, 0),  # reordered across the wrap
        (0, 32767, SequenceStatus.GAP, 32766),  # largest forward step still a gap
        (0, 32768, SequenceStatus.STALE, 0),
    ],
)
def test_classify_sequence(previous: int, current: int, status: SequenceStatus, lost: int) -> None:
    step = classify_sequence(previous, current)
    assert (step.status, step.lost_frames) == (status, lost)


@pytest.mark.parametrize(
    "hex_text",
    [
        "",
        "01000201102700000804",  # header only, 4 samples declared
        "0100020110270000080400001027FFFF20",  # last sample cut in half
        "02000000000000000801881300",  # uint32 sample cut
    ],
)
def test_truncated_frames(hex_text: str) -> None:
    with pytest.raises(TruncatedFrameError):
        parse_eda_frame(bytes.fromhex(hex_text), CAL)


@pytest.mark.parametrize(
    "hex_text",
    [
        VOLTAGE_VECTOR + "00",  # a byte beyond the declared samples
        "010000000000000000010000",  # rate 0 Hz
        "010000000000000021010000",  # rate 33 Hz
        "01000000000000000800",  # zero samples
        "01000000000000000821" + "0000" * 33,  # 33 samples
    ],
)
def test_invalid_values(hex_text: str) -> None:
    with pytest.raises(InvalidValueError):
        parse_eda_frame(bytes.fromhex(hex_text), CAL)


@pytest.mark.parametrize("type_byte", ["00", "03", "FF"])
def test_unknown_frame_type(type_byte: str) -> None:
    with pytest.raises(UnknownFrameTypeError):
        parse_eda_frame(bytes.fromhex(type_byte + VOLTAGE_VECTOR[2:]), CAL)


def test_encoder_rejects_out_of_range() -> None:
    with pytest.raises(InvalidValueError):
        encode_eda_frame(
            EdaFrameType.VOLTAGE_0P1MV,
            sequence=0,
            device_time_ms=0,
            sample_rate_hz=8,
            raw=[1 << 16],
        )
    with pytest.raises(InvalidValueError):
        encode_eda_frame(
            EdaFrameType.VOLTAGE_0P1MV, sequence=0, device_time_ms=0, sample_rate_hz=64, raw=[1]
        )
    with pytest.raises(InvalidValueError):
        encode_eda_frame(
            EdaFrameType.CONDUCTANCE_NS, sequence=0, device_time_ms=0, sample_rate_hz=8, raw=[]
        )
    with pytest.raises(InvalidValueError):
        voltage_raw_for_conductance(-1.0, CAL)


def test_control_requests_round_trip() -> None:
    assert eda_set_rate_request(16) == bytes.fromhex("0110")
    assert eda_set_frame_type_request(EdaFrameType.CONDUCTANCE_NS) == bytes.fromhex("0202")
    assert parse_eda_control_request(bytes.fromhex("0110")) == EdaControlRequest(1, "set_rate", 16)
    assert parse_eda_control_request(bytes.fromhex("0201")) == EdaControlRequest(
        2, "set_frame_type", 1
    )


@pytest.mark.parametrize(
    ("hex_text", "error"),
    [
        ("", TruncatedFrameError),
        ("01", TruncatedFrameError),
        ("011000", InvalidValueError),
        ("0100", InvalidValueError),
        ("0140", InvalidValueError),
        ("0203", InvalidValueError),
        ("0901", UnknownFrameTypeError),
    ],
)
def test_control_request_errors(hex_text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_eda_control_request(bytes.fromhex(hex_text))


@pytest.mark.parametrize("rate_hz", [0, 33])
def test_set_rate_request_rejects_unsupported_rate(rate_hz: int) -> None:
    with pytest.raises(InvalidValueError):
        eda_set_rate_request(rate_hz)
