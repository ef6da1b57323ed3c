"""One BLE scan through bleak, returned as plain frozen records (the scan half of the BLE port).

bleak is optional (the ``ble`` extra) and imported lazily inside :func:`scan_advertisements`
only; bleak's ``BLEDevice``/``AdvertisementData`` are converted to :class:`Advertisement` at
this boundary and its errors are translated to :class:`~shuxin.edge.errors.BleError`.
Only ``edge/source_ble*.py`` modules may import bleak. This module must not parse
notifications or pick profiles (``shuxin.edge.device_profile.match_profiles`` does).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from shuxin.edge.errors import BleError, BleUnavailableError

BLE_EXTRA_MESSAGE = "BLE scanning needs the 'ble' extra: pip install 'shuxin[ble]'"


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What one scan saw of one device."""

    address: str
    name: str | None
    rssi: int | None
    service_uuids: tuple[str, ...]


def bleak_available() -> bool:
    """True when bleak can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("bleak") is not None
    except (ImportError, ValueError):
        return False


def _import_bleak() -> Any:
    try:
        return importlib.import_module("bleak")
    except ImportError as exc:
        raise BleUnavailableError(BLE_EXTRA_MESSAGE) from exc


async def scan_advertisements(timeout_s: float = 5.0) -> list[Advertisement]:
    """Scan for ``timeout_s`` seconds; one record per device, strongest signal first.

    Raises
    ------
    BleUnavailableError
        bleak is not installed.
    BleError
        bleak or the operating system failed (no adapter, BlueZ not running).
    """
    bleak = _import_bleak()
    bleak_error: type[BaseException] = getattr(
        getattr(bleak, "exc", None), "BleakError", RuntimeError
    )
    try:
        found = await bleak.BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except (bleak_error, OSError) as exc:
        raise BleError(f"BLE scan failed: {exc}") from exc
    records = [
        Advertisement(
            address=str(device.address),
            name=adv.local_name or device.name,
            rssi=adv.rssi,
            service_uuids=tuple(str(u).lower() for u in adv.service_uuids),
        )
        for device, adv in found.values()
    ]
    return sorted(records, key=lambda r: (-(r.rssi if r.rssi is not None else -999), r.address))
