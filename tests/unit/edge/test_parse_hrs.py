"""Heart Rate Measurement (0x2A37) parser: byte-level vectors from the Bluetooth SIG layout
(GATT Specification Supplement, "Heart Rate Measurement") and from public parsers' tests.

Every borrowed vector names its source repository and path. RR conversions are exact:
ticks × 1000 / 1024 is a dyadic rational, so float equality is safe (no tolerance needed).
"""

from __future__ import annotations

import pytest

from shuxin.edge.errors import InvalidValueError, ParseError, TruncatedFrameError
from shuxin.edge.parse_hrs import (
    HeartRateMeasurement,
    SensorContact,
    encode_heart_rate_measurement,
    parse_heart_rate_measurement,
    rr_ticks_to_ms,
)


def _parse(hex_text: str) -> HeartRateMeasurement:
    return parse_heart_rate_measurement(bytes.fromhex(hex_text))


# --- vectors from polarofficial/polar-ble-sdk, sources/Android/android-communications/library/
# --- src/test/java/com/polar/androidcommunications/api/ble/model/gatt/client/BleHrClientTest.kt


@pytest.mark.parametrize(("hex_text", "bpm"), [("00FF", 255), ("007F", 127)])
def test_uint8_heart_rate_polar_sdk(hex_text: str, bpm: int) -> None:
    # BleHrClientTest.kt "hr format uint8": 00 FF -> 255, 00 7F -> 127
    result = _parse(hex_text)
    assert result.heart_rate_bpm == bpm
    assert not result.hr_uint16
    assert result.rr_ms == ()
    assert result.energy_expended_kj is None


@pytest.mark.parametrize(("hex_text", "bpm"), [("018080", 32896), ("017F7F", 32639)])
def test_uint16_heart_rate_polar_sdk(hex_text: str, bpm: int) -> None:
    # BleHrClientTest.kt "hr format uint16": 01 80 80 -> 32896, 01 7F 7F -> 32639
    result = _parse(hex_text)
    assert result.heart_rate_bpm == bpm
    assert result.hr_uint16


@pytest.mark.parametrize(
    ("hex_text", "contact"),
    [
        # BleHrClientTest.kt "sensor contact supported": 06 00 detected, 04 00 not detected
        ("0600", SensorContact.DETECTED),
        ("0400", SensorContact.NOT_DETECTED),
        # BleHrClientTest.kt "sensor contact not supported": 02 00 and 00 00 (status bit alone
        # means nothing while the supported bit 2 is clear: 0b0x = not supported)
        ("0200", SensorContact.NOT_SUPPORTED),
        ("0000", SensorContact.NOT_SUPPORTED),
    ],
)
def test_sensor_contact_bits(hex_text: str, contact: SensorContact) -> None:
    assert _parse(hex_text).sensor_contact is contact


@pytest.mark.parametrize(
    ("hex_text", "bpm", "energy"),
    [
        # BleHrClientTest.kt "energy expended": 09 00 00 FF FF (uint16 HR) and 08 00 7F 80
        ("090000FFFF", 0, 65535),
        ("08007F80", 0, 32895),
    ],
)
def test_energy_expended_polar_sdk(hex_text: str, bpm: int, energy: int) -> None:
    result = _parse(hex_text)
    assert result.heart_rate_bpm == bpm
    assert result.energy_expended_kj == energy


def test_rr_intervals_polar_sdk() -> None:
    # BleHrClientTest.kt "rr interval": 10 00 FF FF -> one RR of 65535/1024 s; the SDK's
    # integer ms is 63999, the exact value 63999.0234375 ms.
    one = _parse("1000FFFF")
    assert one.rr_ticks == (65535,)
    assert one.rr_ms == (63999.0234375,)
    # 11 00 00 FF FF 7F 80 -> uint16 HR 0, RR 65535 and 32895 (SDK: 63999 and 32124 ms)
    two = _parse("110000FFFF7F80")
    assert two.heart_rate_bpm == 0
    assert two.rr_ticks == (65535, 32895)
    assert [int(ms) for ms in two.rr_ms] == [63999, 32124]
    # 11 00 00 00 00 -> RR 0
    assert _parse("1100000000").rr_ms == (0.0,)


# --- other public parsers' tests


def test_movisens_smartgattlib_vector() -> None:
    # movisens/SmartGattLib, src/test/java/HeartRateMeasurementTest.java: "16485401EC02" ->
    # HR 72, sensor worn, no energy, RR 0.33203125 s and 0.73046875 s.
    result = _parse("16485401EC02")
    assert result.heart_rate_bpm == 72
    assert result.sensor_contact is SensorContact.DETECTED
    assert result.energy_expended_kj is None
    assert result.rr_ms == (332.03125, 730.46875)


@pytest.mark.parametrize(("hex_text", "bpm"), [("023C", 60), ("010101", 257)])
def test_opentracks_vectors(hex_text: str, bpm: int) -> None:
    # OpenTracksApp/OpenTracks, src/androidTest/java/de/dennisguse/opentracks/sensors/
    # BluetoothConnectionManagerHeartRateTest.java: {0x02, 0x3C} -> 60, {0x01,0x01,0x01} -> 257
    assert _parse(hex_text).heart_rate_bpm == bpm


def test_captured_polar_notifications() -> None:
    # cal-id/Polar-H7-Pi, README.md: gatttool notifications "06 3c", "16 3c 11 04",
    # "16 3c f5 03" captured from a Polar H7 (HR 60, contact detected, RR 0x0411, 0x03F5).
    assert _parse("063C").rr_ms == ()
    first = _parse("163C1104")
    assert first.heart_rate_bpm == 60
    assert first.sensor_contact is SensorContact.DETECTED
    assert first.rr_ticks == (0x0411,)
    assert first.rr_ms == (1041 * 1000 / 1024,)
    assert _parse("163CF503").rr_ms == (1013 * 1000 / 1024,)


# --- derived from the SIG layout


def test_all_fields_together() -> None:
    # flags 0x1F: uint16 HR, contact detected, energy, RR. HR 0x0048 = 72, energy 0x0102 = 258
    # kJ, RR 0x0400 (exactly 1000 ms) and 0x0333 (819 ticks).
    result = _parse("1F4800020100043303")
    assert result.heart_rate_bpm == 72
    assert result.sensor_contact is SensorContact.DETECTED
    assert result.energy_expended_kj == 258
    assert result.rr_ms == (1000.0, 819 * 1000 / 1024)


def test_any_number_of_rr_values() -> None:
    ticks = tuple(range(700, 700 + 9 * 37, 37))
    data = bytes([0x10, 70]) + b"".join(t.to_bytes(2, "little") for t in ticks)
    assert parse_heart_rate_measurement(data).rr_ticks == ticks


def test_reserved_bits_are_ignored() -> None:
    plain = _parse("163C1104")
    assert _parse("F63C1104") == plain  # bits 5-7 set


def test_rr_flag_with_no_values_is_accepted() -> None:
    assert _parse("103C").rr_ticks == ()


def test_bytes_after_declared_fields_without_rr_flag_are_ignored() -> None:
    assert _parse("003CAA").heart_rate_bpm == 60


def test_bytearray_input_is_accepted() -> None:
    # bleak hands notification callbacks a bytearray.
    assert parse_heart_rate_measurement(bytearray.fromhex("063C")).heart_rate_bpm == 60


@pytest.mark.parametrize(
    "hex_text",
    [
        "",  # no flags
        "00",  # uint8 HR missing
        "0148",  # uint16 HR needs 2 bytes
        "083C01",  # energy expended needs 2 bytes
        "093C0001",  # uint16 HR + energy, energy cut
        "103C11",  # odd byte in the RR field
        "103C110403",  # one whole RR then half of the next
    ],
)
def test_truncated_values_raise_typed_error(hex_text: str) -> None:
    with pytest.raises(TruncatedFrameError) as info:
        _parse(hex_text)
    assert isinstance(info.value, ParseError)
    assert info.value.kind == "truncated_frame"
    assert "bytes" in info.value.reason


def test_encode_round_trip_all_fields() -> None:
    data = encode_heart_rate_measurement(
        300,
        sensor_contact=SensorContact.NOT_DETECTED,
        energy_expended_kj=12,
        rr_ticks=(800, 810),
    )
    assert data == bytes.fromhex("1D2C010C0020032A03")
    result = parse_heart_rate_measurement(data)
    assert (result.heart_rate_bpm, result.energy_expended_kj) == (300, 12)
    assert result.sensor_contact is SensorContact.NOT_DETECTED
    assert result.rr_ticks == (800, 810)


def test_encode_matches_captured_vector() -> None:
    assert encode_heart_rate_measurement(
        60, sensor_contact=SensorContact.DETECTED, rr_ticks=(0x0411,)
    ) == bytes.fromhex("163C1104")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heart_rate_bpm": 256, "hr_uint16": False},
        {"heart_rate_bpm": -1},
        {"heart_rate_bpm": 60, "energy_expended_kj": 70000},
        {"heart_rate_bpm": 60, "rr_ticks": (65536,)},
    ],
)
def test_encode_rejects_out_of_range(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidValueError):
        encode_heart_rate_measurement(**kwargs)  # type: ignore[arg-type]


def test_rr_conversion_is_exact() -> None:
    assert rr_ticks_to_ms(1024) == 1000.0
    assert rr_ticks_to_ms(1) == 0.9765625
