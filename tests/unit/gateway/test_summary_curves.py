"""Display curves of a session summary: HR, rolling RMSSD, coherence and SCL on one 5-s grid
from the session start, gaps as None, bounded in points, computed with the signal core."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np

from shuxin.gateway.summaries import (
    CURVE_MAX_POINTS,
    RMSSD_CURVE_WINDOW_S,
    PhaseWindow,
    curve_step_s,
    summarize_arrays,
)
from shuxin.gateway.timeseries import epoch_us
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.hrv_stream import HrvStream
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.rr_simulate import rr_simulate

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _beats(seconds: float, seed: int, breathing: list[tuple[float, float]]):  # type: ignore[no-untyped-def]
    sim = rr_simulate(seconds, np.random.default_rng(seed), breathing_schedule=breathing)
    return epoch_us(T0) + np.round(np.cumsum(sim.rr_ms) * 1000).astype(np.int64), sim.rr_ms


def test_four_curves_on_one_grid_with_a_gap_as_none() -> None:
    beat_us, rr_ms = _beats(600, 3, [(0, 12.0), (300, 6.0)])
    t_s = (beat_us - epoch_us(T0)) / 1e6
    keep = (t_s < 200) | (t_s >= 260)  # the sensor lost for a minute
    eda = eda_simulate(600.0, 4.0, np.random.default_rng(5))
    eda_t = epoch_us(T0) + np.round(np.arange(eda.eda_us.size) * 250_000).astype(np.int64)
    phase = PhaseWindow(0, "all", "training", T0, T0 + timedelta(seconds=600))
    curves = summarize_arrays([phase], beat_us[keep], rr_ms[keep], eda_t, eda.eda_us).curves

    assert set(curves) == {"hr_bpm", "rmssd_ms", "coherence_ratio", "scl_us"}
    grids = {name: times for name, (times, _) in curves.items()}
    assert len(set(grids.values())) == 1  # one grid for all four
    times = grids["hr_bpm"]
    assert times[0] == 0.0
    assert all(b - a == 5.0 for a, b in itertools.pairwise(times))
    hr, rmssd, coherence = (dict(zip(*curves[k], strict=True)) for k in
                            ("hr_bpm", "rmssd_ms", "coherence_ratio"))  # fmt: skip
    for cell in (205.0, 230.0, 250.0):  # inside the gap
        assert hr[cell] is None
        assert rmssd[cell] is None
    # RMSSD needs a full 30-s window, coherence a 64-s window, after the start and the gap.
    assert rmssd[0.0] is None
    assert rmssd[RMSSD_CURVE_WINDOW_S + 5.0] is not None
    assert coherence[30.0] is None
    assert coherence[70.0] is not None
    assert coherence[265.0] is None
    # Breathing at 6/min (from 300 s) is far more coherent than at 12/min.
    slow = [v for t, v in coherence.items() if t >= 400 and v is not None]
    fast = [v for t, v in coherence.items() if 70 <= t < 200 and v is not None]
    assert np.median(slow) > 2 * np.median(fast)
    # The curve is the signal core's own stream over the cleaned first segment.
    first = rr_ms[keep][t_s[keep] < 200]
    stream = HrvStream(rmssd_window_s=RMSSD_CURVE_WINDOW_S)
    start_s = float(t_s[0]) - float(first[0]) / 1000.0
    expected = None
    for rr in rr_clean(first).rr_ms:
        live = stream.push(float(rr))
        if start_s + live.t_s < 100.0:
            expected = live.rmssd_ms
    assert expected is not None
    # 0.005 ms: the curve stores RMSSD rounded to 2 decimals.
    assert abs(rmssd[95.0] - expected) <= 0.005  # type: ignore[operator]
    scl = [v for v in curves["scl_us"][1] if v is not None]
    assert len(scl) == len(times)  # EDA has no gap
    assert all(v > 0 for v in scl)


def test_curves_are_bounded_in_points() -> None:
    assert curve_step_s(600.0) == 5.0
    assert curve_step_s(5.0 * CURVE_MAX_POINTS) == 5.0
    assert curve_step_s(5.0 * CURVE_MAX_POINTS + 1) == 10.0
    hours = 3 * 3600.0  # a long recording at 1 Hz EDA: the grid coarsens to 10 s
    eda = eda_simulate(hours, 1.0, np.random.default_rng(2))
    eda_t = epoch_us(T0) + np.arange(eda.eda_us.size, dtype=np.int64) * 1_000_000
    phase = PhaseWindow(0, "all", "rest", T0, T0 + timedelta(seconds=hours))
    empty_t, empty = np.empty(0, dtype=np.int64), np.empty(0)
    times, values = summarize_arrays([phase], empty_t, empty, eda_t, eda.eda_us).curves["scl_us"]
    assert len(times) <= CURVE_MAX_POINTS
    assert times[1] == 10.0
    assert sum(v is not None for v in values) == len(values)
