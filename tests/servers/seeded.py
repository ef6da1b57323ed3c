"""pytest fixture plugin: a gateway SQLite store seeded with simulated history.

``seeded_gateway_db`` (session scope) builds, once per test run in a temporary directory, a
grid 支队 → 2 大队 → 3 站, a small cohort of pseudonymous subjects and four weeks of their
sessions, produced by ``shuxin.edge.sim_history`` through the real edge pipeline and ingested
by the real gateway code (``build_gateway`` → ``Ingest.handle_batch``: SQL, time series,
summaries, advisory alerts). It returns a frozen :class:`SeededGatewayDb`; tests open the
stores themselves (read-only use: the fixture is shared by the whole run).

This module must not write rows by hand; everything in the store came through ingest.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

#: The seeded history: fixed seed and end so every run builds the same store.
SEED = 20261123
WEEKS = 4
SUBJECTS = 6
DECLINING = 2
PHASE_SCALE = 0.25
HISTORY_END = datetime(2026, 11, 23, tzinfo=UTC)
#: Mostly short rest measurements keep the build quick; the others give full session reports.
PROTOCOL_WEIGHTS = {"rest-resonance-recovery": 0.3, "vr-relaxation": 0.1, "rest-only": 0.6}


@dataclass(frozen=True, slots=True)
class SeededGatewayDb:
    """Where the seeded stores are and what they hold."""

    data_dir: Path
    sql_url: str
    timeseries_path: Path
    detachment_id: int
    detachment_code: str
    brigade_ids: dict[str, int]
    station_unit_ids: dict[str, int]
    station_ids: tuple[str, ...]
    subject_codes: tuple[str, ...]
    declining_subjects: tuple[str, ...]
    stable_subjects: tuple[str, ...]
    #: Subject code → kinds of advisory alert opened for it (``watch``, ``check_in``).
    alerts_by_subject: dict[str, tuple[str, ...]]
    session_ids: tuple[str, ...]
    history_end: datetime


def build_seeded_gateway_db(data_dir: Path) -> SeededGatewayDb:
    """Build the seeded store in ``data_dir`` (what the fixture calls; usable on its own)."""
    from shuxin.edge.sim_history import DEFAULT_GRID, build_seeded_gateway, plan_history

    stations = tuple(DEFAULT_GRID)
    plan = plan_history(
        stations,
        weeks=WEEKS,
        subjects=SUBJECTS,
        seed=SEED,
        end=HISTORY_END,
        declining=DECLINING,
        protocol_weights=PROTOCOL_WEIGHTS,
    )
    timeseries = data_dir / "timeseries.sqlite3"
    gateway, tree, _ = build_seeded_gateway(
        data_dir, plan, tsdb_url=f"sqlite:///{timeseries}", phase_scale=PHASE_SCALE
    )
    try:
        sql_url = gateway.settings.sql.resolved_url(data_dir)
        alerts: dict[str, list[str]] = {}
        for alert in gateway.sql.list_alerts(tree.detachment_id):
            if alert.subject_code is not None:
                alerts.setdefault(alert.subject_code, []).append(str(alert.kind.value))
        sessions = gateway.sql.list_sessions(tree.detachment_id, limit=10_000)
    finally:
        gateway.close()
    return SeededGatewayDb(
        data_dir=data_dir,
        sql_url=sql_url,
        timeseries_path=timeseries,
        detachment_id=tree.detachment_id,
        detachment_code=tree.detachment_code,
        brigade_ids=dict(tree.brigade_ids),
        station_unit_ids=dict(tree.station_unit_ids),
        station_ids=stations,
        subject_codes=tuple(s.code for s in plan.cohort),
        declining_subjects=plan.declining,
        stable_subjects=plan.stable,
        alerts_by_subject={k: tuple(sorted(v)) for k, v in alerts.items()},
        session_ids=tuple(s.id for s in sessions),
        history_end=HISTORY_END,
    )


@pytest.fixture(scope="session")
def seeded_gateway_db() -> Iterator[SeededGatewayDb]:
    """A gateway SQLite store with four weeks of simulated history (built once per run)."""
    root = Path(tempfile.mkdtemp(prefix="shuxin-seeded-"))
    try:
        yield build_seeded_gateway_db(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
