"""Fixtures of the browser tests: a seeded store, the real API + web UI under uvicorn on a free
loopback port (in its own thread: Playwright's sync API runs its own event loop), and Debian's
headless Chromium driven by Playwright.

The store is seeded through the gateway's public code (lifecycle messages, raw beats and skin
conductance written to the time-series store, ``summarize_session``), not hand-written rows.
A missing Chromium or Playwright skips the tests, or fails them when ``CI`` is set (as the
server fixtures in ``tests/servers`` do). No browser is ever downloaded.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servers._process import unavailable

from shuxin.contract.messages import ClockInfo, LifecycleMessage, PhasePlan, ProtocolRef
from shuxin.dashboard_api.app import build_services, create_app
from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.dashboard_api.web import mount_web
from shuxin.gateway.sql_models import AlertKind, OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import SqlStore
from shuxin.gateway.summaries import summarize_session
from shuxin.gateway.timeseries import Point, TimeSeriesStore, epoch_us
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.rr_simulate import rr_simulate

PASSWORD = "browser test passphrase"
SUBJECT = "S-7F3K2Q"
STATION = "st-web"
#: name, kind, start (s), end (s), pacer (breaths/min): a 10-minute rest–resonance–recovery.
PLAN = (
    ("baseline", "baseline", 0, 180, None),
    ("resonance", "training", 180, 420, 6.0),
    ("recovery", "recovery", 420, 600, None),
)
SESSIONS = 4
ROLES = {
    "counselor1": Role.COUNSELOR,
    "commander1": Role.COMMANDER,
    "auditor1": Role.AUDITOR,
}


@dataclass(frozen=True)
class WebSite:
    """The running API + UI and what the seed put in it."""

    url: str
    session_ids: tuple[str, ...]
    subject_code: str
    alert_id: int


def _session(sql: SqlStore, tsdb: TimeSeriesStore, index: int, t0: datetime) -> str:
    session_id = f"{STATION}-{t0:%Y%m%d-%H%M}"
    end = t0 + timedelta(seconds=PLAN[-1][3])
    for seq, event in enumerate(("start", "end")):
        sql.apply_lifecycle(
            LifecycleMessage(
                schema_=1,
                station=STATION,
                session=session_id,
                seq=seq,
                sent_at=t0,
                clock=ClockInfo(offset_ms=0.0, source="ntp"),
                stream="lifecycle",
                event=event,
                subject=SUBJECT,
                protocol=ProtocolRef(id="rest-resonance-recovery", version="1"),
                phases=[
                    PhasePlan(name=n, kind=k, duration_s=b - a, pacer_bpm=p)  # type: ignore[arg-type]
                    for n, k, a, b, p in PLAN
                ],
                devices=["h10-1", "gsr-1"],
                started_at=t0,
                ended_at=None if event == "start" else end,
            )
        )
    duration = float(PLAN[-1][3])
    schedule = [(float(a), 12.0 if p is None else p) for _, _, a, _, p in PLAN]
    sim = rr_simulate(duration, np.random.default_rng(10 + index), breathing_schedule=schedule)
    beat_us = epoch_us(t0) + np.round(np.cumsum(sim.rr_ms) * 1000).astype(np.int64)
    eda = eda_simulate(duration, 8.0, np.random.default_rng(20 + index))
    eda_t = epoch_us(t0) + np.round(np.arange(eda.eda_us.size) * 125_000).astype(np.int64)
    tsdb.write(
        [
            Point.make("rr", {"station": STATION, "device": "h10-1", "source": "sim"},
                       {"rr_ms": float(v)}, int(t))
            for t, v in zip(beat_us, sim.rr_ms, strict=True)
        ]
        + [
            Point.make("eda", {"station": STATION, "device": "gsr-1"}, {"eda_us": float(v)}, int(t))
            for t, v in zip(eda_t, eda.eda_us, strict=True)
        ]
    )  # fmt: skip
    summarize_session(session_id, sql, tsdb)
    return session_id


def _seed(sql: SqlStore, tsdb: TimeSeriesStore) -> tuple[tuple[str, ...], int]:
    root = sql.create_org_unit(OrgUnitKind.DETACHMENT, "zd-web", "测试支队")
    brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, "dd-web", "测试大队", root.id)
    station_unit = sql.create_org_unit(OrgUnitKind.STATION, "zhan-web", "测试站", brigade.id)
    sql.register_station(STATION, org_unit_id=station_unit.id, display_name="测试驿站")
    users = {
        name: sql.create_user(
            name, role=role, org_unit_id=root.id, password_hash=hash_password(PASSWORD)
        )
        for name, role in ROLES.items()
    }
    sql.register_subject(SUBJECT, station_unit.id)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    sql.grant_consent(
        SUBJECT, "biofeedback", granted_at=now - timedelta(days=30),
        recorded_by=users["counselor1"].id,
    )  # fmt: skip
    session_ids = tuple(
        _session(sql, tsdb, i, now - timedelta(days=SESSIONS - i, hours=2)) for i in range(SESSIONS)
    )
    alert = sql.open_alert(
        AlertKind.WATCH,
        {
            "inputs": {"resting_lnrmssd": 3.1},
            "baseline": {"lnrmssd_mean": 3.6, "lnrmssd_sd": 0.2, "n": SESSIONS},
            "thresholds": {"z": -2.0},
            "quality": {"ok": True},
        },
        created_at=now - timedelta(hours=1),
        subject_code=SUBJECT,
    )
    return session_ids, alert.id


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """The real API and web UI served by uvicorn over a freshly seeded SQLite store."""
    import uvicorn

    data = tmp_path_factory.mktemp("web")
    settings = ApiSettings(
        data_dir=data,
        sql=SqlSettings(url=f"sqlite:///{data / 'api.sqlite3'}"),
        token_secret="w" * 40,
    )
    services = build_services(settings)
    session_ids, alert_id = _seed(services.sql, services.tsdb)
    app = create_app(settings, services=services)
    if not any(getattr(route, "name", None) == "web" for route in app.routes):
        mount_web(app)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield WebSite(f"http://127.0.0.1:{port}", session_ids, SUBJECT, alert_id)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        services.sql.close()
        services.tsdb.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (never a downloaded browser)."""
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium not found (Debian package: chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, web_site: WebSite) -> Iterator[Any]:
    """A fresh browser context (empty storage) and page; console errors fail the test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"browser errors: {errors}"


@pytest.fixture
def login(page: Any, web_site: WebSite) -> Callable[[str], None]:
    """``login(username)``: log in through the UI's form and wait for the navigation."""

    def log_in(username: str) -> None:
        page.goto(f"{web_site.url}/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#nav a")

    return log_in


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (pytest's tmp output for that test)."""
    return tmp_path
