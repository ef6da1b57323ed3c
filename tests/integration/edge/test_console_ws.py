"""The console on a real uvicorn server in the agent's loop: a VR client on ``/ws/vr`` receives
the documented live messages at the documented pace, and its posted events reach the session."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from shuxin.contract.codec import decode
from shuxin.contract.messages import EventsMessage
from shuxin.edge.agent import build_agent
from shuxin.edge.clock import ManualClock
from shuxin.edge.console import FEED_INTERVAL_S, VR_PROTOCOL_VERSION, ConsoleServer
from shuxin.edge.settings import build_settings, check_settings

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0
LIVE_FIELDS = {
    "type",
    "v",
    "t",
    "session_id",
    "hr_bpm",
    "coherence",
    "pacer",
    "phase",
    "phase_kind",
    "vr_scene",
    "phase_remaining_s",
}
PACER_FIELDS = {"breath", "progress", "cycle_fraction", "bpm", "inhale_s", "exhale_s"}


def test_vr_client_over_a_real_server(tmp_path: Path) -> None:
    settings = build_settings(
        station="st-a",
        broker={"url": "mqtt://127.0.0.1:1"},
        data_dir=tmp_path / "data",
        seed=7,
        devices=[{"id": "sim-h10-1", "profile": "polar_h10", "sim": {"subject": 1}}],
    )
    clock = ManualClock(T0, auto_advance=False)
    agent = build_agent(check_settings(settings), clock=clock, connect=False)
    server = ConsoleServer(agent, "127.0.0.1", 0)  # port 0: a free port, read back once bound
    received: list[dict[str, Any]] = []

    async def drive() -> None:  # about 100x virtual time, in 0.2 s steps
        while True:
            clock.advance(0.2)
            await asyncio.sleep(0.002)

    async def main() -> float:
        agent_task = asyncio.create_task(agent.run())
        serve_task = asyncio.create_task(server.serve())
        driver = asyncio.create_task(drive())
        await agent.started.wait()
        while not server.started:
            assert not serve_task.done(), serve_task  # failed to start: show why
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            started = await client.post(
                "/api/sessions",
                json={
                    "subject": "S-4QX9T",
                    "protocol": "rest-resonance-recovery",
                    "devices": ["sim-h10-1"],
                },
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]
            while clock.now() < T0 + 330.0:  # past the 300 s rest, into paced breathing
                await asyncio.sleep(0.01)
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/vr") as ws:
                first = time.monotonic()
                for _ in range(8):
                    received.append(json.loads(await ws.recv()))
                elapsed = time.monotonic() - first
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/live") as ws:
                staff = json.loads(await ws.recv())
            assert staff["type"] == "status"
            assert [s["subject"] for s in staff["sessions"]] == ["S-4QX9T"]
            posted = await client.post(
                "/api/vr/events",
                json={"v": 1, "session_id": session_id, "scene": "lake", "label": "scene_start"},
            )
            assert posted.status_code == 202, posted.text
            stopped = await client.post(f"/api/sessions/{session_id}/stop")
            assert stopped.status_code == 200
        driver.cancel()
        serve_task.cancel()
        agent_task.cancel()
        await asyncio.gather(driver, serve_task, agent_task, return_exceptions=True)
        return elapsed

    elapsed = asyncio.run(main())
    # The feed sleeps FEED_INTERVAL_S between messages and asyncio never wakes early, so 8
    # messages span at least 7 intervals (minus 10 ms for the first recv's own latency). This
    # is a lower bound on the pace, not a speed test: a slow machine can only make it longer.
    assert elapsed >= 7 * FEED_INTERVAL_S - 0.01
    for message in received:
        assert set(message) == LIVE_FIELDS
        assert message["type"] == "live"
        assert message["v"] == VR_PROTOCOL_VERSION
        assert message["phase_kind"] == "training"
        assert message["coherence"] in (None, "low", "medium", "high")
        assert set(message["pacer"]) == PACER_FIELDS
        assert message["pacer"]["breath"] in ("inhale", "exhale")
        assert 0.0 <= message["pacer"]["progress"] <= 1.0
    # HR comes from simulated beats; 40-140 bpm is a generous physiological range.
    assert all(40.0 <= m["hr_bpm"] <= 140.0 for m in received if m["hr_bpm"] is not None)
    assert any(m["hr_bpm"] is not None for m in received)
    events = [
        e
        for item in agent.outbox.pending(limit=100_000)
        for m in [decode(item.topic, item.payload)[1]]
        if isinstance(m, EventsMessage)
        for e in m.events
    ]
    vr = [(e.scene, e.label) for e in events if e.kind == "vr_event"]
    assert vr == [("lake", "scene_start")]
    assert agent.sessions == {}
    agent.close()
