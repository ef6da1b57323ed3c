"""Source events → typed readings: parse with the device profile, drop duplicates, mark gaps.

:class:`EventDecoder` takes every :data:`~shuxin.edge.sources.SourceEvent` from every source and
returns the readings it carries, as frozen dataclasses in station time:

* :class:`HeartRate` and :class:`Beat` (RR with a beat time) from Heart Rate Measurement and
  Polar PPI; :class:`EcgSamples` from Polar PMD ECG; :class:`EdaSamples` from the shuxin EDA
  profile; :class:`Battery`; :class:`ContactChange` and :class:`LinkChange` for device status;
* :class:`DataGap` whenever data is missing — link lost (from the source's disconnect event to
  its reconnect), frames lost over the air (EDA sequence or ECG timestamp jump), or contact lost
  (a strap's contact bits, an EDA electrode-off flag). Gaps are data, never hidden.

Each characteristic's parser comes from the device profile (``shuxin.edge.decoders``). A
:class:`~shuxin.edge.errors.ParseError` (or a parser bug) is counted per device, role and error
kind and never raised upward: one hostile notification cannot stop a session. Duplicate
notifications — bleak may deliver the same value twice after a reconnect — are dropped and
counted: the same bytes again within ``duplicate_window_s``, or an EDA sequence / ECG timestamp
that does not advance.

Beat times: a strap reports RR intervals, not beat times. Each device keeps a beat clock that
adds each RR to the previous beat time and re-anchors on the notification's arrival time when
the two disagree by more than ``beat_resync_s`` (after a gap, or at the start), so beat times
are exact relative to each other and never run backwards.

Pure state machine: no I/O, no clock reads (time comes from the events), no asyncio, no bleak.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from shuxin.edge.decoders import Decoder, decoder_for
from shuxin.edge.device_profile import DeviceProfile, Role, StreamKind
from shuxin.edge.parse_battery import BatteryLevel
from shuxin.edge.parse_counters import ParseCounters, ParseFailure, safe_parse
from shuxin.edge.parse_eda import EdaFrame, SequenceStatus, classify_sequence
from shuxin.edge.parse_hrs import HeartRateMeasurement, SensorContact
from shuxin.edge.parse_pmd import PmdEcgFrame, PmdPpiFrame
from shuxin.edge.sources import DeviceConnected, DeviceDisconnected, Notification, SourceEvent

Contact = Literal["detected", "not_detected", "unsupported"]
GapReason = Literal["link_lost", "contact_lost", "watchdog", "sensor_reset"]

_CONTACT: Final[dict[SensorContact, Contact]] = {
    SensorContact.DETECTED: "detected",
    SensorContact.NOT_DETECTED: "not_detected",
    SensorContact.NOT_SUPPORTED: "unsupported",
}
_NS_PER_S: Final = 1e9


@dataclass(frozen=True, slots=True)
class HeartRate:
    """A heart-rate value as the sensor reported it."""

    device_id: str
    t: float
    hr_bpm: int
    contact: Contact
    energy_kj: int | None


@dataclass(frozen=True, slots=True)
class Beat:
    """One RR interval ending at beat time ``t`` (station time, s)."""

    device_id: str
    t: float
    rr_ms: float
    source: Literal["hrs", "ppi"]
    contact: Contact


@dataclass(frozen=True, slots=True)
class EcgSamples:
    """Regularly sampled raw ECG (µV) from ``t0``."""

    device_id: str
    t0: float
    fs_hz: float
    samples_uv: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EdaSamples:
    """Regularly sampled skin conductance (µS; None = invalid sample) from ``t0``."""

    device_id: str
    t0: float
    fs_hz: float
    eda_us: tuple[float | None, ...]
    electrode_off: bool
    saturated: bool
    battery_low: bool


@dataclass(frozen=True, slots=True)
class Battery:
    """Battery charge reported by the device."""

    device_id: str
    t: float
    percent: int


@dataclass(frozen=True, slots=True)
class ContactChange:
    """A device's skin contact changed."""

    device_id: str
    t: float
    contact: Contact


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A device connected or disconnected."""

    device_id: str
    t: float
    connected: bool
    profile: str
    firmware: str | None = None
    rssi_dbm: int | None = None


@dataclass(frozen=True, slots=True)
class DataGap:
    """A device's data is missing from ``start`` to ``end`` (station time, s)."""

    device_id: str
    start: float
    end: float
    reason: GapReason


Reading = (
    HeartRate | Beat | EcgSamples | EdaSamples | Battery | ContactChange | LinkChange | DataGap
)


@dataclass(slots=True)
class _DeviceState:
    profile: DeviceProfile
    parsers: dict[str, Decoder] = field(default_factory=dict)
    recent: deque[tuple[float, str, bytes]] = field(default_factory=lambda: deque(maxlen=16))
    connected: bool = False
    down_since: float | None = None
    down_reason: GapReason = "link_lost"
    # Per stream: the next frame re-anchors its clock and sequence checks (after a reconnect).
    resync_beats: bool = True
    resync_ecg: bool = True
    resync_eda: bool = True
    last_data_t: float | None = None
    last_beat_t: float | None = None
    contact: Contact | None = None
    contact_lost_since: float | None = None
    eda_seq: int | None = None
    eda_offset_s: float | None = None
    eda_next_t: float | None = None
    eda_off_since: float | None = None
    ecg_last_ns: int | None = None
    ecg_offset_s: float | None = None


class EventDecoder:
    """Turns source events into readings; keeps per-device state and counters.

    Parameters
    ----------
    devices
        Device id → its profile. Events from other devices are counted and dropped.
    duplicate_window_s
        The same bytes from the same characteristic within this time are a duplicate. A real
        strap notifies about once a second, and bleak's duplicate callbacks arrive within
        milliseconds, so 0.25 s separates the two.
    beat_resync_s
        Re-anchor a device's beat clock on arrival time when they differ by more than this.
    """

    def __init__(
        self,
        devices: Mapping[str, DeviceProfile],
        *,
        duplicate_window_s: float = 0.25,
        beat_resync_s: float = 3.0,
        parse_counters: ParseCounters | None = None,
    ) -> None:
        self._devices = {d: _DeviceState(profile=p) for d, p in devices.items()}
        self._duplicate_window_s = duplicate_window_s
        self._beat_resync_s = beat_resync_s
        #: Parse outcomes keyed by (device id, role, kind) — ``ParseCounters`` calls the first
        #: key "profile"; here it is the device id so counts are per device.
        self.parse_counters = parse_counters or ParseCounters()
        #: Other outcomes: ``duplicate``, ``stale``, ``unknown_device``, ``unknown_role``,
        #: ``ignored`` (control responses), keyed by (device id, outcome).
        self.counters: Counter[tuple[str, str]] = Counter()

    def add_device(self, device_id: str, profile: DeviceProfile) -> None:
        """Start decoding a device (e.g. one paired while the agent runs)."""
        self._devices.setdefault(device_id, _DeviceState(profile=profile))

    def failures(self, device_id: str | None = None) -> int:
        """Parse failures counted so far, for one device or all."""
        return self.parse_counters.failures(device_id)

    # --- events --------------------------------------------------------------------------

    def handle(self, event: SourceEvent) -> list[Reading]:
        """Decode one event. Never raises for anything a device or source can send."""
        state = self._devices.get(event.device_id)
        if state is None:
            self.counters[(event.device_id, "unknown_device")] += 1
            return []
        if isinstance(event, DeviceConnected):
            return self._connected(event, state)
        if isinstance(event, DeviceDisconnected):
            return self._disconnected(event, state)
        return self._notification(event, state)

    def close_open_gaps(self, device_id: str, now: float) -> list[DataGap]:
        """Gaps still open for ``device_id`` (link down, contact lost), ended at ``now``.

        Called when a session ends so that a gap that never closed is still reported; the
        gaps restart from ``now`` in case the device stays in use.
        """
        state = self._devices.get(device_id)
        if state is None:
            return []
        gaps: list[DataGap] = []
        if state.down_since is not None:
            gaps.append(DataGap(device_id, state.down_since, now, state.down_reason))
            state.down_since = now
        if state.contact_lost_since is not None:
            gaps.append(DataGap(device_id, state.contact_lost_since, now, "contact_lost"))
            state.contact_lost_since = now
        if state.eda_off_since is not None:
            gaps.append(DataGap(device_id, state.eda_off_since, now, "contact_lost"))
            state.eda_off_since = now
        return [g for g in gaps if g.end >= g.start]

    def _connected(self, event: DeviceConnected, state: _DeviceState) -> list[Reading]:
        out: list[Reading] = []
        if state.down_since is not None:
            out.append(
                DataGap(
                    event.device_id,
                    state.down_since,
                    max(event.at, state.down_since),
                    state.down_reason,
                )
            )
        state.connected = True
        state.down_since = None
        _resync_all(state)
        state.recent.clear()
        out.append(
            LinkChange(
                event.device_id, event.at, True, event.profile, event.firmware, event.rssi_dbm
            )
        )
        return out

    def _disconnected(self, event: DeviceDisconnected, state: _DeviceState) -> list[Reading]:
        if not state.connected and state.down_since is not None:
            return []  # already down; keep the first start
        state.connected = False
        start = state.last_data_t if state.last_data_t is not None else event.at
        state.down_since = min(start, event.at)
        state.down_reason = "watchdog" if event.reason == "watchdog" else "link_lost"
        return [LinkChange(event.device_id, event.at, False, state.profile.name)]

    def _notification(self, note: Notification, state: _DeviceState) -> list[Reading]:
        device = note.device_id
        if self._is_duplicate(note, state):
            self.counters[(device, "duplicate")] += 1
            return []
        parser = self._parser(state, note.role)
        if parser is None:
            self.counters[(device, "unknown_role")] += 1
            return []
        result = safe_parse(
            parser,
            note.data,
            profile=device,
            characteristic=note.role,
            counters=self.parse_counters,
        )
        if isinstance(result, ParseFailure):
            return []
        out: list[Reading] = []
        if state.down_since is not None:
            # Data without a connect event (a replay that starts mid-stream, or a source that
            # reports only the loss): the link is evidently back.
            out.append(DataGap(device, state.down_since, note.received_at, state.down_reason))
            state.down_since = None
            _resync_all(state)
        if isinstance(result, HeartRateMeasurement):
            out += self._heart_rate(note, state, result)
        elif isinstance(result, PmdEcgFrame):
            out += self._ecg(note, state, result)
        elif isinstance(result, PmdPpiFrame):
            out += self._ppi(note, state, result)
        elif isinstance(result, EdaFrame):
            out += self._eda(note, state, result)
        elif isinstance(result, BatteryLevel):
            out.append(Battery(device, note.received_at, result.percent))
        else:
            self.counters[(device, "ignored")] += 1
        if any(not isinstance(r, Battery) for r in out):
            state.last_data_t = note.received_at
        return out

    # --- helpers --------------------------------------------------------------------------

    def _parser(self, state: _DeviceState, role: str) -> Decoder | None:
        parser = state.parsers.get(role)
        if parser is None:
            try:
                parser = decoder_for(state.profile, role)
            except (KeyError, ValueError):
                return None
            state.parsers[role] = parser
        return parser

    def _is_duplicate(self, note: Notification, state: _DeviceState) -> bool:
        horizon = note.received_at - self._duplicate_window_s
        duplicate = any(
            t >= horizon and role == note.role and data == note.data
            for t, role, data in state.recent
        )
        state.recent.append((note.received_at, note.role, note.data))
        return duplicate

    def _set_contact(
        self, device: str, t: float, state: _DeviceState, contact: Contact
    ) -> list[Reading]:
        if contact == state.contact:
            return []
        out: list[Reading] = [ContactChange(device, t, contact)]
        if contact == "not_detected":
            state.contact_lost_since = t
        elif state.contact_lost_since is not None:
            out.append(DataGap(device, state.contact_lost_since, t, "contact_lost"))
            state.contact_lost_since = None
        state.contact = contact
        return out

    def _beat_times(self, state: _DeviceState, arrival: float, rr_ms: list[float]) -> list[float]:
        """Beat times for RR intervals that arrived at ``arrival`` (the last beat ≈ arrival)."""
        if not rr_ms:
            return []
        last = state.last_beat_t
        forward = []
        if last is not None and not state.resync_beats:
            t = last
            for rr in rr_ms:
                t += rr / 1000.0
                forward.append(t)
            if abs(forward[-1] - arrival) <= self._beat_resync_s:
                state.last_beat_t = forward[-1]
                return forward
        # Anchor on arrival: the newest beat happened at (about) arrival time.
        times = [arrival]
        for rr in reversed(rr_ms[1:]):
            times.append(times[-1] - rr / 1000.0)
        times.reverse()
        if last is not None:
            shift = max(0.0, last - times[0])  # never before the previous beat
            times = [t + shift for t in times]
        state.last_beat_t = times[-1]
        state.resync_beats = False
        return times

    def _heart_rate(
        self, note: Notification, state: _DeviceState, m: HeartRateMeasurement
    ) -> list[Reading]:
        device, t = note.device_id, note.received_at
        contact = _CONTACT[m.sensor_contact]
        out = self._set_contact(device, t, state, contact)
        out.append(HeartRate(device, t, m.heart_rate_bpm, contact, m.energy_expended_kj))
        rr = [r for r in m.rr_ms if r > 0]
        for beat_t, rr_ms in zip(self._beat_times(state, t, rr), rr, strict=True):
            out.append(Beat(device, beat_t, rr_ms, "hrs", contact))
        return out

    def _ppi(self, note: Notification, state: _DeviceState, frame: PmdPpiFrame) -> list[Reading]:
        device, t = note.device_id, note.received_at
        out: list[Reading] = []
        samples = [s for s in frame.samples if s.pp_ms > 0]
        if not samples:
            return out
        last = samples[-1]
        contact: Contact = (
            ("detected" if last.skin_contact else "not_detected")
            if last.skin_contact_supported
            else "unsupported"
        )
        out += self._set_contact(device, t, state, contact)
        rr = [float(s.pp_ms) for s in samples]
        for beat_t, rr_ms in zip(self._beat_times(state, t, rr), rr, strict=True):
            out.append(Beat(device, beat_t, rr_ms, "ppi", contact))
        return out

    def _ecg_rate(self, state: _DeviceState) -> float:
        try:
            rate = state.profile.stream(StreamKind.ECG).sample_rate_hz
        except KeyError:
            rate = None
        return float(rate) if rate else 130.0

    def _ecg(self, note: Notification, state: _DeviceState, frame: PmdEcgFrame) -> list[Reading]:
        device = note.device_id
        if not frame.samples_uv:
            return []
        fs = self._ecg_rate(state)
        out: list[Reading] = []
        if state.ecg_last_ns is not None and not state.resync_ecg:
            if frame.timestamp_ns <= state.ecg_last_ns:
                self.counters[(device, "duplicate")] += 1
                return []
            expected_ns = state.ecg_last_ns + len(frame.samples_uv) * _NS_PER_S / fs
            if frame.timestamp_ns - expected_ns > 2 * _NS_PER_S / fs and state.ecg_offset_s:
                first_missing = state.ecg_last_ns / _NS_PER_S + state.ecg_offset_s + 1 / fs
                t_first = (
                    frame.timestamp_ns / _NS_PER_S
                    + state.ecg_offset_s
                    - (len(frame.samples_uv) - 1) / fs
                )
                out.append(DataGap(device, first_missing, max(first_missing, t_first), "link_lost"))
        if (
            state.ecg_offset_s is None
            or state.resync_ecg
            or (
                abs(frame.timestamp_ns / _NS_PER_S + state.ecg_offset_s - note.received_at)
                > self._beat_resync_s
            )
        ):
            state.ecg_offset_s = note.received_at - frame.timestamp_ns / _NS_PER_S
            state.resync_ecg = False
        state.ecg_last_ns = frame.timestamp_ns
        t_last = frame.timestamp_ns / _NS_PER_S + state.ecg_offset_s
        t0 = t_last - (len(frame.samples_uv) - 1) / fs
        out.append(EcgSamples(device, t0, fs, frame.samples_uv))
        return out

    def _eda(self, note: Notification, state: _DeviceState, frame: EdaFrame) -> list[Reading]:
        device, arrival = note.device_id, note.received_at
        out: list[Reading] = []
        n = len(frame.raw)
        fs = float(frame.sample_rate_hz)
        span_s = (n - 1) / fs
        device_t = frame.device_time_ms / 1000.0
        resync = state.resync_eda or state.eda_seq is None
        if not resync and state.eda_seq is not None:
            step = classify_sequence(state.eda_seq, frame.sequence)
            if step.status in (SequenceStatus.DUPLICATE, SequenceStatus.STALE):
                self.counters[(device, step.status.value)] += 1
                return []
            if state.eda_offset_s is not None and (
                abs(device_t + span_s + state.eda_offset_s - arrival) > self._beat_resync_s
            ):
                resync = True  # the device clock jumped (reset or wrap): re-anchor
                if state.eda_next_t is not None:
                    out.append(DataGap(device, state.eda_next_t, arrival - span_s, "sensor_reset"))
            elif step.status is SequenceStatus.GAP and state.eda_next_t is not None:
                t0 = device_t + (state.eda_offset_s or 0.0)
                out.append(
                    DataGap(device, state.eda_next_t, max(t0, state.eda_next_t), "link_lost")
                )
        if resync or state.eda_offset_s is None:
            state.eda_offset_s = arrival - (device_t + span_s)
        state.resync_eda = False
        state.eda_seq = frame.sequence
        t0 = device_t + state.eda_offset_s
        state.eda_next_t = t0 + n / fs
        contact: Contact = "not_detected" if frame.electrode_off else "detected"
        if contact != state.contact:
            out.append(ContactChange(device, t0, contact))
            if frame.electrode_off:
                state.eda_off_since = t0
            elif state.eda_off_since is not None:
                out.append(DataGap(device, state.eda_off_since, t0, "contact_lost"))
                state.eda_off_since = None
            state.contact = contact
        values = tuple(v if v is None or math.isfinite(v) else None for v in frame.eda_us)
        out.append(
            EdaSamples(
                device, t0, fs, values, frame.electrode_off, frame.adc_saturated, frame.battery_low
            )
        )
        return out


def _resync_all(state: _DeviceState) -> None:
    state.resync_beats = state.resync_ecg = state.resync_eda = True


def device_roles(profile: DeviceProfile) -> tuple[Role, ...]:
    """The roles whose notifications carry data for ``profile`` (what a source subscribes)."""
    return tuple(
        c.role
        for c in profile.characteristics
        if "notify" in c.properties or c.role is Role.BATTERY
    )
