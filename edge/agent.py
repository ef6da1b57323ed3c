"""The edge agent's composition root: sources → decoder → sessions → batcher → outbox → MQTT.

:func:`build_agent` turns checked settings (:class:`~shuxin.edge.settings.ResolvedSettings`)
into an :class:`Agent`: it builds the clock, the durable outbox, the contract writer, the
decoder, the batcher, the session store, the publisher and one source per device (simulated
devices, a replay file, or — when installed — BLE). Entry points (``shuxin edge run``,
``shuxin sim station``) and tests all go through it; tests may pass their own sources and
clock.

:meth:`Agent.run` runs everything on one asyncio loop until cancelled: every source feeds
:meth:`Agent.handle_event` (record → decode → device status → batch), a tick closes old batches
and sends live metrics, each session runs its time line, and the publisher drains the outbox.
Unfinished sessions found in the data directory are resumed at start. Retained device status
(connected, battery, contact, firmware) is stored on every change. :meth:`Agent.shutdown`
flushes batches, marks the station offline, and gives the publisher a moment to drain; whatever
is left stays in the outbox for the next start.

This module wires parts together and owns the loop; it must not parse bytes or build payloads
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from shuxin.contract.codec import encode
from shuxin.contract.messages import ClockInfo, StationStatus
from shuxin.contract.topics import station_status_topic
from shuxin.edge.batcher import Batcher, ContractWriter
from shuxin.edge.clock import Clock, ScaledClock, SystemClock, to_datetime
from shuxin.edge.decode import (
    Battery,
    ContactChange,
    EventDecoder,
    LinkChange,
)
from shuxin.edge.device_profile import Role
from shuxin.edge.outbox import Outbox, OutboxLimits
from shuxin.edge.outbox_publisher import BrokerSettings, OutboxPublisher
from shuxin.edge.protocol import ProtocolDefinition
from shuxin.edge.session import (
    ScriptedAction,
    SessionError,
    SessionRecord,
    SessionRunner,
    SessionStore,
    new_session_record,
)
from shuxin.edge.settings import AgentSettings, ResolvedSettings, SettingsError
from shuxin.edge.source_ble import BLE_EXTRA_MESSAGE, BleDeviceSpec, BleSource
from shuxin.edge.source_ble_scan import bleak_available
from shuxin.edge.source_replay import RecordingWriter
from shuxin.edge.source_sim import (
    SimulatedGsr,
    SimulatedHeartRateStrap,
    SimulatedSubject,
    draw_traits,
    signal_ecg_synth,
)
from shuxin.edge.sources import DeviceRef, SensorSource, SourceEvent
from shuxin.runtime.backoff import Backoff

log = logging.getLogger(__name__)

AGENT_VERSION: Final = "0.1.0"
#: Real seconds between saves of an accelerated station clock.
CLOCK_SAVE_EVERY_S: Final = 0.5
SessionListener = Callable[[Literal["start", "resume", "end"], SessionRecord, float], None]


@dataclass(slots=True)
class _DeviceState:
    profile: str
    connected: bool = False
    battery_pct: int | None = None
    contact: Literal["detected", "not_detected", "unsupported"] | None = None
    firmware: str | None = None
    rssi_dbm: int | None = None


@dataclass(slots=True)
class AgentCounters:
    """What the agent counted beyond its parts' own counters."""

    events: int = 0
    sessions_started: int = 0
    sessions_resumed: int = 0
    sessions_ended: int = 0
    status_updates: int = 0
    #: Contained failures by exception type (``session_…`` for session steps).
    errors: dict[str, int] = field(default_factory=dict)


class Agent:
    """One station's agent. Build it with :func:`build_agent`."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        clock: Clock,
        outbox: Outbox,
        protocols: dict[str, ProtocolDefinition],
        sources: Sequence[SensorSource],
        decoder: EventDecoder,
        broker: BrokerSettings | None,
        rng: np.random.Generator,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.outbox = outbox
        self.protocols = protocols
        self.sources = list(sources)
        self.decoder = decoder
        self.rng = rng
        self.counters = AgentCounters()
        self.publisher = (
            OutboxPublisher(
                settings.station, outbox, broker, backoff=Backoff(initial_s=0.2, cap_s=5.0)
            )
            if broker is not None
            else None
        )
        clock_info = ClockInfo(offset_ms=0.0, source=settings.clock_source)
        self.writer = ContractWriter(outbox, settings.station, clock, clock_info, self._wake)
        self.batcher = Batcher(
            self.writer, upload_ecg=[d.id for d in settings.devices if d.upload_raw]
        )
        self.store = SessionStore(settings.data_dir / "sessions")
        self.sessions: dict[str, SessionRunner] = {}
        self.session_listeners: list[SessionListener] = []
        self.devices: dict[str, _DeviceState] = {
            ref.device_id: _DeviceState(ref.profile) for s in self.sources for ref in s.devices
        }
        self.recorder: RecordingWriter | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Set once :meth:`run` has resumed sessions and started the sources.
        self.started = asyncio.Event()
        self._tick_s = max(0.5, 0.01 * getattr(clock, "time_scale", 1.0))
        self._last_clock_save = 0.0

    # --- sessions ---------------------------------------------------------------------------

    def start_session(
        self,
        protocol_id: str,
        devices: Sequence[str],
        *,
        subject: str | None = None,
        rating_before: int | None = None,
        script: Sequence[ScriptedAction] = (),
        auto_end: bool = True,
    ) -> SessionRunner:
        """Start a session now; raise :class:`SessionError` for an unknown protocol, unknown or
        busy devices, or invalid input."""
        protocol = self.protocols.get(protocol_id)
        if protocol is None:
            raise SessionError(f"unknown protocol {protocol_id!r}")
        unknown = [d for d in devices if d not in self.devices]
        busy = [d for d in devices if self.batcher.session_of(d) is not None]
        if unknown or busy:
            raise SessionError(f"devices not available: {', '.join([*unknown, *busy])}")
        now = self.clock.now()
        record = new_session_record(
            station=self.settings.station,
            protocol=protocol,
            devices=devices,
            now=now,
            rng=self.rng,
            subject=subject,
            rating_before=rating_before,
            script=script,
            auto_end=auto_end,
        )
        runner = self._runner(record)
        runner.start(now)
        self.batcher.open_session(record.session_id, record.devices, now)
        self.counters.sessions_started += 1
        self._notify("start", record, now)
        self._launch(runner)
        return runner

    def _resume_sessions(self) -> None:
        now = self.clock.now()
        for record in self.store.load_unfinished():
            busy = [d for d in record.devices if self.batcher.session_of(d) is not None]
            if busy:
                log.error("session %s: devices busy; aborting it", record.session_id)
                self._runner(record).abort("devices_busy", now)
                continue
            runner = self._runner(record)
            self.batcher.open_session(record.session_id, record.devices, now)
            runner.resume(now)
            if runner.finished:
                self.batcher.close_session(record.session_id)
                continue
            self.counters.sessions_resumed += 1
            log.info("resumed session %s", record.session_id)
            self._notify("resume", record, now)
            self._launch(runner)

    def _runner(self, record: SessionRecord) -> SessionRunner:
        def before_end(t_end: float) -> None:
            for device in record.devices:
                for gap in self.decoder.close_open_gaps(device, t_end):
                    self.batcher.add(gap)
            self.batcher.close_session(record.session_id)

        return SessionRunner(record, self.writer, self.store, before_end=before_end)

    def _launch(self, runner: SessionRunner) -> None:
        self.sessions[runner.session_id] = runner
        task = asyncio.get_running_loop().create_task(self._follow(runner))
        self._tasks[f"session:{runner.session_id}"] = task

    async def _follow(self, runner: SessionRunner) -> None:
        try:
            while not runner.finished:
                try:
                    await runner.run(self.clock)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # e.g. the outbox's disk is full: retry, never drop
                    self._count_error(f"session_{type(exc).__name__}")
                    log.exception("session %s: step failed; retrying", runner.session_id)
                    await asyncio.sleep(1.0)
        finally:
            if runner.finished:
                self.sessions.pop(runner.session_id, None)
                self._tasks.pop(f"session:{runner.session_id}", None)
                self.counters.sessions_ended += 1
                self._notify("end", runner.record, self.clock.now())

    def _notify(
        self, what: Literal["start", "resume", "end"], record: SessionRecord, now: float
    ) -> None:
        for listener in self.session_listeners:
            listener(what, record, now)

    # --- events -------------------------------------------------------------------------------

    def handle_event(self, event: SourceEvent) -> None:
        """Everything a source delivers comes through here (the sources' sink).

        Failures are contained per event (counted, logged once per kind): a broken event or a
        full disk never stops a source.
        """
        self.counters.events += 1
        try:
            self._handle(event)
        except Exception as exc:
            kind = type(exc).__name__
            if self._count_error(kind) == 1:
                log.exception("could not handle an event (%s); further ones are counted", kind)

    def _count_error(self, kind: str) -> int:
        errors = self.counters.errors
        errors[kind] = errors.get(kind, 0) + 1
        return errors[kind]

    def _handle(self, event: SourceEvent) -> None:
        if self.recorder is not None:
            self.recorder.write(event)
        for reading in self.decoder.handle(event):
            if isinstance(reading, LinkChange):
                self._update_device(
                    reading.device_id,
                    connected=reading.connected,
                    firmware=reading.firmware or None,
                    rssi_dbm=reading.rssi_dbm,
                )
            elif isinstance(reading, Battery):
                self._update_device(reading.device_id, battery_pct=reading.percent)
            elif isinstance(reading, ContactChange):
                self._update_device(reading.device_id, contact=reading.contact)
            else:
                self.batcher.add(reading)

    def _update_device(self, device_id: str, **changes: Any) -> None:
        state = self.devices.get(device_id)
        if state is None:
            return
        changed = False
        for key, value in changes.items():
            if value is None and key in ("firmware", "rssi_dbm"):
                continue
            if getattr(state, key) != value:
                setattr(state, key, value)
                changed = True
        if changed:
            self.counters.status_updates += 1
            self.writer.device_status(
                {
                    "device": device_id,
                    "profile": state.profile,
                    "connected": state.connected,
                    "battery_pct": state.battery_pct,
                    "contact": state.contact,
                    "firmware": state.firmware,
                    "rssi_dbm": state.rssi_dbm,
                }
            )

    def _wake(self) -> None:
        if self.publisher is not None:
            self.publisher.notify()

    # --- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled (then shut down cleanly)."""
        loop = asyncio.get_running_loop()
        if self.settings.record:
            stamp = to_datetime(self.clock.now()).strftime("%Y%m%d-%H%M%S")
            refs = tuple(ref for s in self.sources for ref in s.devices)
            path = self.settings.data_dir / "recordings" / f"{self.settings.station}-{stamp}.jsonl"
            self.recorder = RecordingWriter(path, self.settings.station, refs, self.clock.now())
            log.info("recording notifications to %s", path)
        if self.publisher is not None:
            self._tasks["publisher"] = loop.create_task(self.publisher.run())
        self._resume_sessions()
        if self.settings.console.enabled:
            from shuxin.edge.console import serve_console  # FastAPI only when the console runs

            console = self.settings.console
            self._tasks["console"] = loop.create_task(
                serve_console(self, console.host, console.port), name="console"
            )
        for index, source in enumerate(self.sources):
            self._tasks[f"source:{index}"] = loop.create_task(
                self._run_source(source), name=f"source-{index}"
            )
        self.started.set()
        try:
            await self._tick_forever()
        finally:
            await self.shutdown()

    async def _run_source(self, source: SensorSource) -> None:
        try:
            await source.run(self.handle_event)
        except asyncio.CancelledError:
            raise
        except Exception:  # a source bug must not take the station down; logged, not fatal
            log.exception("source %s stopped", [d.device_id for d in source.devices])

    async def _tick_forever(self) -> None:
        while True:
            now = self.clock.now()
            self.batcher.tick(now)
            for runner in list(self.sessions.values()):
                runner.touch(now)
            self._save_clock(now)
            await self.clock.sleep_until(now + self._tick_s)

    def _save_clock(self, now: float, *, force: bool = False) -> None:
        if not isinstance(self.clock, ScaledClock):
            return
        real = time.monotonic()
        if force or real - self._last_clock_save >= CLOCK_SAVE_EVERY_S:
            self._last_clock_save = real
            save_station_time(self.settings.data_dir, now)

    async def shutdown(self, drain_s: float = 3.0) -> None:
        """Stop sources and sessions, flush batches, mark offline, let the publisher drain."""
        current = asyncio.current_task()
        for name, task in list(self._tasks.items()):
            if name != "publisher" and task is not current:
                task.cancel()
        pending = [t for n, t in self._tasks.items() if n != "publisher" and t is not current]
        await asyncio.gather(*pending, return_exceptions=True)
        now = self.clock.now()
        for runner in list(self.sessions.values()):
            self.batcher.flush_session(runner.session_id)
            runner.touch(now, every_s=0.0)
        self._save_clock(now, force=True)
        self.outbox.enqueue_state(
            station_status_topic(self.settings.station),
            encode(
                StationStatus(
                    schema_=1,
                    station=self.settings.station,
                    state="offline",
                    sent_at=to_datetime(now),
                    agent_version=AGENT_VERSION,
                )
            ),
        )
        publisher_task = self._tasks.pop("publisher", None)
        if publisher_task is not None:
            self._wake()
            # Drain only over a live connection; an unreachable broker would just delay the
            # stop (everything stays in the outbox for the next start either way).
            deadline = time.monotonic() + (drain_s if self._publisher_connected() else 0.0)
            while self.outbox.stats().backlog and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            publisher_task.cancel()
            await asyncio.gather(publisher_task, return_exceptions=True)
        self._tasks.clear()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def _publisher_connected(self) -> bool:
        return self.publisher is not None and self.publisher.connected.is_set()

    def close(self) -> None:
        """Close the outbox (after :meth:`run` returned)."""
        self.outbox.close()


# --- composition --------------------------------------------------------------------------


def load_station_time(data_dir: Path) -> float | None:
    """The station time an accelerated agent last saved (None if never)."""
    try:
        value = json.loads((data_dir / "station_clock.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    t = value.get("station_time") if isinstance(value, dict) else None
    return float(t) if isinstance(t, (int, float)) and math.isfinite(t) else None


def save_station_time(data_dir: Path, t: float) -> None:
    """Save the accelerated station clock (tmp file + rename)."""
    target = data_dir / "station_clock.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"station_time": t}), encoding="utf-8")
    os.replace(tmp, target)


def make_clock(settings: AgentSettings, store: SessionStore | None = None) -> Clock:
    """Wall time at time scale 1; otherwise an accelerated clock that resumes where the last
    run of this data directory left off (never earlier than a saved session's last sign of
    life, plus one save interval of margin, so station time never runs backwards)."""
    if settings.time_scale == 1.0:
        return SystemClock()
    start = time.time()
    saved = load_station_time(settings.data_dir)
    if saved is not None:
        start = max(start, saved + CLOCK_SAVE_EVERY_S * settings.time_scale)
    if store is not None:
        for record in store.load_unfinished():
            start = max(start, record.last_alive)
    return ScaledClock(settings.time_scale, start=start)


def build_agent(
    resolved: ResolvedSettings,
    *,
    clock: Clock | None = None,
    sources: Sequence[SensorSource] | None = None,
    connect: bool = True,
) -> Agent:
    """Build the agent graph from checked settings.

    Parameters
    ----------
    resolved
        Settings with their profiles and protocols (:func:`~shuxin.edge.settings.check_settings`).
    clock
        Override the clock (tests); default :func:`make_clock`.
    sources
        Override the sources (tests); default one per configured device.
    connect
        False builds no publisher (messages stay in the outbox).
    """
    settings = resolved.settings
    store = SessionStore(settings.data_dir / "sessions")
    clock = clock or make_clock(settings, store)
    seed = settings.seed if settings.seed is not None else int.from_bytes(os.urandom(8), "little")
    seeds = np.random.SeedSequence(seed)
    agent_seed, sources_seed = seeds.spawn(2)
    limits = OutboxLimits(
        max_messages=settings.outbox.max_messages,
        max_bytes=settings.outbox.max_bytes,
        max_age_s=settings.outbox.max_age_s,
    )
    outbox = Outbox(settings.data_dir / "outbox.sqlite3", limits)
    subjects: dict[int, SimulatedSubject] = {}
    if sources is None:
        sources, subjects = _build_sources(resolved, clock, sources_seed)
    device_profiles = {
        ref.device_id: resolved.profiles[ref.profile]
        for source in sources
        for ref in source.devices
        if ref.profile in resolved.profiles
    }
    broker = None
    if connect:
        broker = BrokerSettings(
            host=settings.broker.host,
            port=settings.broker.port,
            username=settings.broker.username,
            password=resolved.password,
            keepalive_s=settings.broker.keepalive_s,
            tls=settings.broker.tls,
            ca_file=settings.broker.ca_file,
            client_cert_file=settings.broker.client_cert_file,
            client_key_file=settings.broker.client_key_file,
        )
    agent = Agent(
        settings,
        clock=clock,
        outbox=outbox,
        protocols=resolved.protocols,
        sources=sources,
        decoder=EventDecoder(device_profiles),
        broker=broker,
        rng=np.random.default_rng(agent_seed),
    )
    if subjects:
        agent.session_listeners.append(_subjects_follow(settings, subjects))
    return agent


def _build_sources(
    resolved: ResolvedSettings, clock: Clock, seed: np.random.SeedSequence
) -> tuple[list[SensorSource], dict[int, SimulatedSubject]]:
    settings = resolved.settings
    sources: list[SensorSource] = []
    subjects: dict[int, SimulatedSubject] = {}
    device_seeds = seed.spawn(len(settings.devices) + 64)
    ecg_synth = signal_ecg_synth()
    ble_specs: list[BleDeviceSpec] = []
    for index, device in enumerate(settings.devices):
        profile = resolved.profiles[device.profile]
        rng = np.random.default_rng(device_seeds[index])
        if device.sim is None:
            if device.address is None:
                raise SettingsError(f"device {device.id}: neither address nor sim")
            ble_specs.append(
                BleDeviceSpec(DeviceRef(device.id, profile.name), device.address, profile)
            )
            continue
        spec = device.sim.fault_spec()
        if device.sim.subject not in subjects:
            subject_rng = np.random.default_rng(
                device_seeds[len(settings.devices) + device.sim.subject - 1]
            )
            subjects[device.sim.subject] = SimulatedSubject(
                draw_traits(subject_rng),
                subject_rng,
                ectopic_per_min=spec.ectopic_per_min,
                missed_per_min=spec.missed_per_min,
            )
        subject = subjects[device.sim.subject]
        roles = {c.role for c in profile.characteristics}
        if Role.EDA in roles:
            sources.append(SimulatedGsr(device.id, profile, subject, clock, rng, faults=spec))
        elif Role.HEART_RATE in roles:
            sources.append(
                SimulatedHeartRateStrap(
                    device.id, profile, subject, clock, rng, faults=spec, ecg_synth=ecg_synth
                )
            )
        else:
            raise SettingsError(f"device {device.id}: no simulator for profile {profile.name}")
    if ble_specs:
        if not bleak_available():
            raise SettingsError(BLE_EXTRA_MESSAGE)
        sources.append(BleSource(ble_specs, clock=clock))
    return sources, subjects


def _subjects_follow(
    settings: AgentSettings, subjects: dict[int, SimulatedSubject]
) -> SessionListener:
    """Simulated participants follow the protocol of the session their devices are in."""
    by_device = {d.id: subjects[d.sim.subject] for d in settings.devices if d.sim is not None}

    def listener(
        what: Literal["start", "resume", "end"], record: SessionRecord, now: float
    ) -> None:
        for subject in {id(s): s for d in record.devices if (s := by_device.get(d))}.values():
            if what == "end":
                subject.rest(now)
            else:
                subject.follow(record.protocol, record.started_at, now)

    return listener


async def run_agent(agent: Agent, until: Callable[[], bool] | None = None) -> None:
    """Run ``agent`` until cancelled, or until ``until()`` turns true (checked every 0.1 s)."""
    main = asyncio.get_running_loop().create_task(agent.run())
    try:
        while not main.done():
            if until is not None and until():
                break
            await asyncio.sleep(0.1)
    finally:
        if not main.done():
            main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
