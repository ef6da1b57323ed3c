"""The shuxin EDA/GSR notification format (``shuxin_eda_v1``) as pure functions on bytes.

No standard GATT profile exists for electrodermal activity, so shuxin defines one for an
ESP32-class GSR module (the service and characteristic UUIDs, rates and calibration
constants live in ``firmware_configs/devices/shuxin_gsr.yaml``; the C header the firmware
compiles against is generated from that file and from the layout constants below). The full
specification for firmware authors is ``docs/edge-ble.md``.

Data frame (notification; all integers little-endian)::

    byte 0      frame type: 0x01 = divider voltage, uint16 per sample, 0.1 mV units
                            0x02 = skin conductance, uint32 per sample, nS
    byte 1      flags: bit 0 electrode off, bit 1 ADC saturated, bit 2 battery low;
                bits 3-7 reserved (sent as 0, ignored)
    bytes 2-3   uint16 sequence number: +1 per frame, wraps 65535 -> 0
    bytes 4-7   uint32 device time of the FIRST sample, ms since boot (wraps after ~49.7 d)
    byte 8      sample rate, Hz (1-32; the profile lists the supported ones)
    byte 9      sample count N (1-32)
    bytes 10-   N samples; the all-ones value (0xFFFF / 0xFFFFFFFF) marks an invalid sample

Loss shows as a sequence gap (:func:`classify_sequence`), reordering as a sequence that
steps backwards, and a clock jump as a first-sample time that disagrees with the previous
frame's time + N / rate.

Calibration of frame type 0x01 (series reference resistor, constant-voltage excitation)::

    V_adc = raw × voltage_lsb_v              (the firmware applies the ESP32 ADC calibration)
    V_r   = V_adc / amplifier_gain           (voltage across the reference resistor)
    G     = V_r / (reference_ohm × (excitation_v − V_r))   siemens; × 1e6 -> µS

``V_r >= excitation_v`` is physically impossible (infinite conductance) and gives an invalid
sample. This module must not do I/O, keep state, log, or import bleak.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shuxin.edge.errors import InvalidValueError, TruncatedFrameError, UnknownFrameTypeError

EDA_FORMAT = "shuxin_eda_v1"
EDA_HEADER_BYTES = 10
EDA_MAX_SAMPLE_RATE_HZ = 32
EDA_MAX_SAMPLES_PER_FRAME = 32
EDA_FLAG_ELECTRODE_OFF = 0x01
EDA_FLAG_ADC_SATURATED = 0x02
EDA_FLAG_BATTERY_LOW = 0x04
EDA_INVALID_VOLTAGE = 0xFFFF
EDA_INVALID_CONDUCTANCE = 0xFFFFFFFF
EDA_SEQUENCE_MODULUS = 1 << 16
EDA_CONTROL_SET_RATE = 0x01
EDA_CONTROL_SET_FRAME_TYPE = 0x02


class EdaFrameType(enum.IntEnum):
    """Byte 0 of an EDA data frame: what the samples are."""

    VOLTAGE_0P1MV = 0x01
    CONDUCTANCE_NS = 0x02


_SAMPLE_BYTES = {EdaFrameType.VOLTAGE_0P1MV: 2, EdaFrameType.CONDUCTANCE_NS: 4}
_INVALID = {
    EdaFrameType.VOLTAGE_0P1MV: EDA_INVALID_VOLTAGE,
    EdaFrameType.CONDUCTANCE_NS: EDA_INVALID_CONDUCTANCE,
}


@dataclass(frozen=True, slots=True)
class EdaCalibration:
    """Constants that turn a divider voltage into skin conductance (see the module doc).

    Parameters
    ----------
    excitation_v
        Constant excitation voltage across skin + reference resistor, V (typically 0.5 V).
    reference_ohm
        Series reference resistor, Ω.
    amplifier_gain
        Gain between the reference resistor and the ADC input (dimensionless, ≥ 1).
    voltage_lsb_v
        Volts per unit of a frame-type-0x01 sample (0.1 mV = 1e-4 V).
    """

    excitation_v: float
    reference_ohm: float
    amplifier_gain: float
    voltage_lsb_v: float = 1e-4

    def conductance_us(self, raw: int) -> float | None:
        """Skin conductance in µS for one raw voltage sample, or None when impossible."""
        v_r = raw * self.voltage_lsb_v / self.amplifier_gain
        if v_r >= self.excitation_v:
            return None
        return 1e6 * v_r / (self.reference_ohm * (self.excitation_v - v_r))


@dataclass(frozen=True, slots=True)
class EdaFrame:
    """One decoded EDA notification.

    ``raw`` holds the samples as sent; ``eda_us`` the skin conductance in µS (None for an
    invalid sample). ``device_time_ms`` is the device time of the first sample.
    """

    frame_type: EdaFrameType
    sequence: int
    device_time_ms: int
    sample_rate_hz: int
    electrode_off: bool
    adc_saturated: bool
    battery_low: bool
    raw: tuple[int, ...]
    eda_us: tuple[float | None, ...]

    def sample_times_ms(self) -> tuple[float, ...]:
        """Device time of every sample, ms (first sample + i / rate)."""
        step = 1000.0 / self.sample_rate_hz
        return tuple(self.device_time_ms + i * step for i in range(len(self.raw)))

    def next_device_time_ms(self) -> float:
        """Device time the next frame's first sample should carry when nothing is lost."""
        return self.device_time_ms + len(self.raw) * 1000.0 / self.sample_rate_hz


class SequenceStatus(enum.StrEnum):
    """How a frame's sequence number relates to the previous frame's."""

    CONTIGUOUS = "contiguous"
    DUPLICATE = "duplicate"
    GAP = "gap"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class SequenceStep:
    """Result of :func:`classify_sequence`; ``lost_frames`` is > 0 only for a gap."""

    status: SequenceStatus
    lost_frames: int


def classify_sequence(previous: int, current: int) -> SequenceStep:
    """Compare two uint16 sequence numbers (modulo 65536).

    A forward step of 1 is contiguous, 0 a duplicate, 2..32767 a gap of ``step - 1`` lost
    frames, and a step of 32768 or more (i.e. backwards) a stale, reordered frame.
    """
    step = (current - previous) % EDA_SEQUENCE_MODULUS
    if step == 0:
        return SequenceStep(SequenceStatus.DUPLICATE, 0)
    if step == 1:
        return SequenceStep(SequenceStatus.CONTIGUOUS, 0)
    if step < EDA_SEQUENCE_MODULUS // 2:
        return SequenceStep(SequenceStatus.GAP, step - 1)
    return SequenceStep(SequenceStatus.STALE, 0)


def parse_eda_frame(data: bytes, calibration: EdaCalibration) -> EdaFrame:
    """Decode one ``shuxin_eda_v1`` notification.

    Parameters
    ----------
    data
        The notification value.
    calibration
        Conversion constants from the device profile (used by frame type 0x01).

    Raises
    ------
    TruncatedFrameError
        Shorter than the header, or fewer sample bytes than the header's count declares.
    UnknownFrameTypeError
        A frame type other than 0x01 / 0x02.
    InvalidValueError
        Sample rate outside 1-32 Hz, a sample count outside 1-32, or bytes beyond the
        declared samples.
    """
    data = bytes(data)
    if len(data) < EDA_HEADER_BYTES:
        raise TruncatedFrameError(
            f"EDA frame: header needs {EDA_HEADER_BYTES} bytes, got {len(data)}"
        )
    try:
        frame_type = EdaFrameType(data[0])
    except ValueError:
        raise UnknownFrameTypeError(
            f"EDA frame: frame type 0x{data[0]:02X} is not decoded"
        ) from None
    flags = data[1]
    sequence = int.from_bytes(data[2:4], "little")
    device_time_ms = int.from_bytes(data[4:8], "little")
    rate_hz, count = data[8], data[9]
    if not 1 <= rate_hz <= EDA_MAX_SAMPLE_RATE_HZ:
        raise InvalidValueError(f"EDA frame: sample rate {rate_hz} Hz is outside 1-32 Hz")
    if not 1 <= count <= EDA_MAX_SAMPLES_PER_FRAME:
        raise InvalidValueError(f"EDA frame: sample count {count} is outside 1-32")
    width = _SAMPLE_BYTES[frame_type]
    expected = EDA_HEADER_BYTES + count * width
    if len(data) < expected:
        raise TruncatedFrameError(
            f"EDA frame: {count} samples need {expected} bytes, got {len(data)}"
        )
    if len(data) > expected:
        raise InvalidValueError(
            f"EDA frame: {len(data) - expected} bytes beyond the {count} declared samples"
        )
    raw = tuple(
        int.from_bytes(
            data[EDA_HEADER_BYTES + i * width : EDA_HEADER_BYTES + (i + 1) * width], "little"
        )
        for i in range(count)
    )
    invalid = _INVALID[frame_type]
    eda_us: tuple[float | None, ...]
    if frame_type is EdaFrameType.VOLTAGE_0P1MV:
        eda_us = tuple(None if r == invalid else calibration.conductance_us(r) for r in raw)
    else:
        eda_us = tuple(None if r == invalid else r / 1000.0 for r in raw)
    return EdaFrame(
        frame_type=frame_type,
        sequence=sequence,
        device_time_ms=device_time_ms,
        sample_rate_hz=rate_hz,
        electrode_off=bool(flags & EDA_FLAG_ELECTRODE_OFF),
        adc_saturated=bool(flags & EDA_FLAG_ADC_SATURATED),
        battery_low=bool(flags & EDA_FLAG_BATTERY_LOW),
        raw=raw,
        eda_us=eda_us,
    )


def encode_eda_frame(
    frame_type: EdaFrameType,
    *,
    sequence: int,
    device_time_ms: int,
    sample_rate_hz: int,
    raw: tuple[int, ...] | list[int],
    electrode_off: bool = False,
    adc_saturated: bool = False,
    battery_low: bool = False,
) -> bytes:
    """Encode an EDA notification exactly as the firmware must send it.

    Sequence and device time are reduced modulo their field width, as the firmware's
    counters wrap. Raises ``InvalidValueError`` for a rate, count or sample out of range.
    """
    if not 1 <= sample_rate_hz <= EDA_MAX_SAMPLE_RATE_HZ:
        raise InvalidValueError(f"sample rate {sample_rate_hz} Hz is outside 1-32 Hz")
    if not 1 <= len(raw) <= EDA_MAX_SAMPLES_PER_FRAME:
        raise InvalidValueError(f"sample count {len(raw)} is outside 1-32")
    width = _SAMPLE_BYTES[frame_type]
    flags = (
        (EDA_FLAG_ELECTRODE_OFF if electrode_off else 0)
        | (EDA_FLAG_ADC_SATURATED if adc_saturated else 0)
        | (EDA_FLAG_BATTERY_LOW if battery_low else 0)
    )
    out = bytearray([frame_type, flags])
    out += (sequence % EDA_SEQUENCE_MODULUS).to_bytes(2, "little")
    out += (device_time_ms % (1 << 32)).to_bytes(4, "little")
    out += bytes([sample_rate_hz, len(raw)])
    for value in raw:
        if not 0 <= value < 1 << (8 * width):
            raise InvalidValueError(f"sample {value} does not fit {width} unsigned bytes")
        out += value.to_bytes(width, "little")
    return bytes(out)


def voltage_raw_for_conductance(eda_us: float, calibration: EdaCalibration) -> int:
    """Inverse calibration: the frame-type-0x01 sample a device sends for ``eda_us`` µS.

    Rounded to the nearest 0.1 mV step; used by the simulator and by the tests.
    """
    if eda_us < 0:
        raise InvalidValueError(f"conductance {eda_us} µS is negative")
    g = eda_us * 1e-6
    v_r = (
        g
        * calibration.reference_ohm
        * calibration.excitation_v
        / (1 + g * calibration.reference_ohm)
    )
    raw = round(v_r * calibration.amplifier_gain / calibration.voltage_lsb_v)
    if raw >= EDA_INVALID_VOLTAGE:
        raise InvalidValueError(f"conductance {eda_us} µS is beyond the voltage field")
    return raw


@dataclass(frozen=True, slots=True)
class EdaControlRequest:
    """A command written to the EDA control point: ``op_code`` and its one-byte value."""

    op_code: int
    name: str
    value: int


def parse_eda_control_request(data: bytes) -> EdaControlRequest:
    """Decode a control-point write (2 bytes: op code, value), e.g. from a capture.

    ``01 <rate Hz>`` sets the sample rate (1-32); ``02 <frame type>`` selects 0x01 voltage
    or 0x02 conductance frames.
    """
    data = bytes(data)
    if len(data) < 2:
        raise TruncatedFrameError(f"EDA control: needs 2 bytes, got {len(data)}")
    if len(data) > 2:
        raise InvalidValueError(f"EDA control: {len(data) - 2} bytes beyond op code and value")
    op, value = data[0], data[1]
    if op == EDA_CONTROL_SET_RATE:
        if not 1 <= value <= EDA_MAX_SAMPLE_RATE_HZ:
            raise InvalidValueError(f"EDA control: sample rate {value} Hz is outside 1-32 Hz")
        return EdaControlRequest(op_code=op, name="set_rate", value=value)
    if op == EDA_CONTROL_SET_FRAME_TYPE:
        if value not in set(EdaFrameType):
            raise InvalidValueError(f"EDA control: frame type 0x{value:02X} is not 0x01 or 0x02")
        return EdaControlRequest(op_code=op, name="set_frame_type", value=value)
    raise UnknownFrameTypeError(f"EDA control: op code 0x{op:02X} is not decoded")


def eda_set_rate_request(sample_rate_hz: int) -> bytes:
    """Bytes to write to the EDA control point to choose the sample rate: ``01 <Hz>``."""
    if not 1 <= sample_rate_hz <= EDA_MAX_SAMPLE_RATE_HZ:
        raise InvalidValueError(f"sample rate {sample_rate_hz} Hz is outside 1-32 Hz")
    return bytes([EDA_CONTROL_SET_RATE, sample_rate_hz])


def eda_set_frame_type_request(frame_type: EdaFrameType) -> bytes:
    """Bytes to write to the EDA control point to choose the frame type: ``02 <type>``."""
    return bytes([EDA_CONTROL_SET_FRAME_TYPE, frame_type])
