"""Session summaries from arrays (pure) and through the SQL and SQLite time-series stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shuxin.contract.messages import ClockInfo, LifecycleMessage, PhasePlan, ProtocolRef
from shuxin.gateway.sql_models import OrgUnitKind
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import WHOLE_SESSION, open_store
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.summaries import PhaseWindow, summarize_arrays, summarize_session
from shuxin.gateway.timeseries import Point, epoch_us
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.hrv_report import hrv_report
from shuxin.signal.rr_simulate import rr_simulate

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PLAN = (("baseline", "baseline", 0, 300, None), ("resonance", "training", 300, 900, 6.0),
        ("recovery", "recovery", 900, 1200, None))  # fmt: skip


def _protocol_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sim = rr_simulate(
        1200, np.random.default_rng(4), breathing_schedule=[(0, 12.0), (300, 6.0), (900, 12.0)]
    )
    beat_us = epoch_us(T0) + np.round(np.cumsum(sim.rr_ms) * 1000).astype(np.int64)
    eda = eda_simulate(1200.0, 8.0, np.random.default_rng(5))
    eda_t = epoch_us(T0) + np.round(np.arange(eda.eda_us.size) * 125_000).astype(np.int64)
    return beat_us, sim.rr_ms, eda_t, eda.eda_us


def _windows() -> list[PhaseWindow]:
    return [
        PhaseWindow(i, name, kind, T0 + timedelta(seconds=a), T0 + timedelta(seconds=b), pacer)
        for i, (name, kind, a, b, pacer) in enumerate(PLAN)
    ]


def test_resonance_phase_is_more_coherent_and_deltas_say_so() -> None:
    beat_us, rr_ms, eda_t, eda_us = _protocol_data()
    result = summarize_arrays(_windows(), beat_us, rr_ms, eda_t, eda_us)
    baseline, training, recovery = result.phases
    assert training.metrics["coherence_ratio"] > 2 * baseline.metrics["coherence_ratio"]
    # Resonance breathing: the breathing rate from RSA is the paced 6/min (±0.5/min).
    assert training.metrics["resp_rate_bpm"] == pytest.approx(6.0, abs=0.5)
    delta = result.deltas["training_minus_baseline"]
    assert delta["coherence_ratio"] == pytest.approx(
        training.metrics["coherence_ratio"] - baseline.metrics["coherence_ratio"]
    )
    assert "recovery_minus_baseline" in result.deltas
    assert recovery.metrics["scl_mean_us"] is not None
    assert result.whole.index == WHOLE_SESSION
    assert result.whole.metrics["n_beats"] == pytest.approx(rr_ms.size, abs=3)
    assert set(result.curves) == {"hr_bpm", "rmssd_ms", "coherence_ratio", "scl_us"}


def test_phase_numbers_equal_the_signal_core_run_offline() -> None:
    beat_us, rr_ms, eda_t, eda_us = _protocol_data()
    result = summarize_arrays(_windows(), beat_us, rr_ms, eda_t, eda_us)
    lo, hi = epoch_us(T0), epoch_us(T0 + timedelta(seconds=300))
    offline = hrv_report(rr_ms[(beat_us >= lo) & (beat_us < hi)])
    assert result.phases[0].metrics["rmssd_ms"] == offline.summary.rmssd_ms
    assert result.phases[0].metrics["coherence_ratio"] == offline.coherence_ratio


def test_a_phase_too_short_is_suppressed_with_a_reason() -> None:
    beat_us, rr_ms, eda_t, eda_us = _protocol_data()
    short = [PhaseWindow(0, "blink", "rest", T0, T0 + timedelta(seconds=8))]
    result = summarize_arrays(short, beat_us, rr_ms, eda_t, eda_us)
    assert result.phases[0].metrics == {}
    assert "needs 30" in result.phases[0].quality["hrv"]
    assert result.phases[0].quality["eda"] == "too short"


def test_summarize_session_stores_idempotently(tmp_path: Path) -> None:
    sql = open_store(SqlSettings(), tmp_path)
    tsdb = SqliteStore(tmp_path / "ts.sqlite3")
    try:
        unit = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "支队")
        station_unit = sql.create_org_unit(OrgUnitKind.BRIGADE, "DD", "大队", unit.id)
        st = sql.create_org_unit(OrgUnitKind.STATION, "ZA", "站", station_unit.id)
        sql.register_station("st-a", org_unit_id=st.id, display_name="甲站")
        end = T0 + timedelta(seconds=1200)
        for seq, event in enumerate(("start", "end")):
            sql.apply_lifecycle(
                LifecycleMessage(
                    schema_=1, station="st-a", session="st-a-20261123-0900", seq=seq,
                    sent_at=T0, clock=ClockInfo(offset_ms=0.0, source="ntp"),
                    stream="lifecycle", event=event, subject="S-7F3K2Q",
                    protocol=ProtocolRef(id="rest-resonance-recovery", version="1"),
                    phases=[
                        PhasePlan(name=n, kind=k, duration_s=b - a, pacer_bpm=p)  # type: ignore[arg-type]
                        for n, k, a, b, p in PLAN
                    ],
                    devices=["h10-1", "gsr-1"], started_at=T0,
                    ended_at=None if event == "start" else end,
                )
            )  # fmt: skip
        beat_us, rr_ms, eda_t, eda_us = _protocol_data()
        tsdb.write(
            [Point.make("rr", {"station": "st-a", "device": "h10-1", "source": "sim"},
                        {"rr_ms": float(v)}, int(t)) for t, v in zip(beat_us, rr_ms, strict=True)]
            + [Point.make("eda", {"station": "st-a", "device": "gsr-1"},
                          {"eda_us": float(v)}, int(t)) for t, v in zip(eda_t, eda_us, strict=True)]
        )  # fmt: skip
        first = summarize_session("st-a-20261123-0900", sql, tsdb)
        again = summarize_session("st-a-20261123-0900", sql, tsdb)
        stored = sql.summaries("st-a-20261123-0900")
        assert len(stored) == 4  # three phases and the whole session, once each
        assert first.phases[1].metrics == again.phases[1].metrics
        whole = next(s for s in stored if s.phase_index == WHOLE_SESSION)
        assert "training_minus_baseline" in whole.metrics["deltas"]
        assert whole.protocol_version == "1"
        assert {c.series for c in sql.curves("st-a-20261123-0900")} == {
            "hr_bpm",
            "rmssd_ms",
            "coherence_ratio",
            "scl_us",
        }
    finally:
        tsdb.close()
        sql.close()


def test_reprocess_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shuxin.cli.main import main

    test_summarize_session_stores_idempotently(tmp_path)  # leaves a stored session behind
    args = ["gateway", "reprocess", "st-a-20261123-0900", "--data", str(tmp_path),
            "--tsdb", f"sqlite:///{tmp_path / 'ts.sqlite3'}"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["phase"] for row in document["phases"]] == [
        "baseline", "resonance", "recovery", "(whole session)"
    ]  # fmt: skip
    assert main(["gateway", "reprocess", "st-a-20261123-9999", "--data", str(tmp_path)]) == 2
    assert "st-a-20261123-9999" in capsys.readouterr().err


def test_summary_sink_opens_a_check_in_after_three_low_resting_sessions(tmp_path: Path) -> None:
    from rest_session import store_rest_session

    from shuxin.gateway.summaries import SummarySink, resting_history

    sql = open_store(SqlSettings(), tmp_path)
    tsdb = SqliteStore(tmp_path / "ts.sqlite3")
    sink = SummarySink(sql, tsdb)
    try:
        root = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "支队")
        brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, "DD", "大队", root.id)
        st = sql.create_org_unit(OrgUnitKind.STATION, "ZA", "站", brigade.id)
        sql.register_station("st-a", org_unit_id=st.id, display_name="甲站")
        for day in range(12):
            # Eight relaxed weeks of rest, then three sessions under high stress.
            store_rest_session(
                sql, tsdb, sink, session=f"st-a-202611{day + 1:02d}-0800",
                start=T0 + timedelta(days=day), duration_s=300,
                stress=0.9 if day >= 9 else 0.0, seed=day,
            )  # fmt: skip
        history = resting_history(sql, "S-7F3K2Q")
        assert len(history) == 12
        assert all(value.quality_passed for value in history)
        alerts = {a.kind.value: a for a in sql.list_alerts(root.id)}
        # Three low values in a row: a check-in; they also pull the 5-value mean below
        # baseline − 0.5 SD: a watch. Both are advisory and explained.
        assert set(alerts) == {"check_in", "watch"}
        assert all(a.explanation["advisory"] is True for a in alerts.values())
        assert sink.counters.summarised == 12
        assert sink.counters.failed == 0
    finally:
        tsdb.close()
        sql.close()
