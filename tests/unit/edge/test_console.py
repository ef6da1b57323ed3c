"""The station console's HTTP API in process (httpx + ASGITransport), on virtual time with
simulated devices: a session started through the API runs, staff and VR actions become contract
events in the outbox, names are refused with a structured 422, and stop ends the session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from shuxin.contract.codec import decode
from shuxin.contract.messages import EventsMessage, LifecycleMessage
from shuxin.edge.agent import Agent, build_agent
from shuxin.edge.clock import ManualClock
from shuxin.edge.console import create_console_app, vr_message
from shuxin.edge.settings import build_settings, check_settings

T0 = 1_800_000_000.0
DEVICES = ["sim-h10-1", "sim-gsr-1"]


def _agent(tmp_path: Path, clock: ManualClock) -> Agent:
    settings = build_settings(
        station="st-a",
        broker={"url": "mqtt://127.0.0.1:1"},
        data_dir=tmp_path / "data",
        seed=5,
        devices=[
            {"id": "sim-h10-1", "profile": "polar_h10", "sim": {"subject": 1}},
            {"id": "sim-gsr-1", "profile": "shuxin_gsr", "sim": {"subject": 1}},
        ],
    )
    return build_agent(check_settings(settings), clock=clock, connect=False)


async def _drive(clock: ManualClock, seconds: float, step: float = 0.1) -> None:
    end = clock.now() + seconds
    while clock.now() < end:
        clock.advance(step)
        await asyncio.sleep(0)


def _messages(agent: Agent) -> list[Any]:
    return [decode(i.topic, i.payload)[1] for i in agent.outbox.pending(limit=100_000)]


def test_a_session_through_the_console_api(tmp_path: Path) -> None:
    clock = ManualClock(T0, auto_advance=False)
    agent = _agent(tmp_path, clock)
    app = create_console_app(agent)
    session_id = ""

    async def main() -> None:
        nonlocal session_id
        task = asyncio.create_task(agent.run())
        await agent.started.wait()
        await _drive(clock, 2.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert 'lang="zh-CN"' in page.text
            for asset in ("app.js", "style.css"):
                assert (await client.get(f"/static/{asset}")).status_code == 200
            protocols = (await client.get("/api/protocols")).json()
            assert "rest-resonance-recovery" in {p["id"] for p in protocols}

            for subject in ("Zhang Wei", "张伟", "S-12345678"):
                refused = await client.post(
                    "/api/sessions",
                    json={"subject": subject, "protocol": "rest-only", "devices": DEVICES},
                )
                assert refused.status_code == 422, subject
                body = refused.json()
                assert body["error"] == "validation"
                assert [f["field"] for f in body["fields"]] == ["subject"]
                assert "subject" in body["message"]
            unknown = await client.post(
                "/api/sessions",
                json={"subject": "S-7F3K2", "protocol": "nap", "devices": DEVICES},
            )
            assert unknown.status_code == 422
            assert unknown.json()["error"] == "session"
            assert "unknown protocol" in unknown.json()["message"]
            assert agent.sessions == {}

            started = await client.post(
                "/api/sessions",
                json={
                    "subject": "S-7F3K2",
                    "protocol": "rest-resonance-recovery",
                    "devices": DEVICES,
                    "rating_before": 6,
                },
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]
            assert set(agent.sessions) == {session_id}

            await _drive(clock, 320.0)  # into the paced breathing phase (rest is 300 s)
            status = (await client.get("/api/status")).json()
            (session,) = status["sessions"]
            assert session["subject"] == "S-7F3K2"
            assert session["phase"]["kind"] == "training"  # the paced phase
            assert session["pacer"]["breath"] in ("inhale", "exhale")
            assert 0.0 <= session["pacer"]["progress"] <= 1.0
            # Simulated HR lies in a physiological range; 40-140 bpm is generous on purpose.
            assert 40.0 <= session["live"]["hr_bpm"] <= 140.0
            assert session["live"]["eda_scl_us"] > 0.0
            assert {d["id"]: d["connected"] for d in status["devices"]} == dict.fromkeys(
                DEVICES, True
            )
            vr = vr_message(agent, agent.sessions[session_id])
            assert vr["type"] == "live"
            assert "subject" not in vr

            base = f"/api/sessions/{session_id}"
            assert (await client.post(f"{base}/marker", json={"label": "movement"})).is_success
            assert (await client.post(f"{base}/note", json={"text": "calm, talked"})).is_success
            bad_note = await client.post(f"{base}/note", json={"text": "id 12345678"})
            assert bad_note.status_code == 422
            bad_rating = await client.post(f"{base}/rating", json={"when": "after", "value": 11})
            assert bad_rating.status_code == 422
            posted = await client.post(
                "/api/vr/events", json={"v": 1, "scene": "forest", "label": "scene_start"}
            )
            assert posted.status_code == 202
            assert posted.json()["session_id"] == session_id
            await _drive(clock, 2.0)
            assert (
                await client.post(f"{base}/rating", json={"when": "after", "value": 3})
            ).is_success

            stopped = await client.post(f"{base}/stop")
            assert stopped.json()["status"] == "aborted"  # stopped before the protocol's end
            await _drive(clock, 2.0)
            assert agent.sessions == {}
            assert (await client.post(f"{base}/stop")).status_code == 404
            late = await client.post("/api/vr/events", json={"scene": "forest", "label": "x"})
            assert late.status_code == 409
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    messages = _messages(agent)
    events = [e for m in messages if isinstance(m, EventsMessage) for e in m.events]
    kinds = [e.kind for e in events]
    for kind in ("marker", "note", "vr_event"):
        assert kinds.count(kind) == 1, kind
    (vr_event,) = [e for e in events if e.kind == "vr_event"]
    assert (vr_event.scene, vr_event.label) == ("forest", "scene_start")
    ratings = [(e.when, e.value) for e in events if e.kind == "rating"]
    assert ratings == [("before", 6), ("after", 3)]
    lifecycle = [m for m in messages if isinstance(m, LifecycleMessage)]
    assert [m.event for m in lifecycle] == ["start", "abort"]
    assert lifecycle[-1].reason == "stopped_by_staff"
    assert all(m.subject == "S-7F3K2" for m in lifecycle)
    agent.close()


@pytest.mark.parametrize("port", [-1, 70000])
def test_console_settings_refuse_bad_ports(tmp_path: Path, port: int) -> None:
    from shuxin.edge.settings import SettingsError

    with pytest.raises(SettingsError, match="console"):
        build_settings(
            station="st-a",
            broker={"url": "mqtt://127.0.0.1:1"},
            data_dir=tmp_path,
            console={"enabled": True, "port": port},
        )
