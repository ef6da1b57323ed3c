"""BleSource through bleak's public API against a pure-Python fake peripheral.

The fake is a test-only bleak backend (``BaseBleakClient`` and ``BaseBleakScanner``
subclasses) injected with ``backend=``; it serves the Heart Rate Service (0x180D / 0x2A37) and
the battery level (0x180F / 0x2A19). Real bleak (``BleakScanner``, ``BleakClient``) and
bleak-retry-connector (``establish_connection``) run unchanged above it. It is not bumble:
a bumble-backed peripheral is still to do.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

bleak = pytest.importorskip("bleak")
pytest.importorskip("bleak_retry_connector")

from bleak.backends.characteristic import BleakGATTCharacteristic  # noqa: E402
from bleak.backends.client import BaseBleakClient  # noqa: E402
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner  # noqa: E402
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection  # noqa: E402
from bleak.exc import BleakError  # noqa: E402

from shuxin.edge.clock import SystemClock  # noqa: E402
from shuxin.edge.decode import DataGap, EventDecoder  # noqa: E402
from shuxin.edge.device_profile import default_profiles_dir, load_profile  # noqa: E402
from shuxin.edge.errors import BleError  # noqa: E402
from shuxin.edge.parse_hrs import encode_heart_rate_measurement  # noqa: E402
from shuxin.edge.source_ble import BleDeviceSpec, BleSource  # noqa: E402
from shuxin.edge.sources import (  # noqa: E402
    DeviceConnected,
    DeviceDisconnected,
    DeviceRef,
    Notification,
    SourceEvent,
)
from shuxin.runtime.backoff import Backoff  # noqa: E402

ADDRESS = "C0:FF:EE:00:00:01"
HRS_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
HRM_CHAR = "00002a37-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_CHAR = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_ID = "hr-01"


class FakePeripheral:
    """A Heart Rate Service strap in memory; the fake backends reach it by address."""

    def __init__(self) -> None:
        self.advertising = True
        self.scan_error = False
        self.connects = 0
        self.battery = bytearray([87])
        # BlueZ-like faults: a dropped link leaves the old registration alive, and a
        # re-subscription registers the callback twice.
        self.stale_callbacks = True
        self.double_registration = False
        self.clients: list[FakeClientBackend] = []
        self.subscriptions: list[Callable[[bytearray], None]] = []

    def notify_heart_rate(self, value: bytes) -> None:
        for callback in list(self.subscriptions):
            callback(bytearray(value))

    def drop_link(self) -> None:
        for client in list(self.clients):
            client.link_lost()


PERIPHERALS: dict[str, FakePeripheral] = {}


def _services() -> BleakGATTServiceCollection:
    collection = BleakGATTServiceCollection()
    handle = 1
    for service_uuid, char_uuid, props in (
        (HRS_SERVICE, HRM_CHAR, ["notify"]),
        (BATTERY_SERVICE, BATTERY_CHAR, ["read", "notify"]),
    ):
        service = BleakGATTService(None, handle, service_uuid)
        collection.add_service(service)
        characteristic = BleakGATTCharacteristic(
            None, handle + 1, char_uuid, props, lambda: 20, service
        )
        collection.add_characteristic(characteristic)
        handle += 10
    return collection


class FakeClientBackend(BaseBleakClient):
    """Test-only bleak client backend talking to a :class:`FakePeripheral`."""

    def __init__(self, address_or_ble_device: Any, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.get("disconnected_callback"),
            timeout=kwargs.get("timeout", 10.0),
        )
        self._peripheral = PERIPHERALS[self.address]
        self._connected = False
        self._mine: list[Callable[[bytearray], None]] = []

    @property
    def mtu_size(self) -> int:
        return 23

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if not self._peripheral.advertising:
            raise BleakError("peripheral not reachable")
        self.services = _services()
        self._connected = True
        self._peripheral.clients.append(self)
        self._peripheral.connects += 1

    async def disconnect(self) -> None:
        self._drop(stale=False)

    def link_lost(self) -> None:
        self._drop(stale=self._peripheral.stale_callbacks)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    def _drop(self, *, stale: bool) -> None:
        self._connected = False
        if self in self._peripheral.clients:
            self._peripheral.clients.remove(self)
        if not stale:
            for callback in self._mine:
                if callback in self._peripheral.subscriptions:
                    self._peripheral.subscriptions.remove(callback)
        self._mine.clear()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def unpair(self) -> None:
        raise NotImplementedError

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, **kwargs: Any
    ) -> bytearray:
        assert characteristic.uuid == BATTERY_CHAR
        return bytearray(self._peripheral.battery)

    async def read_gatt_descriptor(self, *args: Any, **kwargs: Any) -> bytearray:
        raise NotImplementedError

    async def write_gatt_char(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def write_gatt_descriptor(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: Callable[[bytearray], None],
        **kwargs: Any,
    ) -> None:
        assert characteristic.uuid == HRM_CHAR
        copies = 2 if self._peripheral.double_registration else 1
        for _ in range(copies):
            self._peripheral.subscriptions.append(callback)
            self._mine.append(callback)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._drop(stale=False)


class FakeScannerBackend(BaseBleakScanner):
    """Test-only bleak scanner backend: every advertising fake peripheral is seen at once."""

    def __init__(self, detection_callback: Any, service_uuids: Any, *args: Any, **kwargs: Any):
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        if any(p.scan_error for p in PERIPHERALS.values()):
            raise BleakError("adapter gone")
        # Advertise on the next loop turn: bleak registers its callbacks after start().
        asyncio.get_running_loop().call_soon(self._advertise)

    def _advertise(self) -> None:
        for address, peripheral in PERIPHERALS.items():
            if not peripheral.advertising:
                continue
            adv = AdvertisementData(
                local_name="HRS strap",
                manufacturer_data={},
                service_data={},
                service_uuids=[HRS_SERVICE],
                tx_power=None,
                rssi=-60,
                platform_data=(),
            )
            device = self.create_or_update_device(address, address, "HRS strap", None, adv)
            self.call_detection_callbacks(device, adv)

    async def stop(self) -> None:
        return None


class RecordingRandom(random.Random):
    """Records the ceiling of every backoff draw and returns half of it."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ceilings: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.ceilings.append(b)
        return b / 2


@pytest.fixture
def peripheral() -> Any:
    fake = FakePeripheral()
    PERIPHERALS[ADDRESS] = fake
    yield fake
    PERIPHERALS.clear()


def _source(rng: random.Random, watchdog_s: float = 5.0, scan_timeout_s: float = 1.0) -> BleSource:
    profile = load_profile(default_profiles_dir() / "hrs_strap.yaml")
    spec = BleDeviceSpec(DeviceRef(DEVICE_ID, profile.name), ADDRESS, profile)
    return BleSource(
        [spec],
        clock=SystemClock(),
        backoff=Backoff(initial_s=0.01, cap_s=0.04, factor=2.0),
        watchdog_s=watchdog_s,
        scan_timeout_s=scan_timeout_s,
        rng=rng,
        backend=FakeClientBackend,
        scanner_backend=FakeScannerBackend,
    )


async def _until(condition: Callable[[], bool]) -> None:
    # Polls the loop; the outer asyncio.timeout in each test bounds it.
    while not condition():
        await asyncio.sleep(0.005)


def _count(events: list[SourceEvent], kind: type) -> int:
    return sum(isinstance(event, kind) for event in events)


def test_notifications_link_loss_reconnect_and_duplicates(peripheral: FakePeripheral) -> None:
    events: list[SourceEvent] = []
    rng = RecordingRandom()
    source = _source(rng)
    first = encode_heart_rate_measurement(72, rr_ticks=(850,))
    after = encode_heart_rate_measurement(74, rr_ticks=(830,))

    async def scenario() -> None:
        async with asyncio.timeout(10):
            task = asyncio.create_task(source.run(events.append))
            await _until(lambda: _count(events, DeviceConnected) == 1)
            peripheral.notify_heart_rate(first)
            peripheral.double_registration = True
            peripheral.drop_link()
            await _until(lambda: _count(events, DeviceConnected) == 2)
            # One notification now reaches a stale callback of the first connection and two
            # registrations of the second: exactly one must be emitted.
            peripheral.notify_heart_rate(after)
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    heart = [e for e in events if isinstance(e, Notification) and e.role == "heart_rate"]
    assert [n.data for n in heart] == [first, after]
    assert all(type(n.data) is bytes for n in heart)
    battery = [e for e in events if isinstance(e, Notification) and e.role == "battery"]
    assert [n.data for n in battery] == [b"\x57", b"\x57"]
    downs = [e for e in events if isinstance(e, DeviceDisconnected)]
    assert [d.reason for d in downs] == ["link_lost", "stopped"]
    assert peripheral.connects == 2
    # After a clean session the backoff restarts at its first ceiling.
    assert rng.ceilings == [0.01]


def test_backoff_grows_capped_while_device_is_away(peripheral: FakePeripheral) -> None:
    events: list[SourceEvent] = []
    rng = RecordingRandom()
    source = _source(rng, scan_timeout_s=0.05)
    peripheral.advertising = False

    async def scenario() -> None:
        async with asyncio.timeout(10):
            task = asyncio.create_task(source.run(events.append))
            await _until(lambda: len(rng.ceilings) >= 5)
            peripheral.advertising = True
            await _until(lambda: _count(events, DeviceConnected) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert rng.ceilings[:5] == [0.01, 0.02, 0.04, 0.04, 0.04]


def test_watchdog_fires_on_silence_and_gap_is_recorded(peripheral: FakePeripheral) -> None:
    events: list[SourceEvent] = []
    source = _source(RecordingRandom(), watchdog_s=0.1)
    profile = load_profile(default_profiles_dir() / "hrs_strap.yaml")
    decoder = EventDecoder({DEVICE_ID: profile})

    async def scenario() -> None:
        async with asyncio.timeout(10):
            task = asyncio.create_task(source.run(events.append))
            await _until(lambda: _count(events, DeviceConnected) == 1)
            peripheral.notify_heart_rate(encode_heart_rate_measurement(70))
            await _until(lambda: _count(events, DeviceConnected) == 2)
            peripheral.notify_heart_rate(encode_heart_rate_measurement(71))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    downs = [e for e in events if isinstance(e, DeviceDisconnected)]
    assert downs[0].reason == "watchdog"
    assert peripheral.connects >= 2
    readings = [r for e in events for r in decoder.handle(e)]
    gaps = [r for r in readings if isinstance(r, DataGap)]
    assert gaps
    assert gaps[0].reason == "watchdog"
    assert gaps[0].end >= gaps[0].start


def test_bleak_errors_become_ble_errors_and_never_escape(
    peripheral: FakePeripheral, caplog: pytest.LogCaptureFixture
) -> None:
    rng = RecordingRandom()
    source = _source(rng)
    peripheral.scan_error = True

    async def scenario() -> None:
        async with asyncio.timeout(10):
            task = asyncio.create_task(source.run(lambda _event: None))
            await _until(lambda: len(rng.ceilings) >= 2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with caplog.at_level(logging.WARNING, logger="shuxin.edge.source_ble"):
        asyncio.run(scenario())
    errors = [
        arg
        for record in caplog.records
        for arg in record.args or ()
        if isinstance(arg, BaseException)
    ]
    assert errors
    assert all(isinstance(error, BleError) for error in errors)
    assert all(isinstance(error.__cause__, BleakError) for error in errors)


def test_pmd_start_requests_follow_the_profile() -> None:
    from shuxin.edge.source_ble import pmd_start_requests

    profiles = default_profiles_dir()
    # Polar BLE SDK: start ECG at 130 Hz, 14 bit (settings type 0 = rate, 1 = resolution).
    assert pmd_start_requests(load_profile(profiles / "polar_h10.yaml")) == [
        bytes.fromhex("02 00 00 01 82 00 01 01 0E 00")
    ]
    assert pmd_start_requests(load_profile(profiles / "polar_verity_sense.yaml")) == [
        bytes.fromhex("02 03")
    ]
    assert pmd_start_requests(load_profile(profiles / "hrs_strap.yaml")) == []
