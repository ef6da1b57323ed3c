"""Advisory alerts: watch / check-in fire exactly when the rules say, with hysteresis.

Sequences of resting lnRMSSD values are hand-built so each rule's boundary is crossed (or not)
by a wide margin; the baseline values alternate 3.4 / 3.6 (mean 3.5, sample SD ≈ 0.105 for 6
values), so "mean − 0.5 SD" ≈ 3.447 and "z ≤ −1.5" ≈ ≤ 3.34. The SQL part uses a real SQLite
store. Subjects are pseudonymous codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shuxin.gateway.alerts import (
    CHECK_IN_Z,
    AdvisoryEvaluation,
    RestingValue,
    evaluate_advisory,
    raise_advisory_alerts,
)
from shuxin.gateway.identity_crypto import IdentityCipher
from shuxin.gateway.sql_engine import make_engine, upgrade
from shuxin.gateway.sql_models import AlertKind, AlertState, OrgUnitKind, Role
from shuxin.gateway.sql_store import SqlStore

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
SUBJECT = "S-7F3K2"
BASELINE = [3.4, 3.6, 3.4, 3.6, 3.4, 3.6]


def history(values: list[float], invalid: frozenset[int] = frozenset()) -> list[RestingValue]:
    return [
        RestingValue(
            session_id=f"st-1-2026-{i:04d}",
            t=T0 + timedelta(days=i),
            ln_rmssd=v,
            quality_passed=i not in invalid,
            quality={"artifact_pct": 1.0},
        )
        for i, v in enumerate(values)
    ]


def kinds(evaluation: AdvisoryEvaluation) -> set[AlertKind]:
    return {d.kind for d in evaluation.decisions}


def test_insufficient_history_raises_nothing() -> None:
    # 4 valid values, then very low ones: the reference never reaches 5 valid values.
    result = evaluate_advisory(history([3.4, 3.6, 3.4, 3.6, 2.0, 2.0, 2.0]))
    assert kinds(result) == set()
    assert "check_in: insufficient history" in result.notes
    assert "watch: insufficient history" in result.notes
    # the same run after 5 reference values does raise a check-in (the boundary).
    enough = evaluate_advisory(history([3.4, 3.6, 3.4, 3.6, 3.4, 2.0, 2.0, 2.0]))
    assert kinds(enough) == {AlertKind.CHECK_IN}


def test_invalid_values_do_not_count_towards_history() -> None:
    values = [*BASELINE, 2.0, 2.0, 2.0]
    assert AlertKind.CHECK_IN in kinds(evaluate_advisory(history(values)))
    # two baseline values failing quality leave 4 valid references: nothing.
    result = evaluate_advisory(history(values, invalid=frozenset({0, 1})))
    assert kinds(result) == set()


def test_check_in_after_exactly_three_consecutive_low_values() -> None:
    two = evaluate_advisory(history([*BASELINE, 3.5, 2.0, 2.0]))
    assert AlertKind.CHECK_IN not in kinds(two)
    three = evaluate_advisory(history([*BASELINE, 3.5, 2.0, 2.0, 2.0]))
    assert AlertKind.CHECK_IN in kinds(three)
    decision = next(d for d in three.decisions if d.kind is AlertKind.CHECK_IN)
    run = decision.explanation["inputs"]["run"]
    assert len(run) == 3
    assert all(r["z"] <= CHECK_IN_Z for r in run)
    for key in ("inputs", "baseline", "thresholds", "quality"):
        assert key in decision.explanation
    assert "建议回访" in decision.explanation["message"]
    assert decision.explanation["advisory"] is True


def test_an_invalid_value_does_not_break_a_run_and_a_normal_one_does() -> None:
    skipped = history([*BASELINE, 2.0, 9.9, 2.0, 2.0], invalid=frozenset({7}))
    assert AlertKind.CHECK_IN in kinds(evaluate_advisory(skipped))
    broken = history([*BASELINE, 2.0, 3.5, 2.0, 2.0])
    assert AlertKind.CHECK_IN not in kinds(evaluate_advisory(broken))


def test_watch_when_the_window_mean_drops_below_half_an_sd() -> None:
    # window of 5 at mean 3.40 < 3.5 − 0.5·0.1095 = 3.445; no single value reaches z ≤ −1.5.
    low = evaluate_advisory(history([*BASELINE, 3.4, 3.4, 3.4, 3.4, 3.4]))
    assert kinds(low) == {AlertKind.WATCH}
    decision = low.decisions[0]
    # default approx (rel 1e-6): the mean of five equal floats differs only by rounding.
    assert decision.explanation["inputs"]["window_mean_ln_rmssd"] == pytest.approx(3.4)
    assert decision.explanation["baseline"]["n"] == len(BASELINE)
    assert "建议关注" in decision.explanation["message"]
    # window mean 3.48 is above the limit: no watch.
    near = evaluate_advisory(history([*BASELINE, 3.5, 3.5, 3.4, 3.5, 3.5]))
    assert kinds(near) == set()
    assert AlertKind.WATCH in near.cleared
    # only 4 values after the reference: insufficient for watch.
    short = evaluate_advisory(history([*BASELINE[:5], 3.3, 3.3, 3.3, 3.3]))
    assert AlertKind.WATCH not in kinds(short)


def test_hysteresis_open_alert_blocks_and_resolution_needs_a_newer_value() -> None:
    values = history([*BASELINE, 2.0, 2.0, 2.0])
    blocked = evaluate_advisory(values, unresolved={AlertKind.CHECK_IN})
    assert AlertKind.CHECK_IN not in kinds(blocked)
    resolved_after = evaluate_advisory(
        values, resolved_at={AlertKind.CHECK_IN: values[-1].t + timedelta(hours=1)}
    )
    assert AlertKind.CHECK_IN not in kinds(resolved_after)
    resolved_before = evaluate_advisory(
        values, resolved_at={AlertKind.CHECK_IN: values[-1].t - timedelta(hours=1)}
    )
    assert AlertKind.CHECK_IN in kinds(resolved_before)


# --------------------------------------------------------------------------- SQL


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    upgrade(engine)
    cipher = IdentityCipher({"k1": AESGCM.generate_key(bit_length=256)}, "k1")
    sql = SqlStore(engine, cipher)
    yield sql
    sql.close()


def test_alerts_open_once_and_are_never_resolved_by_the_evaluator(store: SqlStore) -> None:
    unit = store.create_org_unit(OrgUnitKind.DETACHMENT, "D01", "某市消防救援支队")
    store.register_subject(SUBJECT, unit.id)
    admin = store.create_user("admin-1", role=Role.ADMIN, org_unit_id=unit.id)
    values = history([*BASELINE, 2.0, 2.0, 2.0])
    now = values[-1].t + timedelta(minutes=5)

    _, opened = raise_advisory_alerts(store, SUBJECT, values, now=now)
    assert [a.kind for a in opened] == [AlertKind.CHECK_IN]
    assert opened[0].explanation["thresholds"]["z_at_most"] == CHECK_IN_Z

    # evaluated again (e.g. reprocessing): no second alert, and the first stays open.
    _, again = raise_advisory_alerts(store, SUBJECT, values, now=now)
    assert again == []
    # back to normal: the clear condition holds but the alert stays open until a person acts.
    recovered = history([*BASELINE, 2.0, 2.0, 2.0, 3.6])
    evaluation, later = raise_advisory_alerts(store, SUBJECT, recovered, now=now)
    # (the 5-value window still holds the three lows, so watch rightly opens now)
    assert [a.kind for a in later] == [AlertKind.WATCH]
    assert AlertKind.CHECK_IN in evaluation.cleared
    states = {a.kind: a.state for a in store.list_alerts(unit.id)}
    assert states == {AlertKind.CHECK_IN: AlertState.OPEN, AlertKind.WATCH: AlertState.OPEN}

    store.resolve_alert(opened[0].id, user_id=admin.id, note="已回访", at=now)
    _, after = raise_advisory_alerts(store, SUBJECT, values, now=now)
    assert after == []  # no valid value newer than the resolution
    newer = history([*BASELINE, 2.0, 2.0, 2.0, 2.0])
    newer[-1] = RestingValue(newer[-1].session_id, now + timedelta(days=1), 2.0, True)
    _, reopened = raise_advisory_alerts(store, SUBJECT, newer, now=now + timedelta(days=1))
    assert [a.kind for a in reopened] == [AlertKind.CHECK_IN]
