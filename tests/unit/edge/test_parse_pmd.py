"""Polar PMD parsers and request builders: byte-level vectors from the public Polar BLE SDK
(polarofficial/polar-ble-sdk) and other public clients. Each borrowed vector names its
repository and path; SDK test paths are under
``sources/Android/android-communications/library/src/test/java/com/polar/androidcommunications/
api/ble/model/gatt/client/pmd/`` (abbreviated ``…/pmd/`` below).
"""

from __future__ import annotations

import pytest

from shuxin.edge.errors import InvalidValueError, TruncatedFrameError, UnknownFrameTypeError
from shuxin.edge.parse_pmd import (
    PmdControlPointResponse,
    PmdEcgFrame,
    PmdFeatures,
    PmdMeasurementStopped,
    PmdMeasurementType,
    PmdPpiFrame,
    PmdSettingType,
    PmdStatus,
    PpiSample,
    encode_pmd_ecg_frame,
    encode_pmd_ppi_frame,
    parse_pmd_control_point,
    parse_pmd_data,
    parse_pmd_features,
    parse_pmd_settings,
    pmd_get_settings_request,
    pmd_start_ecg_request,
    pmd_start_ppi_request,
    pmd_stop_request,
)

# …/pmd/model/EcgDataTest.kt "process raw ecg data type 0": header 00 | 00 94 35 77 00 00 00 00
# (2 000 000 000 ns) | 00, samples 02 80 FF (-32766 µV) and 02 80 00 (32770 µV).
ECG_SDK_VECTOR = "000094357700000000000280FF028000"

# …/pmd/model/PpiDataTest.kt "process ppi raw data type 0": header 03 | 0 ns | 00, then two
# 6-byte samples: HR 80 | PP 80 80 | error 80 80 | flags FF, and HR 00 | 01 00 | 01 00 | 00.
PPI_SDK_VECTOR = "030000000000000000008080808080FF000100010000"


def test_ecg_frame_polar_sdk_vector() -> None:
    frame = parse_pmd_data(bytes.fromhex(ECG_SDK_VECTOR))
    assert isinstance(frame, PmdEcgFrame)
    assert frame.timestamp_ns == 2_000_000_000
    assert frame.samples_uv == (-32766, 32770)


def test_ppi_frame_polar_sdk_vector() -> None:
    frame = parse_pmd_data(bytes.fromhex(PPI_SDK_VECTOR))
    assert isinstance(frame, PmdPpiFrame)
    first, second = frame.samples
    assert first == PpiSample(
        heart_rate_bpm=128,
        pp_ms=32896,
        pp_error_ms=32896,
        blocker=True,
        skin_contact=True,
        skin_contact_supported=True,
    )
    assert second == PpiSample(
        heart_rate_bpm=0,
        pp_ms=1,
        pp_error_ms=1,
        blocker=False,
        skin_contact=False,
        skin_contact_supported=False,
    )


def test_ecg_frame_of_a_full_h10_notification() -> None:
    # An H10 ECG notification carries 73 samples (10 + 73 × 3 = 229 bytes with MTU 232).
    samples = [(-1) ** i * (i * 1000) for i in range(73)]
    data = encode_pmd_ecg_frame(599_616_000_000_000_000, samples)
    assert len(data) == 229
    frame = parse_pmd_data(data)
    assert isinstance(frame, PmdEcgFrame)
    assert list(frame.samples_uv) == samples
    assert frame.timestamp_ns == 599_616_000_000_000_000


def test_ecg_sample_extremes() -> None:
    data = bytes.fromhex("00" + "00" * 8 + "00" + "FFFF7F" + "000080" + "FFFFFF" + "000000")
    frame = parse_pmd_data(data)
    assert isinstance(frame, PmdEcgFrame)
    assert frame.samples_uv == (8_388_607, -8_388_608, -1, 0)


def test_ecg_sample_times_count_back_from_the_last_sample() -> None:
    frame = PmdEcgFrame(timestamp_ns=10_000_000_000, samples_uv=(1, 2, 3))
    # 130 Hz → 7 692 307.69… ns per sample, rounded to whole ns.
    assert frame.sample_times_ns(130) == (
        10_000_000_000 - 15_384_615,
        10_000_000_000 - 7_692_308,
        10_000_000_000,
    )
    with pytest.raises(ValueError, match="positive"):
        frame.sample_times_ns(0)


def test_measurement_type_upper_bits_are_masked() -> None:
    # The SDK masks the type byte with 0x3F (PmdMeasurementType.kt fromId).
    data = bytearray(bytes.fromhex(ECG_SDK_VECTOR))
    data[0] |= 0x40
    assert isinstance(parse_pmd_data(bytes(data)), PmdEcgFrame)


def test_empty_frame_decodes_to_no_samples() -> None:
    frame = parse_pmd_data(bytes.fromhex("00" + "00" * 8 + "00"))
    assert isinstance(frame, PmdEcgFrame)
    assert frame.samples_uv == ()


@pytest.mark.parametrize(
    "hex_text",
    [
        "",
        "00",
        "000094357700000000",  # 9 bytes: no frame-type byte
        "00" + "00" * 8 + "00" + "0280",  # partial 3-byte ECG sample
        "00" + "00" * 8 + "00" + "0280FF02",  # one sample and a third of the next
        "03" + "00" * 8 + "00" + "8080808080",  # 5 of 6 PPI bytes
    ],
)
def test_truncated_data_frames(hex_text: str) -> None:
    with pytest.raises(TruncatedFrameError):
        parse_pmd_data(bytes.fromhex(hex_text))


@pytest.mark.parametrize(
    ("type_byte", "frame_byte"),
    [
        (0x02, 0x00),  # ACC is not decoded here
        (0x01, 0x00),  # PPG
        (0x3F, 0x00),  # unknown type
        (0x00, 0x01),  # ECG frame type 1 (not the H10's raw type 0)
        (0x00, 0x80),  # compressed ECG
        (0x03, 0x80),  # compressed PPI
    ],
)
def test_unknown_frame_types(type_byte: int, frame_byte: int) -> None:
    data = bytes([type_byte]) + bytes(8) + bytes([frame_byte]) + bytes(6)
    with pytest.raises(UnknownFrameTypeError):
        parse_pmd_data(data)


# --- control point


def test_control_point_success_response_polar_sdk() -> None:
    # …/pmd/BlePmdClientControlPointResponseTest.kt "success control point response for acc
    # stream settings": F0 01 02 00 00 FF FF FF
    response = parse_pmd_control_point(bytes.fromhex("F001020000FFFFFF"))
    assert isinstance(response, PmdControlPointResponse)
    assert (response.op_code, response.measurement_type) == (1, 2)
    assert response.status == PmdStatus.SUCCESS
    assert response.ok
    assert not response.more
    assert response.parameters == b"\xff\xff\xff"


def test_control_point_error_response_polar_sdk() -> None:
    # …/pmd/BlePmdClientControlPointResponseTest.kt "failing control point response for mag
    # stream settings": F0 01 06 07 00 -> ERROR_INVALID_RESOLUTION, no parameters, more false
    response = parse_pmd_control_point(bytes.fromhex("F001060700"))
    assert isinstance(response, PmdControlPointResponse)
    assert response.status_name == "ERROR_INVALID_RESOLUTION"
    assert not response.ok
    assert not response.more
    assert response.parameters == b""


def test_control_point_start_ecg_success_and_more_flag() -> None:
    response = parse_pmd_control_point(bytes.fromhex("F002000001" + "0501AABBCCDD"))
    assert isinstance(response, PmdControlPointResponse)
    assert response.ok
    assert response.more
    assert parse_pmd_settings(response.parameters) == {PmdSettingType.FACTOR: (0xDDCCBBAA,)}


def test_control_point_unknown_status_still_decodes() -> None:
    response = parse_pmd_control_point(bytes.fromhex("F0020063"))
    assert isinstance(response, PmdControlPointResponse)
    assert response.status == 0x63
    assert response.status_name == "UNKNOWN"


def test_measurement_stopped_indication() -> None:
    # BlePMDClient.kt processPmdCpCommand: byte 0 = 0x01 (ONLINE_MEASUREMENT_STOPPED), then
    # the measurement types the sensor stopped.
    stopped = parse_pmd_control_point(bytes.fromhex("010003"))
    assert stopped == PmdMeasurementStopped(measurement_types=(0, 3))


def test_feature_read() -> None:
    # Constructed from the bit map in PmdMeasurementType.kt fromByteArray (not captures):
    # 0F 05 00 = ECG (bit 0) + ACC (bit 2), what an H10 supports; 0F 6E 02 = PPG, ACC, PPI,
    # GYRO, MAG + SDK mode (second byte, bit 1).
    h10 = parse_pmd_control_point(bytes.fromhex("0F0500"))
    assert isinstance(h10, PmdFeatures)
    assert h10.measurement_types == {PmdMeasurementType.ECG, PmdMeasurementType.ACC}
    verity = parse_pmd_features(bytes.fromhex("0F6E02"))
    assert verity.measurement_types == {
        PmdMeasurementType.PPG,
        PmdMeasurementType.ACC,
        PmdMeasurementType.PPI,
        PmdMeasurementType.GYRO,
        PmdMeasurementType.MAGNETOMETER,
        PmdMeasurementType.SDK_MODE,
    }


@pytest.mark.parametrize("hex_text", ["", "F0", "F001", "F00100"])
def test_control_point_truncated(hex_text: str) -> None:
    with pytest.raises(TruncatedFrameError):
        parse_pmd_control_point(bytes.fromhex(hex_text))


def test_control_point_unknown_code() -> None:
    with pytest.raises(UnknownFrameTypeError):
        parse_pmd_control_point(bytes.fromhex("AA0102"))
    with pytest.raises(UnknownFrameTypeError):
        parse_pmd_features(bytes.fromhex("F00102"))
    with pytest.raises(TruncatedFrameError):
        parse_pmd_features(bytes.fromhex("0F"))


def test_settings_response_ecg() -> None:
    # H10 ECG settings (get-settings parameters): sample rate {130}, resolution {14}.
    # Layout per PmdSetting.kt: type, count, count × value (2 bytes for rate and resolution).
    settings = parse_pmd_settings(bytes.fromhex("000182000101" + "0E00"))
    assert settings == {PmdSettingType.SAMPLE_RATE: (130,), PmdSettingType.RESOLUTION: (14,)}


def test_settings_response_several_values_and_widths() -> None:
    settings = parse_pmd_settings(bytes.fromhex("000219003200040103"))
    assert settings == {PmdSettingType.SAMPLE_RATE: (25, 50), PmdSettingType.CHANNELS: (3,)}


@pytest.mark.parametrize("hex_text", ["00", "000282", "00028200"])
def test_settings_truncated(hex_text: str) -> None:
    with pytest.raises(TruncatedFrameError):
        parse_pmd_settings(bytes.fromhex(hex_text))


def test_settings_unknown_type() -> None:
    with pytest.raises(UnknownFrameTypeError):
        parse_pmd_settings(bytes.fromhex("0901AA"))


# --- requests


def test_start_ecg_request_matches_public_clients() -> None:
    # MGSWorkFriday/Serena-Project, Mobile/services/bluetooth/constants.ts START_ECG_CMD:
    # [0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0e, 0x00]; the same bytes follow from
    # BlePMDClient.kt startMeasurement + PmdSetting.kt serializeSelected for 130 Hz / 14 bit.
    assert pmd_start_ecg_request() == bytes(
        [0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00]
    )


def test_other_requests() -> None:
    # Op codes from PmdControlPointCommand.kt: 1 get settings, 2 start, 3 stop.
    assert pmd_start_ppi_request() == bytes.fromhex("0203")
    assert pmd_stop_request(PmdMeasurementType.ECG) == bytes.fromhex("0300")
    assert pmd_get_settings_request(PmdMeasurementType.ECG) == bytes.fromhex("0100")
    assert pmd_start_ecg_request(sample_rate_hz=200, resolution_bits=16) == bytes.fromhex(
        "02000001C80001011000"
    )


@pytest.mark.parametrize(("rate", "bits"), [(0, 14), (130, 0), (70000, 14)])
def test_start_ecg_request_rejects_bad_settings(rate: int, bits: int) -> None:
    with pytest.raises(InvalidValueError):
        pmd_start_ecg_request(sample_rate_hz=rate, resolution_bits=bits)


# --- encoders


def test_encode_ecg_matches_sdk_vector() -> None:
    assert encode_pmd_ecg_frame(2_000_000_000, [-32766, 32770]) == bytes.fromhex(ECG_SDK_VECTOR)


def test_encode_ppi_round_trip() -> None:
    samples = (
        PpiSample(61, 983, 12, blocker=False, skin_contact=True, skin_contact_supported=True),
        PpiSample(62, 967, 9, blocker=True, skin_contact=True, skin_contact_supported=True),
    )
    frame = parse_pmd_data(encode_pmd_ppi_frame(samples))
    assert isinstance(frame, PmdPpiFrame)
    assert frame.samples == samples


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_pmd_ecg_frame(0, [1 << 23]),
        lambda: encode_pmd_ecg_frame(-1, [0]),
        lambda: encode_pmd_ppi_frame([PpiSample(256, 1, 1, False, False, False)]),
    ],
)
def test_encoders_reject_out_of_range(call: object) -> None:
    with pytest.raises(InvalidValueError):
        call()  # type: ignore[operator]
