"""The live station console and the VR feed: a small FastAPI app served by the agent process.

Staff on the station network open ``GET /`` (a zh-CN page with an English switch, static files
in ``console_static/``; no CDN, works with no central site). The page starts and stops sessions
(pseudonymous subject code, protocol, devices), records tension ratings, markers and short
notes, and follows ``/ws/live`` (about 4 Hz: live HR, RMSSD, coherence level, EDA level, the
breathing pacer, device status). VR clients follow ``/ws/vr`` (about 4 Hz: HR, coherence level,
pacer phase and progress — never the subject code) and post scene and event markers to
``POST /api/vr/events``; the protocol is documented in
``firmware_configs/vr_client_protocol.md``.

Operations endpoints on the same listener: ``GET /healthz`` (the process answers),
``GET /readyz`` (200 once the agent has started its sources and the outbox is readable; the
broker is reported but not required — a station works offline) and ``GET /metrics``
(Prometheus text format, read at scrape time from the agent's own counters by
:func:`edge_samples`: outbox backlog and drops, publisher connects and errors, BLE decode
errors, device links, sessions). Labels carry device ids and error kinds, never subject codes.

:func:`serve_console` runs uvicorn inside the agent's own event loop (no threads) and leaves
the process's signal handling to the agent. Every write goes through the agent's session
runners, so console actions become contract events in the outbox like any other.

This module must not parse sensor bytes, compute metrics, build contract payloads itself, or
accept names: subjects are pseudonymous codes (``S-XXXXX``) validated by the contract type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from shuxin.contract.ids import DeviceId, FreeText, Label, SubjectCode
from shuxin.edge.clock import to_datetime
from shuxin.edge.session import SessionError, SessionRunner
from shuxin.runtime.metrics import (
    CONTENT_TYPE,
    MetricSample,
    counter,
    gauge,
    new_registry,
    register_snapshot,
    render_latest,
)

if TYPE_CHECKING:
    from shuxin.edge.agent import Agent

log = logging.getLogger(__name__)

#: Version of the VR client protocol (``firmware_configs/vr_client_protocol.md``).
VR_PROTOCOL_VERSION: Final = 1
#: Seconds between live-feed messages (about 4 Hz), real time.
FEED_INTERVAL_S: Final = 0.25
STATIC_DIR: Final = Path(__file__).resolve().with_name("console_static")
_LEVEL_NAMES: Final[dict[float, str]] = {0.0: "low", 1.0: "medium", 2.0: "high"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartSession(_Body):
    """``POST /api/sessions``."""

    subject: SubjectCode
    protocol: Label
    devices: list[DeviceId] = Field(min_length=1, max_length=8)
    rating_before: Annotated[int, Field(ge=0, le=10)] | None = None


class Rating(_Body):
    """``POST /api/sessions/{id}/rating``: tension 0-10 before or after."""

    when: Literal["before", "after"]
    value: Annotated[int, Field(ge=0, le=10)]


class Marker(_Body):
    """``POST /api/sessions/{id}/marker``."""

    label: Label


class Note(_Body):
    """``POST /api/sessions/{id}/note``: short, never a name."""

    text: FreeText


class VrEventIn(_Body):
    """``POST /api/vr/events`` (VR client protocol v1)."""

    v: Literal[1] = 1
    session_id: str | None = None
    scene: Label
    label: Label


def _level_name(values: dict[str, float]) -> str | None:
    level = values.get("coherence_level")
    return None if level is None else _LEVEL_NAMES.get(level)


def _num(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def pacer_view(runner: SessionRunner, now: float) -> dict[str, Any] | None:
    """The pacer as the feeds send it (None outside paced phases)."""
    pacer = runner.pacer(now)
    if pacer is None:
        return None
    return {
        "breath": pacer.breath,
        "progress": round(pacer.progress, 3),
        "cycle_fraction": round(pacer.cycle_fraction, 3),
        "bpm": pacer.pacer_bpm,
        "inhale_s": round(pacer.inhale_s, 2),
        "exhale_s": round(pacer.exhale_s, 2),
    }


def phase_view(runner: SessionRunner, now: float) -> dict[str, Any] | None:
    """The current protocol phase (None before the start or after the last phase)."""
    where = runner.position(now)
    if where is None:
        return None
    return {
        "id": where.phase.id,
        "index": where.index,
        "kind": where.phase.kind,
        "name_zh": where.phase.names.zh,
        "name_en": where.phase.names.en,
        "elapsed_s": round(where.elapsed_s, 1),
        "remaining_s": round(where.remaining_s, 1),
        "vr_scene": where.phase.vr_scene,
    }


def vr_message(agent: Agent, runner: SessionRunner | None) -> dict[str, Any]:
    """One ``/ws/vr`` message (``type`` ``live`` or ``idle``); never the subject code."""
    now = agent.clock.now()
    base: dict[str, Any] = {
        "type": "idle",
        "v": VR_PROTOCOL_VERSION,
        "t": to_datetime(now).isoformat(),
    }
    if runner is None:
        return base
    values = agent.batcher.live_values(runner.session_id)
    where = phase_view(runner, now)
    return {
        **base,
        "type": "live",
        "session_id": runner.session_id,
        "hr_bpm": _num(values.get("hr_bpm")),
        "coherence": _level_name(values),
        "pacer": pacer_view(runner, now),
        "phase": None if where is None else where["id"],
        "phase_kind": None if where is None else where["kind"],
        "vr_scene": None if where is None else where["vr_scene"],
        "phase_remaining_s": None if where is None else where["remaining_s"],
    }


def session_view(agent: Agent, runner: SessionRunner, now: float) -> dict[str, Any]:
    """A running session as the staff page shows it."""
    record = runner.record
    values = agent.batcher.live_values(runner.session_id)
    return {
        "session_id": runner.session_id,
        "subject": record.subject,
        "protocol": {"id": record.protocol.id, "version": record.protocol.version},
        "devices": list(record.devices),
        "started_at": to_datetime(record.started_at).isoformat(),
        "elapsed_s": round(now - record.started_at, 1),
        "total_s": record.protocol.total_s,
        "phase": phase_view(runner, now),
        "pacer": pacer_view(runner, now),
        "live": {
            "hr_bpm": _num(values.get("hr_bpm")),
            "rmssd_ms": _num(values.get("rmssd_ms")),
            "coherence": _level_name(values),
            "eda_scl_us": _num(values.get("eda_scl_us"), 3),
            "beats_rejected_pct": _num(values.get("beats_rejected_pct")),
        },
    }


def status_view(agent: Agent) -> dict[str, Any]:
    """Station, devices and running sessions (``GET /api/status`` and ``/ws/live``)."""
    now = agent.clock.now()
    devices = [
        {
            "id": device_id,
            "profile": state.profile,
            "connected": state.connected,
            "battery_pct": state.battery_pct,
            "contact": state.contact,
            "rssi_dbm": state.rssi_dbm,
            "session_id": agent.batcher.session_of(device_id),
        }
        for device_id, state in sorted(agent.devices.items())
    ]
    return {
        "type": "status",
        "station": agent.settings.station,
        "t": to_datetime(now).isoformat(),
        "devices": devices,
        "sessions": [session_view(agent, r, now) for r in list(agent.sessions.values())],
    }


def edge_samples(agent: Agent) -> list[MetricSample]:
    """Every edge metric (``shuxin_edge_…``), read now from the agent's parts' own counters.

    Names (counters end in ``_total`` on the wire): ``outbox_backlog_messages``,
    ``outbox_backlog_bytes``, ``outbox_oldest_age_seconds`` (gauges), ``outbox_enqueued``,
    ``outbox_acked``, ``outbox_dropped{cap}``; ``publisher_published``,
    ``publisher_connects``, ``publisher_reconnects``, ``publisher_disconnects``,
    ``publisher_errors{kind}``, gauge ``publisher_connected``; ``ble_values_decoded{device,
    characteristic}``, ``ble_decode_errors{device,characteristic,kind}``,
    ``ble_notifications_dropped{device,outcome}``, gauge ``device_connected{device}``;
    ``readings_dropped{reason}``, ``messages_invalid``; ``events``, ``sessions_started``,
    ``sessions_resumed``, ``sessions_ended``, gauge ``sessions_running``,
    ``agent_errors{kind}``; gauge ``info{station,version}``.
    """
    from shuxin.edge.agent import AGENT_VERSION

    samples: list[MetricSample] = [
        gauge(
            "info",
            "Station id and agent version of this process (always 1).",
            1,
            {"station": agent.settings.station, "version": AGENT_VERSION},
        )
    ]
    stats = agent.outbox.stats()
    samples += [
        gauge("outbox_backlog_messages", "Messages waiting in the outbox.", stats.backlog),
        gauge("outbox_backlog_bytes", "Bytes waiting in the outbox.", stats.backlog_bytes),
        gauge("outbox_oldest_age_seconds", "Age of the oldest outbox message.", stats.oldest_age_s),
        counter("outbox_enqueued", "Messages written to the outbox.", stats.enqueued),
        counter("outbox_acked", "Messages the broker acknowledged.", stats.acked),
    ]
    for cap, dropped in (
        ("count", stats.dropped_count_cap),
        ("bytes", stats.dropped_bytes_cap),
        ("age", stats.dropped_age_cap),
    ):
        samples.append(
            counter("outbox_dropped", "Messages dropped by an outbox cap.", dropped, {"cap": cap})
        )
    publisher = agent.publisher
    if publisher is not None:
        pub = publisher.counters
        samples += [
            counter("publisher_published", "Messages published (PUBACK received).", pub.published),
            counter("publisher_connects", "Broker connections made.", pub.connects),
            counter(
                "publisher_reconnects",
                "Broker connections after the first.",
                max(0, pub.connects - 1),
            ),
            counter("publisher_disconnects", "Broker connections lost.", pub.disconnects),
            gauge(
                "publisher_connected",
                "1 while connected to the broker.",
                1.0 if publisher.connected.is_set() else 0.0,
            ),
        ]
        samples += [
            counter("publisher_errors", "Connection errors by kind.", n, {"kind": kind})
            for kind, n in sorted(pub.errors.items())
        ]
    for count in agent.decoder.parse_counters.snapshot():
        labels = {"device": count.profile, "characteristic": count.characteristic}
        if count.kind == "ok":
            samples.append(counter("ble_values_decoded", "Values decoded.", count.count, labels))
        else:
            samples.append(
                counter(
                    "ble_decode_errors",
                    "Notifications that could not be decoded, by error kind.",
                    count.count,
                    {**labels, "kind": count.kind},
                )
            )
    for (device, outcome), n in sorted(agent.decoder.counters.items()):
        samples.append(
            counter(
                "ble_notifications_dropped",
                "Notifications dropped (duplicate, stale, unknown device or role, ignored).",
                n,
                {"device": device, "outcome": outcome},
            )
        )
    for device_id, state in sorted(agent.devices.items()):
        samples.append(
            gauge(
                "device_connected",
                "1 while the sensor's link is up.",
                1.0 if state.connected else 0.0,
                {"device": device_id},
            )
        )
    for reason, n in sorted(agent.batcher.counters.items()):
        samples.append(
            counter("readings_dropped", "Readings dropped, by reason.", n, {"reason": reason})
        )
    samples.append(
        counter(
            "messages_invalid",
            "Contract messages a model refused (a bug).",
            agent.writer.counters.get("invalid_message", 0),
        )
    )
    agent_counters = agent.counters
    samples += [
        counter("events", "Source events handled.", agent_counters.events),
        counter("sessions_started", "Sessions started.", agent_counters.sessions_started),
        counter("sessions_resumed", "Sessions resumed at start.", agent_counters.sessions_resumed),
        counter("sessions_ended", "Sessions ended.", agent_counters.sessions_ended),
        gauge("sessions_running", "Sessions running now.", len(agent.sessions)),
    ]
    samples += [
        counter("agent_errors", "Contained failures by kind.", n, {"kind": kind})
        for kind, n in sorted(agent_counters.errors.items())
    ]
    return samples


def readiness_view(agent: Agent) -> tuple[bool, dict[str, Any]]:
    """``(ready, body)`` for ``/readyz``: started and outbox readable; broker informational."""
    started = agent.started.is_set()
    try:
        agent.outbox.stats()
        outbox_ok = True
    except Exception:  # any outbox error means "not ready"; the reason is logged
        log.warning("readiness: outbox not readable", exc_info=True)
        outbox_ok = False
    broker = agent.publisher is not None and agent.publisher.connected.is_set()
    ready = started and outbox_ok
    return ready, {
        "ready": ready,
        "checks": {"started": started, "outbox": outbox_ok, "broker": broker},
    }


def _pick_runner(agent: Agent, session_id: str | None) -> SessionRunner | None:
    if session_id is not None:
        return agent.sessions.get(session_id)
    running = [r for r in agent.sessions.values() if not r.finished]
    return max(running, key=lambda r: r.record.started_at) if running else None


def _problem(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


def create_console_app(agent: Agent) -> FastAPI:
    """The console app bound to ``agent`` (used by :func:`serve_console` and tests)."""
    app = FastAPI(title="shuxin station console", docs_url=None, redoc_url=None)
    registry = new_registry()
    register_snapshot(registry, "edge", lambda: edge_samples(agent))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            fields.append({"field": ".".join(loc), "message": str(err.get("msg", "invalid"))})
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid input"
        return _problem(422, "validation", message, fields=fields)

    @app.exception_handler(SessionError)
    async def _session_error(_request: Request, exc: SessionError) -> JSONResponse:
        return _problem(422, "session", str(exc))

    def runner_or_404(session_id: str) -> SessionRunner:
        runner = agent.sessions.get(session_id)
        if runner is None or runner.finished:
            raise HTTPException(404, f"no running session {session_id}")
        return runner

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, "http", str(exc.detail))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready, body = readiness_view(agent)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(render_latest(registry), media_type=CONTENT_TYPE)

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return status_view(agent)

    @app.get("/api/protocols")
    async def protocols() -> list[dict[str, Any]]:
        return [
            {
                "id": p.id,
                "version": p.version,
                "name_zh": p.names.zh,
                "name_en": p.names.en,
                "total_s": p.total_s,
                "phases": [
                    {
                        "id": ph.id,
                        "kind": ph.kind,
                        "name_zh": ph.names.zh,
                        "name_en": ph.names.en,
                        "duration_s": ph.duration_s,
                        "pacer_bpm": ph.pacer_bpm,
                    }
                    for ph in p.phases
                ],
            }
            for p in sorted(agent.protocols.values(), key=lambda p: p.id)
        ]

    @app.post("/api/sessions", status_code=201)
    async def start(body: StartSession) -> dict[str, Any]:
        runner = agent.start_session(
            body.protocol, body.devices, subject=body.subject, rating_before=body.rating_before
        )
        return session_view(agent, runner, agent.clock.now())

    @app.post("/api/sessions/{session_id}/rating")
    async def rating(session_id: str, body: Rating) -> dict[str, Any]:
        runner_or_404(session_id).rate(body.when, body.value, agent.clock.now())
        return {"ok": True}

    @app.post("/api/sessions/{session_id}/marker")
    async def marker(session_id: str, body: Marker) -> dict[str, Any]:
        runner_or_404(session_id).marker(body.label, agent.clock.now())
        return {"ok": True}

    @app.post("/api/sessions/{session_id}/note")
    async def note(session_id: str, body: Note) -> dict[str, Any]:
        runner_or_404(session_id).note(body.text, agent.clock.now())
        return {"ok": True}

    @app.post("/api/sessions/{session_id}/stop")
    async def stop(session_id: str) -> dict[str, Any]:
        runner = runner_or_404(session_id)
        now = agent.clock.now()
        if now >= runner.record.ends_at or not runner.record.auto_end:
            runner.end(now)
            outcome = "ended"
        else:  # stopped before the protocol finished: the contract calls that an abort
            runner.abort("stopped_by_staff", now)
            outcome = "aborted"
        return {"ok": True, "session_id": session_id, "status": outcome}

    @app.post("/api/vr/events", status_code=202)
    async def vr_event(body: VrEventIn) -> dict[str, Any]:
        runner = _pick_runner(agent, body.session_id)
        if runner is None or runner.finished:
            raise HTTPException(409, "no running session for this VR event")
        runner.vr_event(body.scene, body.label, agent.clock.now())
        return {"ok": True, "v": VR_PROTOCOL_VERSION, "session_id": runner.session_id}

    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await ws.send_json(status_view(agent))
                await asyncio.sleep(FEED_INTERVAL_S)

    @app.websocket("/ws/vr")
    async def vr(ws: WebSocket) -> None:
        session_id = ws.query_params.get("session")
        await ws.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await ws.send_json(vr_message(agent, _pick_runner(agent, session_id)))
                await asyncio.sleep(FEED_INTERVAL_S)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class _AgentServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the agent process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ConsoleServer:
    """The console served by uvicorn on the running event loop; :attr:`port` once started."""

    def __init__(self, agent: Agent, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_console_app(agent),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",  # the legacy "websockets" impl warns
            log_config=None,  # uvicorn logs through the process's handlers (plain or JSON)
        )
        self._server = _AgentServer(config)
        self.host = host
        self.port = port
        #: True once the socket listens and :attr:`port` holds the bound port.
        self.started = False

    async def serve(self) -> None:
        """Serve until cancelled, then close connections and the socket."""
        task = asyncio.get_running_loop().create_task(self._server.serve())
        try:
            while not self._server.started and not task.done():
                await asyncio.sleep(0.02)
            if self._server.started:
                sockets = self._server.servers[0].sockets
                self.port = int(sockets[0].getsockname()[1])
                self.started = True
                log.info("station console on http://%s:%d/", self.host, self.port)
            await asyncio.shield(task)
        finally:
            if not task.done():
                self._server.should_exit = True
                self._server.force_exit = True
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=3.0)


async def serve_console(agent: Agent, host: str, port: int) -> None:
    """Run the console for ``agent`` on ``host:port`` in the current loop until cancelled."""
    await ConsoleServer(agent, host, port).serve()
