"""Heart Rate Measurement (GATT characteristic 0x2A37) as a pure function on bytes.

Layout (Bluetooth SIG, GATT Specification Supplement, "Heart Rate Measurement"; all
little-endian)::

    byte 0        flags
                    bit 0     heart-rate value format: 0 = uint8, 1 = uint16
                    bits 1-2  sensor contact: 0b0x not supported, 0b10 supported but not
                              detected, 0b11 supported and detected (bit 1 = status,
                              bit 2 = feature supported)
                    bit 3     energy expended present (uint16, kJ)
                    bit 4     RR intervals present (any number of uint16, 1/1024 s)
                    bits 5-7  reserved; ignored
    byte 1 (..2)  heart rate, bpm (uint8 or uint16)
    next 2        energy expended, kJ (if bit 3)
    rest          RR intervals, uint16 each, 1/1024 s (if bit 4)

``parse_heart_rate_measurement`` returns a frozen dataclass or raises a
:class:`~shuxin.edge.errors.ParseError` subclass; it never raises anything else.
``encode_heart_rate_measurement`` is its inverse, used by the simulator and the tests.
This module must not do I/O, keep state, log, or import bleak.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shuxin.edge.errors import InvalidValueError, TruncatedFrameError

HEART_RATE_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"

RR_TICKS_PER_SECOND = 1024

_FLAG_HR_UINT16 = 0x01
_FLAG_CONTACT_STATUS = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY = 0x08
_FLAG_RR = 0x10
_UINT16_MAX = 0xFFFF


class SensorContact(enum.StrEnum):
    """Sensor-contact state from flag bits 1-2."""

    NOT_SUPPORTED = "not_supported"
    NOT_DETECTED = "not_detected"
    DETECTED = "detected"


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One decoded 0x2A37 notification.

    ``rr_ms`` holds the RR intervals in milliseconds (exact: ticks × 1000 / 1024);
    ``rr_ticks`` the raw 1/1024 s values, kept for lossless replay.
    """

    heart_rate_bpm: int
    sensor_contact: SensorContact
    energy_expended_kj: int | None
    rr_ticks: tuple[int, ...]
    rr_ms: tuple[float, ...]
    hr_uint16: bool


def rr_ticks_to_ms(ticks: int) -> float:
    """Convert an RR interval in 1/1024 s to milliseconds (exact in binary floating point)."""
    return ticks * 1000.0 / RR_TICKS_PER_SECOND


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise TruncatedFrameError(
            f"heart rate measurement: {what} needs {end} bytes, got {len(data)}"
        )


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Decode one Heart Rate Measurement (0x2A37) value.

    Parameters
    ----------
    data
        The characteristic value exactly as notified (at least 2 bytes).

    Returns
    -------
    HeartRateMeasurement
        Heart rate in bpm, sensor contact, energy expended in kJ (or None), RR intervals.

    Raises
    ------
    TruncatedFrameError
        Fewer bytes than the flags declare, or an odd byte left in the RR field.

    Notes
    -----
    Reserved flag bits 5-7 are ignored. When the RR bit is clear, bytes after the declared
    fields are ignored (a later revision of the characteristic may append fields). When it
    is set, every remaining byte pair is one RR interval; zero intervals are accepted (some
    straps set the bit on the first notification before a beat is available).
    """
    data = bytes(data)
    _need(data, 1, "flags")
    flags = data[0]
    offset = 1
    if flags & _FLAG_HR_UINT16:
        _need(data, offset + 2, "uint16 heart rate")
        heart_rate = int.from_bytes(data[offset : offset + 2], "little")
        offset += 2
    else:
        _need(data, offset + 1, "uint8 heart rate")
        heart_rate = data[offset]
        offset += 1

    if not flags & _FLAG_CONTACT_SUPPORTED:
        contact = SensorContact.NOT_SUPPORTED
    elif flags & _FLAG_CONTACT_STATUS:
        contact = SensorContact.DETECTED
    else:
        contact = SensorContact.NOT_DETECTED

    energy: int | None = None
    if flags & _FLAG_ENERGY:
        _need(data, offset + 2, "energy expended")
        energy = int.from_bytes(data[offset : offset + 2], "little")
        offset += 2

    ticks: tuple[int, ...] = ()
    if flags & _FLAG_RR:
        rest = data[offset:]
        if len(rest) % 2:
            raise TruncatedFrameError(
                f"heart rate measurement: RR field has {len(rest)} bytes, not a whole number "
                "of uint16 values"
            )
        ticks = tuple(int.from_bytes(rest[i : i + 2], "little") for i in range(0, len(rest), 2))

    return HeartRateMeasurement(
        heart_rate_bpm=heart_rate,
        sensor_contact=contact,
        energy_expended_kj=energy,
        rr_ticks=ticks,
        rr_ms=tuple(rr_ticks_to_ms(t) for t in ticks),
        hr_uint16=bool(flags & _FLAG_HR_UINT16),
    )


def encode_heart_rate_measurement(
    heart_rate_bpm: int,
    *,
    sensor_contact: SensorContact = SensorContact.NOT_SUPPORTED,
    energy_expended_kj: int | None = None,
    rr_ticks: tuple[int, ...] | None = None,
    hr_uint16: bool | None = None,
) -> bytes:
    """Encode a Heart Rate Measurement value as a sensor would notify it.

    ``hr_uint16=None`` picks uint8 when the rate fits in a byte. ``rr_ticks=None`` leaves
    the RR bit clear; an empty tuple sets it with no intervals. Raises ``InvalidValueError``
    for a field outside its unsigned range.
    """
    wide = heart_rate_bpm > 0xFF if hr_uint16 is None else hr_uint16
    limit = _UINT16_MAX if wide else 0xFF
    if not 0 <= heart_rate_bpm <= limit:
        raise InvalidValueError(f"heart rate {heart_rate_bpm} does not fit the chosen format")
    flags = _FLAG_HR_UINT16 if wide else 0
    if sensor_contact is SensorContact.DETECTED:
        flags |= _FLAG_CONTACT_SUPPORTED | _FLAG_CONTACT_STATUS
    elif sensor_contact is SensorContact.NOT_DETECTED:
        flags |= _FLAG_CONTACT_SUPPORTED
    out = bytearray()
    out += heart_rate_bpm.to_bytes(2 if wide else 1, "little")
    if energy_expended_kj is not None:
        if not 0 <= energy_expended_kj <= _UINT16_MAX:
            raise InvalidValueError(f"energy expended {energy_expended_kj} kJ is not a uint16")
        flags |= _FLAG_ENERGY
        out += energy_expended_kj.to_bytes(2, "little")
    if rr_ticks is not None:
        flags |= _FLAG_RR
        for tick in rr_ticks:
            if not 0 <= tick <= _UINT16_MAX:
                raise InvalidValueError(f"RR interval {tick}/1024 s is not a uint16")
            out += tick.to_bytes(2, "little")
    return bytes([flags]) + bytes(out)
