"""BleSource against a bumble peripheral serving the Heart Rate Service, in process.

Two bumble devices share a ``LocalLink`` (no radio, no HCI hardware): the peripheral serves
0x180D / 0x2A37; a test-only bleak client backend drives the central device and is injected
with ``BleakClient(..., backend=...)`` through ``BleSource(backend=...)``. Scanning uses a small
fake scanner backend that reports the peripheral's address (bumble's own scanner is not wired
into bleak here).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("bleak")
pytest.importorskip("bleak_retry_connector")
pytest.importorskip("bumble")

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.uuids import normalize_uuid_str
from bumble.controller import Controller
from bumble.device import Connection, Device, Peer
from bumble.gatt import (
    GATT_HEART_RATE_MEASUREMENT_CHARACTERISTIC,
    GATT_HEART_RATE_SERVICE,
    Characteristic,
    Service,
)
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from shuxin.edge.clock import SystemClock
from shuxin.edge.decode import DataGap, EventDecoder
from shuxin.edge.device_profile import default_profiles_dir, load_profile
from shuxin.edge.parse_hrs import encode_heart_rate_measurement
from shuxin.edge.source_ble import BleDeviceSpec, BleSource
from shuxin.edge.sources import (
    DeviceConnected,
    DeviceDisconnected,
    DeviceRef,
    Notification,
    SourceEvent,
)
from shuxin.runtime.backoff import Backoff

pytestmark = pytest.mark.integration

PERIPHERAL_ADDRESS = "F0:F0:F0:F0:F0:F0"
CENTRAL_ADDRESS = "F1:F1:F1:F1:F1:F1"
DEVICE_ID = "hr-bumble"


class Air:
    """The in-process radio: a peripheral serving HRS and the central the backend drives."""

    def __init__(self) -> None:
        link = LocalLink()
        peripheral_controller = Controller("P", link=link, public_address=PERIPHERAL_ADDRESS)
        central_controller = Controller("C", link=link, public_address=CENTRAL_ADDRESS)
        self.peripheral = Device(
            address=Address(PERIPHERAL_ADDRESS),
            host=Host(peripheral_controller, AsyncPipeSink(peripheral_controller)),
        )
        self.central = Device(
            address=Address(CENTRAL_ADDRESS),
            host=Host(central_controller, AsyncPipeSink(central_controller)),
        )
        self.hrm = Characteristic(
            GATT_HEART_RATE_MEASUREMENT_CHARACTERISTIC,
            Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            encode_heart_rate_measurement(60),
        )
        self.peripheral.add_service(Service(GATT_HEART_RATE_SERVICE, [self.hrm]))
        self.connections: list[Connection] = []
        self.peripheral.on("connection", self.connections.append)

    async def start(self) -> None:
        await self.peripheral.power_on()
        await self.central.power_on()
        await self.peripheral.start_advertising(auto_restart=True, advertising_interval_min=1.0)

    async def notify(self, value: bytes) -> None:
        await self.peripheral.notify_subscribers(self.hrm, value)

    async def drop_link(self) -> None:
        for connection in list(self.connections):
            self.connections.remove(connection)
            await connection.disconnect()


AIR: list[Air] = []


class BumbleClientBackend(BaseBleakClient):
    """Test-only bleak client backend: the bumble central connects over the LocalLink."""

    def __init__(self, address_or_ble_device: Any, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.get("disconnected_callback"),
            timeout=kwargs.get("timeout", 10.0),
        )
        self._air = AIR[0]
        self._connection: Connection | None = None
        self._peer: Peer | None = None

    @property
    def mtu_size(self) -> int:
        return 23

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        connection = await self._air.central.connect(self._air.peripheral.random_address)
        connection.on("disconnection", self._on_disconnection)
        peer = Peer(connection)
        await peer.discover_services()
        await peer.discover_characteristics()
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(
                service, service.handle, normalize_uuid_str(service.uuid.to_hex_str())
            )
            collection.add_service(bleak_service)
            for char in service.characteristics:
                props = ["notify"] if char.properties & Characteristic.Properties.NOTIFY else []
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        char,
                        char.handle,
                        normalize_uuid_str(char.uuid.to_hex_str()),
                        props,  # type: ignore[arg-type]
                        lambda: 20,
                        bleak_service,
                    )
                )
        self.services = collection
        self._connection = connection
        self._peer = peer

    def _on_disconnection(self, *_args: Any) -> None:
        self._connection = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def unpair(self) -> None:
        raise NotImplementedError

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def read_gatt_char(self, characteristic: Any, **kwargs: Any) -> bytearray:
        assert self._peer is not None
        return bytearray(await self._peer.read_value(characteristic.obj))

    async def read_gatt_descriptor(self, *args: Any, **kwargs: Any) -> bytearray:
        raise NotImplementedError

    async def write_gatt_char(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def write_gatt_descriptor(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def start_notify(
        self, characteristic: Any, callback: Callable[[bytearray], None], **kwargs: Any
    ) -> None:
        assert self._peer is not None
        await self._peer.subscribe(characteristic.obj, lambda value: callback(bytearray(value)))

    async def stop_notify(self, characteristic: Any) -> None:
        return None


class AddressScannerBackend(BaseBleakScanner):
    """Test-only scanner backend: reports the bumble peripheral's address."""

    def __init__(self, detection_callback: Any, service_uuids: Any, *args: Any, **kwargs: Any):
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        asyncio.get_running_loop().call_soon(self._advertise)

    def _advertise(self) -> None:
        adv = AdvertisementData(
            local_name="bumble HRS",
            manufacturer_data={},
            service_data={},
            service_uuids=["0000180d-0000-1000-8000-00805f9b34fb"],
            tx_power=None,
            rssi=-50,
            platform_data=(),
        )
        device = self.create_or_update_device(
            PERIPHERAL_ADDRESS, PERIPHERAL_ADDRESS, "bumble HRS", None, adv
        )
        self.call_detection_callbacks(device, adv)

    async def stop(self) -> None:
        return None


async def _until(condition: Callable[[], bool]) -> None:
    # Polls the loop; the asyncio.timeout around each scenario bounds it.
    while not condition():
        await asyncio.sleep(0.005)


def _count(events: list[SourceEvent], kind: type) -> int:
    return sum(isinstance(event, kind) for event in events)


def test_bumble_hrs_link_loss_watchdog_and_gap() -> None:
    profile = load_profile(default_profiles_dir() / "hrs_strap.yaml")
    events: list[SourceEvent] = []
    first = encode_heart_rate_measurement(72, rr_ticks=(850,))
    second = encode_heart_rate_measurement(75, rr_ticks=(820,))

    async def scenario() -> None:
        air = Air()
        AIR[:] = [air]
        await air.start()
        source = BleSource(
            [BleDeviceSpec(DeviceRef(DEVICE_ID, profile.name), PERIPHERAL_ADDRESS, profile)],
            clock=SystemClock(),
            backoff=Backoff(initial_s=0.01, cap_s=0.05),
            watchdog_s=0.5,
            scan_timeout_s=1.0,
            rng=random.Random(7),
            backend=BumbleClientBackend,
            scanner_backend=AddressScannerBackend,
        )
        async with asyncio.timeout(15):
            task = asyncio.create_task(source.run(events.append))
            await _until(lambda: _count(events, DeviceConnected) == 1)
            await air.notify(first)
            await _until(lambda: _count(events, Notification) == 1)
            await air.drop_link()
            await _until(lambda: _count(events, DeviceConnected) == 2)
            await air.notify(second)
            await _until(lambda: _count(events, Notification) == 2)
            # The peripheral goes silent: the watchdog drops the link and reconnects.
            await _until(lambda: _count(events, DeviceConnected) == 3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        asyncio.run(scenario())
    finally:
        AIR.clear()
    heart = [e for e in events if isinstance(e, Notification)]
    assert [n.data for n in heart] == [first, second]
    reasons = [e.reason for e in events if isinstance(e, DeviceDisconnected)]
    assert reasons[:2] == ["link_lost", "watchdog"]
    decoder = EventDecoder({DEVICE_ID: profile})
    gaps = [r for e in events for r in decoder.handle(e) if isinstance(r, DataGap)]
    assert [g.reason for g in gaps[:2]] == ["link_lost", "watchdog"]
