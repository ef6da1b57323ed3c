"""`shuxin demo`: the whole pipeline on embedded defaults, with nothing but Python.

A composition root for the demo: an in-process MQTT broker (amqtt, loopback, passwords, the
per-station ACL), the gateway (time series and SQL in SQLite), and three simulated relief
stations in two brigades of one detachment running protocols with pseudonymous participants
through the real edge agent. As sessions end, it prints the authoritative summary the gateway
computed from the beats and samples it stored.

What it does not have yet: the counselor dashboard and web UI (issue 6) and the backfilled
history with trends and alerts (issue 7). It says so when it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
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
PROTOCOLS: Final = ("rest-only", "rest-resonance-recovery", "vr-relaxation")
GATEWAY_USER: Final = "gateway"
#: The embedded broker (amqtt) gives each delivery 5 s to be acknowledged and then drops it;
#: above about 20x the three stations outrun it on a 2-core machine. Mosquitto has no such limit.
MAX_TIME_SCALE: Final = 20.0


def register(subparsers: Any) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run broker, gateway and three simulated stations end to end on this machine",
        description=(
            "Runs an embedded MQTT broker, the gateway (SQLite) and three simulated relief "
            "stations (2 participants each) through the real edge → MQTT → gateway → store "
            "path, and prints each session's summary as it ends. Stop with Ctrl-C. The "
            "dashboard and web UI are not built yet (issue 6); neither is the backfilled "
            "history (issue 7)."
        ),
    )
    parser.add_argument(
        "--data", type=Path, metavar="DIR", help="keep everything here (default: a temp dir)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=10.0,
        metavar="K",
        help=(
            f"station seconds per real second, up to {MAX_TIME_SCALE:g} (default 10: a 5-min "
            "rest measurement in 30 s)"
        ),
    )
    parser.add_argument(
        "--sessions",
        type=int,
        metavar="N",
        help="sessions per station, then exit (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        metavar="ID",
        help=f"protocol(s) to cycle through (default: {', '.join(PROTOCOLS)})",
    )
    parser.add_argument("--seed", type=int, help="random seed for reproducible participants")
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
    )
    return run_service(demo.run)


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass
class Demo:
    """The demo's graph and its run loop."""

    data: Path
    time_scale: float
    sessions: int | None
    protocols: tuple[str, ...]
    seed: int | None
    say: Callable[[str], None] = _say

    async def run(self) -> None:
        """Run until every station used its session budget (or until cancelled)."""
        from shuxin.gateway.broker_amqtt import embedded_broker

        users = {user: secrets.token_urlsafe(16) for user in (*STATIONS, GATEWAY_USER)}
        self.say("舒心驿站 shuxin demo — 演示模式 / demo mode")
        self.say(f"  data: {self.data}")
        self.say(
            "  runs: embedded MQTT broker → gateway (SQLite) ← 3 simulated stations "
            f"(time ×{self.time_scale:g}); summaries printed as sessions end"
        )
        self.say("  not yet: counselor dashboard / web UI (issue 6), backfilled history (issue 7)")
        async with embedded_broker(
            self.data / "broker", stations=list(STATIONS), users=users, gateway_user=GATEWAY_USER
        ) as broker:
            self.say(f"  broker: {broker.url} (loopback only, password login)")
            gateway = self._build_gateway(broker.url, users[GATEWAY_USER])
            reporter = SessionReporter(gateway.sql, self.say)
            try:
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
                        self.sessions * len(STATIONS) if self.sessions else 0, timeout_s=60
                    )
                    gateway_task.cancel()
                    reporter_task.cancel()
            finally:
                gateway.close()
        self.say(f"done: {reporter.reported} session(s) summarised; data kept in {self.data}")

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
        )
        return build_gateway(settings, sql=sql)

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
            "--subjects", "2", "--time-scale", f"{self.time_scale:g}",
            "--break-s", "60", "--progress-s", "30",
        ]  # fmt: skip
        for protocol in self.protocols:
            command += ["--protocol", protocol]
        if self.sessions is not None:
            command += ["--sessions", str(self.sessions)]
        if self.seed is not None:
            command += ["--seed", str(self.seed + sum(map(ord, station)))]
        env = {**os.environ, "SHUXIN_EDGE_BROKER__PASSWORD": password}
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
    from shuxin.gateway.sql_errors import NotFoundError
    from shuxin.gateway.sql_models import OrgUnitKind

    with contextlib.suppress(NotFoundError):
        sql.get_org_unit_by_code("ZD-DEMO")
        return  # a reused --data dir already has the grid
    detachment = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD-DEMO", "演示支队")
    brigades: dict[str, int] = {}
    for station, (brigade_code, brigade_name, station_name) in STATIONS.items():
        if brigade_code not in brigades:
            brigade = sql.create_org_unit(
                OrgUnitKind.BRIGADE, brigade_code, brigade_name, detachment.id
            )
            brigades[brigade_code] = brigade.id
        unit = sql.create_org_unit(
            OrgUnitKind.STATION, f"ZN-{station}", station_name, brigades[brigade_code]
        )
        sql.register_station(station, org_unit_id=unit.id, display_name=station_name)


class SessionReporter:
    """Prints the gateway's stored summary of each session as it ends."""

    def __init__(self, sql: Any, say: Callable[[str], None]) -> None:
        self._sql = sql
        self._say = say
        self._done: set[str] = set()
        self.reported = 0

    async def run(self, every_s: float = 1.0) -> None:
        """Poll for ended sessions until cancelled."""
        while True:
            await asyncio.to_thread(self.report_new)
            await asyncio.sleep(every_s)

    async def wait_for_all(self, expected: int, timeout_s: float) -> None:
        """Wait until ``expected`` sessions were reported (or the timeout passes)."""
        deadline = time.monotonic() + timeout_s
        while self.reported < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.to_thread(self.report_new)

    def report_new(self) -> None:
        """Print every ended session whose summary the gateway has stored, once."""
        from shuxin.gateway.sql_store import WHOLE_SESSION

        root = self._sql.get_org_unit_by_code("ZD-DEMO")
        for record in reversed(self._sql.list_sessions(root.id, limit=500)):
            if record.id in self._done or record.status.value == "running":
                continue
            whole = next(
                (s for s in self._sql.summaries(record.id) if s.phase_index == WHOLE_SESSION),
                None,
            )
            if whole is None:
                continue  # the gateway stores the summary right after the session's end
            self._done.add(record.id)
            self.reported += 1
            self._say(self._line(record, whole.metrics))

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
