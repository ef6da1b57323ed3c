"""`shuxin demo`: the whole system on embedded defaults, with nothing but Python.

A composition root for the demo: an in-process MQTT broker (amqtt, loopback, passwords, the
per-station ACL), the gateway (time series and SQL in SQLite), the dashboard API and web UI
(demo mode: one login per role with the documented demo password), and three simulated relief
stations in two brigades of one detachment, each the real edge agent in its own process.

Before the stations start, about 8 weeks of history for about 20 pseudonymous subjects are
produced through the real edge code into each station's durable outbox
(``shuxin.edge.sim_history``); the stations' publishers then send that backlog over MQTT like
any offline backlog, so the history the dashboard shows went through edge → MQTT → gateway →
store. Live sessions then run in real time (``--time-scale`` to speed them up), one station's
console showing them. As live sessions end it prints their authoritative summaries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: The demo grid: station id → (brigade code, brigade name, station name).
STATIONS: Final = {
    "st-a": ("DD01", "一大队", "甲站"),
    "st-b": ("DD01", "一大队", "乙站"),
    "st-c": ("DD02", "二大队", "丙站"),
}
DETACHMENT: Final = ("ZD-DEMO", "演示支队")
PROTOCOLS: Final = ("rest-only", "rest-resonance-recovery", "vr-relaxation")
GATEWAY_USER: Final = "gateway"
#: The station whose console shows its live sessions.
CONSOLE_STATION: Final = "st-a"
#: Demo logins: user name → (role, org unit code). All use the documented demo password.
DEMO_USERS: Final = {
    "staff": ("station_staff", f"ZN-{CONSOLE_STATION}"),
    "counselor": ("counselor", DETACHMENT[0]),
    "lead": ("programme_lead", DETACHMENT[0]),
    "commander": ("commander", DETACHMENT[0]),
    "admin": ("admin", DETACHMENT[0]),
    "auditor": ("auditor", DETACHMENT[0]),
}
#: Live seats per station (each a participant from the cohort).
LIVE_SEATS: Final = 2
#: History sessions run their protocol's phases at this fraction of the planned length (at
#: least 30 s each): enough beats for the resting time-domain metrics that trends and alerts
#: use, at a quarter of the production cost (band powers of short phases are suppressed).
HISTORY_PHASE_SCALE: Final = 0.25


#: The embedded broker (amqtt) gives each delivery 5 s to be acknowledged and then drops it;
#: above about 20x the three stations outrun it on a 2-core machine. Mosquitto has no such limit.
MAX_TIME_SCALE: Final = 20.0


class _StoppedError(Exception):
    """Raised from the backfill's progress hook to stop it (Ctrl-C)."""


def register(subparsers: Any) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole system on this machine: broker, gateway, dashboard, 3 stations",
        description=(
            "Runs an embedded MQTT broker, the gateway (SQLite), the dashboard API and web UI "
            "and three simulated relief stations through the real edge → MQTT → gateway → "
            "store path. First backfills --weeks of history for --subjects participants, then "
            "runs live sessions; prints the URLs and the demo logins (password shuxin-demo). "
            "Stop with Ctrl-C."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="dashboard address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="dashboard port (default 8000)")
    parser.add_argument(
        "--console-port", type=int, default=8080, help=f"{CONSOLE_STATION}'s console (8080)"
    )
    parser.add_argument(
        "--weeks", type=int, default=8, help="weeks of history to backfill (default 8; 0: none)"
    )
    parser.add_argument(
        "--subjects", type=int, default=20, help="participants in the cohort (default 20)"
    )
    parser.add_argument(
        "--data", type=Path, metavar="DIR", help="keep everything here (default: a temp dir)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="K",
        help=(
            f"live sessions: station seconds per real second, up to {MAX_TIME_SCALE:g} "
            "(default 1: real time; 10 runs a 5-min rest measurement in 30 s)"
        ),
    )
    parser.add_argument(
        "--sessions",
        type=int,
        metavar="N",
        help="live sessions per station, then exit (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        metavar="ID",
        help=f"live protocol(s) to cycle through (default: {', '.join(PROTOCOLS)})",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="random seed of the cohort and history (default 1)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle `shuxin demo`."""
    from shuxin.runtime.entry import configure_logging, run_service

    if not 0 < args.time_scale <= MAX_TIME_SCALE:
        print(
            f"shuxin demo: --time-scale must be in (0, {MAX_TIME_SCALE:g}]: the embedded broker "
            "drops deliveries it cannot hand over within 5 s",
            file=sys.stderr,
        )
        return 2
    if args.sessions is not None and args.sessions < 1:
        print("shuxin demo: --sessions must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.weeks <= 26:
        print("shuxin demo: --weeks must be between 0 and 26", file=sys.stderr)
        return 2
    if not len(STATIONS) * LIVE_SEATS <= args.subjects <= 200:
        print(
            f"shuxin demo: --subjects must be between {len(STATIONS) * LIVE_SEATS} and 200",
            file=sys.stderr,
        )
        return 2
    for what, port in (("--port", args.port), ("--console-port", args.console_port)):
        problem = _port_problem(args.host if what == "--port" else "127.0.0.1", port)
        if problem:
            print(f"shuxin demo: {what} {port}: {problem}", file=sys.stderr)
            return 2
    configure_logging(args.verbose)
    if not args.verbose:
        import logging

        logging.getLogger().setLevel(logging.WARNING)
    data = args.data or Path(tempfile.mkdtemp(prefix="shuxin-demo-"))
    data.mkdir(parents=True, exist_ok=True)
    demo = Demo(
        data=data,
        time_scale=args.time_scale,
        sessions=args.sessions,
        protocols=tuple(args.protocol or PROTOCOLS),
        seed=args.seed,
        host=args.host,
        port=args.port,
        console_port=args.console_port,
        weeks=args.weeks,
        subjects=args.subjects,
    )
    return run_service(demo.run)


def _port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served, or None."""
    if not 1 <= port <= 65_535:
        return "not a port number"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot listen there ({exc.strerror}); choose another with this flag"
    return None


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass
class Demo:
    """The demo's graph and its run loop."""

    data: Path
    time_scale: float
    sessions: int | None
    protocols: tuple[str, ...]
    seed: int
    host: str = "127.0.0.1"
    port: int = 8000
    console_port: int = 8080
    weeks: int = 8
    subjects: int = 20
    say: Callable[[str], None] = _say

    async def run(self) -> None:
        """Serve, backfill, then run live sessions until every station used its session
        budget (or until cancelled)."""
        from shuxin.gateway.broker_amqtt import embedded_broker

        self.say("舒心驿站 shuxin demo — 演示模式 / demo mode")
        self.say(f"  data: {self.data}")
        plan = await asyncio.to_thread(self._plan)
        users = self._broker_users()
        async with embedded_broker(
            self.data / "broker", stations=list(STATIONS), users=users, gateway_user=GATEWAY_USER
        ) as broker:
            self.say(f"  broker: {broker.url} (loopback only, password login)")
            gateway = self._build_gateway(broker.url, users[GATEWAY_USER])
            api = self._build_api(gateway)
            stop = threading.Event()
            # Outside the task group: on Ctrl-C the API is asked to stop, not cancelled, so
            # uvicorn shuts down gracefully.
            api_task = asyncio.create_task(api.serve())
            try:
                while not api.started:
                    if api_task.done():
                        raise RuntimeError("the dashboard API did not start")
                    await asyncio.sleep(0.05)
                self._print_welcome()
                history = await self._backfill(gateway, plan, stop)
                reporter = SessionReporter(gateway.sql, self.say)
                async with asyncio.TaskGroup() as group:
                    gateway_task = group.create_task(gateway.run())
                    reporter_task = group.create_task(reporter.run())
                    stations = [
                        group.create_task(self._station(station, broker.url, users[station]))
                        for station in STATIONS
                    ]
                    await asyncio.gather(*stations)
                    # Let the gateway store the last messages, report them, then stop.
                    await reporter.wait_for_all(
                        self.sessions * len(STATIONS) if self.sessions else 0, timeout_s=120
                    )
                    gateway_task.cancel()
                    reporter_task.cancel()
            finally:
                stop.set()
                api.should_exit = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(api_task, 15)
                gateway.close()
        self.say(
            f"done: {history} history and {reporter.reported} live session(s) stored; "
            f"data kept in {self.data}"
        )

    def _broker_users(self) -> dict[str, str]:
        """Broker passwords, kept in the data dir so a re-run can resume the stations."""
        path = self.data / "broker-users.json"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if set(saved) == {*STATIONS, GATEWAY_USER}:
                return {str(k): str(v) for k, v in saved.items()}
        except (OSError, ValueError):
            pass
        users = {user: secrets.token_urlsafe(16) for user in (*STATIONS, GATEWAY_USER)}
        path.write_text(json.dumps(users), encoding="utf-8")
        path.chmod(0o600)
        return users

    def _plan(self) -> Any:
        """The cohort and its history; every station's live seats get cohort participants."""
        from shuxin.edge.sim_history import plan_history
        from shuxin.edge.sim_station import STATE_FILE

        plan = plan_history(
            list(STATIONS), weeks=max(self.weeks, 1), subjects=self.subjects, seed=self.seed
        )
        for station in STATIONS:
            directory = self.data / "stations" / station
            directory.mkdir(parents=True, exist_ok=True)
            codes = [s.code for s in plan.cohort if s.station == station][:LIVE_SEATS]
            state = directory / STATE_FILE
            if not state.exists():
                seats = {str(seat): code for seat, code in enumerate(codes, start=1)}
                state.write_text(json.dumps({"seats": seats}), encoding="utf-8")
        return plan

    async def _backfill(self, gateway: Any, plan: Any, stop: threading.Event) -> int:
        """Produce the history with the edge code and feed it through the gateway's ingest
        entry point (once per data dir); return how many sessions the history holds."""
        from shuxin.edge.sim_history import seed_gateway
        from shuxin.runtime.threads import to_thread_settled

        marker = self.data / "history.json"
        if self.weeks == 0:
            return 0
        if marker.exists():
            done = int(json.loads(marker.read_text(encoding="utf-8"))["sessions"])
            self.say(f"  history: {done} sessions were backfilled into this data dir before")
            return done
        total = len(plan.sessions)
        self.say(
            f"  回填历史 backfilling history: {total} sessions of {self.subjects} participants "
            f"over {self.weeks} weeks (edge code → gateway ingest; the dashboard fills as it goes)"
        )
        stored = 0
        started = last_say = time.monotonic()

        def progress(_station: str, _session: str) -> None:
            nonlocal stored, last_say
            if stop.is_set():
                raise _StoppedError
            stored += 1
            if time.monotonic() - last_say > 5 or stored == total:
                last_say = time.monotonic()
                self.say(f"  回填 backfill: {stored}/{total} sessions stored")

        try:
            # On Ctrl-C the progress hook stops the seeding after the session in hand, and the
            # gateway is closed only after that.
            await to_thread_settled(
                seed_gateway,
                gateway,
                plan.sessions,
                phase_scale=HISTORY_PHASE_SCALE,
                work_dir=self.data / "history-edge",
                progress=progress,
                on_cancel=stop.set,  # Ctrl-C: stop after the session in hand, not at the end
            )
        except _StoppedError:
            return stored
        marker.write_text(json.dumps({"sessions": stored}), encoding="utf-8")
        self.say(
            f"  history complete: {stored} sessions in {time.monotonic() - started:.0f} s; "
            "live sessions start now"
        )
        return stored

    def _build_gateway(self, broker_url: str, password: str) -> Any:
        from pydantic import SecretStr

        from shuxin.gateway.service import build_gateway
        from shuxin.gateway.settings import GatewaySettings
        from shuxin.gateway.sql_settings import SqlSettings
        from shuxin.gateway.sql_store import open_store

        data_dir = self.data / "gateway"
        data_dir.mkdir(parents=True, exist_ok=True)
        sql = open_store(SqlSettings(), data_dir)
        seed_grid(sql)
        seed_demo_users(sql)
        settings = GatewaySettings(
            broker_url=broker_url,
            username=GATEWAY_USER,
            password=SecretStr(password),
            client_id="shuxin-demo-gateway",
            shared_group=None,
            mqtt_protocol="3.1.1",
            # amqtt gives a subscriber 5 s to acknowledge; keep the unacknowledged queue short.
            queue_size=64,
            data_dir=data_dir,
            http_port=0,  # the demo's gateway metrics are not scraped
        )
        return build_gateway(settings, sql=sql)

    def _build_api(self, gateway: Any) -> Any:
        """The dashboard API over the gateway's own stores, as an in-loop uvicorn server."""
        import uvicorn

        from shuxin.dashboard_api.app import build_services, create_app
        from shuxin.dashboard_api.settings import ApiSettings
        from shuxin.runtime.uvicorn_server import EmbeddedServer

        settings = ApiSettings(
            host=self.host, port=self.port, data_dir=self.data / "gateway", demo_mode=True
        )
        services = build_services(settings, sql=gateway.sql, tsdb=gateway.store)
        app = create_app(settings, services=services)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", access_log=False
        )
        return EmbeddedServer(config)

    def _print_welcome(self) -> None:
        from shuxin.dashboard_api.auth import DEMO_PASSWORD

        shown_host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        base = f"http://{shown_host}:{self.port}"
        self.say("")
        self.say(f"  仪表盘 dashboard (web UI): {base}/")
        self.say(f"  API docs (OpenAPI):        {base}/docs")
        self.say(
            f"  站点控制台 station console ({CONSOLE_STATION}, live sessions): "
            f"http://127.0.0.1:{self.console_port}/"
        )
        self.say(f"  演示账号 demo logins (password / 密码 {DEMO_PASSWORD}):")
        for username, (role, unit) in DEMO_USERS.items():
            self.say(f"    {username:<10} {role:<15} scope {unit}")
        self.say("  Ctrl-C stops everything.")
        self.say("")

    async def _station(self, station: str, broker_url: str, password: str) -> None:
        """Run one simulated station as its own process, as a real station is its own box.

        A separate process also keeps the station's disk syncs off the broker's and the
        gateway's event loop. Its output is prefixed with the station id; cancelling this
        coroutine stops the process (SIGTERM, then SIGKILL after 15 s).
        """
        command = [
            sys.executable, "-m", "shuxin.cli", "sim", "station",
            "--broker", broker_url, "--username", station, "--station", station,
            "--data", str(self.data / "stations" / station),
            "--subjects", str(LIVE_SEATS), "--time-scale", f"{self.time_scale:g}",
            "--break-s", "60", "--progress-s", "60",
        ]  # fmt: skip
        for protocol in self.protocols:
            command += ["--protocol", protocol]
        if self.sessions is not None:
            command += ["--sessions", str(self.sessions)]
        command += ["--seed", str(self.seed + sum(map(ord, station)))]
        env = {**os.environ, "SHUXIN_EDGE_BROKER__PASSWORD": password}
        if station == CONSOLE_STATION:
            env["SHUXIN_EDGE_CONSOLE__ENABLED"] = "true"
            env["SHUXIN_EDGE_CONSOLE__PORT"] = str(self.console_port)
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    self.say(f"[{station}] {line}")
            code = await process.wait()
            if code != 0:
                raise RuntimeError(f"simulated station {station} exited with status {code}")
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def seed_grid(sql: Any) -> None:
    """Create the demo's detachment → brigades → stations in the SQL store (idempotent)."""
    from shuxin.edge.sim_history import seed_org_tree
    from shuxin.gateway.sql_errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        sql.get_org_unit_by_code(DETACHMENT[0])
        return  # a reused --data dir already has the grid
    seed_org_tree(sql, STATIONS, detachment=DETACHMENT)


def seed_demo_users(sql: Any) -> None:
    """One dashboard login per role with the demo password (idempotent). The API accepts that
    password only in demo mode, so these accounts are useless outside the demo."""
    from shuxin.dashboard_api.auth import DEMO_PASSWORD, hash_password
    from shuxin.gateway.sql_errors import NotFoundError
    from shuxin.gateway.sql_models import Role

    password_hash = hash_password(DEMO_PASSWORD)
    for username, (role, unit_code) in DEMO_USERS.items():
        try:
            sql.get_user(username)
            continue
        except NotFoundError:
            pass
        unit = sql.get_org_unit_by_code(unit_code)
        sql.create_user(username, role=Role(role), org_unit_id=unit.id, password_hash=password_hash)


class SessionReporter:
    """Prints the stored summary of each live session (started after the demo) as it ends."""

    def __init__(self, sql: Any, say: Callable[[str], None]) -> None:
        from datetime import UTC, datetime

        self._sql = sql
        self._say = say
        self._live_since = datetime.now(UTC)
        self._done: set[str] = set()
        self.reported = 0

    async def run(self, every_s: float = 1.0) -> None:
        """Poll for ended sessions until cancelled."""
        while True:
            await asyncio.to_thread(self.report_new)
            await asyncio.sleep(every_s)

    async def wait_for_all(self, expected: int, timeout_s: float) -> None:
        """Wait until ``expected`` live sessions were reported (or the timeout passes)."""
        deadline = time.monotonic() + timeout_s
        while self.reported < expected and time.monotonic() < deadline:
            await asyncio.to_thread(self.report_new)
            await asyncio.sleep(0.5)
        await asyncio.to_thread(self.report_new)

    def report_new(self) -> None:
        """Print every live session whose summary is stored, once."""
        from sqlalchemy import select

        from shuxin.gateway.sql_models import SessionRow, SessionSummaryRow
        from shuxin.gateway.sql_store import WHOLE_SESSION

        query = (
            select(SessionRow.id)
            .join(SessionSummaryRow, SessionSummaryRow.session_id == SessionRow.id)
            .where(SessionSummaryRow.phase_index == WHOLE_SESSION)
            .where(SessionRow.started_at >= self._live_since)
            .order_by(SessionRow.started_at)
        )
        with self._sql.engine.connect() as db:
            live = [row[0] for row in db.execute(query)]
        for session_id in live:
            if session_id in self._done:
                continue
            whole = next(
                (s for s in self._sql.summaries(session_id) if s.phase_index == WHOLE_SESSION),
                None,
            )
            if whole is None:
                continue
            self._done.add(session_id)
            self.reported += 1
            self._say(self._line(self._sql.get_session(session_id), whole.metrics))

    def _line(self, record: Any, metrics: Any) -> str:
        ratings = {r.when.value: r.value for r in self._sql.session_ratings(record.id)}
        head = (
            f"[summary] {record.station_id} {record.subject_code} {record.protocol_id} "
            f"{record.status.value}: {metrics.get('n_beats', 0)} beats"
        )
        if metrics.get("mean_hr_bpm") is None:
            return head + " (too few beats to analyse)"
        tension = (
            f" · 紧张度 tension {ratings.get('before', '–')}→{ratings.get('after', '–')}/10"
            if ratings
            else ""
        )

        def shown(key: str, digits: int) -> str:
            value = metrics.get(key)
            return "—" if value is None else f"{value:.{digits}f}"

        return (
            f"{head} · HR {shown('mean_hr_bpm', 0)} bpm · RMSSD {shown('rmssd_ms', 1)} ms · "
            f"SDNN {shown('sdnn_ms', 1)} ms · 协调比 coherence {shown('coherence_ratio', 2)} · "
            f"artefacts {shown('artifact_pct', 1)} %{tension}"
        )
