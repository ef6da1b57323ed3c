"""The session runner: time line, pacer, staff actions, abort, and crash-safe resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shuxin.contract.codec import decode
from shuxin.contract.messages import (
    ClockInfo,
    EventsMessage,
    LifecycleMessage,
    PhaseEvent,
    RatingEvent,
)
from shuxin.contract.topics import SessionTopic, Stream
from shuxin.edge.batcher import ContractWriter
from shuxin.edge.clock import ManualClock, to_datetime
from shuxin.edge.outbox import Outbox
from shuxin.edge.protocol import load_protocol
from shuxin.edge.session import (
    ScriptedAction,
    SessionError,
    SessionRecord,
    SessionRunner,
    SessionStore,
    new_session_record,
)

PROTOCOLS = Path(__file__).resolve().parents[3] / "firmware_configs" / "protocols"
STATION = "st-a"
T0 = 1_800_000_000.0


def _messages(outbox: Outbox) -> list[tuple[SessionTopic, Any]]:
    out = []
    for item in outbox.pending(limit=100_000):
        topic, message = decode(item.topic, item.payload)  # every message is schema-valid
        assert isinstance(topic, SessionTopic)
        assert message.seq == item.seq  # type: ignore[union-attr]
        out.append((topic, message))
    return out


def _events(outbox: Outbox) -> list[Any]:
    return [e for _, m in _messages(outbox) if isinstance(m, EventsMessage) for e in m.events]


def _setup(tmp_path: Path, clock: ManualClock) -> tuple[Outbox, ContractWriter, SessionStore]:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    writer = ContractWriter(outbox, STATION, clock, ClockInfo(offset_ms=0.0, source="none"))
    return outbox, writer, SessionStore(tmp_path / "sessions")


def _record(
    clock: ManualClock, protocol_id: str = "rest-resonance-recovery", **kw: Any
) -> SessionRecord:
    return new_session_record(
        station=STATION,
        protocol=load_protocol(PROTOCOLS / f"{protocol_id}.yaml"),
        devices=["h10-1", "gsr-1"],
        now=clock.now(),
        rng=np.random.default_rng(7),
        **kw,
    )


def test_a_whole_session_follows_the_protocol(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    outbox, writer, store = _setup(tmp_path, clock)
    ends: list[float] = []
    record = _record(
        clock,
        rating_before=6,
        script=[
            ScriptedAction(at_s=450, kind="marker", label="movement"),
            ScriptedAction(at_s=1200, kind="rating", when="after", value=3),
        ],
    )
    runner = SessionRunner(record, writer, store, before_end=ends.append)
    runner.start(clock.now())
    asyncio.run(runner.run(clock))

    assert runner.finished
    assert record.status == "ended"
    assert ends == [T0 + 1200]
    messages = _messages(outbox)
    lifecycle = [m for _, m in messages if isinstance(m, LifecycleMessage)]
    assert [m.event for m in lifecycle] == ["start", "end"]
    assert lifecycle[0].subject == record.subject
    assert lifecycle[0].subject.startswith("S-")
    assert [p.name for p in lifecycle[0].phases] == ["baseline", "resonance", "recovery"]
    assert lifecycle[1].ended_at is not None
    assert lifecycle[1].ended_at.timestamp() == T0 + 1200

    events = _events(outbox)
    kinds = [(e.kind, getattr(e, "phase", None)) for e in events]
    assert kinds == [
        ("phase_start", "baseline"),
        ("rating", None),
        ("phase_end", "baseline"),
        ("phase_start", "resonance"),
        ("marker", None),
        ("phase_end", "resonance"),
        ("phase_start", "recovery"),
        ("phase_end", "recovery"),
        ("rating", None),
    ]
    # Phase events carry their scheduled times, whatever the loop's timing.
    phase_times = [e.t.timestamp() - T0 for e in events if isinstance(e, PhaseEvent)]
    assert phase_times == [0, 300, 300, 900, 900, 1200]
    ratings = [(e.when, e.value) for e in events if isinstance(e, RatingEvent)]
    assert ratings == [("before", 6), ("after", 3)]
    # seq counts each topic from 0 without gaps.
    by_topic: dict[str, list[int]] = {}
    for topic, m in messages:
        by_topic.setdefault(str(topic), []).append(m.seq)
    assert all(seqs == list(range(len(seqs))) for seqs in by_topic.values())
    outbox.close()


def test_pacer_and_position_follow_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    outbox, writer, store = _setup(tmp_path, clock)
    runner = SessionRunner(_record(clock), writer, store)
    assert runner.pacer(T0 + 100) is None  # baseline: spontaneous breathing
    state = runner.pacer(T0 + 300 + 2.0)  # 2 s into the 6/min phase, inhale lasts 4 s
    assert state is not None
    assert state.breath == "inhale"
    assert state.progress == pytest.approx(0.5, abs=0.01)  # ratio 0.667 gives 4.0 s in
    exhale = runner.pacer(T0 + 300 + 7.0)
    assert exhale is not None
    assert exhale.breath == "exhale"
    where = runner.position(T0 + 1000)
    assert where is not None
    assert where.phase.id == "recovery"
    outbox.close()


def test_staff_actions_and_abort(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    outbox, writer, store = _setup(tmp_path, clock)
    runner = SessionRunner(_record(clock, "vr-relaxation"), writer, store)
    runner.start(clock.now())
    clock.advance(400)
    runner.advance(clock.now())
    runner.vr_event("forest-stream", "scene_loaded", clock.now())
    runner.note("参与者情绪平稳", clock.now())
    with pytest.raises(SessionError, match="6 or more digits"):
        runner.note("工号 123456", clock.now())
    with pytest.raises(SessionError, match="less than or equal to 10"):
        runner.rate("after", 11, clock.now())
    runner.abort("staff_stopped", clock.now())
    assert runner.finished
    assert runner.record.status == "aborted"
    events = _events(outbox)
    assert [e.kind for e in events] == [
        "phase_start",
        "phase_end",
        "phase_start",
        "vr_event",
        "note",
        "phase_end",
    ]
    assert events[-1].phase == "vr-scene"
    assert events[-1].t.timestamp() == T0 + 400
    lifecycle = [m for _, m in _messages(outbox) if isinstance(m, LifecycleMessage)]
    assert [(m.event, m.reason) for m in lifecycle] == [("start", None), ("abort", "staff_stopped")]
    with pytest.raises(SessionError, match="ended"):
        runner.marker("late", clock.now())
    outbox.close()


def test_subject_must_be_a_pseudonymous_code(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with pytest.raises(SessionError, match="subject"):
        _record(clock, subject="Zhang San")
    with pytest.raises(SessionError, match="subject"):
        _record(clock, subject="S-123456")  # an employee-number-like code


def test_manual_end_waits_for_staff(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    outbox, writer, store = _setup(tmp_path, clock)
    runner = SessionRunner(_record(clock, "rest-only", auto_end=False), writer, store)
    runner.start(clock.now())
    clock.advance(400)
    runner.advance(clock.now())
    assert runner.record.status == "awaiting_end"
    assert not runner.finished
    runner.end(clock.now())
    lifecycle = [m for _, m in _messages(outbox) if isinstance(m, LifecycleMessage)]
    assert lifecycle[-1].event == "end"
    assert lifecycle[-1].ended_at is not None
    assert lifecycle[-1].ended_at.timestamp() == T0 + 400
    outbox.close()


@pytest.mark.parametrize("crash_after_enqueue", [False, True])
def test_resume_neither_loses_nor_repeats_a_step(tmp_path: Path, crash_after_enqueue: bool) -> None:
    """A crash between the write-ahead note and the cursor update, on either side of the
    enqueue: the resumed runner emits the step exactly once."""
    clock = ManualClock(T0)
    outbox, writer, store = _setup(tmp_path, clock)
    record = _record(clock)
    runner = SessionRunner(record, writer, store)
    runner.start(clock.now())  # phase_start baseline at 0

    # Simulate the crash at the 300 s boundary: the record says "about to emit", and the
    # events message was (or was not) stored.
    record.pending_target = record.cursor + 2  # phase_end baseline + phase_start resonance
    record.pending_events_seq = writer.next_seq(record.session_id, Stream.EVENTS)
    record.last_alive = T0 + 290
    store.save(record)
    if crash_after_enqueue:
        step = [
            PhaseEvent(t=to_datetime(T0 + 300), kind="phase_end", phase="baseline", index=0),
            PhaseEvent(t=to_datetime(T0 + 300), kind="phase_start", phase="resonance", index=1),
        ]
        writer.session_message(record.session_id, Stream.EVENTS, {"events": step})

    clock.t = T0 + 320
    (loaded,) = store.load_unfinished()
    resumed = SessionRunner(loaded, writer, store)
    resumed.resume(clock.now())
    clock.t = T0 + 1300
    resumed.advance(clock.now())

    events = _events(outbox)
    phases = [(e.kind, e.phase) for e in events if isinstance(e, PhaseEvent)]
    assert phases == [
        ("phase_start", "baseline"),
        ("phase_end", "baseline"),
        ("phase_start", "resonance"),
        ("phase_end", "resonance"),
        ("phase_start", "recovery"),
        ("phase_end", "recovery"),
    ]
    gaps = [e for e in events if e.kind == "gap"]
    assert {g.device for g in gaps} == {"h10-1", "gsr-1"}
    assert all(g.start.timestamp() == T0 + 290 and g.end.timestamp() == T0 + 320 for g in gaps)
    lifecycle = [m.event for _, m in _messages(outbox) if isinstance(m, LifecycleMessage)]
    assert lifecycle == ["start", "end"]  # the start is not repeated on resume
    assert store.load_unfinished() == []
    outbox.close()


def test_resume_after_the_end_was_stored_does_nothing(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    outbox, writer, store = _setup(tmp_path, clock)
    record = _record(clock, "rest-only")
    runner = SessionRunner(record, writer, store)
    runner.start(clock.now())
    clock.advance(300)
    runner.advance(clock.now())
    before = len(outbox.pending(limit=1000))
    record.status = "running"  # the crash happened before the record said "ended"
    store.save(record)
    (loaded,) = store.load_unfinished()
    SessionRunner(loaded, writer, store).resume(clock.now() + 50)
    assert len(outbox.pending(limit=1000)) == before
    assert store.load_unfinished() == []
    outbox.close()
