"""The sensor-source port: what every source of device data delivers, and to whom.

A source — BLE through bleak (``source_ble``), the simulator (``source_sim``), file replay
(``source_replay``) — produces :data:`SourceEvent` values and hands each one, in time order, to
an injected :data:`EventSink` callback:

* :class:`Notification` — the raw bytes of one characteristic value, exactly as a BLE
  notification (or a read, for the battery level) would deliver them, tagged with the device,
  the characteristic's role in its profile (``heart_rate``, ``pmd_data``, ``eda``,
  ``battery``…) and the station time it arrived. Battery levels travel this way too (role
  ``battery``): the source never decodes bytes.
* :class:`DeviceConnected` / :class:`DeviceDisconnected` — link state, so gaps are marked in the
  data and device status is published.

The sink is a plain synchronous callable invoked on the agent's event loop (bleak calls its
notification callbacks on the loop, so the BLE source can forward them directly). Sources own
their connections (``async with`` inside :meth:`SensorSource.run`) and reconnect themselves;
they never raise for bad bytes. This module is the port only: no bleak, no parsing, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A device a source serves: its station-unique id and its profile name."""

    device_id: str
    profile: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One characteristic value as the device sent it.

    Attributes
    ----------
    device_id
        Station-unique device id (contract ``DeviceId``).
    role
        The characteristic's role in the device profile (``shuxin.edge.device_profile.Role``).
    data
        The value bytes, unmodified (``bytes``, never ``bytearray``).
    received_at
        Station time the value arrived (POSIX seconds, from the agent's clock).
    """

    device_id: str
    role: str
    data: bytes
    received_at: float


@dataclass(frozen=True, slots=True)
class DeviceConnected:
    """The link to a device is up and its notifications are enabled."""

    device_id: str
    profile: str
    at: float
    firmware: str | None = None
    rssi_dbm: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceDisconnected:
    """The link to a device is down (or its notifications stopped and the watchdog fired)."""

    device_id: str
    at: float
    reason: Literal["link_lost", "watchdog", "stopped"] = "link_lost"


SourceEvent = Notification | DeviceConnected | DeviceDisconnected
EventSink = Callable[[SourceEvent], None]


class SensorSource(Protocol):
    """A source of device events: BLE, simulator or replay — one port, three adapters."""

    @property
    def devices(self) -> tuple[DeviceRef, ...]:
        """The devices this source serves."""
        ...

    async def run(self, sink: EventSink) -> None:
        """Deliver events to ``sink`` until cancelled (or, for a replay, until the file ends).

        Connection failures are handled inside (reconnect with backoff, a
        :class:`DeviceDisconnected` event); cancellation closes every connection.
        """
        ...
