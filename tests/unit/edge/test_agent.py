"""The composition root in one process, on virtual time, without a broker: a session of
simulated devices becomes a complete, schema-valid set of messages in the outbox; device status
is retained state; a restart resumes the session from the data directory."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shuxin.contract.codec import decode
from shuxin.contract.messages import DeviceStatus, EventsMessage, LifecycleMessage, MetricsMessage
from shuxin.edge.agent import Agent, build_agent
from shuxin.edge.clock import ManualClock
from shuxin.edge.session import SessionError
from shuxin.edge.settings import build_settings, check_settings
from shuxin.edge.source_replay import ReplaySource, read_header

T0 = 1_800_000_000.0


def _agent(tmp_path: Path, clock: ManualClock, **extra: Any) -> Agent:
    settings = build_settings(
        station="st-a",
        broker={"url": "mqtt://127.0.0.1:1"},
        data_dir=tmp_path / "data",
        seed=3,
        devices=[
            {"id": "sim-h10-1", "profile": "polar_h10", "sim": {"subject": 1}},
            {"id": "sim-gsr-1", "profile": "shuxin_gsr", "sim": {"subject": 1}},
        ],
        **extra,
    )
    return build_agent(check_settings(settings), clock=clock, connect=False)


async def _drive(clock: ManualClock, seconds: float, step: float = 0.1) -> None:
    end = clock.now() + seconds
    while clock.now() < end:
        clock.advance(step)
        await asyncio.sleep(0)


def _messages(agent: Agent) -> list[tuple[str, Any]]:
    return [
        (item.topic, decode(item.topic, item.payload)[1])
        for item in agent.outbox.pending(limit=100_000)
    ]


def test_a_session_end_to_end_into_the_outbox(tmp_path: Path) -> None:
    clock = ManualClock(T0, auto_advance=False)
    agent = _agent(tmp_path, clock, record=True)

    async def main() -> None:
        task = asyncio.create_task(agent.run())
        await agent.started.wait()
        await _drive(clock, 2.0)
        runner = agent.start_session("rest-only", ["sim-h10-1", "sim-gsr-1"], rating_before=5)
        with pytest.raises(SessionError, match="not available: sim-h10-1"):
            agent.start_session("rest-only", ["sim-h10-1"])
        with pytest.raises(SessionError, match="unknown protocol"):
            agent.start_session("nap", ["sim-gsr-1"])
        await _drive(clock, 310.0)
        assert runner.finished
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    messages = _messages(agent)
    kinds = Counter(type(m).__name__ for _, m in messages)
    # 300 s session. A batch closes when the next value is >= 1 s after its first, so with one
    # beat every ~0.9 s a batch holds 1-2 beats: at least 300 s / 2 s = 150 rr and hr batches.
    # EDA at 8 Hz, 4 samples a frame: exactly one batch per second. Metrics every 5 s.
    assert kinds["RrMessage"] >= 150
    assert kinds["HrMessage"] == kinds["RrMessage"]
    assert kinds["EdaMessage"] == pytest.approx(300, abs=2)
    assert kinds["MetricsMessage"] == pytest.approx(60, abs=2)
    assert kinds["EcgMessage"] == 0  # raw ECG stays on the edge unless upload_raw is set
    lifecycle = [m for _, m in messages if isinstance(m, LifecycleMessage)]
    assert [m.event for m in lifecycle] == ["start", "end"]
    events = [e.kind for _, m in messages if isinstance(m, EventsMessage) for e in m.events]
    assert events == ["phase_start", "rating", "phase_end"]
    statuses = [m for _, m in messages if isinstance(m, DeviceStatus)]
    assert {s.device for s in statuses} == {"sim-h10-1", "sim-gsr-1"}
    assert all(s.connected and s.battery_pct is not None for s in statuses)
    metrics = [m for _, m in messages if isinstance(m, MetricsMessage)]
    assert {"hr_bpm", "rmssd_ms", "eda_scl_us"} <= set(metrics[-1].values)
    by_topic: dict[str, list[int]] = {}
    for item in agent.outbox.pending(limit=100_000):
        if item.seq is not None:
            by_topic.setdefault(item.topic, []).append(item.seq)
    assert all(seqs == list(range(len(seqs))) for seqs in by_topic.values())
    # Shutdown marked the station offline (retained state, sent at the next connection).
    assert any(t == "shuxin/v1/st-a/status" for t, _ in messages)
    # Recording was on: the notifications went to a JSON-lines file.
    (recording,) = (tmp_path / "data" / "recordings").glob("*.jsonl")
    assert read_header(recording)["devices"] == {
        "sim-h10-1": "polar_h10",
        "sim-gsr-1": "shuxin_gsr",
    }
    replay = ReplaySource(recording, ManualClock(T0), pace=False)
    assert {d.device_id for d in replay.devices} == {"sim-h10-1", "sim-gsr-1"}
    agent.close()


def test_a_stopped_agent_resumes_its_session(tmp_path: Path) -> None:
    clock = ManualClock(T0, auto_advance=False)
    first = _agent(tmp_path, clock)

    async def part_one() -> str:
        task = asyncio.create_task(first.run())
        await first.started.wait()
        runner = first.start_session("rest-only", ["sim-h10-1", "sim-gsr-1"])
        await _drive(clock, 100.0)
        task.cancel()  # the station is switched off mid-session
        await asyncio.gather(task, return_exceptions=True)
        return runner.session_id

    session_id = asyncio.run(part_one())
    first.close()
    clock.advance(20.0)  # off for 20 s
    second = _agent(tmp_path, clock)

    async def part_two() -> None:
        task = asyncio.create_task(second.run())
        await second.started.wait()
        assert set(second.sessions) == {session_id}
        await _drive(clock, 200.0)
        assert second.sessions == {}
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(part_two())
    messages = _messages(second)
    lifecycle = [m.event for _, m in messages if isinstance(m, LifecycleMessage)]
    assert lifecycle == ["start", "end"]
    gaps = [
        e for _, m in messages if isinstance(m, EventsMessage) for e in m.events if e.kind == "gap"
    ]
    assert {g.device for g in gaps} == {"sim-h10-1", "sim-gsr-1"}
    # The gap covers the time the agent was off (from its last save, at most 5 s earlier).
    for gap in gaps:
        assert gap.end.timestamp() - gap.start.timestamp() == pytest.approx(20.0, abs=5.5)
    assert second.counters.sessions_resumed == 1
    second.close()
