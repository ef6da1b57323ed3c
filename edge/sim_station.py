"""A whole simulated relief station: N simulated participants with their sensors, and simulated
staff running protocols with them, through the real agent (``shuxin sim station``).

Each seat k has a participant (a pseudonymous subject code kept in ``<data>/sim_station.json``
so a restarted station keeps its participants) wearing the seat's devices (by default a Polar
H10 ``sim-h10-k`` and a GSR module ``sim-gsr-k``). The staff script starts a session, gives a
before-rating, sets a marker, reports the VR client's scene events in VR phases, writes a short
note and an after-rating, waits a short break, and starts the next session, cycling through the
chosen protocols — until ``--sessions`` sessions have been started (counted from the session
records in the data directory, so a restart continues the count) and all have finished, or
until interrupted.

Everything else — sources, decoding, batching, sessions, outbox, MQTT — is the real agent from
:func:`shuxin.edge.agent.build_agent`. This module only composes and drives it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from shuxin.contract.ids import new_subject_code
from shuxin.edge.agent import Agent, build_agent
from shuxin.edge.protocol import ProtocolDefinition
from shuxin.edge.session import ScriptedAction, SessionError
from shuxin.edge.settings import AgentSettings, SettingsError, build_settings, check_settings

log = logging.getLogger(__name__)

#: Simulated device kinds: profile name → short id used in ``sim-<short>-<seat>``.
SIM_DEVICE_KINDS: Final = {"polar_h10": "h10", "hrs_strap": "hrs", "shuxin_gsr": "gsr"}
STATE_FILE: Final = "sim_station.json"
_NOTES: Final = ("过程顺利", "参与者配合良好", "中途轻微走神，已提醒", "呼吸跟随较好", "自述放松")


@dataclass(frozen=True, slots=True)
class SimStationOptions:
    """What ``shuxin sim station`` was asked to run."""

    station: str
    broker_url: str
    username: str | None
    password: str | None
    data_dir: Path
    subjects: int = 2
    protocols: tuple[str, ...] = ("rest-resonance-recovery",)
    time_scale: float = 1.0
    sessions: int | None = None
    seed: int | None = None
    faults: str = "none"
    devices: tuple[str, ...] = ("polar_h10", "shuxin_gsr")
    break_s: float = 30.0
    record: bool = False
    protocol_dir: Path | None = None
    upload_ecg: bool = False
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None


def seat_devices(seat: int, kinds: tuple[str, ...]) -> list[str]:
    """Device ids of one seat, e.g. ``["sim-h10-1", "sim-gsr-1"]``."""
    return [f"sim-{SIM_DEVICE_KINDS[kind]}-{seat}" for kind in kinds]


def sim_station_settings(opts: SimStationOptions) -> AgentSettings:
    """Agent settings for a simulated station (raises ``SettingsError`` with every problem)."""
    unknown = [k for k in opts.devices if k not in SIM_DEVICE_KINDS]
    if unknown:
        raise SettingsError(
            f"no simulator for {', '.join(unknown)}; simulated kinds: {', '.join(SIM_DEVICE_KINDS)}"
        )
    devices: list[dict[str, Any]] = []
    for seat in range(1, opts.subjects + 1):
        for kind, device_id in zip(opts.devices, seat_devices(seat, opts.devices), strict=True):
            devices.append(
                {
                    "id": device_id,
                    "profile": kind,
                    "sim": {"subject": seat, "faults": opts.faults},
                    "upload_raw": opts.upload_ecg and kind == "polar_h10",
                }
            )
    values: dict[str, Any] = {
        "station": opts.station,
        "broker": {"url": opts.broker_url, "username": opts.username},
        "data_dir": opts.data_dir,
        "devices": devices,
        "time_scale": opts.time_scale,
        "record": opts.record,
        "seed": opts.seed,
    }
    if opts.password is not None:  # otherwise SHUXIN_EDGE_BROKER__PASSWORD, if set
        values["broker"]["password"] = opts.password
    for key in ("ca_file", "client_cert_file", "client_key_file"):
        if getattr(opts, key) is not None:  # otherwise SHUXIN_EDGE_BROKER__<KEY>, if set
            values["broker"][key] = getattr(opts, key)
    if opts.protocol_dir is not None:
        values["protocol_dir"] = opts.protocol_dir
    if unknown:
        raise SettingsError(
            f"no simulator for {', '.join(unknown)}; simulated kinds: {', '.join(SIM_DEVICE_KINDS)}"
        )
    return build_settings(**values)


@dataclass(slots=True)
class StaffCounters:
    """What the simulated staff did."""

    started: int = 0
    ended: int = 0
    refused: int = 0
    seats: dict[int, str] = field(default_factory=dict)


class SimStaff:
    """Runs sessions on every seat until the budget is used up (or forever)."""

    def __init__(self, agent: Agent, opts: SimStationOptions, rng: np.random.Generator) -> None:
        self._agent = agent
        self._opts = opts
        self._rng = rng
        self.counters = StaffCounters()
        self._state_path = opts.data_dir / STATE_FILE
        self.counters.seats = self._load_seats()
        records = agent.store.load_all()
        self.counters.started = len(records)
        self.counters.ended = sum(1 for r in records if r.status in ("ended", "aborted"))

    def _load_seats(self) -> dict[int, str]:
        seats: dict[int, str] = {}
        try:
            saved = json.loads(self._state_path.read_text(encoding="utf-8"))
            seats = {int(k): str(v) for k, v in saved.get("seats", {}).items()}
        except (OSError, ValueError, AttributeError):
            seats = {}
        for seat in range(1, self._opts.subjects + 1):
            seats.setdefault(seat, new_subject_code(self._rng))
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"seats": {str(k): v for k, v in seats.items()}}), encoding="utf-8"
        )
        os.replace(tmp, self._state_path)
        return seats

    def _budget_left(self) -> bool:
        return self._opts.sessions is None or self.counters.started < self._opts.sessions

    async def run(self) -> None:
        """Drive every seat; return when the session budget is used and all have ended."""
        await asyncio.gather(*(self._seat(seat) for seat in range(1, self._opts.subjects + 1)))

    async def _seat(self, seat: int) -> None:
        devices = seat_devices(seat, self._opts.devices)
        clock = self._agent.clock
        while True:
            active = [
                r for r in self._agent.sessions.values() if set(r.record.devices) & set(devices)
            ]
            if active:
                while not all(r.finished for r in active):
                    await asyncio.sleep(0.05)
                self.counters.ended += len(active)
                await clock.sleep_until(clock.now() + self._opts.break_s)
                continue
            if not self._budget_left():
                return
            protocol_id = self._opts.protocols[self.counters.started % len(self._opts.protocols)]
            protocol = self._agent.protocols[protocol_id]
            before = int(self._rng.integers(3, 9))
            try:
                self._agent.start_session(
                    protocol_id,
                    devices,
                    subject=self.counters.seats[seat],
                    rating_before=before,
                    script=self._script(protocol, before),
                )
            except SessionError as exc:
                self.counters.refused += 1
                log.error("seat %d: cannot start a session: %s", seat, exc)
                await clock.sleep_until(clock.now() + self._opts.break_s)
                continue
            self.counters.started += 1

    def _script(self, protocol: ProtocolDefinition, before: int) -> list[ScriptedAction]:
        rng = self._rng
        marker = None
        if rng.random() < 0.5:
            marker = (
                float(rng.uniform(0.1, 0.9)),
                str(rng.choice(["movement", "talking", "cough"])),
            )
        return staff_script(
            protocol,
            marker=marker,
            note=str(rng.choice(_NOTES)),
            rating_after=max(0, before - int(rng.integers(0, 4))),
        )


def staff_script(
    protocol: ProtocolDefinition,
    *,
    marker: tuple[float, str] | None,
    note: str,
    rating_after: int,
) -> list[ScriptedAction]:
    """What simulated staff do in a session: an optional marker at a fraction of the protocol,
    VR scene start/end events for every VR phase, then a note and the after-rating at the end."""
    total = protocol.total_s
    script: list[ScriptedAction] = []
    if marker is not None:
        script.append(
            ScriptedAction(at_s=round(marker[0] * total, 1), kind="marker", label=marker[1])
        )
    for start, phase in zip(protocol.phase_starts_s(), protocol.phases, strict=True):
        if phase.vr_scene is not None:
            script += [
                ScriptedAction(
                    at_s=start + 1.0, kind="vr_event", scene=phase.vr_scene, label="scene_start"
                ),
                ScriptedAction(
                    at_s=start + phase.duration_s - 1.0,
                    kind="vr_event",
                    scene=phase.vr_scene,
                    label="scene_end",
                ),
            ]
    script.append(ScriptedAction(at_s=total, kind="note", text=note))
    script.append(ScriptedAction(at_s=total, kind="rating", when="after", value=rating_after))
    return script


def summary(agent: Agent, staff: SimStaff) -> dict[str, int]:
    """Counters of a run, as printed at the end (and read by the integration tests)."""
    injected: dict[str, int] = {}
    for source in agent.sources:
        for key, value in getattr(source, "injected", {}).items():
            injected[key] = injected.get(key, 0) + value
    stats = agent.outbox.stats()
    duplicates = sum(n for (_, kind), n in agent.decoder.counters.items() if kind == "duplicate")
    return {
        "sessions_started": staff.counters.started,
        "sessions_ended": staff.counters.ended,
        "parse_failures": agent.decoder.failures(),
        "garbage_injected": injected.get("garbage", 0),
        "duplicates_injected": injected.get("duplicate", 0),
        "duplicates_dropped": duplicates,
        "link_losses_injected": injected.get("link_loss", 0),
        "outbox_backlog": stats.backlog,
        "outbox_dropped": stats.dropped,
        "published": agent.publisher.counters.published if agent.publisher else 0,
        "broker_connects": agent.publisher.counters.connects if agent.publisher else 0,
    }


async def run_sim_station(
    opts: SimStationOptions,
    *,
    progress: Callable[[str], None] = print,
    progress_every_s: float = 2.0,
    drain_s: float = 60.0,
) -> dict[str, int]:
    """Run the simulated station until its session budget is used (or until cancelled);
    return the summary counters."""
    resolved = check_settings(sim_station_settings(opts))
    missing = [p for p in opts.protocols if p not in resolved.protocols]
    if missing:
        raise SettingsError(
            f"unknown protocol {', '.join(missing)}; known: {', '.join(sorted(resolved.protocols))}"
        )
    agent = build_agent(resolved)
    seed = opts.seed if opts.seed is not None else int.from_bytes(os.urandom(8), "little")
    staff = SimStaff(agent, opts, np.random.default_rng([seed, 1]))
    progress(
        f"[sim] station {opts.station}: {opts.subjects} participant(s), devices "
        f"{', '.join(opts.devices)}, protocols {', '.join(opts.protocols)}, "
        f"time ×{opts.time_scale:g}, "
        f"sessions {opts.sessions if opts.sessions is not None else 'until interrupted'}, "
        f"data {opts.data_dir}"
    )
    main = asyncio.get_running_loop().create_task(agent.run())
    finished = False
    try:
        await agent.started.wait()
        staff_task = asyncio.get_running_loop().create_task(staff.run())
        last = time.monotonic()
        while not staff_task.done():
            await asyncio.wait({staff_task, main}, timeout=0.2)
            if main.done():
                break
            if time.monotonic() - last >= progress_every_s:
                last = time.monotonic()
                progress(_progress_line(agent, staff))
        finished = staff_task.done() and not staff_task.cancelled()
        if finished:
            staff_task.result()
            await _drain(agent, drain_s)
    finally:
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        result = summary(agent, staff)
        agent.close()
        progress(("[sim] done " if finished else "[sim] stopped ") + json.dumps(result))
    return result


async def _drain(agent: Agent, drain_s: float) -> None:
    deadline = time.monotonic() + drain_s
    while agent.outbox.stats().backlog and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _progress_line(agent: Agent, staff: SimStaff) -> str:
    stats = agent.outbox.stats()
    published = agent.publisher.counters.published if agent.publisher else 0
    connected = bool(agent.publisher and agent.publisher.connected.is_set())
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(agent.clock.now()))
    return (
        f"[sim] {now}Z sessions {staff.counters.ended}/{staff.counters.started} ended/started, "
        f"{len(agent.sessions)} running · outbox {stats.backlog} waiting, {published} published "
        f"({'connected' if connected else 'broker unreachable'}) · "
        f"parse failures {agent.decoder.failures()}"
    )
