"""Simulated history: weeks of past sessions for a cohort, produced through the real edge code.

Three parts:

* **Cohort and schedule** (pure, seeded): :func:`make_cohort` draws pseudonymous subjects
  (``shuxin.contract.ids``) spread over stations, each with physiology (HR, resting vagal tone as
  the simulator's ``stress`` level, skin conductance), how regularly they come, and — for a few —
  a decline in the last weeks (more stress: lower resting lnRMSSD, higher HR and SCL) strong
  enough for the gateway's advisory rules (``shuxin.gateway.alerts``: ≥ 5 + 5 valid resting
  values for "watch", ≥ 5 + 3 for "check-in") to fire. Declining subjects come three working
  days a week without fail so their history is long enough. :func:`make_schedule` turns the
  cohort into past sessions on working days (protocols from ``firmware_configs/protocols``,
  optionally shortened by ``phase_scale``; before/after ratings; a few markers and notes).
* **Producer** (:class:`StationHistory`): one scheduled session becomes exactly the messages a
  simulated station would publish — the sim source's devices (``SimulatedHeartRateStrap``,
  ``SimulatedGsr`` over ``SimulatedSubject``) feed the real ``EventDecoder``, ``Batcher``,
  ``ContractWriter`` and ``SessionRunner``, on a :class:`VirtualClock` that jumps from one due
  time to the next instead of sleeping. Messages go to any ``OutboxPort``: a station's real
  ``Outbox`` (the demo: its agent's publisher then sends them over MQTT) or a
  :class:`MemoryOutbox`.
* **In-process sink** (:func:`seed_gateway`): drains a :class:`MemoryOutbox` into the gateway's
  ingest entry point (``Ingest.handle_batch``, what every MQTT message goes through) built by
  ``shuxin.gateway.service.build_gateway`` over SQLite, so summaries and alerts are computed by
  the real gateway code.

This module must not write contract payloads by hand, sleep on the wall clock, or open network
connections; it never uses names, only subject codes.
"""

from __future__ import annotations

import heapq
import itertools
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from shuxin.contract.ids import new_subject_code
from shuxin.contract.messages import ClockInfo
from shuxin.edge.batcher import Batcher, ContractWriter, OutboxPort
from shuxin.edge.decode import Battery, ContactChange, EventDecoder, LinkChange
from shuxin.edge.device_profile import DeviceProfile, default_profiles_dir, load_profiles
from shuxin.edge.outbox import Outbox
from shuxin.edge.protocol import ProtocolDefinition, default_protocols_dir, load_protocols
from shuxin.edge.session import ScriptedAction, SessionRunner, SessionStore, new_session_record
from shuxin.edge.sim_station import seat_devices, staff_script
from shuxin.edge.source_sim import (
    SimulatedGsr,
    SimulatedHeartRateStrap,
    SimulatedSubject,
    SubjectTraits,
)
from shuxin.edge.sources import SourceEvent

#: Protocols used for history and how often (the resonance assessment is a one-off, not history).
HISTORY_PROTOCOLS: Final = {
    "rest-resonance-recovery": 0.6,
    "vr-relaxation": 0.25,
    "rest-only": 0.15,
}
#: Session start times on a working day, local time (UTC+8), one seat per station.
_SLOTS_LOCAL: Final = ((8, 30), (9, 40), (10, 50), (14, 10), (15, 20), (16, 30))
_LOCAL_OFFSET: Final = timedelta(hours=8)
#: Devices are put on this long before the session starts.
_PUT_ON_S: Final = 5.0
#: Station seconds between batcher ticks (the agent ticks every 0.5 s at real time).
_TICK_S: Final = 1.0
_MARKERS: Final = ("movement", "talking", "cough")
_NOTES: Final = ("过程顺利", "参与者配合良好", "中途轻微走神，已提醒", "呼吸跟随较好", "自述放松")
_DEVICE_KINDS: Final = ("polar_h10", "shuxin_gsr")


# --- cohort and schedule ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistorySubject:
    """One simulated participant of the history.

    Attributes
    ----------
    code
        Pseudonymous subject code.
    station
        The station the subject attends.
    stress
        Resting stress level 0-1 of the signal simulator (lower = higher vagal tone, so a higher
        resting lnRMSSD).
    mean_hr_bpm, scl_us, breathing_bpm, resonance_bpm
        The rest of the simulator's traits (``shuxin.edge.source_sim.SubjectTraits``).
    attendance
        Probability of coming on each of the subject's weekdays.
    weekdays
        Working days (0 = Monday) the subject comes.
    decline_stress
        Stress added at the full decline (0: stable subject).
    """

    code: str
    station: str
    stress: float
    mean_hr_bpm: float
    scl_us: float
    breathing_bpm: float
    resonance_bpm: float
    attendance: float
    weekdays: tuple[int, ...]
    decline_stress: float = 0.0

    @property
    def declining(self) -> bool:
        """True for a subject whose last weeks decline."""
        return self.decline_stress > 0.0


@dataclass(frozen=True, slots=True)
class ScheduledSession:
    """One past session to produce."""

    station: str
    seat: int
    subject: str
    started_at: float
    protocol_id: str
    traits: SubjectTraits
    rating_before: int
    rating_after: int
    marker: tuple[float, str] | None
    note: str
    seed: int


def make_cohort(
    stations: Sequence[str], n_subjects: int, seed: int, *, declining: int = 3
) -> tuple[HistorySubject, ...]:
    """Draw ``n_subjects`` subjects spread round-robin over ``stations``.

    The first ``declining`` subjects (at most a third of the cohort) decline in the last weeks;
    the others are stable. Deterministic for a given seed.
    """
    if not stations or n_subjects < 1:
        raise ValueError("need at least one station and one subject")
    rng = np.random.default_rng([seed, 17])
    declining = max(0, min(declining, n_subjects // 3))
    codes: list[str] = []
    while len(codes) < n_subjects:
        code = new_subject_code(rng)
        if code not in codes:
            codes.append(code)
    subjects = []
    for index, code in enumerate(codes):
        falls = index < declining
        days = (0, 2, 4) if falls else tuple(sorted(rng.choice(5, size=2, replace=False).tolist()))
        subjects.append(
            HistorySubject(
                code=code,
                station=stations[index % len(stations)],
                stress=float(rng.uniform(0.15, 0.35)),
                mean_hr_bpm=float(rng.uniform(60, 76)),
                scl_us=float(rng.uniform(2.5, 8.0)),
                breathing_bpm=float(rng.uniform(11, 15)),
                resonance_bpm=float(rng.uniform(5.0, 6.4)),
                attendance=1.0 if falls else float(rng.uniform(0.7, 0.95)),
                weekdays=tuple(int(d) for d in days),
                decline_stress=0.5 if falls else 0.0,
            )
        )
    return tuple(subjects)


def history_end(now: datetime | None = None) -> datetime:
    """The end of simulated history: the start of today (UTC), so live sessions come after."""
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def make_schedule(
    cohort: Sequence[HistorySubject],
    *,
    weeks: int,
    seed: int,
    end: datetime,
    decline_days: float = 14.0,
    session_noise: float = 0.03,
    protocol_weights: Mapping[str, float] = HISTORY_PROTOCOLS,
) -> list[ScheduledSession]:
    """Past sessions on the working days of the ``weeks`` weeks before ``end``, oldest first.

    Each station runs its sessions one after the other in the day's slots (subjects beyond the
    slots of a day are not seen that day). A declining subject's stress ramps up over three days
    starting ``decline_days`` before ``end``; every session adds Gaussian noise of SD
    ``session_noise`` to the stress level (day-to-day variation). ``protocol_weights`` gives
    each protocol's share of the sessions.
    """
    if weeks < 1:
        raise ValueError("weeks must be >= 1")
    rng = np.random.default_rng([seed, 29])
    start_day = (end - timedelta(weeks=weeks)).replace(hour=0, minute=0, second=0, microsecond=0)
    decline_from = end.timestamp() - decline_days * 86400.0
    protocols = list(protocol_weights)
    weights = np.array(list(protocol_weights.values()), dtype=np.float64)
    weights = weights / weights.sum()
    by_station: dict[str, list[HistorySubject]] = {}
    for subject in cohort:
        by_station.setdefault(subject.station, []).append(subject)
    sessions: list[ScheduledSession] = []
    day = start_day
    while day < end:
        local_day = day + _LOCAL_OFFSET
        if local_day.weekday() < 5:
            for _station, members in sorted(by_station.items()):
                coming = [
                    s
                    for s in members
                    if local_day.weekday() in s.weekdays and rng.random() < s.attendance
                ]
                for slot, subject in zip(_SLOTS_LOCAL, coming, strict=False):
                    t = day + timedelta(hours=slot[0], minutes=slot[1]) - _LOCAL_OFFSET
                    t += timedelta(seconds=float(rng.uniform(0, 600)))
                    if t >= end:
                        continue
                    sessions.append(
                        _scheduled(
                            subject,
                            t.timestamp(),
                            rng,
                            decline_from=decline_from,
                            noise=session_noise,
                            protocols=protocols,
                            weights=weights,
                        )
                    )
        day += timedelta(days=1)
    return sorted(sessions, key=lambda s: (s.started_at, s.station))


def _scheduled(
    subject: HistorySubject,
    started_at: float,
    rng: np.random.Generator,
    *,
    decline_from: float,
    noise: float,
    protocols: list[str],
    weights: np.ndarray[Any, np.dtype[np.float64]],
) -> ScheduledSession:
    progress = min(1.0, max(0.0, (started_at - decline_from) / (3 * 86400.0)))
    decline = subject.decline_stress * progress
    stress = float(np.clip(subject.stress + decline + rng.normal(0.0, noise), 0.0, 1.0))
    traits = SubjectTraits(
        mean_hr_bpm=subject.mean_hr_bpm + 8.0 * progress * (subject.decline_stress > 0),
        spontaneous_breathing_bpm=subject.breathing_bpm,
        resonance_bpm=subject.resonance_bpm,
        stress=stress,
        scl_us=subject.scl_us + 3.0 * decline,
    )
    before = int(np.clip(round(2 + 8 * stress + rng.normal(0, 1)), 0, 10))
    after = max(0, before - int(rng.integers(0, 4)))
    marker = None
    if rng.random() < 0.3:
        marker = (float(rng.uniform(0.1, 0.9)), str(rng.choice(_MARKERS)))
    return ScheduledSession(
        station=subject.station,
        seat=1,
        subject=subject.code,
        started_at=started_at,
        protocol_id=str(rng.choice(protocols, p=weights)),
        traits=traits,
        rating_before=before,
        rating_after=after,
        marker=marker,
        note=str(rng.choice(_NOTES)),
        seed=int(rng.integers(0, 2**63 - 1)),
    )


def shortened(protocol: ProtocolDefinition, phase_scale: float) -> ProtocolDefinition:
    """``protocol`` with every phase ``phase_scale`` times as long (whole seconds, ≥ 30 s)."""
    if phase_scale == 1.0:
        return protocol
    phases = tuple(
        p.model_copy(update={"duration_s": max(30.0, round(p.duration_s * phase_scale))})
        for p in protocol.phases
    )
    return protocol.model_copy(update={"phases": phases})


# --- virtual time -------------------------------------------------------------------------


class _WakeAt:
    """The awaitable a :class:`VirtualClock` sleeper yields to the driver (no event loop)."""

    __slots__ = ("t",)

    def __init__(self, t: float) -> None:
        self.t = t

    def __await__(self) -> Generator[_WakeAt, None, None]:
        yield self


class VirtualClock:
    """Station time moved only by the producer; ``sleep_until`` suspends the sleeper until the
    producer's scheduler resumes it at that time (no event loop, no real sleeping)."""

    def __init__(self, start: float) -> None:
        self.t = float(start)

    def now(self) -> float:
        """The current virtual time."""
        return self.t

    async def sleep_until(self, t: float) -> None:
        """Suspend until the scheduler has moved time to ``t``."""
        if t > self.t:
            await _WakeAt(t)


# --- outbox -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message as the edge outbox would hold it."""

    topic: str
    seq: int | None
    payload: bytes
    retain: bool
    created_at: float


class MemoryOutbox:
    """An in-memory ``OutboxPort``: per-topic ``seq`` from 0, messages kept in order.

    Parameters
    ----------
    clock
        Station time stamped on each message (the receive time the in-process sink uses).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._next: dict[str, int] = {}
        self.messages: list[OutboxMessage] = []

    def enqueue(self, topic: str, build: Callable[[int], bytes]) -> int:
        """Store a sequenced message; ``build(seq)`` makes its bytes."""
        seq = self._next.get(topic, 0)
        payload = build(seq)
        self._next[topic] = seq + 1
        self.messages.append(OutboxMessage(topic, seq, payload, False, self._clock()))
        return seq

    def enqueue_state(self, topic: str, payload: bytes) -> None:
        """Store a retained state message (no seq)."""
        self.messages.append(OutboxMessage(topic, None, payload, True, self._clock()))

    def next_seq(self, topic: str) -> int:
        """The seq the next message of ``topic`` will get."""
        return self._next.get(topic, 0)

    def drain(self) -> list[OutboxMessage]:
        """Take every stored message, oldest first."""
        out, self.messages = self.messages, []
        return out


# --- the producer -------------------------------------------------------------------------


@dataclass(slots=True)
class ProducerCounters:
    """What a :class:`StationHistory` produced."""

    sessions: int = 0
    events: int = 0
    parse_failures: int = 0
    skipped_actions: int = 0
    invalid_messages: int = 0


class StationHistory:
    """Produces one station's past sessions through the real edge pipeline.

    Parameters
    ----------
    station
        Station id.
    outbox
        Where messages go (a real ``Outbox``, or a :class:`MemoryOutbox`).
    work_dir
        Directory for the session records the runner saves (kept apart from a live agent's
        ``sessions/`` so its session budget is not affected).
    clock
        The virtual clock (shared with a :class:`MemoryOutbox`, if any).
    phase_scale
        Phase length factor for the history protocols (1 = as configured).
    """

    def __init__(
        self,
        station: str,
        outbox: OutboxPort,
        work_dir: Path,
        clock: VirtualClock,
        *,
        phase_scale: float = 1.0,
        protocols: Mapping[str, ProtocolDefinition] | None = None,
        profiles: Mapping[str, DeviceProfile] | None = None,
    ) -> None:
        self.station = station
        self.clock = clock
        all_protocols = protocols or load_protocols(default_protocols_dir())
        self.protocols = {k: shortened(p, phase_scale) for k, p in all_protocols.items()}
        all_profiles = profiles or load_profiles(default_profiles_dir())
        self._profiles = {kind: all_profiles[kind] for kind in _DEVICE_KINDS}
        self.writer = ContractWriter(outbox, station, clock, ClockInfo(offset_ms=0.0, source="ntp"))
        self.batcher = Batcher(self.writer)
        self.store = SessionStore(work_dir)
        self._decoders: dict[int, EventDecoder] = {}
        self._device_state: dict[str, dict[str, Any]] = {}
        self.counters = ProducerCounters()

    def _decoder(self, seat: int) -> EventDecoder:
        if seat not in self._decoders:
            ids = seat_devices(seat, _DEVICE_KINDS)
            self._decoders[seat] = EventDecoder(
                {d: self._profiles[k] for d, k in zip(ids, _DEVICE_KINDS, strict=True)}
            )
        return self._decoders[seat]

    def produce(self, planned: ScheduledSession) -> str:
        """Produce one session (its messages go to the outbox); return its session id."""
        if planned.station != self.station:
            raise ValueError(f"session for {planned.station} given to {self.station}")
        clock = self.clock
        t0 = planned.started_at
        if t0 - _PUT_ON_S < clock.now():
            raise ValueError("sessions must be produced in time order")
        protocol = self.protocols[planned.protocol_id]
        rng = np.random.default_rng(planned.seed)
        subject_rng, strap_rng, gsr_rng, session_rng = rng.spawn(4)
        subject = SimulatedSubject(planned.traits, subject_rng, ectopic_per_min=0.1)
        h10_id, gsr_id = seat_devices(planned.seat, _DEVICE_KINDS)
        decoder = self._decoder(planned.seat)
        clock.t = t0 - _PUT_ON_S
        subject.rest(clock.t)
        devices: list[Coroutine[Any, Any, None]] = []

        def sink(event: SourceEvent) -> None:
            self._handle(decoder, event)

        devices.append(
            SimulatedHeartRateStrap(
                h10_id, self._profiles["polar_h10"], subject, clock, strap_rng
            ).run(sink)
        )
        devices.append(
            SimulatedGsr(gsr_id, self._profiles["shuxin_gsr"], subject, clock, gsr_rng).run(sink)
        )
        record = new_session_record(
            station=self.station,
            protocol=protocol,
            devices=[h10_id, gsr_id],
            now=t0,
            rng=session_rng,
            subject=planned.subject,
            rating_before=planned.rating_before,
            script=_script(protocol, planned),
        )

        def before_end(t_end: float) -> None:
            for device in record.devices:
                for gap in decoder.close_open_gaps(device, t_end):
                    self.batcher.add(gap)
            self.batcher.close_session(record.session_id)

        runner = SessionRunner(record, self.writer, self.store, before_end=before_end)
        queue: list[tuple[float, int, Coroutine[Any, Any, None]]] = []
        order = itertools.count()
        for device in devices:
            heapq.heappush(queue, (clock.t, next(order), device))
        started = False
        next_tick = clock.t + _TICK_S
        try:
            while not runner.finished:
                due_session = t0 if not started else runner.next_due()
                due_device = queue[0][0] if queue else math.inf
                candidates = [next_tick, due_device]
                if due_session is not None:
                    candidates.append(due_session)
                t = min(candidates)
                clock.t = max(clock.t, t)
                if due_session is not None and due_session <= t:
                    if not started:
                        runner.start(t0)
                        self.batcher.open_session(record.session_id, record.devices, t0)
                        subject.follow(protocol, t0, t0)
                        started = True
                    else:
                        runner.advance(clock.t)
                elif due_device <= t:
                    _, _, device = heapq.heappop(queue)
                    wake = device.send(None)
                    if not isinstance(wake, _WakeAt):
                        raise TypeError(f"a simulated device awaited {wake!r}")
                    heapq.heappush(queue, (wake.t, next(order), device))
                else:
                    self.batcher.tick(clock.t)
                    next_tick += _TICK_S
        finally:
            for _, _, device in queue:
                device.close()
        self.counters.sessions += 1
        self.counters.parse_failures = sum(d.failures() for d in self._decoders.values())
        self.counters.skipped_actions += runner.skipped
        self.counters.invalid_messages = self.writer.counters["invalid_message"]
        return record.session_id

    def _handle(self, decoder: EventDecoder, event: SourceEvent) -> None:
        """What ``Agent._handle`` does with a source event: decode, device status, batch."""
        self.counters.events += 1
        for reading in decoder.handle(event):
            if isinstance(reading, LinkChange):
                self._status(
                    reading.device_id,
                    reading.profile,
                    connected=reading.connected,
                    firmware=reading.firmware or None,
                    rssi_dbm=reading.rssi_dbm,
                )
            elif isinstance(reading, Battery):
                self._status(reading.device_id, None, battery_pct=reading.percent)
            elif isinstance(reading, ContactChange):
                self._status(reading.device_id, None, contact=reading.contact)
            else:
                self.batcher.add(reading)

    def _status(self, device_id: str, profile: str | None, **changes: Any) -> None:
        state = self._device_state.setdefault(
            device_id,
            {
                "device": device_id,
                "profile": profile,
                "connected": False,
                "battery_pct": None,
                "contact": None,
                "firmware": None,
                "rssi_dbm": None,
            },
        )
        if profile is not None:
            state["profile"] = profile
        changed = False
        for key, value in changes.items():
            if value is None and key in ("firmware", "rssi_dbm"):
                continue
            if state[key] != value:
                state[key] = value
                changed = True
        if changed and state["profile"] is not None:
            self.writer.device_status(dict(state))


def _script(protocol: ProtocolDefinition, planned: ScheduledSession) -> list[ScriptedAction]:
    """The staff's actions, as ``SimStaff`` scripts them, from the planned values."""
    return staff_script(
        protocol, marker=planned.marker, note=planned.note, rating_after=planned.rating_after
    )


# --- running a whole history ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """A cohort and its schedule."""

    cohort: tuple[HistorySubject, ...]
    sessions: tuple[ScheduledSession, ...]

    @property
    def declining(self) -> tuple[str, ...]:
        """Codes of the subjects whose last weeks decline."""
        return tuple(s.code for s in self.cohort if s.declining)

    @property
    def stable(self) -> tuple[str, ...]:
        """Codes of the stable subjects."""
        return tuple(s.code for s in self.cohort if not s.declining)


def plan_history(
    stations: Sequence[str],
    *,
    weeks: int = 8,
    subjects: int = 20,
    seed: int = 1,
    end: datetime | None = None,
    declining: int = 3,
    protocol_weights: Mapping[str, float] = HISTORY_PROTOCOLS,
) -> HistoryPlan:
    """Cohort and schedule in one call (``end`` defaults to :func:`history_end`)."""
    cohort = make_cohort(stations, subjects, seed, declining=declining)
    schedule = make_schedule(
        cohort,
        weeks=weeks,
        seed=seed,
        end=end or history_end(),
        protocol_weights=protocol_weights,
    )
    return HistoryPlan(cohort, tuple(schedule))


@dataclass(slots=True)
class HistoryStats:
    """What a history run did, and how fast."""

    sessions: int = 0
    messages: int = 0
    elapsed_s: float = 0.0
    per_station: dict[str, ProducerCounters] = field(default_factory=dict)

    @property
    def sessions_per_s(self) -> float:
        """Sessions produced per second of wall time."""
        return self.sessions / self.elapsed_s if self.elapsed_s > 0 else math.inf


def produce_history(
    sessions: Iterable[ScheduledSession],
    outbox_for: Callable[[str, VirtualClock], OutboxPort],
    work_dir: Path,
    *,
    phase_scale: float = 1.0,
    after_session: Callable[[str, str], None] | None = None,
) -> HistoryStats:
    """Produce every scheduled session, station by station in time order.

    ``outbox_for(station, clock)`` gives the outbox of a station (called once per station);
    ``after_session(station, session_id)`` is called after each session (progress, draining).
    """
    return _produce_in(sessions, outbox_for, _Subdirs(work_dir), phase_scale, after_session)


class _Subdirs(dict[str, Path]):
    """``work_dir / station`` for any station."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = root

    def __missing__(self, station: str) -> Path:
        return self._root / station


def _produce_in(
    sessions: Iterable[ScheduledSession],
    outbox_for: Callable[[str, VirtualClock], OutboxPort],
    work_dirs: Mapping[str, Path],
    phase_scale: float,
    after_session: Callable[[str, str], None] | None,
) -> HistoryStats:
    stats = HistoryStats()
    producers: dict[str, StationHistory] = {}
    protocols = load_protocols(default_protocols_dir())
    profiles = load_profiles(default_profiles_dir())
    started = time.perf_counter()
    for planned in sorted(sessions, key=lambda s: (s.started_at, s.station)):
        producer = producers.get(planned.station)
        if producer is None:
            clock = VirtualClock(planned.started_at - 60.0)
            producer = StationHistory(
                planned.station,
                outbox_for(planned.station, clock),
                work_dirs[planned.station],
                clock,
                phase_scale=phase_scale,
                protocols=protocols,
                profiles=profiles,
            )
            producers[planned.station] = producer
            stats.per_station[planned.station] = producer.counters
        session_id = producer.produce(planned)
        stats.sessions += 1
        if after_session is not None:
            after_session(planned.station, session_id)
    stats.elapsed_s = time.perf_counter() - started
    return stats


def backfill_outboxes(
    sessions: Iterable[ScheduledSession],
    station_dirs: Mapping[str, Path],
    *,
    phase_scale: float = 0.5,
    progress: Callable[[str, str], None] | None = None,
) -> HistoryStats:
    """The demo's path: produce ``sessions`` into each station's durable edge outbox
    (``<station dir>/outbox.sqlite3``, the file the station's agent publishes from).

    Session records go to ``<station dir>/history/`` (not ``sessions/``, which a simulated
    station counts). Run it before the station's agent starts, or while it runs: its publisher
    sends the backlog over MQTT at its own pace. ``progress(station, session_id)`` is called
    after each session.
    """
    outboxes: dict[str, Outbox] = {}

    def outbox_for(station: str, _clock: VirtualClock) -> OutboxPort:
        outboxes[station] = Outbox(station_dirs[station] / "outbox.sqlite3")
        return outboxes[station]

    try:
        scratch = {s: d / "history" for s, d in station_dirs.items()}
        return _produce_in(sessions, outbox_for, scratch, phase_scale, progress)
    finally:
        for outbox in outboxes.values():
            outbox.close()


# --- the in-process gateway sink ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgTree:
    """The seeded grid: unit ids and codes, and each station's unit."""

    detachment_id: int
    detachment_code: str
    brigade_ids: dict[str, int]
    station_unit_ids: dict[str, int]


#: The default grid: station id → (brigade code, brigade name, station name).
DEFAULT_GRID: Final = {
    "st-a": ("DD01", "一大队", "甲站"),
    "st-b": ("DD01", "一大队", "乙站"),
    "st-c": ("DD02", "二大队", "丙站"),
}


def seed_org_tree(
    sql: Any,
    grid: Mapping[str, tuple[str, str, str]] = DEFAULT_GRID,
    *,
    detachment: tuple[str, str] = ("ZD-SIM", "模拟支队"),
) -> OrgTree:
    """Create detachment → brigades → stations in the gateway's SQL store and register the
    stations (``sql`` is a ``shuxin.gateway.sql_store.SqlStore``)."""
    from shuxin.gateway.sql_models import OrgUnitKind

    top = sql.create_org_unit(OrgUnitKind.DETACHMENT, detachment[0], detachment[1])
    brigades: dict[str, int] = {}
    stations: dict[str, int] = {}
    for station, (brigade_code, brigade_name, station_name) in grid.items():
        if brigade_code not in brigades:
            brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, brigade_code, brigade_name, top.id)
            brigades[brigade_code] = brigade.id
        unit = sql.create_org_unit(
            OrgUnitKind.STATION, f"ZN-{station}", station_name, brigades[brigade_code]
        )
        sql.register_station(station, org_unit_id=unit.id, display_name=station_name)
        stations[station] = unit.id
    return OrgTree(top.id, detachment[0], brigades, stations)


@dataclass(slots=True)
class SeedResult:
    """What :func:`seed_gateway` stored."""

    stats: HistoryStats
    outcomes: dict[str, int]


def seed_gateway(
    gateway: Any,
    sessions: Sequence[ScheduledSession],
    *,
    phase_scale: float = 0.4,
    work_dir: Path | None = None,
    batch_size: int = 500,
    progress: Callable[[str, str], None] | None = None,
) -> SeedResult:
    """Produce ``sessions`` and feed them straight into ``gateway.ingest`` (a
    ``GatewayService`` from ``build_gateway``; its stations must be registered).

    ``progress(station, session_id)`` runs after each session is stored; an exception it
    raises stops the seeding there (how the demo stops on Ctrl-C).

    Messages enter ``Ingest.handle_batch`` exactly as the MQTT subscriber hands them over,
    received at their station time, so the SQL, time-series, summary and alert sinks all run.
    """
    from shuxin.gateway.ingest import Received

    outboxes: dict[str, MemoryOutbox] = {}
    outcomes: dict[str, int] = {}

    def outbox_for(station: str, clock: VirtualClock) -> OutboxPort:
        outboxes[station] = MemoryOutbox(clock.now)
        return outboxes[station]

    def deliver(station: str, session_id: str) -> None:
        drained = outboxes[station].drain()
        for start in range(0, len(drained), batch_size):
            batch = [
                Received(m.topic, m.payload, datetime.fromtimestamp(m.created_at, UTC))
                for m in drained[start : start + batch_size]
            ]
            for outcome in gateway.ingest.handle_batch(batch):
                outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1
        if progress is not None:
            progress(station, session_id)

    scratch = Path(tempfile.mkdtemp(prefix="shuxin-history-")) if work_dir is None else work_dir
    try:
        stats = produce_history(
            sessions, outbox_for, scratch, phase_scale=phase_scale, after_session=deliver
        )
    finally:
        if work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    stats.messages = sum(outcomes.values())
    return SeedResult(stats, outcomes)


def build_seeded_gateway(
    data_dir: Path,
    plan: HistoryPlan,
    *,
    grid: Mapping[str, tuple[str, str, str]] = DEFAULT_GRID,
    sql_url: str | None = None,
    tsdb_url: str | None = None,
    phase_scale: float = 0.4,
) -> tuple[Any, OrgTree, SeedResult]:
    """Build a gateway (``build_gateway``, SQLite by default) in ``data_dir``, seed the grid,
    and feed it ``plan``'s sessions; return the (open) gateway service, the grid and the result.
    The caller closes the service."""
    from pydantic import SecretStr

    from shuxin.gateway.service import build_gateway
    from shuxin.gateway.settings import GatewaySettings
    from shuxin.gateway.sql_settings import SqlSettings

    sql_settings = SqlSettings(url=SecretStr(sql_url)) if sql_url else SqlSettings()
    settings = GatewaySettings(
        broker_url="mqtt://127.0.0.1:1883",
        data_dir=data_dir,
        tsdb_url=tsdb_url,
        sql=sql_settings,
    )
    gateway = build_gateway(settings)
    try:
        tree = seed_org_tree(gateway.sql, grid)
        result = seed_gateway(
            gateway, plan.sessions, phase_scale=phase_scale, work_dir=data_dir / "edge-history"
        )
    except BaseException:
        gateway.close()
        raise
    return gateway, tree, result
