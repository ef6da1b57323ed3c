"""The session runner: one participant following one protocol, as contract messages.

A session has a pseudonymous subject code (``shuxin.contract.ids``), a protocol and its version,
the devices it records, and a time line computed from the protocol: ``phase_start`` /
``phase_end`` at each boundary, scripted staff actions (ratings, markers, VR events, notes — the
simulated station schedules these; a real console calls :meth:`SessionRunner.marker` and
friends directly), and the lifecycle ``end`` when the last phase is over. The runner emits, via
:class:`~shuxin.edge.batcher.ContractWriter`: lifecycle ``start`` / ``end`` / ``abort``, and
``events``. Phase events carry their *scheduled* times, so they do not depend on when the loop
happened to wake.

Crash safety. The session record is saved as JSON in the agent's data directory
(:class:`SessionStore`). Before a time-line step is enqueued, the record notes the events
topic's next ``seq``; on restart, :meth:`SessionRunner.resume` compares it with the outbox to
learn whether that step reached the outbox, so no step is lost or sent twice. Whether the
lifecycle start/end were stored is read from the lifecycle topic's ``seq``. Data missing while
the agent was down is reported as a ``gap`` event per device.

The pacer (:meth:`SessionRunner.pacer`) and phase position are pure functions of time. Time
comes from an injected :class:`~shuxin.edge.clock.Clock`. This module must not talk to devices
or to MQTT, and never writes a subject's name anywhere: only the code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shuxin.contract.ids import (
    DeviceId,
    FreeText,
    Label,
    SessionId,
    StationId,
    SubjectCode,
    new_subject_code,
)
from shuxin.contract.messages import (
    Event,
    GapEvent,
    MarkerEvent,
    NoteEvent,
    PhaseEvent,
    RatingEvent,
    VrEvent,
)
from shuxin.contract.topics import Stream
from shuxin.edge.batcher import ContractWriter
from shuxin.edge.clock import Clock, to_datetime
from shuxin.edge.errors import EdgeError
from shuxin.edge.protocol import PacerState, PhasePosition, ProtocolDefinition, pacer_at

log = logging.getLogger(__name__)

SessionStatus = Literal["running", "awaiting_end", "ended", "aborted"]
_RANK_PHASE_END: Final = 0
_RANK_PHASE_START: Final = 1
_RANK_SCRIPT: Final = 2
_RANK_END: Final = 3


class SessionError(EdgeError):
    """A session request that cannot be honoured (bad rating, a note with an ID number…)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScriptedAction(_Model):
    """A staff action scheduled ``at_s`` seconds after the session start."""

    at_s: Annotated[float, Field(ge=0)]
    kind: Literal["marker", "vr_event", "note", "rating"]
    label: Label | None = None
    scene: Label | None = None
    text: FreeText | None = None
    when: Literal["before", "after"] | None = None
    value: Annotated[int, Field(ge=0, le=10)] | None = None


class SessionRecord(_Model):
    """Everything needed to run — or resume — a session; saved as JSON in the data dir."""

    session_id: SessionId
    station: StationId
    subject: SubjectCode
    protocol: ProtocolDefinition
    devices: list[DeviceId] = Field(max_length=8)
    started_at: float
    auto_end: bool = True
    script: list[ScriptedAction] = Field(default_factory=list)
    status: SessionStatus = "running"
    cursor: int = 0
    pending_target: int | None = None
    pending_events_seq: int | None = None
    last_alive: float = 0.0
    ended_at: float | None = None

    @property
    def ends_at(self) -> float:
        """Planned end (station time)."""
        return self.started_at + self.protocol.total_s


def new_session_id(station: str, now: float, rng: np.random.Generator) -> str:
    """``<station>-<yyyymmdd>-<hhmmss>-<4 hex>``: unique, sortable, and free of subject data."""
    stamp = to_datetime(now).strftime("%Y%m%d-%H%M%S")
    suffix = "".join(f"{int(b):x}" for b in rng.integers(0, 16, size=4))
    return f"{station}-{stamp}-{suffix}"


def new_session_record(
    *,
    station: str,
    protocol: ProtocolDefinition,
    devices: Sequence[str],
    now: float,
    rng: np.random.Generator,
    subject: str | None = None,
    rating_before: int | None = None,
    script: Sequence[ScriptedAction] = (),
    auto_end: bool = True,
) -> SessionRecord:
    """A new session record (validated). ``subject=None`` draws a fresh pseudonymous code.

    Raises
    ------
    SessionError
        A subject that is not a pseudonymous code, a rating outside 0-10, more than 8 devices.
    """
    try:
        actions = list(script)
        if rating_before is not None:
            actions.insert(
                0, ScriptedAction(at_s=0.0, kind="rating", when="before", value=rating_before)
            )
        return SessionRecord(
            session_id=new_session_id(station, now, rng),
            station=station,
            subject=subject if subject is not None else new_subject_code(rng),
            protocol=protocol,
            devices=list(devices),
            started_at=now,
            auto_end=auto_end,
            script=[ScriptedAction.model_validate(a.model_dump()) for a in actions],
            last_alive=now,
        )
    except ValidationError as exc:
        raise SessionError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {str(err['msg']).removeprefix('Value error, ')}"


class SessionStore:
    """Session records as JSON files in ``<data>/sessions/`` (atomic replace on save)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, session_id: str) -> Path:
        """Where one record lives."""
        return self.directory / f"{session_id}.json"

    def save(self, record: SessionRecord) -> None:
        """Write the record (tmp file + ``os.replace``: a crash leaves the old or the new)."""
        target = self.path(record.session_id)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(record.model_dump_json(), encoding="utf-8")
        os.replace(tmp, target)

    def load_all(self) -> list[SessionRecord]:
        """Every readable record, oldest start first; unreadable files are logged and skipped."""
        records = []
        for file in sorted(self.directory.glob("*.json")):
            try:
                records.append(SessionRecord.model_validate_json(file.read_bytes()))
            except (OSError, ValidationError, json.JSONDecodeError) as exc:
                log.error(
                    "skipping unreadable session record %s (%s)", file.name, type(exc).__name__
                )
        return sorted(records, key=lambda r: r.started_at)

    def load_unfinished(self) -> list[SessionRecord]:
        """Records of sessions that were running when the agent stopped."""
        return [r for r in self.load_all() if r.status in ("running", "awaiting_end")]


@dataclass(frozen=True, slots=True)
class _Item:
    t_rel: float
    rank: int
    kind: Literal["phase_start", "phase_end", "action", "end"]
    index: int = 0
    action: ScriptedAction | None = None


def _timeline(record: SessionRecord) -> list[_Item]:
    items: list[_Item] = []
    for index, (start, phase) in enumerate(
        zip(record.protocol.phase_starts_s(), record.protocol.phases, strict=True)
    ):
        items.append(_Item(start, _RANK_PHASE_START, "phase_start", index))
        items.append(_Item(start + phase.duration_s, _RANK_PHASE_END, "phase_end", index))
    items += [_Item(a.at_s, _RANK_SCRIPT, "action", action=a) for a in record.script]
    if record.auto_end:
        items.append(_Item(record.protocol.total_s, _RANK_END, "end"))
    # Stable sort: phase_end of one phase before phase_start of the next, actions after.
    return sorted(items, key=lambda i: (i.t_rel, i.rank))


class SessionRunner:
    """Runs one session's time line and writes its lifecycle and events messages.

    Parameters
    ----------
    record
        The session (new, or loaded to resume).
    writer
        Builds and stores contract messages.
    store
        Where the record is saved after every step.
    before_end
        Called with the end time just before the lifecycle ``end``/``abort`` is written, so
        the agent can flush the session's data batches first.
    """

    def __init__(
        self,
        record: SessionRecord,
        writer: ContractWriter,
        store: SessionStore,
        *,
        before_end: Callable[[float], None] | None = None,
    ) -> None:
        self.record = record
        self._writer = writer
        self._store = store
        self._before_end = before_end
        self._timeline = _timeline(record)
        self._wake = asyncio.Event()
        #: ``invalid_action`` (a scripted action the contract refused; skipped).
        self.skipped = 0

    # --- properties -------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        """The session id (topic component)."""
        return self.record.session_id

    @property
    def finished(self) -> bool:
        """True once the lifecycle end or abort is stored."""
        return self.record.status in ("ended", "aborted")

    def next_due(self) -> float | None:
        """Station time of the next time-line step; None when nothing is scheduled."""
        if self.finished or self.record.cursor >= len(self._timeline):
            return None
        return self.record.started_at + self._timeline[self.record.cursor].t_rel

    def position(self, now: float) -> PhasePosition | None:
        """Where the protocol is at ``now`` (None before the start or after the last phase)."""
        return self.record.protocol.phase_at(now - self.record.started_at)

    def pacer(self, now: float) -> PacerState | None:
        """The breathing pacer at ``now``, or None outside paced phases."""
        where = self.position(now)
        if where is None or where.phase.pacer_bpm is None:
            return None
        ratio = where.phase.inhale_exhale_ratio or 1.0
        return pacer_at(where.phase.pacer_bpm, ratio, where.elapsed_s)

    # --- running ----------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Store the lifecycle ``start`` and emit every step due at ``now``."""
        self._store.save(self.record)
        if self._writer.next_seq(self.session_id, Stream.LIFECYCLE) == 0:
            self._lifecycle("start", None, None)
        self.advance(now)

    def resume(self, now: float) -> None:
        """Continue after an agent restart: reconcile with the outbox, report the gap."""
        record = self.record
        lifecycle_done = self._writer.next_seq(self.session_id, Stream.LIFECYCLE)
        if lifecycle_done >= 2:  # the end/abort reached the outbox before the crash
            record.status = "ended" if record.status != "aborted" else "aborted"
            record.pending_target = record.pending_events_seq = None
            self._store.save(record)
            return
        if lifecycle_done == 0:
            self._lifecycle("start", None, None)
        if record.pending_target is not None and record.pending_events_seq is not None:
            stored = self._writer.next_seq(self.session_id, Stream.EVENTS)
            if stored > record.pending_events_seq:
                record.cursor = record.pending_target
            record.pending_target = record.pending_events_seq = None
            self._store.save(record)
        gap_start = record.last_alive
        if now > gap_start:
            gaps: list[Event] = [
                GapEvent(
                    t=to_datetime(now),
                    kind="gap",
                    device=device,
                    start=to_datetime(gap_start),
                    end=to_datetime(now),
                    reason="link_lost",
                )
                for device in record.devices
            ]
            if gaps:
                self._writer.session_message(self.session_id, Stream.EVENTS, {"events": gaps})
        self.advance(now)

    def advance(self, now: float) -> None:
        """Emit every time-line step due at or before ``now`` (one events message per instant)."""
        record = self.record
        while not self.finished and record.cursor < len(self._timeline):
            first = self._timeline[record.cursor]
            if record.started_at + first.t_rel > now:
                break
            if first.kind == "end":
                self._end(record.started_at + first.t_rel, cursor_after=record.cursor + 1)
                break
            stop = record.cursor
            while (
                stop < len(self._timeline)
                and self._timeline[stop].t_rel == first.t_rel
                and self._timeline[stop].kind != "end"
            ):
                stop += 1
            events = [
                e for e in (self._event(i) for i in self._timeline[record.cursor : stop]) if e
            ]
            self._emit_step(events, stop)
        if not self.finished and record.cursor >= len(self._timeline):
            record.status = "awaiting_end"
        self.touch(now)

    def touch(self, now: float, *, every_s: float = 5.0) -> None:
        """Note that the agent was alive at ``now`` (saved at most every ``every_s``)."""
        if not self.finished and now - self.record.last_alive >= every_s:
            self.record.last_alive = now
            self._store.save(self.record)

    async def run(self, clock: Clock) -> None:
        """Follow the time line on ``clock`` until the session ends or is aborted."""
        while not self.finished:
            due = self.next_due()
            if due is None:
                self._wake.clear()
                await self._wake.wait()  # awaiting a manual end
                continue
            # Sleep until the next step, but wake at once when staff end or abort the session.
            self._wake.clear()
            sleeper = asyncio.ensure_future(clock.sleep_until(due))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()
            if not self.finished:
                self.advance(clock.now())

    # --- staff actions ----------------------------------------------------------------------

    def marker(self, label: str, now: float) -> None:
        """A staff marker (``movement``, ``talking`` …)."""
        self._immediate(lambda: MarkerEvent(t=to_datetime(now), kind="marker", label=label))

    def vr_event(self, scene: str, label: str, now: float) -> None:
        """An event posted by the VR client."""
        self._immediate(
            lambda: VrEvent(t=to_datetime(now), kind="vr_event", scene=scene, label=label)
        )

    def note(self, text: str, now: float) -> None:
        """A short staff note (never a name; numbers of 6+ digits are refused)."""
        self._immediate(lambda: NoteEvent(t=to_datetime(now), kind="note", text=text))

    def rate(self, when: Literal["before", "after"], value: int, now: float) -> None:
        """A self-rated tension 0-10 before or after the session."""
        self._immediate(
            lambda: RatingEvent(t=to_datetime(now), kind="rating", when=when, value=value)
        )

    def end(self, now: float) -> None:
        """End the session now (staff pressed stop after the protocol, or a manual session)."""
        if not self.finished:
            self._end(now, cursor_after=len(self._timeline))
            self._wake.set()

    def abort(self, reason: str, now: float) -> None:
        """Abort the session: close the open phase and store a lifecycle ``abort``."""
        if self.finished:
            return
        where = self.position(now)
        if where is not None and self.record.cursor < len(self._timeline):
            self._emit_step(
                [
                    PhaseEvent(
                        t=to_datetime(now),
                        kind="phase_end",
                        phase=where.phase.id,
                        index=where.index,
                    )
                ],
                self.record.cursor,
            )
        self._finish("abort", now, reason)
        self._wake.set()

    # --- internals --------------------------------------------------------------------------

    def _immediate(self, make: Callable[[], Event]) -> None:
        if self.finished:
            raise SessionError("the session has ended")
        try:
            event = make()
        except ValidationError as exc:
            raise SessionError(_first_error(exc)) from None
        self._writer.session_message(self.session_id, Stream.EVENTS, {"events": [event]})

    def _event(self, item: _Item) -> Event | None:
        t = to_datetime(self.record.started_at + item.t_rel)
        phases = self.record.protocol.phases
        if item.kind in ("phase_start", "phase_end"):
            return PhaseEvent(t=t, kind=item.kind, phase=phases[item.index].id, index=item.index)
        action = item.action
        assert action is not None
        try:
            return _action_event(action, t)
        except (ValidationError, ValueError):
            self.skipped += 1
            return None

    def _emit_step(self, events: list[Event], cursor_after: int) -> None:
        """Write-ahead: note the events seq, enqueue, then move the cursor."""
        record = self.record
        record.pending_target = cursor_after
        record.pending_events_seq = self._writer.next_seq(self.session_id, Stream.EVENTS)
        self._store.save(record)
        for start in range(0, len(events), 64):
            self._writer.session_message(
                self.session_id, Stream.EVENTS, {"events": events[start : start + 64]}
            )
        record.cursor = cursor_after
        record.pending_target = record.pending_events_seq = None
        self._store.save(record)

    def _end(self, t_end: float, *, cursor_after: int) -> None:
        self.record.cursor = cursor_after
        self._finish("end", t_end, None)

    def _finish(self, event: Literal["end", "abort"], t_end: float, reason: str | None) -> None:
        if self._before_end is not None:
            self._before_end(t_end)
        self._lifecycle(event, t_end, reason)
        self.record.status = "ended" if event == "end" else "aborted"
        self.record.ended_at = t_end
        self._store.save(self.record)

    def _lifecycle(
        self, event: Literal["start", "end", "abort"], ended_at: float | None, reason: str | None
    ) -> None:
        record = self.record
        fields: dict[str, Any] = {
            "event": event,
            "subject": record.subject,
            "protocol": record.protocol.ref(),
            "phases": record.protocol.plans() if event == "start" else [],
            "devices": list(record.devices),
            "started_at": to_datetime(record.started_at),
            "ended_at": None if ended_at is None else to_datetime(max(ended_at, record.started_at)),
            "reason": reason,
        }
        self._writer.session_message(record.session_id, Stream.LIFECYCLE, fields)


def _action_event(action: ScriptedAction, t: datetime) -> Event:
    if action.kind == "marker" and action.label:
        return MarkerEvent(t=t, kind="marker", label=action.label)
    if action.kind == "vr_event" and action.scene and action.label:
        return VrEvent(t=t, kind="vr_event", scene=action.scene, label=action.label)
    if action.kind == "note" and action.text:
        return NoteEvent(t=t, kind="note", text=action.text)
    if action.kind == "rating" and action.when and action.value is not None:
        return RatingEvent(t=t, kind="rating", when=action.when, value=action.value)
    raise ValueError(f"scripted {action.kind} is missing its fields")
