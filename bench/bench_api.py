"""Benchmark: latency and throughput of the dashboard API's busiest reads over 100k sessions.

Run: .venv/bin/python bench/bench_api.py [--sessions 100000] [--subjects 2000]
     [--cache /tmp/shuxin-bench-cache] [--requests 300] [--clients 1,32] [--workers 1]
     [--no-profile]

Seeds a SQLite SQL store once (cached as ``--cache/api-<sessions>-<subjects>.sqlite3``; a
re-run copies it): one 支队 with 5 大队 of 10 站 (50 stations), ``--subjects`` people spread
over the stations, ``--sessions`` 10-minute sessions over two years with a skewed number per
person (lognormal weights), each with its phases, events, ratings, per-phase and whole-session
summaries and two display curves. Org units, stations, subjects and the user go through
``SqlStore``'s public methods; the session rows are bulk-inserted into the gateway's own tables
(``sql_models``) in one transaction — the shape the gateway writes, far faster than one
transaction per message.

Then serves the API with ``python -m shuxin.dashboard_api run`` (uvicorn; one process unless
``--workers N``) on 127.0.0.1 and measures, as a counselor at the 支队 root (the largest
scope), with ``httpx.AsyncClient`` at each ``--clients`` level: the session list (page of 50,
unfiltered and filtered by station), session detail and subject trends; p50/p99 latency and
requests/s. Every request writes one audit record (part of its cost). Then (unless
``--no-profile``) an in-process profile: per endpoint, the median wall time of a request, the
time spent inside SQL statements (on the read-only and the write engine; commits not
included) and the number of statements, and the SQLite query plan of the list's statements.

Goal (issue 6): p99 < 100 ms for list and detail at 32 clients on 2 cores. It reports; it
never fails. Never touches a store outside its temporary directory and the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import event, insert

from shuxin.dashboard_api.auth import hash_password
from shuxin.gateway.sql_models import (
    DisplayCurveRow,
    OrgUnitKind,
    RatingRow,
    RatingWhen,
    Role,
    SessionEventRow,
    SessionPhaseRow,
    SessionRow,
    SessionStatus,
    SessionSummaryRow,
)
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import WHOLE_SESSION, SqlStore, open_store

SECRET = "b" * 40
PASSWORD = "bench horse battery staple"
USERNAME = "bench-counselor"
SEED_VERSION = 1  # bump when the seeded shape changes (invalidates the cache)
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SPAN_DAYS = 730
SESSION_S = 600.0
PLAN = (
    ("baseline", "baseline", 120.0, None),
    ("resonance", "training", 360.0, 6.0),
    ("recovery", "recovery", 120.0, None),
)
CURVE_STEP_S = 5.0
GOAL_P99_MS = 100.0
_LETTERS = "ABCDEFGHJKMNPQRSTVWXYZ"
CHUNK = 1000  # sessions per bulk insert


def subject_code(i: int) -> str:
    """A pseudonymous code, letters only (no digit runs that could look like a number)."""
    chars = []
    for _ in range(5):
        i, r = divmod(i, len(_LETTERS))
        chars.append(_LETTERS[r])
    return "S-" + "".join(chars)


def _metrics(rng: np.random.Generator, ln: float) -> dict[str, float]:
    """A realistic set of per-phase metric fields (≈ what gateway/summaries.py stores)."""
    rmssd = float(np.exp(ln))
    return {
        "n_beats": float(rng.integers(150, 600)),
        "mean_rr_ms": round(float(rng.normal(850, 80)), 2),
        "mean_hr_bpm": round(float(rng.normal(72, 8)), 2),
        "sdnn_ms": round(rmssd * 1.3, 2),
        "rmssd_ms": round(rmssd, 2),
        "ln_rmssd": round(ln, 4),
        "pnn50_pct": round(float(rng.uniform(2, 40)), 2),
        "lf_ms2": round(float(rng.uniform(200, 2000)), 1),
        "hf_ms2": round(float(rng.uniform(100, 1500)), 1),
        "lf_hf": round(float(rng.uniform(0.5, 4)), 3),
        "coherence_ratio": round(float(rng.uniform(0.1, 0.9)), 3),
        "resp_rate_bpm": round(float(rng.normal(12, 3)), 2),
        "scl_mean_us": round(float(rng.uniform(1, 12)), 3),
        "scr_count": float(rng.integers(0, 20)),
        "scr_per_min": round(float(rng.uniform(0, 6)), 3),
    }


def _layout(store: SqlStore, n_subjects: int) -> tuple[list[str], list[int], list[int]]:
    """Org units, 50 stations, the subjects and the user; return (station ids, each station's
    brigade index, each subject's station index)."""
    root = store.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "一支队", None)
    stations: list[str] = []
    brigade_of: list[int] = []
    for b in range(5):
        brigade = store.create_org_unit(
            OrgUnitKind.BRIGADE, f"D{_LETTERS[b]}", f"第{b + 1}大队", root.id
        )
        for s in range(10):
            code = f"D{_LETTERS[b]}-Z{s:02d}"
            unit = store.create_org_unit(OrgUnitKind.STATION, code, f"{code}站", brigade.id)
            station_id = f"st-{code.lower()}"
            store.register_station(station_id, org_unit_id=unit.id, display_name=code)
            stations.append(station_id)
            brigade_of.append(b)
    units = {s.id: s for s in store.subtree(root.id)}
    station_units = {st.id: st.org_unit_id for st in store.list_stations(root.id)}
    home = [i % len(stations) for i in range(n_subjects)]
    for i in range(n_subjects):
        unit_id = station_units[stations[home[i]]]
        assert unit_id in units
        store.register_subject(subject_code(i), unit_id)
    store.create_user(
        USERNAME, role=Role.COUNSELOR, org_unit_id=root.id, password_hash=hash_password(PASSWORD)
    )
    return stations, brigade_of, home


def seed(path: Path, n_sessions: int, n_subjects: int) -> None:
    """Create the benchmark store at ``path`` (see the module docstring)."""
    rng = np.random.default_rng(20261120)
    store = open_store(SqlSettings(url=f"sqlite:///{path}"), path.parent)
    try:
        stations, brigade_of, home = _layout(store, n_subjects)
        subject_ids = _subject_ids(store)
        weights = rng.lognormal(0.0, 0.8, n_subjects)
        owners = rng.choice(n_subjects, size=n_sessions, p=weights / weights.sum())
        offsets = np.sort(rng.uniform(0, SPAN_DAYS * 86400.0, n_sessions))
        first = END - timedelta(days=SPAN_DAYS)
        by_brigade: dict[int, list[int]] = {}
        for index, b in enumerate(brigade_of):
            by_brigade.setdefault(b, []).append(index)
        ln_base = rng.normal(3.6, 0.4, n_subjects)
        t0 = time.perf_counter()
        with store.engine.begin() as connection:
            tables: dict[Any, list[dict[str, Any]]] = {}

            def flush(force: bool = False) -> None:
                # Every table at once, parents first (the session rows were added first).
                if not force and len(tables.get(SessionRow, ())) < CHUNK:
                    return
                for model, rows in tables.items():
                    if rows:
                        connection.execute(insert(model.__table__), rows)
                        rows.clear()

            for k in range(n_sessions):
                person = int(owners[k])
                station_index = home[person]
                if rng.random() < 0.1:  # sometimes at another station of the same 大队
                    station_index = int(rng.choice(by_brigade[brigade_of[station_index]]))
                station = stations[station_index]
                started = first + timedelta(seconds=round(float(offsets[k])))
                ended = started + timedelta(seconds=SESSION_S)
                status = (
                    SessionStatus.ENDED
                    if rng.random() < 0.95
                    else SessionStatus.ABORTED
                    if rng.random() < 0.8
                    else SessionStatus.TIMEOUT
                )
                sid = f"{station}-{started:%Y%m%d-%H%M%S}-{k:06d}"
                _session_rows(
                    tables,
                    rng,
                    sid,
                    station,
                    subject_ids[subject_code(person)],
                    status,
                    started,
                    ended,
                    float(ln_base[person]),
                )
                flush()
            flush(force=True)
        print(f"seeded {n_sessions} sessions in {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        store.close()


def _subject_ids(store: SqlStore) -> dict[str, int]:
    from sqlalchemy import select

    from shuxin.gateway.sql_models import SubjectRow

    with store.engine.connect() as connection:
        return {
            code: sid for sid, code in connection.execute(select(SubjectRow.id, SubjectRow.code))
        }


def _session_rows(
    tables: dict[Any, list[dict[str, Any]]],
    rng: np.random.Generator,
    sid: str,
    station: str,
    subject_id: int,
    status: SessionStatus,
    started: datetime,
    ended: datetime,
    ln_base: float,
) -> None:
    def add(model: Any, **row: Any) -> None:
        tables.setdefault(model, []).append(row)

    add(
        SessionRow,
        id=sid,
        station_id=station,
        subject_id=subject_id,
        protocol_id="rest-resonance-recovery",
        protocol_version="1",
        status=status,
        started_at=started,
        ended_at=ended,
        end_reason=None if status is SessionStatus.ENDED else "operator",
        devices=["h10-1", "gsr-1"],
        lifecycle_seq=1,
        clock_offset_ms=0.0,
        clock_source="ntp",
        clock_uncertainty_ms=5.0,
        created_at=started,
    )
    offset = 0.0
    seq_events: list[tuple[datetime, str, dict[str, Any]]] = [
        (started, "rating", {"when": "before", "value": int(rng.integers(3, 9))})
    ]
    versions = {"hrv": "1.0.0", "eda": "1.0.0", "quality": "1.0.0"}
    for index, (name, kind, duration, pacer) in enumerate(PLAN):
        p_start = started + timedelta(seconds=offset)
        offset += duration
        p_end = started + timedelta(seconds=offset)
        add(
            SessionPhaseRow,
            session_id=sid,
            phase_index=index,
            name=name,
            kind=kind,
            planned_duration_s=duration,
            pacer_bpm=pacer,
            inhale_exhale_ratio=None,
            vr_scene=None,
            started_at=p_start,
            ended_at=p_end,
        )
        seq_events.append((p_start, "phase_start", {"phase": name, "index": index}))
        seq_events.append((p_end, "phase_end", {"phase": name, "index": index}))
        ln = ln_base + (0.25 if kind == "training" else 0.0) + float(rng.normal(0, 0.15))
        add(
            SessionSummaryRow,
            session_id=sid,
            phase_index=index,
            phase_name=name,
            metrics=_metrics(rng, ln),
            quality={"artifact_pct": round(float(rng.gamma(1.2, 1.5)), 2), "coverage_pct": 99.0},
            algorithm_versions=versions,
            protocol_version="1",
            computed_at=ended,
        )
    after = int(rng.integers(1, 7))
    seq_events.append((ended, "rating", {"when": "after", "value": after}))
    whole = _metrics(rng, ln_base + float(rng.normal(0, 0.1)))
    whole["deltas"] = {
        "training_minus_baseline": {"ln_rmssd": round(float(rng.normal(0.25, 0.2)), 4)},  # type: ignore[assignment]
        "recovery_minus_baseline": {"ln_rmssd": round(float(rng.normal(0.1, 0.2)), 4)},
    }
    add(
        SessionSummaryRow,
        session_id=sid,
        phase_index=WHOLE_SESSION,
        phase_name=None,
        metrics=whole,
        quality={"artifact_pct": 1.5, "coverage_pct": 99.0},
        algorithm_versions=versions,
        protocol_version="1",
        computed_at=ended,
    )
    for i, (t, kind, payload) in enumerate(seq_events):
        add(
            SessionEventRow,
            session_id=sid,
            seq=0,
            event_index=i,
            t=t,
            kind=kind,
            payload={"kind": kind, **payload},
        )
    for when, value, t in (
        (RatingWhen.BEFORE, seq_events[0][2]["value"], started),
        (RatingWhen.AFTER, after, ended),
    ):
        add(
            RatingRow,
            session_id=sid,
            when=when,
            scale="tension_0_10",
            value=value,
            t=t,
            source_seq=0,
            source_index=0,
        )
    n = int(SESSION_S / CURVE_STEP_S)
    t_s = [i * CURVE_STEP_S for i in range(n)]
    hr = np.round(rng.normal(72, 4, n), 1).tolist()
    scl = np.round(np.abs(rng.normal(5, 1, n)), 3).tolist()
    add(
        DisplayCurveRow,
        session_id=sid,
        series="hr_bpm",
        t_offset_s=t_s,
        values=hr,
        computed_at=ended,
    )
    add(
        DisplayCurveRow,
        session_id=sid,
        series="scl_us",
        t_offset_s=t_s,
        values=scl,
        computed_at=ended,
    )


def cached_store(cache: Path, n_sessions: int, n_subjects: int) -> Path:
    """The seeded store file, seeding it into the cache when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"api-v{SEED_VERSION}-{n_sessions}-{n_subjects}.sqlite3"
    if not path.exists():
        partial = path.with_suffix(".partial")
        for leftover in partial.parent.glob(partial.name + "*"):
            leftover.unlink()
        seed(partial, n_sessions, n_subjects)
        partial.rename(path)
    return path


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(db: Path, data_dir: Path, workers: int = 1) -> Iterator[str]:
    """``shuxin api run [--workers N]`` over ``db`` in a subprocess; yield its base URL."""
    port = _free_port()
    env = {**os.environ, "SHUXIN_API_TOKEN_SECRET": SECRET}
    command = [
        sys.executable,
        "-m",
        "shuxin.dashboard_api",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data",
        str(data_dir),
        "--sql",
        f"sqlite:///{db}",
        "--workers",
        str(workers),
    ]
    log = (data_dir / "api.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the API exited: {(data_dir / 'api.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Result:
    endpoint: str
    clients: int
    n: int
    errors: int
    error_statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    rps: float


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def _measure(
    base: str, token: str, name: str, path_of: Callable[[int], str], clients: int, total: int
) -> Result:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(total))
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as c:
        for i in range(min(clients, 4)):  # warm the connections and the caches
            await c.get(path_of(total + i))

        async def worker() -> None:
            for i in counter:
                t0 = time.perf_counter()
                try:
                    status = (await c.get(path_of(i))).status_code
                except httpx.TransportError:  # a dropped connection counts as status 0
                    status = 0
                latencies.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    statuses[status] = statuses.get(status, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return Result(
        name,
        clients,
        len(latencies),
        sum(statuses.values()),
        statuses,
        _percentile(latencies, 50),
        _percentile(latencies, 99),
        len(latencies) / wall,
    )


def _endpoints(
    stations: list[str], sessions: list[str], subjects: list[str]
) -> dict[str, Callable[[int], str]]:
    return {
        "list (unfiltered)": lambda _i: "/api/v1/sessions?limit=50",
        "list (station)": lambda i: (
            f"/api/v1/sessions?limit=50&station={stations[i % len(stations)]}"
        ),
        "detail": lambda i: f"/api/v1/sessions/{sessions[(i * 7919) % len(sessions)]}",
        "trends": lambda i: f"/api/v1/subjects/{subjects[(i * 104729) % len(subjects)]}/trends",
    }


def _samples(db: Path, n_subjects: int) -> tuple[list[str], list[str], list[str]]:
    import sqlite3

    with sqlite3.connect(db) as connection:
        stations = [r[0] for r in connection.execute("SELECT id FROM relief_station ORDER BY id")]
        sessions = [
            r[0] for r in connection.execute("SELECT id FROM session ORDER BY random() LIMIT 2000")
        ]
    return stations, sessions, [subject_code(i) for i in range(n_subjects)]


def _login(base: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": USERNAME, "password": PASSWORD}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# --------------------------------------------------------------------------- profiling


def profile(db: Path, data_dir: Path, endpoints: dict[str, Callable[[int], str]]) -> list[Any]:
    """In-process: per endpoint, median wall / SQL ms and statements per request; the plans
    of the list statements."""
    from fastapi.testclient import TestClient

    from shuxin.dashboard_api.app import build_services, create_app
    from shuxin.dashboard_api.settings import ApiSettings

    settings = ApiSettings(
        data_dir=data_dir,
        sql=SqlSettings(url=f"sqlite:///{db}"),
        token_secret=SECRET,
    )
    services = build_services(settings)
    engine = services.sql.engine
    statements: list[tuple[str, Any, float]] = []
    started: dict[int, float] = {}

    def _before(_conn: Any, cursor: Any, *_rest: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def _after(_conn: Any, cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        statements.append((statement, params, time.perf_counter() - started.pop(id(cursor))))

    # Reads go through the read-only engine, writes (logins, audit) through the store's: time
    # the statements of both.
    for instrumented in {id(e): e for e in (engine, services.read_engine)}.values():
        event.listen(instrumented, "before_cursor_execute", _before)
        event.listen(instrumented, "after_cursor_execute", _after)

    rows = []
    plans: dict[str, list[str]] = {}
    with TestClient(create_app(settings, services=services)) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": USERNAME, "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for name, path_of in endpoints.items():
            walls, sqls, counts = [], [], []
            for i in range(25):
                statements.clear()
                t0 = time.perf_counter()
                response = client.get(path_of(i), headers=headers)
                walls.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.text
                sqls.append(sum(s for _, _, s in statements) * 1000)
                counts.append(len(statements))
            rows.append(
                (name, statistics.median(walls), statistics.median(sqls), statistics.median(counts))
            )
            if name.startswith("list"):
                plans[name] = _plans(engine, list(statements))
    services.tsdb.close()
    services.sql.close()
    print("\nin-process profile (median of 25; TestClient, no network):")
    print(f"{'endpoint':20s} {'wall ms':>8s} {'SQL ms':>8s} {'stmts':>6s} {'non-SQL ms':>11s}")
    for name, wall, sql, count in rows:
        print(f"{name:20s} {wall:8.1f} {sql:8.1f} {count:6.0f} {wall - sql:11.1f}")
    for name, plan in plans.items():
        print(f"\nquery plans of {name}:")
        for line in plan:
            print("  " + line)
    return rows


def _plans(engine: Any, statements: list[tuple[str, Any, float]]) -> list[str]:
    out = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, params, seconds in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            out.append(f"[{seconds * 1000:.1f} ms] {' '.join(statement.split())[:160]}")
            for row in cursor.execute("EXPLAIN QUERY PLAN " + statement, params or ()):
                out.append(f"    {row[-1]}")
    finally:
        raw.close()
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "shuxin-bench-cache"
    )
    parser.add_argument("--requests", type=int, default=300, help="per endpoint and level")
    parser.add_argument("--clients", default="1,32", help="concurrency levels")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    source = cached_store(args.cache, args.sessions, args.subjects)
    with tempfile.TemporaryDirectory(prefix="shuxin-bench-api-") as tmp:
        work = Path(tmp)
        db = work / "api.sqlite3"
        shutil.copyfile(source, db)
        stations, sessions, subjects = _samples(db, args.subjects)
        endpoints = _endpoints(stations, sessions, subjects)
        results: list[Result] = []
        with api_server(db, work, args.workers) as base:
            token = _login(base)
            for clients in levels:
                for name, path_of in endpoints.items():
                    total = max(args.requests, clients * 4)
                    results.append(
                        asyncio.run(_measure(base, token, name, path_of, clients, total))
                    )
        print(
            f"\nAPI over {args.sessions} sessions, {args.subjects} subjects, 50 stations; "
            f"uvicorn {args.workers} process(es); counselor at the 支队 root; "
            f"{os.cpu_count()} CPUs"
        )
        print(
            f"{'endpoint':20s} {'clients':>7s} {'n':>5s} {'err':>4s} {'p50 ms':>8s} "
            f"{'p99 ms':>8s} {'req/s':>7s}"
        )
        for r in results:
            print(
                f"{r.endpoint:20s} {r.clients:7d} {r.n:5d} {r.errors:4d} {r.p50_ms:8.1f} "
                f"{r.p99_ms:8.1f} {r.rps:7.1f}"
            )
        top = max(levels)
        judged = [r for r in results if r.clients == top and not r.endpoint.startswith("trends")]
        met = all(r.p99_ms < GOAL_P99_MS and r.errors == 0 for r in judged)
        print(
            f"goal p99 < {GOAL_P99_MS:.0f} ms for list and detail at {top} clients: "
            f"{'met' if met else 'NOT met'}"
        )
        profiled = [] if args.no_profile else profile(db, work, endpoints)
        print(
            json.dumps(
                {
                    "bench": "api",
                    "sessions": args.sessions,
                    "subjects": args.subjects,
                    "cpus": os.cpu_count(),
                    "workers": args.workers,
                    "goal_p99_ms": GOAL_P99_MS,
                    "goal_met": met,
                    "results": [r.__dict__ for r in results],
                    "profile": [
                        {
                            "endpoint": n,
                            "wall_ms": round(w, 2),
                            "sql_ms": round(s, 2),
                            "statements": c,
                        }
                        for n, w, s, c in profiled
                    ],
                },
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    main()
