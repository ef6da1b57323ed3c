"""Simulated sensors behind the same port as BLE: signal-core simulators encoded into the bytes
a real device notifies, at real or accelerated time, with fault injection.

* :class:`SimulatedSubject` — one participant's physiology: RR intervals from
  ``shuxin.signal.rr_simulate`` in chunks, following the session's protocol (spontaneous
  breathing at rest, the pacer's rate in paced phases, lower stress while training, the
  subject's own resonance rate), with ectopic and missed beats at a chosen rate.
* :class:`SimulatedHeartRateStrap` — a Heart Rate Service strap (profile ``hrs_strap``) or a
  Polar H10 (``polar_h10``): one 0x2A37 notification per beat (``encode_heart_rate_measurement``)
  and, for the H10, PMD raw-ECG frames of 73 samples at 130 Hz drawn by
  ``shuxin.signal.ecg_simulate`` from the same beats (``encode_pmd_ecg_frame``).
* :class:`SimulatedGsr` — the shuxin GSR module (``shuxin_gsr``): ``eda_simulate`` → the
  voltage the firmware would measure (inverse calibration) → ``encode_eda_frame``.

Faults (:class:`SimFaults`): link loss for N s (disconnect event, nothing delivered, reconnect,
then a few duplicate callbacks as BlueZ sometimes delivers), contact loss (contact bits /
electrode-off flag), noisy beats (ectopic, missed), battery low, and garbage notifications —
frames that are always malformed (truncated, unknown type, impossible value) so that every one
of them must be counted by the decoder. Faults happen at scheduled times or at random rates.
All randomness comes from the ``numpy.random.Generator`` each object is given.

Every device stamps a notification with the station time it was *due* (the clock only paces
the loop), so accelerated runs produce the same data as real-time ones. This module must not
parse bytes, import bleak, or publish anything: it only feeds an :data:`EventSink`.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from shuxin.edge.clock import Clock
from shuxin.edge.decoders import eda_calibration
from shuxin.edge.device_profile import DeviceProfile, Role, StreamKind
from shuxin.edge.parse_eda import (
    EDA_INVALID_VOLTAGE,
    EdaFrameType,
    encode_eda_frame,
    voltage_raw_for_conductance,
)
from shuxin.edge.parse_hrs import SensorContact, encode_heart_rate_measurement
from shuxin.edge.parse_pmd import encode_pmd_ecg_frame
from shuxin.edge.protocol import ProtocolDefinition
from shuxin.edge.sources import (
    DeviceConnected,
    DeviceDisconnected,
    DeviceRef,
    EventSink,
    Notification,
)
from shuxin.signal.ecg_simulate import ecg_simulate
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.errors import SignalError
from shuxin.signal.rr_simulate import rr_simulate

log = logging.getLogger(__name__)

#: 2000-01-01T00:00:00Z as POSIX seconds (the Polar PMD timestamp epoch).
PMD_EPOCH_S: Final = 946_684_800.0
#: Samples per H10 ECG notification (73 at the H10's default MTU of 232).
ECG_SAMPLES_PER_FRAME: Final = 73
#: Notifications delivered twice after a reconnect (the duplicate-callback fault).
DUPLICATES_AFTER_RECONNECT: Final = 3
#: Time between the frames of one garbage burst (longer than the duplicate window).
GARBAGE_SPACING_S: Final = 0.3
_FAULT_BLOCK_S: Final = 600.0

EcgSynth = Callable[
    [NDArray[np.float64], float, int, float, np.random.Generator], NDArray[np.float64]
]
"""``(beat_times_s, first_sample_s, n_samples, fs_hz, rng) -> ecg_uv``: an ECG with R peaks at
the beats, sampled at ``first_sample_s + k / fs_hz``."""
#: ECG frames generated at once (8 frames ≈ 4.5 s at 130 Hz): short, so a new breathing plan
#: shows in the ECG as soon as in the beats.
ECG_FRAMES_PER_CHUNK: Final = 8


# --- faults ---------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Rate = Annotated[float, Field(ge=0, le=3600)]
Span = tuple[Annotated[float, Field(gt=0, le=3600)], Annotated[float, Field(gt=0, le=3600)]]


class ScheduledFault(_Model):
    """One fault at ``at_s`` seconds after the device starts."""

    kind: Literal["link_loss", "contact_loss", "garbage", "battery_low"]
    at_s: Annotated[float, Field(ge=0)]
    duration_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    count: Annotated[int, Field(ge=1, le=1000)] = 5


class SimFaults(_Model):
    """What goes wrong with a simulated device, and how often (rates are per hour/minute)."""

    link_loss_per_h: Rate = 0.0
    link_loss_s: Span = (5.0, 20.0)
    contact_loss_per_h: Rate = 0.0
    contact_loss_s: Span = (5.0, 15.0)
    garbage_per_h: Rate = 0.0
    garbage_burst: Annotated[int, Field(ge=1, le=1000)] = 3
    ectopic_per_min: Annotated[float, Field(ge=0, le=10)] = 0.0
    missed_per_min: Annotated[float, Field(ge=0, le=10)] = 0.0
    battery_low_after_s: Annotated[float, Field(ge=0)] | None = None
    scheduled: tuple[ScheduledFault, ...] = ()


FAULT_PRESETS: Final[dict[str, SimFaults]] = {
    "none": SimFaults(),
    "light": SimFaults(
        link_loss_per_h=2,
        contact_loss_per_h=2,
        garbage_per_h=6,
        ectopic_per_min=0.3,
        missed_per_min=0.1,
    ),
    "heavy": SimFaults(
        link_loss_per_h=12,
        contact_loss_per_h=12,
        garbage_per_h=60,
        garbage_burst=10,
        ectopic_per_min=2,
        missed_per_min=1,
        battery_low_after_s=600,
    ),
}


@dataclass(frozen=True, slots=True)
class _Interval:
    start: float
    end: float


def _add_disjoint(intervals: list[_Interval], new: _Interval) -> None:
    """Insert ``new`` in start order unless it overlaps one already there (then drop it)."""
    if new.end <= new.start or any(i.start < new.end and new.start < i.end for i in intervals):
        return
    intervals.append(new)
    intervals.sort(key=lambda i: i.start)


class _FaultTimeline:
    """Fault intervals and instants in station time, drawn lazily block by block."""

    def __init__(self, faults: SimFaults, start: float, rng: np.random.Generator) -> None:
        self._faults = faults
        self._rng = rng
        self._start = start
        self._until = start
        self.link: list[_Interval] = []
        self.contact: list[_Interval] = []
        self.garbage: list[tuple[float, int]] = []
        for f in faults.scheduled:
            at = start + f.at_s
            if f.kind == "link_loss":
                _add_disjoint(self.link, _Interval(at, at + f.duration_s))
            elif f.kind == "contact_loss":
                _add_disjoint(self.contact, _Interval(at, at + f.duration_s))
            elif f.kind == "garbage":
                self.garbage.append((at, f.count))
        low = [start + f.at_s for f in faults.scheduled if f.kind == "battery_low"]
        if faults.battery_low_after_s is not None:
            low.append(start + faults.battery_low_after_s)
        self.battery_low_at = min(low) if low else math.inf

    def extend(self, t: float) -> None:
        """Draw random faults up to station time ``t`` (block by block, reproducibly)."""
        f = self._faults
        while self._until < t:
            a, b = self._until, self._until + _FAULT_BLOCK_S
            for s in self._poisson(a, b, f.link_loss_per_h):
                _add_disjoint(self.link, _Interval(s, s + self._rng.uniform(*f.link_loss_s)))
            for s in self._poisson(a, b, f.contact_loss_per_h):
                _add_disjoint(self.contact, _Interval(s, s + self._rng.uniform(*f.contact_loss_s)))
            self.garbage += [(s, f.garbage_burst) for s in self._poisson(a, b, f.garbage_per_h)]
            self.garbage.sort()
            self._until = b

    def _poisson(self, a: float, b: float, per_h: float) -> list[float]:
        if per_h <= 0:
            return []
        n = int(self._rng.poisson(per_h * (b - a) / 3600.0))
        return sorted(float(x) for x in self._rng.uniform(a, b, n))

    def link_down(self, t: float) -> bool:
        self.extend(t)
        return any(i.start <= t < i.end for i in self.link)

    def contact_lost(self, t: float) -> bool:
        self.extend(t)
        return any(i.start <= t < i.end for i in self.contact)


# --- the simulated participant -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectTraits:
    """A simulated participant's physiology."""

    mean_hr_bpm: float
    spontaneous_breathing_bpm: float
    resonance_bpm: float
    stress: float
    scl_us: float


def draw_traits(rng: np.random.Generator) -> SubjectTraits:
    """Plausible adult traits: HR 58-78 bpm, breathing 11-16/min, resonance 4.8-6.4/min
    (Vaschillo et al. 2006 report 4.5-7), stress 0.2-0.6, SCL 2-10 µS."""
    return SubjectTraits(
        mean_hr_bpm=float(rng.uniform(58, 78)),
        spontaneous_breathing_bpm=float(rng.uniform(11, 16)),
        resonance_bpm=float(rng.uniform(4.8, 6.4)),
        stress=float(rng.uniform(0.2, 0.6)),
        scl_us=float(rng.uniform(2, 10)),
    )


@dataclass(frozen=True, slots=True)
class _Segment:
    start: float
    end: float
    breathing_bpm: float
    stress: float


#: Stress relative to the subject's trait level, per phase kind (relaxation lowers it).
_STRESS_FACTOR: Final = {
    "baseline": 1.0,
    "rest": 1.0,
    "training": 0.5,
    "assessment": 0.6,
    "vr": 0.6,
    "recovery": 0.7,
}
_VR_BREATHING_BPM: Final = 8.0


class SimulatedSubject:
    """One participant's beats, generated lazily in chunks that follow the current plan.

    Parameters
    ----------
    traits
        Physiology (see :func:`draw_traits`).
    rng
        Source of all randomness.
    ectopic_per_min, missed_per_min
        Artefact rates injected by ``rr_simulate``.
    chunk_s
        Longest stretch simulated at once.
    """

    def __init__(
        self,
        traits: SubjectTraits,
        rng: np.random.Generator,
        *,
        ectopic_per_min: float = 0.0,
        missed_per_min: float = 0.0,
        chunk_s: float = 120.0,
    ) -> None:
        self.traits = traits
        self._rng = rng
        self._ectopic_per_min = ectopic_per_min
        self._missed_per_min = missed_per_min
        self._chunk_s = chunk_s
        self._t = np.zeros(0)
        self._rr = np.zeros(0)
        self._gen_end = -math.inf
        self._plan: list[_Segment] = []
        #: ``ectopic`` and ``missed`` beats generated so far.
        self.artefacts: Counter[str] = Counter()

    def follow(self, protocol: ProtocolDefinition, started_at: float, now: float) -> None:
        """From ``now`` on, breathe and relax as ``protocol`` (started at ``started_at``) asks."""
        plan = []
        for start, phase in zip(protocol.phase_starts_s(), protocol.phases, strict=True):
            if phase.pacer_bpm is not None:
                bpm = phase.pacer_bpm
            elif phase.kind == "vr":
                bpm = _VR_BREATHING_BPM
            else:
                bpm = self.traits.spontaneous_breathing_bpm
            plan.append(
                _Segment(
                    started_at + start,
                    started_at + start + phase.duration_s,
                    bpm,
                    self.traits.stress * _STRESS_FACTOR[phase.kind],
                )
            )
        self._replan(plan, now)

    def rest(self, now: float) -> None:
        """From ``now`` on, sit at rest (between sessions)."""
        self._replan([], now)

    def stress_at(self, t: float) -> float:
        """The stress level the plan sets at ``t`` (trait level outside a protocol)."""
        for seg in self._plan:
            if seg.start <= t < seg.end:
                return seg.stress
        return self.traits.stress

    def beats_between(self, a: float, b: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Beat times and their RR (ms) for beats in ``(a, b]``."""
        self._skip_to(a)
        self._ensure(b)
        lo, hi = np.searchsorted(self._t, [a, b], side="right")
        return self._t[lo:hi], self._rr[lo:hi]

    def next_beat(self, after: float) -> tuple[float, float]:
        """The first beat strictly after ``after``: (time, RR ms)."""
        self._skip_to(after)
        while True:
            i = int(np.searchsorted(self._t, after, side="right"))
            if i < self._t.size:
                return float(self._t[i]), float(self._rr[i])
            self._extend()

    def _replan(self, plan: list[_Segment], now: float) -> None:
        self._plan = plan
        keep = int(np.searchsorted(self._t, now, side="right"))
        self._t, self._rr = self._t[:keep], self._rr[:keep]
        self._gen_end = float(self._t[-1]) if keep else now

    def _segment_at(self, t: float) -> tuple[float, float, float]:
        """(breathing bpm, stress, end of this stretch) at ``t``."""
        for seg in self._plan:
            if seg.start <= t < seg.end:
                return seg.breathing_bpm, seg.stress, seg.end
        later = [s.start for s in self._plan if s.start > t]
        end = min(later) if later else math.inf
        return self.traits.spontaneous_breathing_bpm, self.traits.stress, end

    def _skip_to(self, t: float) -> None:
        """Nobody asked for beats before ``t``: start generating there, not in the past."""
        if self._gen_end < t - self._chunk_s:
            self._t, self._rr = self._t[:0], self._rr[:0]
            self._gen_end = t

    def _ensure(self, t: float) -> None:
        while self._gen_end < t:
            self._extend()

    def _extend(self) -> None:
        bpm, stress, end = self._segment_at(self._gen_end)
        duration = max(10.0, min(self._chunk_s, end - self._gen_end))
        expected_beats = duration * self.traits.mean_hr_bpm / 60.0
        room = int(expected_beats // 20)
        ectopic = min(int(self._rng.poisson(self._ectopic_per_min * duration / 60)), room)
        missed = min(int(self._rng.poisson(self._missed_per_min * duration / 60)), room)
        try:
            sim = rr_simulate(
                duration,
                self._rng,
                mean_hr_bpm=self.traits.mean_hr_bpm,
                breathing_rate_bpm=bpm,
                stress=stress,
                resonance_bpm=self.traits.resonance_bpm,
                ectopic=ectopic,
                missed=missed,
            )
        except SignalError:  # no room for the artefacts in a short chunk: none this time
            sim = rr_simulate(
                duration,
                self._rng,
                mean_hr_bpm=self.traits.mean_hr_bpm,
                breathing_rate_bpm=bpm,
                stress=stress,
                resonance_bpm=self.traits.resonance_bpm,
            )
        self.artefacts.update(sim.artefact_kind)
        times = self._gen_end + np.cumsum(sim.rr_ms) / 1000.0
        self._t = np.concatenate((self._t, times))
        self._rr = np.concatenate((self._rr, sim.rr_ms))
        self._gen_end = float(times[-1])


# --- devices -------------------------------------------------------------------------------


_Event = tuple[float, int, str, object]  # (time, order, kind, payload)


class _SimulatedDevice:
    """What every simulated device shares: link, contact, battery, garbage and pacing."""

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        clock: Clock,
        rng: np.random.Generator,
        faults: SimFaults | None = None,
    ) -> None:
        self.device_id = device_id
        self.profile = profile
        self._clock = clock
        self._rng = rng
        self._faults = faults or SimFaults()
        self._battery = float(rng.uniform(60, 100))
        self._timeline: _FaultTimeline | None = None
        self._last_sent: Notification | None = None
        self._duplicates_left = 0
        #: What was injected: ``garbage``, ``link_loss``, ``contact_loss``, ``duplicate``,
        #: ``battery_low``, ``notifications`` (delivered data notifications).
        self.injected: Counter[str] = Counter()

    @property
    def devices(self) -> tuple[DeviceRef, ...]:
        """The one device this source simulates."""
        return (DeviceRef(self.device_id, self.profile.name),)

    async def run(self, sink: EventSink) -> None:
        """Deliver notifications on the clock until cancelled."""
        start = self._clock.now()
        self._timeline = _FaultTimeline(self._faults, start, self._rng)
        sink(DeviceConnected(self.device_id, self.profile.name, start, firmware="sim-1.0"))
        streams = [
            self._data(start),
            self._battery_events(start),
            self._link_events(start),
            self._garbage_events(start),
        ]
        for t, _, kind, payload in heapq.merge(*streams, key=lambda e: (e[0], e[1])):
            if t > self._clock.now():
                await self._clock.sleep_until(t)
            self._deliver(sink, t, kind, payload)

    def _deliver(self, sink: EventSink, t: float, kind: str, payload: object) -> None:
        timeline = self._timeline
        assert timeline is not None
        if kind == "disconnect":
            self.injected["link_loss"] += 1
            sink(DeviceDisconnected(self.device_id, t, "link_lost"))
        elif kind == "connect":
            sink(DeviceConnected(self.device_id, self.profile.name, t, firmware="sim-1.0"))
            self._duplicates_left = DUPLICATES_AFTER_RECONNECT
        elif kind == "none" or timeline.link_down(t):
            return  # nothing reaches the station while the link is down
        elif kind == "garbage":
            assert isinstance(payload, int)
            role, data = self._garbage()
            self.injected["garbage"] += 1
            sink(Notification(self.device_id, role, data, t))
        elif kind == "data":
            assert isinstance(payload, tuple)
            role, data = payload
            note = Notification(self.device_id, role, data, t)
            self.injected["notifications"] += 1
            sink(note)
            if self._duplicates_left > 0 and role != Role.BATTERY.value:
                self._duplicates_left -= 1
                self.injected["duplicate"] += 1
                sink(note)

    def _contact_lost(self, t: float) -> bool:
        assert self._timeline is not None
        return self._timeline.contact_lost(t)

    def _battery_percent(self, t: float, start: float) -> int:
        assert self._timeline is not None
        if t >= self._timeline.battery_low_at:
            return 9
        return max(10, round(self._battery - (t - start) / 600.0))  # 1 % per 10 min

    def _battery_events(self, start: float) -> Iterator[_Event]:
        t = start
        low_reported = False
        while True:
            percent = self._battery_percent(t, start)
            if percent < 10 and not low_reported:
                low_reported = True
                self.injected["battery_low"] += 1
            yield (t, 0, "data", (Role.BATTERY.value, bytes([percent])))
            t += 60.0

    def _link_events(self, start: float) -> Iterator[_Event]:
        timeline = self._timeline
        assert timeline is not None
        block = start
        while True:
            timeline.extend(block + _FAULT_BLOCK_S)
            for loss in [i for i in timeline.link if block <= i.start < block + _FAULT_BLOCK_S]:
                yield (loss.start, 1, "disconnect", None)
                yield (loss.end, 1, "connect", None)
            block += _FAULT_BLOCK_S
            yield (block, 9, "none", None)  # keeps the merge moving through quiet blocks

    def _garbage_events(self, start: float) -> Iterator[_Event]:
        timeline = self._timeline
        assert timeline is not None
        block = start
        while True:
            timeline.extend(block + _FAULT_BLOCK_S)
            # A burst of N frames, spaced beyond the decoder's duplicate window so that each
            # is a distinct arrival (identical frames at one instant would count as duplicates).
            frames = sorted(
                at + i * GARBAGE_SPACING_S
                for at, count in timeline.garbage
                if block <= at < block + _FAULT_BLOCK_S
                for i in range(count)
            )
            for t in frames:
                yield (t, 2, "garbage", 1)
            block += _FAULT_BLOCK_S
            yield (block, 9, "none", None)

    def _data(self, start: float) -> Iterator[_Event]:
        raise NotImplementedError

    def _garbage(self) -> tuple[str, bytes]:
        """A malformed notification on one of the device's roles (always a parse error)."""
        raise NotImplementedError


class SimulatedHeartRateStrap(_SimulatedDevice):
    """A Heart Rate Service strap, or a Polar H10 with PMD ECG when the profile has it.

    Parameters
    ----------
    subject
        Whose heart this strap is on.
    ecg_synth
        ECG waveform generator for the H10's PMD stream; None sends no ECG frames.
    """

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        subject: SimulatedSubject,
        clock: Clock,
        rng: np.random.Generator,
        *,
        faults: SimFaults | None = None,
        ecg_synth: EcgSynth | None = None,
    ) -> None:
        super().__init__(device_id, profile, clock, rng, faults)
        self._subject = subject
        try:
            ecg = profile.stream(StreamKind.ECG)
        except KeyError:
            ecg = None
        self._ecg_fs = float(ecg.sample_rate_hz) if ecg and ecg.sample_rate_hz else None
        self._ecg_synth = ecg_synth if self._ecg_fs else None
        self._sensor_offset_ns = int(rng.integers(-5_000_000_000, 5_000_000_000))

    def _data(self, start: float) -> Iterator[_Event]:
        streams = [self._beats(start)]
        if self._ecg_synth is not None:
            streams.append(self._ecg_frames(start))
        return heapq.merge(*streams, key=lambda e: (e[0], e[1]))

    def _beats(self, start: float) -> Iterator[_Event]:
        recent: list[float] = []
        t = start
        last_no_contact = -math.inf
        while True:
            t, rr = self._subject.next_beat(t)
            if self._contact_lost(t):
                recent.clear()
                if t - last_no_contact >= 1.0:  # a strap without contact still notifies 1/s
                    last_no_contact = t
                    data = encode_heart_rate_measurement(
                        0, sensor_contact=SensorContact.NOT_DETECTED
                    )
                    yield (t, 3, "data", (Role.HEART_RATE.value, data))
                continue
            recent = [*recent[-3:], rr]
            hr = round(60000.0 * len(recent) / sum(recent))
            ticks = (min(0xFFFF, round(rr * 1.024)),)
            data = encode_heart_rate_measurement(
                min(hr, 255), sensor_contact=SensorContact.DETECTED, rr_ticks=ticks
            )
            yield (t, 3, "data", (Role.HEART_RATE.value, data))

    def _ecg_frames(self, start: float) -> Iterator[_Event]:
        assert self._ecg_fs is not None
        assert self._ecg_synth is not None
        fs = self._ecg_fs
        n = ECG_SAMPLES_PER_FRAME
        frame = 0
        while True:
            chunk_n = n * ECG_FRAMES_PER_CHUNK
            first = start + frame * n / fs
            beats, _ = self._subject.beats_between(first - 2.0, first + chunk_n / fs + 2.0)
            uv = self._ecg_synth(beats, first, chunk_n, fs, self._rng)
            for k in range(ECG_FRAMES_PER_CHUNK):
                part = uv[k * n : (k + 1) * n]
                last_t = first + ((k + 1) * n - 1) / fs
                if self._contact_lost(last_t):
                    part = self._rng.normal(0.0, 30.0, n)  # electrode noise without contact
                samples = [int(max(-(2**23), min(2**23 - 1, round(float(v))))) for v in part]
                ts_ns = int((last_t - PMD_EPOCH_S) * 1e9) + self._sensor_offset_ns
                data = encode_pmd_ecg_frame(ts_ns, samples)
                yield (last_t, 4, "data", (Role.PMD_DATA.value, data))
            frame += ECG_FRAMES_PER_CHUNK

    def _garbage(self) -> tuple[str, bytes]:
        tail = self._rng.bytes(int(self._rng.integers(0, 6)) * 2)
        choices: list[tuple[str, bytes]] = [
            (Role.HEART_RATE.value, b""),
            (Role.HEART_RATE.value, b"\x01"),  # uint16 heart rate with one byte
            (Role.HEART_RATE.value, b"\x11\x46\x00\x01" + tail),  # odd RR field
            (Role.HEART_RATE.value, b"\x09\x46"),  # energy flag without the field
            (Role.BATTERY.value, bytes([101 + int(self._rng.integers(0, 155))])),
        ]
        if self._ecg_fs is not None:
            choices += [
                (Role.PMD_DATA.value, self._rng.bytes(int(self._rng.integers(0, 10)))),
                (Role.PMD_DATA.value, b"\x02" + self._rng.bytes(12)),  # ACC: not decoded
                (Role.PMD_DATA.value, b"\x00" + bytes(9) + b"\x01\x02"),  # partial sample
            ]
        return choices[int(self._rng.integers(len(choices)))]


class SimulatedGsr(_SimulatedDevice):
    """The shuxin GSR module: 0x01 voltage frames at the profile's rate and frame size."""

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        subject: SimulatedSubject,
        clock: Clock,
        rng: np.random.Generator,
        *,
        faults: SimFaults | None = None,
        chunk_s: float = 60.0,
    ) -> None:
        super().__init__(device_id, profile, clock, rng, faults)
        if profile.calibration is None:
            raise ValueError(f"profile {profile.name} has no EDA calibration")
        self._subject = subject
        self._calibration = eda_calibration(profile.calibration)
        stream = profile.stream(StreamKind.EDA)
        self._fs = int(stream.sample_rate_hz or 8)
        self._per_frame = profile.firmware.samples_per_frame if profile.firmware else 4
        self._chunk_s = chunk_s
        self._boot_ms = int(rng.integers(10_000, 3_600_000))

    def _data(self, start: float) -> Iterator[_Event]:
        fs, per_frame = self._fs, self._per_frame
        level = self._subject.traits.scl_us
        sequence = 0
        sample_index = 0
        while True:
            chunk_start = start + sample_index / fs
            stress = self._subject.stress_at(chunk_start)
            sim = eda_simulate(
                self._chunk_s,
                fs,
                self._rng,
                scl_start_us=level,
                drift_us_per_min=-0.05 if stress < self._subject.traits.stress else 0.02,
                scr_rate_per_min=1.0 + 4.0 * stress,
            )
            level = max(0.5, float(sim.tonic_us[-1]))
            values = sim.eda_us
            for offset in range(0, values.size - per_frame + 1, per_frame):
                first_t = start + (sample_index + offset) / fs
                last_t = first_t + (per_frame - 1) / fs
                off = self._contact_lost(last_t)
                raw = [
                    self._raw(0.01 if off else float(v))
                    for v in values[offset : offset + per_frame]
                ]
                data = encode_eda_frame(
                    EdaFrameType.VOLTAGE_0P1MV,
                    sequence=sequence,
                    device_time_ms=self._boot_ms + round((first_t - start) * 1000),
                    sample_rate_hz=fs,
                    raw=raw,
                    electrode_off=off,
                    battery_low=self._battery_percent(last_t, start) < 10,
                )
                sequence += 1
                yield (last_t, 3, "data", (Role.EDA.value, data))
            sample_index += values.size - values.size % per_frame

    def _raw(self, eda_us: float) -> int:
        try:
            return voltage_raw_for_conductance(max(0.0, eda_us), self._calibration)
        except ValueError:
            return EDA_INVALID_VOLTAGE

    def _garbage(self) -> tuple[str, bytes]:
        choices: list[tuple[str, bytes]] = [
            (Role.EDA.value, self._rng.bytes(int(self._rng.integers(0, 10)))),  # short header
            (Role.EDA.value, bytes([0x07]) + self._rng.bytes(13)),  # unknown frame type
            (Role.EDA.value, bytes([0x01, 0, 0, 0, 0, 0, 0, 0, 8, 4, 1, 2])),  # 4 declared, 1 sent
            (Role.EDA.value, bytes([0x01, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2])),  # 0 Hz
            (Role.BATTERY.value, b""),
        ]
        return choices[int(self._rng.integers(len(choices)))]


def signal_ecg_synth() -> EcgSynth:
    """The signal core's ECG simulator (``shuxin.signal.ecg_simulate``) as an :data:`EcgSynth`.

    Each chunk is drawn from the beats around it on a grid aligned with the device's sample
    clock, so R peaks fall where the strap's RR intervals say.
    """

    def synth(
        beats_s: NDArray[np.float64],
        first_s: float,
        n: int,
        fs_hz: float,
        rng: np.random.Generator,
    ) -> NDArray[np.float64]:
        last_s = first_s + (n - 1) / fs_hz
        inside = beats_s[(beats_s >= first_s - 1.5) & (beats_s <= last_s + 3.0)]
        out = rng.normal(0.0, 10.0, n)  # no beats to draw: electrode noise only
        if inside.size < 2:
            return out
        # Start the simulated waveform on the device's sample grid, at least 0.3 s before the
        # first beat (room for its P wave), and keep the samples the device asked for.
        lead = max(0, math.ceil((first_s - (float(inside[0]) - 0.3)) * fs_hz) + 1)
        grid_start = first_s - lead / fs_hz
        # ecg_simulate takes 200-3000 ms intervals; a simulated artefact outside that range is
        # drawn at the nearest allowed spacing.
        rr_ms = np.clip(np.diff(inside) * 1000.0, 200.0, 3000.0)
        sim = ecg_simulate(
            rr_ms,
            fs_hz,
            rng,
            start_s=float(inside[0]) - grid_start,
            end_s=0.3,
            baseline_wander_mv=0.05,
        )
        part = sim.ecg_mv[lead : lead + n] * 1000.0  # mV -> µV
        out[: part.size] = part
        return out

    return synth
