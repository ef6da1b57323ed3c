"""Advisory alerts from a subject's resting lnRMSSD history: "watch" (建议关注) and
"check-in" (建议回访).

These are advisory prompts for a person to look at or call on someone — never a diagnosis,
never a crisis flag (DESIGN §1). This module must not resolve, acknowledge or close alerts: only
a person does that through the SQL store. It must not read raw beats: it works on the resting
values the session summaries already computed.

Rules (issue 5, item 5), with the choices made here:

- Only *valid* resting values count: a session's baseline phase whose summary passed quality.
  Invalid values are skipped; they neither trigger nor break a run.
- **Personal baseline** of a value = mean and sample SD (ddof=1) of up to
  :data:`BASELINE_MAX` valid values *before* it. Nothing is evaluated until at least
  :data:`MIN_BASELINE` (5) valid values exist in that reference ("insufficient history"); a
  reference with zero spread cannot give z-scores and is treated the same way.
- **watch**: the mean of the last :data:`WATCH_WINDOW` (5) valid values is below
  baseline mean − :data:`WATCH_SD` (0.5) SD, the baseline taken from the valid values before
  that window (so the window never dilutes its own reference). Needs ≥ 5 + 5 valid values.
- **check-in**: the last :data:`CHECK_IN_RUN` (3) consecutive valid values each have
  z ≤ :data:`CHECK_IN_Z` (−1.5), all three against the same reference: the valid values before
  the run (a reference that took in the run's own earlier low values would inflate its SD and,
  with short histories, make z ≤ −1.5 unreachable).
- **Hysteresis**: no new alert of a kind while one is open or acknowledged for the subject;
  after a person resolves one, a new one needs the condition to hold on a valid value *newer*
  than the resolution time.
- **Clear condition** (reported, never acted on): watch clears when the window mean is back at
  or above baseline mean − :data:`WATCH_CLEAR_SD` (0.25) SD; check-in clears when the newest
  valid z is above :data:`CHECK_IN_CLEAR_Z` (−1.0). The evaluation says so in ``cleared`` so a
  dashboard can suggest resolving; it is still a person who resolves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from shuxin.gateway.sql_models import AlertKind, AlertState
from shuxin.gateway.sql_store import Alert, SqlStore

MIN_BASELINE: Final = 5
BASELINE_MAX: Final = 30
WATCH_WINDOW: Final = 5
WATCH_SD: Final = 0.5
WATCH_CLEAR_SD: Final = 0.25
CHECK_IN_RUN: Final = 3
CHECK_IN_Z: Final = -1.5
CHECK_IN_CLEAR_Z: Final = -1.0
RULES_VERSION: Final = "advisory-1"

WORDING: Final[Mapping[AlertKind, str]] = {
    AlertKind.WATCH: "建议关注：近期静息 lnRMSSD 均值低于个人基线（仅供参考，非诊断）",
    AlertKind.CHECK_IN: "建议回访：连续多次静息 lnRMSSD 明显低于个人基线（仅供参考，非诊断）",
}


@dataclass(frozen=True, slots=True)
class RestingValue:
    """One session's resting (baseline-phase) lnRMSSD with its quality verdict."""

    session_id: str
    t: datetime
    ln_rmssd: float
    quality_passed: bool
    quality: Mapping[str, Any] = field(default_factory=dict)
    mean_hr_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class AdvisoryDecision:
    """An alert to open: its kind and the explanation stored with it."""

    kind: AlertKind
    explanation: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AdvisoryEvaluation:
    """What one evaluation found: alerts to open, kinds whose clear condition holds, notes."""

    decisions: tuple[AdvisoryDecision, ...]
    cleared: frozenset[AlertKind]
    notes: tuple[str, ...]


def _stats(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean and sample SD of the last ``BASELINE_MAX`` values, or None when unusable."""
    ref = list(values)[-BASELINE_MAX:]
    if len(ref) < MIN_BASELINE:
        return None
    mean = math.fsum(ref) / len(ref)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in ref) / (len(ref) - 1))
    if not math.isfinite(sd) or sd <= 0.0:
        return None
    return mean, sd


def _baseline_doc(values: Sequence[float], stats: tuple[float, float]) -> dict[str, Any]:
    return {"n": min(len(values), BASELINE_MAX), "mean_ln_rmssd": stats[0], "sd": stats[1]}


#: How :func:`personal_baseline_change` scores a value (stored with the result).
BASELINE_METHOD: Final = (
    "z = (value - mean) / SD; mean and sample SD (ddof=1) of the last "
    f"{BASELINE_MAX} quality-passed resting values of sessions that started before this one; "
    f"only with >= {MIN_BASELINE} such values"
)


def personal_baseline_change(
    history: Sequence[RestingValue],
    *,
    before: datetime,
    ln_rmssd: float | None,
    mean_hr_bpm: float | None,
) -> dict[str, Any] | None:
    """Z-scores of one session's resting lnRMSSD and mean HR against the personal baseline.

    The reference is the valid (quality-passed) values of ``history`` with ``t < before``
    (the sessions that started before the scored one), so reprocessing later gives the same
    answer. Statistics as the alert rules (:data:`BASELINE_MAX`, :data:`MIN_BASELINE`,
    ddof = 1). Returns None when neither metric has a usable reference; otherwise
    ``{"method", "ln_rmssd": {...} | None, "mean_hr_bpm": {...} | None}`` where each part is
    ``{"n", "mean", "sd", "value", "z"}``.
    """
    earlier = sorted(
        (v for v in history if v.quality_passed and math.isfinite(v.ln_rmssd) and v.t < before),
        key=lambda v: v.t,
    )

    def part(values: Sequence[float], value: float | None) -> dict[str, Any] | None:
        stats = _stats(values)
        if stats is None or value is None or not math.isfinite(value):
            return None
        mean, sd = stats
        return {
            "n": min(len(values), BASELINE_MAX),
            "mean": mean,
            "sd": sd,
            "value": value,
            "z": (value - mean) / sd,
        }

    ln_part = part([v.ln_rmssd for v in earlier], ln_rmssd)
    hr_values = [
        v.mean_hr_bpm for v in earlier if v.mean_hr_bpm is not None and math.isfinite(v.mean_hr_bpm)
    ]
    hr_part = part(hr_values, mean_hr_bpm)
    if ln_part is None and hr_part is None:
        return None
    return {"method": BASELINE_METHOD, "ln_rmssd": ln_part, "mean_hr_bpm": hr_part}


def evaluate_advisory(
    history: Sequence[RestingValue],
    *,
    unresolved: Iterable[AlertKind] = (),
    resolved_at: Mapping[AlertKind, datetime] | None = None,
) -> AdvisoryEvaluation:
    """Apply the watch / check-in rules to a subject's resting history (pure).

    ``history`` is in any order (sorted here by time). ``unresolved`` are the kinds with an open
    or acknowledged alert; ``resolved_at`` the latest resolution time per kind.
    """
    valid = sorted(
        (v for v in history if v.quality_passed and math.isfinite(v.ln_rmssd)),
        key=lambda v: v.t,
    )
    blocked = frozenset(unresolved)
    resolved = dict(resolved_at or {})
    decisions: list[AdvisoryDecision] = []
    cleared: set[AlertKind] = set()
    notes: list[str] = []
    values = [v.ln_rmssd for v in valid]
    newest = valid[-1] if valid else None
    skipped = sum(1 for v in history if not v.quality_passed)

    def rearmed(kind: AlertKind) -> bool:
        if kind in blocked:
            notes.append(f"{kind.value}: an alert is already open or acknowledged")
            return False
        at = resolved.get(kind)
        if at is not None and newest is not None and newest.t <= at:
            notes.append(f"{kind.value}: no valid value since the last resolution")
            return False
        return True

    def quality_doc(used: Sequence[RestingValue]) -> dict[str, Any]:
        return {
            "valid_values": len(valid),
            "skipped_invalid": skipped,
            "inputs_quality": {v.session_id: dict(v.quality) for v in used},
        }

    # watch
    window = valid[-WATCH_WINDOW:]
    ref_values = values[: len(values) - WATCH_WINDOW] if len(values) > WATCH_WINDOW else []
    ref = _stats(ref_values)
    if len(window) < WATCH_WINDOW or ref is None:
        notes.append("watch: insufficient history")
    else:
        mean_w = math.fsum(v.ln_rmssd for v in window) / WATCH_WINDOW
        limit = ref[0] - WATCH_SD * ref[1]
        if mean_w >= ref[0] - WATCH_CLEAR_SD * ref[1]:
            cleared.add(AlertKind.WATCH)
        if mean_w < limit and rearmed(AlertKind.WATCH):
            decisions.append(
                AdvisoryDecision(
                    AlertKind.WATCH,
                    {
                        "message": WORDING[AlertKind.WATCH],
                        "advisory": True,
                        "rules_version": RULES_VERSION,
                        "inputs": {
                            "window": [[v.session_id, v.ln_rmssd] for v in window],
                            "window_mean_ln_rmssd": mean_w,
                        },
                        "baseline": _baseline_doc(ref_values, ref),
                        "thresholds": {
                            "window": WATCH_WINDOW,
                            "below_mean_sd": WATCH_SD,
                            "limit_ln_rmssd": limit,
                            "clear_below_mean_sd": WATCH_CLEAR_SD,
                        },
                        "quality": quality_doc(window),
                    },
                )
            )

    # check-in
    run: list[dict[str, Any]] = []
    run_ref_values = values[: len(values) - CHECK_IN_RUN] if len(values) > CHECK_IN_RUN else []
    run_ref = _stats(run_ref_values)
    if run_ref is not None and len(valid) >= CHECK_IN_RUN:
        run = [
            {
                "session_id": v.session_id,
                "ln_rmssd": v.ln_rmssd,
                "z": (v.ln_rmssd - run_ref[0]) / run_ref[1],
            }
            for v in valid[-CHECK_IN_RUN:]
        ]
    if run_ref is None or len(run) < CHECK_IN_RUN:
        notes.append("check_in: insufficient history")
    else:
        if run[-1]["z"] > CHECK_IN_CLEAR_Z:
            cleared.add(AlertKind.CHECK_IN)
        if all(r["z"] <= CHECK_IN_Z for r in run) and rearmed(AlertKind.CHECK_IN):
            decisions.append(
                AdvisoryDecision(
                    AlertKind.CHECK_IN,
                    {
                        "message": WORDING[AlertKind.CHECK_IN],
                        "advisory": True,
                        "rules_version": RULES_VERSION,
                        "inputs": {"run": run},
                        "baseline": _baseline_doc(run_ref_values, run_ref),
                        "thresholds": {
                            "consecutive": CHECK_IN_RUN,
                            "z_at_most": CHECK_IN_Z,
                            "clear_z_above": CHECK_IN_CLEAR_Z,
                        },
                        "quality": quality_doc(valid[-CHECK_IN_RUN:]),
                    },
                )
            )
    return AdvisoryEvaluation(tuple(decisions), frozenset(cleared), tuple(notes))


def raise_advisory_alerts(
    sql: SqlStore, subject_code: str, history: Sequence[RestingValue], *, now: datetime
) -> tuple[AdvisoryEvaluation, list[Alert]]:
    """Evaluate a subject's history against its alerts in ``sql`` and open the new ones.

    Opens only; never acknowledges or resolves. ``open_alert`` itself also refuses a second
    unresolved alert of the same kind and subject.
    """
    subject = sql.get_subject(subject_code)
    mine = [
        a
        for a in sql.list_alerts(subject.org_unit_id)
        if a.subject_code == subject_code and a.kind in WORDING
    ]
    unresolved = {a.kind for a in mine if a.state is not AlertState.RESOLVED}
    resolved_at: dict[AlertKind, datetime] = {}
    for a in mine:
        if a.resolved_at is not None:
            prev = resolved_at.get(a.kind)
            resolved_at[a.kind] = a.resolved_at if prev is None else max(prev, a.resolved_at)
    evaluation = evaluate_advisory(history, unresolved=unresolved, resolved_at=resolved_at)
    opened = [
        sql.open_alert(d.kind, d.explanation, created_at=now, subject_code=subject_code)
        for d in evaluation.decisions
    ]
    return evaluation, opened
