"""Battery Level (GATT characteristic 0x2A19) as a pure function on bytes.

The value is one uint8, percent of full charge, 0-100 (Bluetooth SIG, GATT Specification
Supplement, "Battery Level"). This module must not do I/O, keep state, log, or import bleak.
"""

from __future__ import annotations

from dataclasses import dataclass

from shuxin.edge.errors import InvalidValueError, TruncatedFrameError

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Battery charge in percent (0-100)."""

    percent: int


def parse_battery_level(data: bytes) -> BatteryLevel:
    """Decode a Battery Level value.

    Raises ``TruncatedFrameError`` for an empty value and ``InvalidValueError`` above 100 %.
    """
    data = bytes(data)
    if not data:
        raise TruncatedFrameError("battery level: needs 1 byte, got 0")
    if data[0] > 100:
        raise InvalidValueError(f"battery level: {data[0]} % is above 100 %")
    return BatteryLevel(percent=data[0])
