"""File replay: a recorded session's notifications played back through the same port.

Recording format (JSON Lines, UTF-8, one object per line; ``docs/edge.md`` describes it)::

    {"format": "shuxin-recording", "version": 1, "station": "st-a",
     "started_at": 1800000000.0, "devices": {"h10-1": "polar_h10", "gsr-1": "shuxin_gsr"}}
    {"t": 1800000000.512, "device": "h10-1", "role": "heart_rate", "hex": "16460403"}
    {"t": 1800000012.000, "device": "h10-1", "event": "disconnected", "reason": "link_lost"}
    {"t": 1800000019.250, "device": "h10-1", "event": "connected", "profile": "polar_h10"}

The first line is the header (devices and their profiles); every other line is one source
event: a notification's raw bytes in hex with the station time it arrived, or a link change.
The agent writes this file when recording is on (:class:`RecordingWriter`); it holds raw
sensor bytes and device ids only — never a subject code or a name.

:class:`ReplaySource` plays a file back, keeping the recorded spacing on the agent's clock (so
a replay on an accelerated clock is accelerated), re-stamped to the replay's start. A line that
is not valid is counted and skipped; a replay never raises for a bad file after the header.
This module must not parse notification bytes or import bleak.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Final, TextIO

from shuxin.edge.clock import Clock
from shuxin.edge.errors import EdgeError
from shuxin.edge.sources import (
    DeviceConnected,
    DeviceDisconnected,
    DeviceRef,
    EventSink,
    Notification,
    SourceEvent,
)

log = logging.getLogger(__name__)

RECORDING_FORMAT: Final = "shuxin-recording"
RECORDING_VERSION: Final = 1
_MAX_LINE: Final = 64 * 1024


class RecordingError(EdgeError):
    """A recording file cannot be opened or has no valid header."""


class RecordingWriter:
    """Appends source events to a JSON-lines recording (header first).

    Parameters
    ----------
    path
        The file to create (parent folders are made).
    station
        Station id, for the header.
    devices
        The devices the recording covers.
    started_at
        Station time of the start.
    """

    def __init__(
        self, path: Path, station: str, devices: tuple[DeviceRef, ...], started_at: float
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: TextIO = path.open("w", encoding="utf-8", buffering=1)
        header = {
            "format": RECORDING_FORMAT,
            "version": RECORDING_VERSION,
            "station": station,
            "started_at": started_at,
            "devices": {d.device_id: d.profile for d in devices},
        }
        self._file.write(json.dumps(header, ensure_ascii=False) + "\n")
        self.events = 0

    def write(self, event: SourceEvent) -> None:
        """Append one event."""
        self._file.write(json.dumps(event_to_json(event), separators=(",", ":")) + "\n")
        self.events += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def event_to_json(event: SourceEvent) -> dict[str, Any]:
    """One recording line for ``event``."""
    if isinstance(event, Notification):
        return {
            "t": event.received_at,
            "device": event.device_id,
            "role": event.role,
            "hex": event.data.hex(),
        }
    if isinstance(event, DeviceConnected):
        return {
            "t": event.at,
            "device": event.device_id,
            "event": "connected",
            "profile": event.profile,
        }
    return {
        "t": event.at,
        "device": event.device_id,
        "event": "disconnected",
        "reason": event.reason,
    }


def event_from_json(line: dict[str, Any], devices: dict[str, str]) -> SourceEvent:
    """Parse one recording line; ``ValueError``/``KeyError``/``TypeError`` when it is not valid."""
    t = line["t"]
    device = line["device"]
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
        raise ValueError("t must be a finite number")
    if device not in devices:
        raise ValueError("device not in the header")
    if "hex" in line:
        role = line["role"]
        if not isinstance(role, str) or not isinstance(line["hex"], str):
            raise TypeError("role and hex must be strings")
        return Notification(device, role, bytes.fromhex(line["hex"]), float(t))
    kind = line["event"]
    if kind == "connected":
        return DeviceConnected(device, devices[device], float(t))
    if kind == "disconnected":
        reason = line.get("reason", "link_lost")
        if reason not in ("link_lost", "watchdog", "stopped"):
            raise ValueError("unknown disconnect reason")
        return DeviceDisconnected(device, float(t), reason)
    raise ValueError("unknown event")


def read_header(path: Path) -> dict[str, Any]:
    """The header of a recording; :class:`RecordingError` when the file has none."""
    try:
        with path.open(encoding="utf-8") as file:
            first = file.readline(_MAX_LINE)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        header = None
    if not (
        isinstance(header, dict)
        and header.get("format") == RECORDING_FORMAT
        and header.get("version") == RECORDING_VERSION
        and isinstance(header.get("devices"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in header["devices"].items())
    ):
        raise RecordingError(f"{path}: not a {RECORDING_FORMAT} v{RECORDING_VERSION} file")
    return header


class ReplaySource:
    """Plays a recording back through the sensor-source port.

    Parameters
    ----------
    path
        The recording.
    clock
        Paces the replay (an accelerated clock replays faster).
    pace
        False delivers every event at once (for tests and batch re-processing), stamped with
        the recorded spacing all the same.
    """

    def __init__(self, path: Path, clock: Clock, *, pace: bool = True) -> None:
        self.path = path
        self._clock = clock
        self._pace = pace
        header = read_header(path)
        self._devices: dict[str, str] = dict(header["devices"])
        #: ``events`` delivered and ``invalid_line`` skipped.
        self.counters: Counter[str] = Counter()

    @property
    def devices(self) -> tuple[DeviceRef, ...]:
        """The devices named in the header."""
        return tuple(DeviceRef(d, p) for d, p in self._devices.items())

    async def run(self, sink: EventSink) -> None:
        """Deliver every event, keeping the recorded spacing, then return."""
        start = self._clock.now()
        first_t: float | None = None
        with self.path.open(encoding="utf-8", errors="replace") as file:
            file.readline(_MAX_LINE)
            for raw in file:
                event = self._parse(raw)
                if event is None:
                    continue
                t = event.received_at if isinstance(event, Notification) else event.at
                if first_t is None:
                    first_t = t
                target = start + max(0.0, t - first_t)
                if self._pace and target > self._clock.now():
                    await self._clock.sleep_until(target)
                sink(_restamp(event, target))
                self.counters["events"] += 1

    def _parse(self, raw: str) -> SourceEvent | None:
        if len(raw) > _MAX_LINE or not raw.strip():
            self.counters["invalid_line"] += int(bool(raw.strip()))
            return None
        try:
            line = json.loads(raw)
            if not isinstance(line, dict):
                raise TypeError("a line is a JSON object")
            return event_from_json(line, self._devices)
        except (ValueError, KeyError, TypeError):
            self.counters["invalid_line"] += 1
            if self.counters["invalid_line"] == 1:
                log.warning("%s: skipping invalid recording lines", self.path.name)
            return None


def _restamp(event: SourceEvent, t: float) -> SourceEvent:
    if isinstance(event, Notification):
        return Notification(event.device_id, event.role, event.data, t)
    if isinstance(event, DeviceConnected):
        return DeviceConnected(event.device_id, event.profile, t, event.firmware, event.rssi_dbm)
    return DeviceDisconnected(event.device_id, t, event.reason)
