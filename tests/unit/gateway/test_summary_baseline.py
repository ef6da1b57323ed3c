"""Personal-baseline z-scores in session summaries: the pure rule, and through the SQL store
(present only after five valid earlier sessions; reprocessing later gives the same result)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rest_session import store_rest_session

from shuxin.gateway.alerts import RestingValue, personal_baseline_change
from shuxin.gateway.sql_models import OrgUnitKind
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import open_store
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.summaries import SummarySink, summarize_session

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _value(day: int, ln_rmssd: float, hr: float | None, passed: bool = True) -> RestingValue:
    return RestingValue(f"st-a-202611{day + 1:02d}-0800", T0 + timedelta(days=day), ln_rmssd,
                        passed, {}, hr)  # fmt: skip


def test_needs_five_valid_earlier_values() -> None:
    history = [_value(d, 3.5 + 0.1 * d, 70.0 + d) for d in range(4)]
    history.append(_value(4, 9.9, 99.0, passed=False))  # invalid: does not count
    assert personal_baseline_change(history, before=T0 + timedelta(days=9), ln_rmssd=3.0,
                                    mean_hr_bpm=80.0) is None  # fmt: skip
    history.append(_value(5, 3.9, 75.0))
    change = personal_baseline_change(
        history, before=T0 + timedelta(days=9), ln_rmssd=3.0, mean_hr_bpm=80.0
    )
    assert change is not None
    ln_values = [3.5, 3.6, 3.7, 3.8, 3.9]
    mean = sum(ln_values) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in ln_values) / 4)
    # 1e-12: the same arithmetic in a different order (fsum vs sum) on five numbers.
    assert math.isclose(change["ln_rmssd"]["z"], (3.0 - mean) / sd, abs_tol=1e-12)
    assert change["ln_rmssd"]["n"] == 5
    # 70, 71, 72, 73 and 75 bpm (the invalid 99 bpm is skipped).
    assert math.isclose(change["mean_hr_bpm"]["mean"], 72.2, abs_tol=1e-12)
    assert change["mean_hr_bpm"]["z"] > 0  # 80 bpm is above every earlier value
    assert "ddof=1" in change["method"]


def test_only_values_before_the_session_count() -> None:
    history = [_value(d, 3.5 + 0.1 * (d % 3), 70.0) for d in range(8)]
    before = T0 + timedelta(days=5)  # values of days 0..4 only
    change = personal_baseline_change(history, before=before, ln_rmssd=3.2, mean_hr_bpm=70.0)
    later = personal_baseline_change([*history, _value(20, 1.0, 90.0)], before=before,
                                     ln_rmssd=3.2, mean_hr_bpm=70.0)  # fmt: skip
    assert change is not None
    assert change == later
    assert change["ln_rmssd"]["n"] == 5
    assert change["mean_hr_bpm"] is None  # zero spread: no z-score can be formed


def test_stored_in_the_resting_phase_and_stable_under_reprocessing(tmp_path: Path) -> None:
    sql = open_store(SqlSettings(), tmp_path)
    tsdb = SqliteStore(tmp_path / "ts.sqlite3")
    sink = SummarySink(sql, tsdb)
    try:
        root = sql.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "支队")
        brigade = sql.create_org_unit(OrgUnitKind.BRIGADE, "DD", "大队", root.id)
        st = sql.create_org_unit(OrgUnitKind.STATION, "ZA", "站", brigade.id)
        sql.register_station("st-a", org_unit_id=st.id, display_name="甲站")
        sessions = []
        for day in range(7):
            session = f"st-a-202611{day + 1:02d}-0800"
            sessions.append(session)
            store_rest_session(
                sql, tsdb, sink, session=session, start=T0 + timedelta(days=day),
                duration_s=120, stress=0.9 if day == 5 else 0.0, seed=day,
            )  # fmt: skip

        def resting(session: str) -> dict[str, object]:
            return dict(next(s for s in sql.summaries(session) if s.phase_index == 0).metrics)

        for session in sessions[:5]:
            assert "personal_baseline" not in resting(session)
        stressed = resting(sessions[5])["personal_baseline"]
        assert isinstance(stressed, dict)
        assert stressed["ln_rmssd"]["n"] == 5
        assert stressed["ln_rmssd"]["z"] < -1.5  # high stress lowers vagal tone markedly
        assert stressed["mean_hr_bpm"]["z"] > 0
        # Reprocessing session 6 now that session 7 exists changes nothing.
        summarize_session(sessions[5], sql, tsdb)
        assert resting(sessions[5])["personal_baseline"] == stressed
        assert resting(sessions[6])["personal_baseline"]["ln_rmssd"]["n"] == 6  # type: ignore[index]
    finally:
        tsdb.close()
        sql.close()
