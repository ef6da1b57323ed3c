"""Polar Measurement Data (PMD) service frames as pure functions on bytes.

The PMD service (``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``) has a control point
(``…5C81``, write + indicate) and a data characteristic (``…5C82``, notify). Layouts follow
the public Polar BLE SDK (polarofficial/polar-ble-sdk: ``technical_documentation/
Polar_Measurement_Data_Specification.pdf`` and the Android parsers ``PmdDataFrame.kt``,
``EcgData.kt``, ``PpiData.kt``, ``PmdControlPointResponse.kt``, ``PmdSetting.kt``).
All integers are little-endian.

Data frame (notification on ``…5C82``)::

    byte 0      measurement type (low 6 bits): 0 = ECG, 3 = PPI, others not decoded here
    bytes 1-8   uint64 timestamp, ns since 2000-01-01T00:00:00 (sensor clock) of the LAST
                sample in the frame
    byte 9      frame type (low 7 bits); bit 7 set = delta-compressed (not decoded here)
    bytes 10-   samples
                ECG, frame type 0: 3-byte signed samples, µV (H10: 130 Hz)
                PPI, frame type 0: 6 bytes per sample: HR uint8 bpm, PP interval uint16 ms,
                PP error estimate uint16 ms, flags uint8 (bit 0 blocker, bit 1 skin contact,
                bit 2 skin contact supported)

Control point response (indication on ``…5C81``)::

    byte 0      0xF0
    byte 1      op code echoed (1 get settings, 2 start, 3 stop, …)
    byte 2      measurement type
    byte 3      status (0 = success; 1-14 errors, see ``PmdStatus``)
    byte 4      "more" (only on success): 1 when another response frame follows
    bytes 5-    parameters (settings for op 1, the start response for op 2)

A control-point indication whose byte 0 is 0x01 is the sensor telling the client that it
stopped the listed measurements. Reading the control point returns the feature map: 0x0F
then a bitmask of the supported measurement types.

Every ``parse_*`` function returns a frozen dataclass or raises a
:class:`~shuxin.edge.errors.ParseError` subclass and nothing else. The ``*_request``
functions build the bytes a client writes to the control point; ``encode_*`` build data
frames for the simulator and tests. This module must not do I/O, keep state, log, or import
bleak.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shuxin.edge.errors import InvalidValueError, TruncatedFrameError, UnknownFrameTypeError

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

PMD_HEADER_BYTES = 10
ECG_SAMPLE_BYTES = 3
PPI_SAMPLE_BYTES = 6
CONTROL_POINT_RESPONSE_CODE = 0xF0
CONTROL_POINT_FEATURE_READ_CODE = 0x0F
CONTROL_POINT_MEASUREMENT_STOPPED = 0x01
H10_ECG_SAMPLE_RATE_HZ = 130
H10_ECG_RESOLUTION_BITS = 14

_MEASUREMENT_TYPE_MASK = 0x3F
_FRAME_TYPE_MASK = 0x7F
_COMPRESSED_BIT = 0x80
_NS_PER_S = 1_000_000_000


class PmdMeasurementType(enum.IntEnum):
    """PMD measurement type codes (low 6 bits of the type byte)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAGNETOMETER = 6
    SKIN_TEMP = 7
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12
    OFFLINE_RECORDING = 13
    OFFLINE_HR = 14


class PmdOpCode(enum.IntEnum):
    """Control-point op codes written by the client."""

    GET_MEASUREMENT_SETTINGS = 1
    REQUEST_MEASUREMENT_START = 2
    STOP_MEASUREMENT = 3
    GET_SDK_MODE_SETTINGS = 4
    GET_MEASUREMENT_STATUS = 5
    GET_SDK_MODE_STATUS = 6


class PmdStatus(enum.IntEnum):
    """Control-point response status codes."""

    SUCCESS = 0
    ERROR_INVALID_OP_CODE = 1
    ERROR_INVALID_MEASUREMENT_TYPE = 2
    ERROR_NOT_SUPPORTED = 3
    ERROR_INVALID_LENGTH = 4
    ERROR_INVALID_PARAMETER = 5
    ERROR_ALREADY_IN_STATE = 6
    ERROR_INVALID_RESOLUTION = 7
    ERROR_INVALID_SAMPLE_RATE = 8
    ERROR_INVALID_RANGE = 9
    ERROR_INVALID_MTU = 10
    ERROR_INVALID_NUMBER_OF_CHANNELS = 11
    ERROR_INVALID_STATE = 12
    ERROR_DEVICE_IN_CHARGER = 13
    ERROR_DISK_FULL = 14


class PmdSettingType(enum.IntEnum):
    """Setting codes used in settings responses and start requests."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5


_SETTING_FIELD_BYTES = {
    PmdSettingType.SAMPLE_RATE: 2,
    PmdSettingType.RESOLUTION: 2,
    PmdSettingType.RANGE: 2,
    PmdSettingType.RANGE_MILLIUNIT: 4,
    PmdSettingType.CHANNELS: 1,
    PmdSettingType.FACTOR: 4,
}

# Feature-read bitmask: (byte index after the 0x0F code, bit) → measurement type.
_FEATURE_BITS = (
    (0, 0x01, PmdMeasurementType.ECG),
    (0, 0x02, PmdMeasurementType.PPG),
    (0, 0x04, PmdMeasurementType.ACC),
    (0, 0x08, PmdMeasurementType.PPI),
    (0, 0x20, PmdMeasurementType.GYRO),
    (0, 0x40, PmdMeasurementType.MAGNETOMETER),
    (0, 0x80, PmdMeasurementType.SKIN_TEMP),
    (1, 0x02, PmdMeasurementType.SDK_MODE),
    (1, 0x04, PmdMeasurementType.LOCATION),
    (1, 0x08, PmdMeasurementType.PRESSURE),
    (1, 0x10, PmdMeasurementType.TEMPERATURE),
    (1, 0x20, PmdMeasurementType.OFFLINE_RECORDING),
    (1, 0x40, PmdMeasurementType.OFFLINE_HR),
)


@dataclass(frozen=True, slots=True)
class PmdEcgFrame:
    """One raw ECG frame (type 0): signed samples in µV.

    ``timestamp_ns`` is the sensor time of the LAST sample (ns since 2000-01-01).
    """

    timestamp_ns: int
    samples_uv: tuple[int, ...]

    def sample_times_ns(self, sample_rate_hz: float) -> tuple[int, ...]:
        """Sensor times of every sample, counted back from the last one at ``sample_rate_hz``."""
        if sample_rate_hz <= 0:
            raise ValueError("sample_rate_hz must be positive")
        n = len(self.samples_uv)
        step = _NS_PER_S / sample_rate_hz
        return tuple(self.timestamp_ns - round((n - 1 - i) * step) for i in range(n))


@dataclass(frozen=True, slots=True)
class PpiSample:
    """One pulse-to-pulse interval from the optical sensor."""

    heart_rate_bpm: int
    pp_ms: int
    pp_error_ms: int
    blocker: bool
    skin_contact: bool
    skin_contact_supported: bool


@dataclass(frozen=True, slots=True)
class PmdPpiFrame:
    """One PPI frame (type 0). ``timestamp_ns`` is often 0: PPI carries no sample clock."""

    timestamp_ns: int
    samples: tuple[PpiSample, ...]


@dataclass(frozen=True, slots=True)
class PmdControlPointResponse:
    """A control-point response (byte 0 = 0xF0).

    ``op_code`` and ``status`` are plain ints so that a code newer than this module still
    decodes; ``status_name`` names it when known.
    """

    op_code: int
    measurement_type: int
    status: int
    status_name: str
    more: bool
    parameters: bytes

    @property
    def ok(self) -> bool:
        """True when the sensor accepted the request."""
        return self.status == PmdStatus.SUCCESS


@dataclass(frozen=True, slots=True)
class PmdMeasurementStopped:
    """The sensor stopped these measurement types on its own (control point byte 0 = 0x01)."""

    measurement_types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PmdFeatures:
    """Measurement types the sensor supports (control-point read: 0x0F + bitmask)."""

    measurement_types: frozenset[PmdMeasurementType]


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise TruncatedFrameError(f"PMD {what}: needs {end} bytes, got {len(data)}")


def parse_pmd_data(data: bytes) -> PmdEcgFrame | PmdPpiFrame:
    """Decode one PMD data notification (ECG or PPI, raw frame type 0).

    Raises
    ------
    TruncatedFrameError
        Shorter than the 10-byte header, or a partial sample at the end.
    UnknownFrameTypeError
        A measurement type other than ECG/PPI, a compressed frame, or a frame type other
        than 0.
    """
    data = bytes(data)
    _need(data, PMD_HEADER_BYTES, "data frame header")
    measurement = data[0] & _MEASUREMENT_TYPE_MASK
    timestamp_ns = int.from_bytes(data[1:9], "little")
    frame_byte = data[9]
    frame_type = frame_byte & _FRAME_TYPE_MASK
    content = data[PMD_HEADER_BYTES:]
    if measurement not in (PmdMeasurementType.ECG, PmdMeasurementType.PPI):
        raise UnknownFrameTypeError(f"PMD data: measurement type {measurement} is not decoded")
    name = PmdMeasurementType(measurement).name
    if frame_byte & _COMPRESSED_BIT or frame_type != 0:
        raise UnknownFrameTypeError(
            f"PMD data: {name} frame type {frame_type}"
            f"{' (compressed)' if frame_byte & _COMPRESSED_BIT else ''} is not decoded"
        )
    if measurement == PmdMeasurementType.ECG:
        if len(content) % ECG_SAMPLE_BYTES:
            raise TruncatedFrameError(
                f"PMD ECG: {len(content)} sample bytes is not a whole number of 3-byte samples"
            )
        samples = tuple(
            int.from_bytes(content[i : i + ECG_SAMPLE_BYTES], "little", signed=True)
            for i in range(0, len(content), ECG_SAMPLE_BYTES)
        )
        return PmdEcgFrame(timestamp_ns=timestamp_ns, samples_uv=samples)
    if len(content) % PPI_SAMPLE_BYTES:
        raise TruncatedFrameError(
            f"PMD PPI: {len(content)} sample bytes is not a whole number of 6-byte samples"
        )
    ppi = tuple(
        PpiSample(
            heart_rate_bpm=content[i],
            pp_ms=int.from_bytes(content[i + 1 : i + 3], "little"),
            pp_error_ms=int.from_bytes(content[i + 3 : i + 5], "little"),
            blocker=bool(content[i + 5] & 0x01),
            skin_contact=bool(content[i + 5] & 0x02),
            skin_contact_supported=bool(content[i + 5] & 0x04),
        )
        for i in range(0, len(content), PPI_SAMPLE_BYTES)
    )
    return PmdPpiFrame(timestamp_ns=timestamp_ns, samples=ppi)


def parse_pmd_control_point(
    data: bytes,
) -> PmdControlPointResponse | PmdMeasurementStopped | PmdFeatures:
    """Decode a control-point value: a response (0xF0), a measurement-stopped indication
    (0x01), or the feature map returned by a read (0x0F)."""
    data = bytes(data)
    _need(data, 1, "control point")
    if data[0] == CONTROL_POINT_FEATURE_READ_CODE:
        return parse_pmd_features(data)
    if data[0] == CONTROL_POINT_MEASUREMENT_STOPPED:
        return PmdMeasurementStopped(
            measurement_types=tuple(b & _MEASUREMENT_TYPE_MASK for b in data[1:])
        )
    if data[0] != CONTROL_POINT_RESPONSE_CODE:
        raise UnknownFrameTypeError(f"PMD control point: code 0x{data[0]:02X} is not decoded")
    _need(data, 4, "control point response")
    status = data[3]
    try:
        status_name = PmdStatus(status).name
    except ValueError:
        status_name = "UNKNOWN"
    success = status == PmdStatus.SUCCESS
    return PmdControlPointResponse(
        op_code=data[1],
        measurement_type=data[2],
        status=status,
        status_name=status_name,
        more=success and len(data) > 4 and data[4] != 0,
        parameters=data[5:] if success else b"",
    )


def parse_pmd_features(data: bytes) -> PmdFeatures:
    """Decode the control-point read value: 0x0F followed by the feature bitmask bytes."""
    data = bytes(data)
    _need(data, 2, "feature read")
    if data[0] != CONTROL_POINT_FEATURE_READ_CODE:
        raise UnknownFrameTypeError(f"PMD feature read: code 0x{data[0]:02X} is not 0x0F")
    mask = data[1:]
    found = frozenset(
        kind for index, bit, kind in _FEATURE_BITS if index < len(mask) and mask[index] & bit
    )
    return PmdFeatures(measurement_types=found)


def parse_pmd_settings(parameters: bytes) -> dict[PmdSettingType, tuple[int, ...]]:
    """Decode the parameters of a get-settings or start response.

    Each entry is ``type (1 byte), count (1 byte), count × value`` with the value width of
    its type (2 bytes for sample rate, resolution, range; 4 for range in milli-units and
    factor; 1 for channels). ``FACTOR`` is returned as its raw IEEE-754 bit pattern.
    """
    parameters = bytes(parameters)
    out: dict[PmdSettingType, tuple[int, ...]] = {}
    offset = 0
    while offset < len(parameters):
        _need(parameters, offset + 2, "setting header")
        code, count = parameters[offset], parameters[offset + 1]
        try:
            kind = PmdSettingType(code)
        except ValueError:
            raise UnknownFrameTypeError(f"PMD settings: setting type {code} is not known") from None
        width = _SETTING_FIELD_BYTES[kind]
        offset += 2
        _need(parameters, offset + count * width, f"{kind.name} values")
        out[kind] = tuple(
            int.from_bytes(parameters[offset + i * width : offset + (i + 1) * width], "little")
            for i in range(count)
        )
        offset += count * width
    return out


def pmd_get_settings_request(measurement_type: PmdMeasurementType) -> bytes:
    """Bytes to write to the control point to ask which settings a measurement supports."""
    return bytes([PmdOpCode.GET_MEASUREMENT_SETTINGS, measurement_type])


def pmd_start_ecg_request(
    sample_rate_hz: int = H10_ECG_SAMPLE_RATE_HZ, resolution_bits: int = H10_ECG_RESOLUTION_BITS
) -> bytes:
    """Bytes that start the raw ECG stream (H10: 130 Hz, 14 bit).

    ``02 00 | 00 01 <rate u16> | 01 01 <resolution u16>``; for the H10 defaults this is
    ``02 00 00 01 82 00 01 01 0E 00``.
    """
    for name, value in (("sample_rate_hz", sample_rate_hz), ("resolution_bits", resolution_bits)):
        if not 0 < value <= 0xFFFF:
            raise InvalidValueError(f"{name} {value} is not a positive uint16")
    return (
        bytes([PmdOpCode.REQUEST_MEASUREMENT_START, PmdMeasurementType.ECG])
        + bytes([PmdSettingType.SAMPLE_RATE, 1])
        + sample_rate_hz.to_bytes(2, "little")
        + bytes([PmdSettingType.RESOLUTION, 1])
        + resolution_bits.to_bytes(2, "little")
    )


def pmd_start_ppi_request() -> bytes:
    """Bytes that start the PPI stream (Verity Sense, OH1): ``02 03``, no settings."""
    return bytes([PmdOpCode.REQUEST_MEASUREMENT_START, PmdMeasurementType.PPI])


def pmd_stop_request(measurement_type: PmdMeasurementType) -> bytes:
    """Bytes that stop one measurement: ``03 <type>``."""
    return bytes([PmdOpCode.STOP_MEASUREMENT, measurement_type])


def _header(measurement: PmdMeasurementType, timestamp_ns: int) -> bytes:
    if not 0 <= timestamp_ns < 1 << 64:
        raise InvalidValueError(f"timestamp {timestamp_ns} ns is not a uint64")
    return bytes([measurement]) + timestamp_ns.to_bytes(8, "little") + b"\x00"


def encode_pmd_ecg_frame(timestamp_ns: int, samples_uv: tuple[int, ...] | list[int]) -> bytes:
    """Encode a raw ECG data frame (type 0) as a Polar H10 notifies it."""
    out = bytearray(_header(PmdMeasurementType.ECG, timestamp_ns))
    for sample in samples_uv:
        if not -(1 << 23) <= sample < 1 << 23:
            raise InvalidValueError(f"ECG sample {sample} µV does not fit 24 signed bits")
        out += sample.to_bytes(ECG_SAMPLE_BYTES, "little", signed=True)
    return bytes(out)


def encode_pmd_ppi_frame(
    samples: tuple[PpiSample, ...] | list[PpiSample], timestamp_ns: int = 0
) -> bytes:
    """Encode a PPI data frame (type 0) as a Polar Verity Sense notifies it."""
    out = bytearray(_header(PmdMeasurementType.PPI, timestamp_ns))
    for s in samples:
        if not (
            0 <= s.heart_rate_bpm <= 0xFF
            and 0 <= s.pp_ms <= 0xFFFF
            and 0 <= s.pp_error_ms <= 0xFFFF
        ):
            raise InvalidValueError("PPI sample field out of range (HR uint8, PP and error uint16)")
        flags = (
            (0x01 if s.blocker else 0)
            | (0x02 if s.skin_contact else 0)
            | (0x04 if s.skin_contact_supported else 0)
        )
        out += bytes([s.heart_rate_bpm])
        out += s.pp_ms.to_bytes(2, "little") + s.pp_error_ms.to_bytes(2, "little")
        out += bytes([flags])
    return bytes(out)
