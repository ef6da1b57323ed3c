"""Authoritative session summaries, recomputed from the stored beats and samples.

When a session ends (or is reprocessed), the gateway reads the session's phases from SQL and
its raw RR intervals and skin-conductance samples from the time-series store, and computes
with the signal core — the same ``hrv_report`` and ``eda_summary`` that ``shuxin analyze``
uses — per phase and for the whole session: the HRV set, record coherence and breathing rate,
EDA levels and responses, quality (artefacts, analysable minutes, EDA flags, what a gate
suppressed and why), the deltas training − baseline and recovery − baseline, and display
curves. Nothing here depends on what the edge computed live.

``summarize_arrays`` is pure (arrays and a phase table in, a result out); ``summarize_session``
does the reads and writes and is idempotent (re-running replaces the same rows).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from shuxin.gateway.sql_store import WHOLE_SESSION, DisplayCurve, SqlStore, Summary
from shuxin.gateway.timeseries import TimeSeriesStore, epoch_us
from shuxin.signal.eda_clean import eda_clean
from shuxin.signal.eda_phasic import eda_phasic
from shuxin.signal.eda_summary import eda_summary
from shuxin.signal.errors import SignalError
from shuxin.signal.hrv_report import hrv_report
from shuxin.signal.hrv_stream import HrvStream
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.version import algorithm_version

log = logging.getLogger(__name__)

SUMMARY_VERSION: Final = algorithm_version("gateway_summary")
#: Fewest beats a phase needs before HRV is computed at all (about 30 s).
MIN_BEATS: Final = 30
#: Shortest EDA stretch analysed (s); ``eda_summary`` refuses less.
MIN_EDA_S: Final = 10.0
#: Metrics compared between phases (training − baseline, recovery − baseline).
DELTA_KEYS: Final = (
    "mean_hr_bpm",
    "rmssd_ms",
    "ln_rmssd",
    "sdnn_ms",
    "coherence_ratio",
    "resp_rate_bpm",
    "scl_mean_us",
    "scr_per_min",
)
_HRV_KEYS: Final = (
    "n_beats",
    "duration_s",
    "artifact_pct",
    "corrected_pct",
    "mean_rr_ms",
    "mean_hr_bpm",
    "sdnn_ms",
    "rmssd_ms",
    "ln_rmssd",
    "pnn50_pct",
    "lf_ms2",
    "hf_ms2",
    "lf_hf",
    "lf_nu",
    "hf_nu",
    "sd1_ms",
    "sd2_ms",
    "sampen",
    "dfa_alpha1",
    "baevsky_si",
    "stress_index",
    "pns_index",
    "sns_index",
)
_EDA_KEYS: Final = (
    "scl_mean_us",
    "scl_slope_us_per_min",
    "scr_count",
    "scr_per_min",
    "scr_amp_mean_us",
)


@dataclass(frozen=True, slots=True)
class PhaseWindow:
    """One phase as summarised: its place in the protocol and its time range."""

    index: int
    name: str
    kind: str | None
    start: datetime
    end: datetime
    pacer_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Metrics and quality of one phase (or of the whole session, ``index == -1``)."""

    index: int
    name: str | None
    metrics: Mapping[str, float | int | None]
    quality: Mapping[str, Any]
    versions: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SessionSummaryResult:
    """Everything computed for one session."""

    phases: tuple[PhaseResult, ...]
    whole: PhaseResult
    deltas: Mapping[str, Mapping[str, float | None]]
    curves: Mapping[str, Curve]
    algorithm_version: str = SUMMARY_VERSION
    notes: tuple[str, ...] = field(default_factory=tuple)


def _finite(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None


def _hrv_part(
    rr_ms: NDArray[np.float64], paced: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    if rr_ms.size < MIN_BEATS:
        return (
            {},
            {"hrv": f"suppressed: {rr_ms.size} beats (needs {MIN_BEATS})"},
            {},
        )
    try:
        report = hrv_report(rr_ms, paced=paced)
    except SignalError as exc:
        return {}, {"hrv": f"suppressed: {exc}"}, {}
    summary = report.summary
    metrics: dict[str, Any] = {key: _finite(getattr(summary, key)) for key in _HRV_KEYS}
    metrics["coherence_ratio"] = _finite(report.coherence_ratio)
    metrics["resp_rate_bpm"] = _finite(report.resp_rate_bpm)
    quality = {
        "artifact_pct": _finite(summary.artifact_pct),
        "analysable_min": round(summary.duration_s / 60.0, 2),
        "suppressed": list(summary.suppressed),
        "notes": [*summary.notes, *report.notes],
    }
    versions = {"hrv": summary.algorithm_version, "report": report.algorithm_version}
    return metrics, quality, versions


def _eda_part(
    eda_us: NDArray[np.float64], fs_hz: float | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    if fs_hz is None or eda_us.size < MIN_EDA_S * fs_hz:
        return {}, {"eda": "no EDA recorded" if eda_us.size == 0 else "too short"}, {}
    try:
        result = eda_summary(eda_us, fs_hz)
    except SignalError as exc:
        return {}, {"eda": f"suppressed: {exc}"}, {}
    metrics = {key: _finite(getattr(result, key)) for key in _EDA_KEYS}
    quality = {
        "eda_valid_fraction": _finite(result.valid_fraction),
        "eda_flags": list(result.quality_flags),
        "eda_notes": list(result.notes),
    }
    return metrics, quality, {"eda": result.algorithm_version}


def _phase_result(
    index: int,
    name: str | None,
    rr_ms: NDArray[np.float64],
    eda_us: NDArray[np.float64],
    eda_fs_hz: float | None,
    *,
    paced: bool,
) -> PhaseResult:
    hrv_metrics, hrv_quality, hrv_versions = _hrv_part(rr_ms, paced)
    eda_metrics, eda_quality, eda_versions = _eda_part(eda_us, eda_fs_hz)
    return PhaseResult(
        index=index,
        name=name,
        metrics={**hrv_metrics, **eda_metrics},
        quality={**hrv_quality, **eda_quality},
        versions={**hrv_versions, **eda_versions, "summary": SUMMARY_VERSION},
    )


def _deltas(phases: Sequence[PhaseResult], kinds: Mapping[int, str | None]) -> dict[str, Any]:
    by_kind: dict[str, PhaseResult] = {}
    for phase in phases:
        kind = kinds.get(phase.index)
        if kind is not None and kind not in by_kind:
            by_kind[kind] = phase
    baseline = by_kind.get("baseline") or by_kind.get("rest")
    out: dict[str, Any] = {}
    if baseline is None:
        return out
    for label, kind in (
        ("training_minus_baseline", "training"),
        ("recovery_minus_baseline", "recovery"),
    ):
        other = by_kind.get(kind) or (by_kind.get("vr") if kind == "training" else None)
        if other is None:
            continue
        values: dict[str, float | None] = {}
        for key in DELTA_KEYS:
            a, b = other.metrics.get(key), baseline.metrics.get(key)
            values[key] = None if a is None or b is None else float(a) - float(b)
        out[label] = values
    return out


#: Display-curve grid (s) and the most points a curve holds; longer sessions coarsen the grid
#: to a multiple of 5 s so that no curve exceeds the bound.
CURVE_STEP_S: Final = 5.0
CURVE_MAX_POINTS: Final = 2000
#: Rolling RMSSD window of the display curve (s), as ``HrvStream(rmssd_window_s=…)``.
RMSSD_CURVE_WINDOW_S: Final = 30.0
#: A beat later than its own RR interval says by more than this (s) starts a new segment
#: (the stream is reset, the curves show a gap); same for EDA samples beyond their spacing.
CURVE_GAP_S: Final = 3.0
#: Fewest beats a segment needs before it is cleaned and streamed for RMSSD and coherence.
CURVE_MIN_BEATS: Final = 10

Curve = tuple[tuple[float, ...], tuple[float | None, ...]]


def curve_step_s(duration_s: float) -> float:
    """The grid step (s) for a session of ``duration_s``: 5 s, or a multiple of 5 s so that
    the grid has at most :data:`CURVE_MAX_POINTS` points."""
    factor = max(1, math.ceil(duration_s / (CURVE_STEP_S * CURVE_MAX_POINTS)))
    return CURVE_STEP_S * factor


def _splits(time_us: NDArray[np.int64], expected_us: NDArray[np.float64]) -> list[slice]:
    """Contiguous runs: a new run starts where the spacing exceeds the expected by a gap."""
    if time_us.size == 0:
        return []
    late = np.diff(time_us).astype(np.float64) - expected_us[1:] > CURVE_GAP_S * 1e6
    starts = [0, *(np.flatnonzero(late) + 1).tolist(), int(time_us.size)]
    return [slice(a, b) for a, b in itertools.pairwise(starts)]


class _Grid:
    """Values on the display grid: a mean or the last value per cell; None for empty cells."""

    def __init__(self, n: int, step_s: float) -> None:
        self.step_s = step_s
        self.sums = np.zeros(n)
        self.counts = np.zeros(n, dtype=np.int64)
        self.last: list[float | None] = [None] * n

    def cell(self, t_s: float) -> int | None:
        index = math.floor(t_s / self.step_s)
        return index if 0 <= index < len(self.last) else None

    def add(self, t_s: float, value: float) -> None:
        index = self.cell(t_s)
        if index is not None and math.isfinite(value):
            self.sums[index] += value
            self.counts[index] += 1
            self.last[index] = value

    def means(self, digits: int) -> Curve:
        values = tuple(
            round(float(total / count), digits) if count else None
            for total, count in zip(self.sums, self.counts, strict=True)
        )
        return self.times(), values

    def lasts(self, digits: int) -> Curve:
        return self.times(), tuple(None if v is None else round(v, digits) for v in self.last)

    def times(self) -> tuple[float, ...]:
        return tuple(i * self.step_s for i in range(len(self.last)))


def _beat_curves(
    t0_us: int, beat_us: NDArray[np.int64], rr_ms: NDArray[np.float64], n: int, step_s: float
) -> dict[str, Curve]:
    hr, rmssd, coherence = _Grid(n, step_s), _Grid(n, step_s), _Grid(n, step_s)
    for part in _splits(beat_us, rr_ms * 1000.0):
        seg_t, seg_rr = beat_us[part], rr_ms[part]
        for t_us, rr in zip(seg_t, seg_rr, strict=True):
            hr.add((t_us - t0_us) / 1e6, 60000.0 / float(rr))
        if seg_rr.size < CURVE_MIN_BEATS:
            continue
        try:
            clean = rr_clean(seg_rr).rr_ms
        except SignalError:
            continue
        stream = HrvStream(rmssd_window_s=RMSSD_CURVE_WINDOW_S)
        first_start_us = float(seg_t[0]) - float(seg_rr[0]) * 1000.0
        for rr in clean:
            live = stream.push(float(rr))
            t_s = (first_start_us + live.t_s * 1e6 - t0_us) / 1e6
            rmssd.add(t_s, live.rmssd_ms)
            if live.coherence is not None:
                coherence.add(t_s, live.coherence.coherence_ratio)
    return {
        "hr_bpm": hr.means(2),
        "rmssd_ms": rmssd.lasts(2),
        "coherence_ratio": coherence.lasts(3),
    }


def _eda_curve(
    t0_us: int, eda_t_us: NDArray[np.int64], eda_us: NDArray[np.float64], n: int, step_s: float
) -> Curve:
    scl = _Grid(n, step_s)
    spacing_us = float(np.median(np.diff(eda_t_us))) if eda_t_us.size > 1 else 0.0
    for part in _splits(eda_t_us, np.full(eda_t_us.size, spacing_us)):
        seg_t, seg = eda_t_us[part], eda_us[part]
        if seg.size < 2 or spacing_us <= 0:
            continue
        fs_hz = 1e6 / spacing_us
        try:
            tonic = eda_phasic(eda_clean(seg, fs_hz).eda_us, fs_hz).tonic_us
        except SignalError:
            continue
        for t_us, value in zip(seg_t, tonic, strict=True):
            scl.add((t_us - t0_us) / 1e6, float(value))
    return scl.means(4)


def _curves(
    t0_us: int,
    beat_us: NDArray[np.int64],
    rr_ms: NDArray[np.float64],
    *,
    eda_us_t: NDArray[np.int64],
    eda_us: NDArray[np.float64],
) -> dict[str, Curve]:
    """Display curves on one grid from the session start: ``hr_bpm`` (mean of 60000/RR per
    cell), ``rmssd_ms`` (``HrvStream``, rolling 30 s, last value per cell), ``coherence_ratio``
    (``HrvStream`` coherence, 64 s window updated every 5 s, last update per cell) and
    ``scl_us`` (tonic level from ``eda_clean`` + ``eda_phasic``, mean per cell). RR is cleaned
    with ``rr_clean`` per contiguous segment; a gap resets the stream and leaves empty cells
    (None)."""
    ends = [int(t[-1]) for t in (beat_us, eda_us_t) if t.size]
    if not ends:
        return {}
    duration_s = max(0.0, (max(ends) - t0_us) / 1e6)
    step_s = curve_step_s(duration_s)
    n = min(CURVE_MAX_POINTS, math.floor(duration_s / step_s) + 1)
    curves: dict[str, Curve] = {}
    if beat_us.size:
        curves.update(_beat_curves(t0_us, beat_us, rr_ms, n, step_s))
    if eda_us.size:
        curves["scl_us"] = _eda_curve(t0_us, eda_us_t, eda_us, n, step_s)
    return curves


def summarize_arrays(
    phases: Sequence[PhaseWindow],
    beat_time_us: NDArray[np.int64],
    rr_ms: NDArray[np.float64],
    eda_time_us: NDArray[np.int64],
    eda_us: NDArray[np.float64],
) -> SessionSummaryResult:
    """Summarise one session from its beats (time of each beat, µs; RR, ms) and EDA samples.

    Pure: no I/O. Beats and samples are assigned to the phase whose ``[start, end)`` holds
    their time. The EDA sampling rate is taken from the median sample spacing.
    """
    eda_fs = None
    if eda_time_us.size > 1:
        spacing_s = float(np.median(np.diff(eda_time_us))) / 1e6
        eda_fs = 1.0 / spacing_s if spacing_s > 0 else None
    results = []
    for phase in phases:
        lo, hi = epoch_us(phase.start), epoch_us(phase.end)
        beats = (beat_time_us >= lo) & (beat_time_us < hi)
        samples = (eda_time_us >= lo) & (eda_time_us < hi)
        results.append(
            _phase_result(
                phase.index,
                phase.name,
                rr_ms[beats],
                eda_us[samples],
                eda_fs,
                paced=phase.pacer_bpm is not None and phase.pacer_bpm < 9,
            )
        )
    whole = _phase_result(WHOLE_SESSION, None, rr_ms, eda_us, eda_fs, paced=False)
    t0 = epoch_us(phases[0].start) if phases else int(beat_time_us[0]) if beat_time_us.size else 0
    return SessionSummaryResult(
        phases=tuple(results),
        whole=whole,
        deltas=_deltas(results, {p.index: p.kind for p in phases}),
        curves=_curves(t0, beat_time_us, rr_ms, eda_us_t=eda_time_us, eda_us=eda_us),
    )


def _best_series(
    tsdb: TimeSeriesStore,
    measurement: str,
    field_name: str,
    *,
    station: str,
    devices: Sequence[str],
    start: datetime,
    end: datetime,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    best: tuple[NDArray[np.int64], NDArray[np.float64]] = (
        np.empty(0, dtype=np.int64),
        np.empty(0, dtype=np.float64),
    )
    for device in devices:
        points = tsdb.query(measurement, station=station, start=start, end=end, device=device)
        pairs = [(p.time_us, float(v)) for p in points if (v := p.field(field_name)) is not None]
        if len(pairs) > best[0].size:
            pairs.sort()
            best = (
                np.array([t for t, _ in pairs], dtype=np.int64),
                np.array([v for _, v in pairs], dtype=np.float64),
            )
    return best


def summarize_session(
    session_id: str, sql: SqlStore, tsdb: TimeSeriesStore, *, now: datetime | None = None
) -> SessionSummaryResult:
    """Recompute and store the summary of one ended session (idempotent)."""
    record = sql.get_session(session_id)
    if record.started_at is None:
        raise ValueError(f"session {session_id} has no start time yet")
    end = record.ended_at or (now or datetime.now(UTC))
    windows: list[PhaseWindow] = []
    cursor = record.started_at
    for phase in sql.session_phases(session_id):
        start = phase.started_at or cursor
        stop = phase.ended_at or (start + timedelta(seconds=phase.planned_duration_s or 0.0))
        stop = min(stop, end)
        if stop > start:
            windows.append(
                PhaseWindow(phase.index, phase.name, phase.kind, start, stop, phase.pacer_bpm)
            )
        cursor = stop
    margin = timedelta(seconds=5)
    beat_t, rr = _best_series(
        tsdb,
        "rr",
        "rr_ms",
        station=record.station_id,
        devices=record.devices,
        start=record.started_at - margin,
        end=end + margin,
    )
    eda_t, eda = _best_series(
        tsdb,
        "eda",
        "eda_us",
        station=record.station_id,
        devices=record.devices,
        start=record.started_at - margin,
        end=end + margin,
    )
    result = summarize_arrays(windows, beat_t, rr, eda_t, eda)
    computed_at = now or datetime.now(UTC)
    resting_index = next((w.index for w in windows if w.kind in RESTING_KINDS), None)
    for part in (*result.phases, result.whole):
        metrics: dict[str, Any] = dict(part.metrics)
        if part.index == WHOLE_SESSION:
            metrics["deltas"] = result.deltas
        elif part.index == resting_index and record.subject_code is not None:
            change = _personal_baseline(sql, record.subject_code, record.started_at, part)
            if change is not None:
                metrics["personal_baseline"] = change
        sql.store_summary(
            Summary(
                session_id=session_id,
                phase_index=part.index,
                phase_name=part.name,
                metrics=metrics,
                quality=part.quality,
                algorithm_versions=part.versions,
                protocol_version=record.protocol_version,
                computed_at=computed_at,
            )
        )
    for series, (t_s, values) in result.curves.items():
        sql.store_curve(DisplayCurve(session_id, series, t_s, values, computed_at))
    return result


#: A resting value counts for the personal baseline only at or below this % of artefacts.
RESTING_MAX_ARTIFACT_PCT: Final = 5.0
#: Phase kinds whose first occurrence in a session is its resting baseline.
RESTING_KINDS: Final = ("baseline", "rest")


def _personal_baseline(
    sql: SqlStore, subject_code: str, started_at: datetime, part: PhaseResult
) -> dict[str, Any] | None:
    """The resting phase's change against the subject's personal baseline (earlier sessions
    only, so reprocessing gives the same result), or None while fewer than 5 exist."""
    from shuxin.gateway.alerts import personal_baseline_change

    ln_rmssd, mean_hr = part.metrics.get("ln_rmssd"), part.metrics.get("mean_hr_bpm")
    return personal_baseline_change(
        resting_history(sql, subject_code),
        before=started_at,
        ln_rmssd=float(ln_rmssd) if ln_rmssd is not None else None,
        mean_hr_bpm=float(mean_hr) if mean_hr is not None else None,
    )


def resting_history(sql: SqlStore, subject_code: str) -> list[Any]:
    """The subject's resting lnRMSSD per summarised session (baseline or rest phase), oldest
    first, each with its quality verdict — the input of the advisory alert rules."""
    from shuxin.gateway.alerts import RestingValue

    subject = sql.get_subject(subject_code)
    history = []
    for record in sql.list_sessions(subject.org_unit_id, subject_code=subject_code, limit=500):
        if record.started_at is None:
            continue
        kinds = {p.index: p.kind for p in sql.session_phases(record.id)}
        for summary in sql.summaries(record.id):
            if kinds.get(summary.phase_index) not in RESTING_KINDS:
                continue
            ln_rmssd = summary.metrics.get("ln_rmssd")
            mean_hr = summary.metrics.get("mean_hr_bpm")
            artefacts = summary.quality.get("artifact_pct")
            passed = (
                ln_rmssd is not None
                and artefacts is not None
                and artefacts <= RESTING_MAX_ARTIFACT_PCT
            )
            history.append(
                RestingValue(
                    session_id=record.id,
                    t=record.started_at,
                    ln_rmssd=float(ln_rmssd) if ln_rmssd is not None else math.nan,
                    quality_passed=passed,
                    quality={"artifact_pct": artefacts},
                    mean_hr_bpm=float(mean_hr) if mean_hr is not None else None,
                )
            )
            break  # the first resting phase of a session is its baseline
    return sorted(history, key=lambda value: value.t)


@dataclass(slots=True)
class SummaryCounters:
    """Sessions summarised, and summaries that failed (the session then has none yet)."""

    summarised: int = 0
    failed: int = 0
    alerts_opened: int = 0


class SummarySink:
    """The ingest sink that summarises a session when its end, abort or timeout arrives, then
    re-evaluates the subject's advisory alerts (``shuxin.gateway.alerts``).

    Placed after the SQL sink, so the session's phases are stored. A failure is logged and
    counted, never raised: the batch is stored either way, and ``shuxin gateway reprocess``
    can compute the summary later.
    """

    def __init__(self, sql: SqlStore, tsdb: TimeSeriesStore) -> None:
        self._sql = sql
        self._tsdb = tsdb
        self.counters = SummaryCounters()

    def accept(self, messages: Sequence[Any]) -> None:
        """Summarise every session whose lifecycle end is among ``messages``."""
        from shuxin.contract.messages import LifecycleMessage

        for accepted in messages:
            message = accepted.message
            if isinstance(message, LifecycleMessage) and message.event != "start":
                try:
                    summarize_session(message.session, self._sql, self._tsdb)
                except Exception:
                    self.counters.failed += 1
                    log.exception("could not summarise session %s", message.session)
                    continue
                self.counters.summarised += 1
                self._evaluate_alerts(message.subject)

    def _evaluate_alerts(self, subject_code: str) -> None:
        from shuxin.gateway.alerts import raise_advisory_alerts

        try:
            history = resting_history(self._sql, subject_code)
            _, opened = raise_advisory_alerts(
                self._sql, subject_code, history, now=datetime.now(UTC)
            )
        except Exception:
            log.exception("could not evaluate advisory alerts for a subject")
        else:
            self.counters.alerts_opened += len(opened)
