"""Real BLE sensors behind the :class:`~shuxin.edge.sources.SensorSource` port, through bleak.

For each configured device :class:`BleSource` loops forever: scan for the address
(``BleakScanner.find_device_by_address``), connect by the ``BLEDevice`` object through
bleak-retry-connector's ``establish_connection``, enable notifications on every notifying
characteristic of the device's profile, read the battery level once, then forward each
notification to the sink as a :class:`~shuxin.edge.sources.Notification` whose ``data`` is
``bytes`` (bleak's ``bytearray`` stops here). The link ends when bleak reports a disconnect
(``DeviceDisconnected(reason="link_lost")``) or when no notification arrived for
``watchdog_s`` seconds (the source disconnects, ``reason="watchdog"``); then it reconnects
after a capped exponential backoff with full jitter (:class:`shuxin.runtime.backoff.Backoff`).

Callbacks registered on an earlier connection are ignored (each connection has a generation),
and a callback invoked twice for one notification (BlueZ after a reconnect) is emitted once;
the decoder guards again. bleak's errors become :class:`~shuxin.edge.errors.BleError`
subclasses (``raise … from``). bleak is optional (the ``ble`` extra) and imported lazily, so
this module imports without it. ``backend`` / ``scanner_backend`` are passed to
``BleakClient`` / ``BleakScanner`` so tests can inject a software peripheral.

This module must not parse notification bytes, choose profiles, or publish anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from shuxin.edge.clock import Clock
from shuxin.edge.device_profile import Characteristic, DeviceProfile, Role, StreamKind
from shuxin.edge.errors import BleError, BleUnavailableError
from shuxin.edge.sources import (
    DeviceConnected,
    DeviceDisconnected,
    DeviceRef,
    EventSink,
    Notification,
)
from shuxin.runtime.backoff import Backoff

log = logging.getLogger(__name__)

BLE_EXTRA_MESSAGE: Final = "BLE devices need the 'ble' extra: pip install 'shuxin[ble]'"
#: Two callbacks with the same role and bytes closer than this are one notification delivered
#: twice. The fastest notifier in the profiles (Polar PMD ECG, 73 samples at 130 Hz) sends one
#: frame per ~0.56 s, so 5 ms cannot merge two genuine notifications.
DUPLICATE_WINDOW_S: Final = 0.005


class BleDeviceNotFoundError(BleError):
    """A scan did not see the device's address."""


class BleConnectError(BleError):
    """Connecting, discovering services or enabling notifications failed."""


@dataclass(frozen=True, slots=True)
class BleDeviceSpec:
    """One device to serve: its reference, its BLE address and its profile."""

    ref: DeviceRef
    address: str
    profile: DeviceProfile


@dataclass(slots=True)
class _Link:
    """Per-device state shared between the connection loop and bleak's callbacks."""

    generation: int = 0
    last_rx: float = 0.0
    last_data: dict[str, tuple[bytes, float]] = field(default_factory=dict)


class BleSource:
    """A :class:`~shuxin.edge.sources.SensorSource` over BLE devices, one task per device.

    Parameters
    ----------
    devices
        The devices to serve.
    clock
        Station clock; stamps ``received_at`` and link events (POSIX s).
    backoff
        Wait before reconnect attempt ``n`` (reset after a successful connection).
    watchdog_s
        Notification silence (s, loop time) after which the link is dropped and re-made.
    scan_timeout_s
        Longest scan for one device (s).
    rng
        Jitter source for the backoff.
    backend, scanner_backend
        Optional bleak backend classes (``BaseBleakClient`` / ``BaseBleakScanner``
        subclasses) for tests; ``None`` lets bleak choose the platform's.
    """

    def __init__(
        self,
        devices: Sequence[BleDeviceSpec],
        *,
        clock: Clock,
        backoff: Backoff | None = None,
        watchdog_s: float = 10.0,
        scan_timeout_s: float = 10.0,
        rng: random.Random | None = None,
        backend: type[Any] | None = None,
        scanner_backend: type[Any] | None = None,
    ) -> None:
        if watchdog_s <= 0 or scan_timeout_s <= 0:
            raise ValueError("watchdog_s and scan_timeout_s must be > 0")
        self._specs = tuple(devices)
        self._clock = clock
        self._backoff = backoff if backoff is not None else Backoff()
        self._watchdog_s = watchdog_s
        self._scan_timeout_s = scan_timeout_s
        self._rng = rng if rng is not None else random.Random()
        self._backend = backend
        self._scanner_backend = scanner_backend

    @property
    def devices(self) -> tuple[DeviceRef, ...]:
        """The devices this source serves."""
        return tuple(spec.ref for spec in self._specs)

    async def run(self, sink: EventSink) -> None:
        """Serve every device until cancelled; connection failures never escape."""
        async with asyncio.TaskGroup() as group:
            for spec in self._specs:
                group.create_task(self._serve(spec, sink), name=f"ble:{spec.ref.device_id}")

    async def _serve(self, spec: BleDeviceSpec, sink: EventSink) -> None:
        link = _Link()
        attempt = 0
        while True:
            try:
                await self._session(spec, link, sink)
                attempt = 0
            except BleError as exc:
                log.warning("device %s: %s", spec.ref.device_id, exc)
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            await asyncio.sleep(delay)

    async def _session(self, spec: BleDeviceSpec, link: _Link, sink: EventSink) -> None:
        """One scan-connect-stream cycle; returns after the link ended (event emitted)."""
        bleak, retry = _import_bleak()
        loop = asyncio.get_running_loop()
        device_id = spec.ref.device_id
        scanner_kwargs: dict[str, Any] = {}
        if self._scanner_backend is not None:
            scanner_kwargs["backend"] = self._scanner_backend
        try:
            device = await bleak.BleakScanner.find_device_by_address(
                spec.address, timeout=self._scan_timeout_s, **scanner_kwargs
            )
        except (bleak.exc.BleakError, OSError) as exc:
            raise BleError(f"scan for {spec.address} failed: {exc}") from exc
        if device is None:
            raise BleDeviceNotFoundError(f"{spec.address} not seen in {self._scan_timeout_s} s")

        lost = asyncio.Event()
        client_kwargs: dict[str, Any] = {}
        if self._backend is not None:
            client_kwargs["backend"] = self._backend
        try:
            client = await retry.establish_connection(
                bleak.BleakClient,
                device,
                device_id,
                disconnected_callback=lambda _client: loop.call_soon_threadsafe(lost.set),
                **client_kwargs,
            )
        except (bleak.exc.BleakError, TimeoutError, OSError) as exc:
            raise BleConnectError(f"connect to {spec.address} failed: {exc}") from exc

        link.generation += 1
        link.last_data.clear()
        link.last_rx = loop.time()
        connected = False
        reason: Literal["link_lost", "watchdog", "stopped"] = "stopped"
        try:
            try:
                for characteristic in _notifying(spec.profile, client):
                    await client.start_notify(
                        characteristic.uuid,
                        self._callback(device_id, characteristic.role, link, sink),
                    )
                control = _pmd_control(spec.profile, client)
                if control is not None:
                    # Polar PMD streams (H10 ECG, Verity PPI) flow only once started.
                    for request in pmd_start_requests(spec.profile):
                        await client.write_gatt_char(control.uuid, request, response=True)
                battery = _battery(spec.profile, client)
                battery_bytes = bytes(await client.read_gatt_char(battery.uuid)) if battery else b""
            except (bleak.exc.BleakError, TimeoutError, OSError) as exc:
                raise BleConnectError(f"set-up of {spec.address} failed: {exc}") from exc
            sink(DeviceConnected(device_id=device_id, profile=spec.ref.profile, at=self._now()))
            connected = True
            if battery_bytes:
                sink(Notification(device_id, Role.BATTERY.value, battery_bytes, self._now()))
            reason = await self._watch(lost, link)
        finally:
            link.generation += 1
            if connected:
                sink(DeviceDisconnected(device_id=device_id, at=self._now(), reason=reason))
            with contextlib.suppress(bleak.exc.BleakError, TimeoutError, OSError):
                await client.disconnect()

    async def _watch(self, lost: asyncio.Event, link: _Link) -> Literal["link_lost", "watchdog"]:
        loop = asyncio.get_running_loop()
        while True:
            remaining = link.last_rx + self._watchdog_s - loop.time()
            if remaining <= 0:
                return "watchdog"
            try:
                await asyncio.wait_for(lost.wait(), timeout=remaining)
            except TimeoutError:
                continue
            return "link_lost"

    def _callback(
        self, device_id: str, role: str, link: _Link, sink: EventSink
    ) -> Callable[[Any, bytearray], None]:
        generation = link.generation
        loop = asyncio.get_running_loop()

        def on_notify(_characteristic: Any, data: bytearray) -> None:
            if generation != link.generation:
                return
            value = bytes(data)
            now = loop.time()
            previous = link.last_data.get(role)
            link.last_rx = now
            if (
                previous is not None
                and previous[0] == value
                and now - previous[1] < DUPLICATE_WINDOW_S
            ):
                return
            link.last_data[role] = (value, now)
            sink(Notification(device_id, role, value, self._now()))

        return on_notify

    def _now(self) -> float:
        return self._clock.now()


def _import_bleak() -> tuple[Any, Any]:
    try:
        import bleak
        import bleak.exc
        import bleak_retry_connector
    except ImportError as exc:
        raise BleUnavailableError(BLE_EXTRA_MESSAGE) from exc
    return bleak, bleak_retry_connector


def _present(client: Any, characteristic: Characteristic) -> bool:
    return client.services.get_characteristic(characteristic.uuid) is not None


def _notifying(profile: DeviceProfile, client: Any) -> list[Characteristic]:
    chosen = []
    for item in profile.characteristics:
        if "notify" not in item.properties or item.role is Role.BATTERY:
            continue
        if _present(client, item):
            chosen.append(item)
        elif not item.optional:
            raise BleConnectError(f"device lacks characteristic {item.role.value} ({item.uuid})")
    return chosen


def pmd_start_requests(profile: DeviceProfile) -> list[bytes]:
    """The PMD control-point writes that start the profile's ECG/PPI streams (may be none)."""
    from shuxin.edge.parse_pmd import pmd_start_ecg_request, pmd_start_ppi_request

    requests = []
    for stream in profile.streams:
        if stream.pmd is None:
            continue
        if stream.kind is StreamKind.ECG:
            rate = int(stream.sample_rate_hz) if stream.sample_rate_hz else None
            bits = stream.pmd.resolution_bits
            kwargs = {k: v for k, v in (("sample_rate_hz", rate), ("resolution_bits", bits)) if v}
            requests.append(pmd_start_ecg_request(**kwargs))
        elif stream.kind is StreamKind.PPI:
            requests.append(pmd_start_ppi_request())
    return requests


def _pmd_control(profile: DeviceProfile, client: Any) -> Characteristic | None:
    for item in profile.characteristics:
        if item.role is Role.PMD_CONTROL and _present(client, item):
            return item
    return None


def _battery(profile: DeviceProfile, client: Any) -> Characteristic | None:
    for item in profile.characteristics:
        if item.role is Role.BATTERY and "read" in item.properties and _present(client, item):
            return item
    return None
