"""Streaming HR / RMSSD / coherence (shuxin.signal.hrv_stream) against the batch functions.

Tolerance: every streamed value equals the batch value on the same window within 1e-9
relative. The stream uses running sums (add the new term, subtract the evicted one) re-summed
exactly every REFRESH_EVERY pushes; over at most 256 add/subtract steps of terms no larger
than ~1e6 ms² the rounding error is below 1e-13 of the largest term, far inside 1e-9.
Coherence is the same core on the same beats, but the batch call recomputes the beat times
from the window's own start, which changes the times by rounding only (~1e-13 relative).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_coherence import hrv_coherence, hrv_coherence_series
from shuxin.signal.hrv_stream import REFRESH_EVERY, HrvLive, HrvStream
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.rr_simulate import rr_simulate

REL = 1e-9


def _push_all(rr_ms: np.ndarray, stream: HrvStream | None = None) -> list[HrvLive]:
    stream = stream or HrvStream()
    return [stream.push(float(x)) for x in rr_ms]


def _rmssd_window_start(t_s: np.ndarray, i: int, window_s: float = 60.0) -> int:
    """First interval j whose start time T_{j-1} is at or after T_i - window (reference rule)."""
    starts = np.concatenate(([0.0], t_s[:-1]))
    return int(np.flatnonzero(starts[: i + 1] >= t_s[i] - window_s)[0])


@pytest.fixture(scope="module")
def ten_minutes() -> tuple[np.ndarray, list[HrvLive]]:
    sim = rr_simulate(600, np.random.default_rng(42), breathing_rate_bpm=6.0, resonance_bpm=6.0)
    rr = sim.rr_clean_ms
    return rr, _push_all(rr)


def test_every_rmssd_and_hr_equals_the_batch_value(
    ten_minutes: tuple[np.ndarray, list[HrvLive]],
) -> None:
    rr, out = ten_minutes
    t = np.cumsum(rr) / 1000.0
    checked = 0
    for live in out:
        i = live.beat_index
        assert live.t_s == t[i]  # same additions as numpy.cumsum: bit-identical
        last = rr[max(i - 4, 0) : i + 1]
        assert live.hr_bpm == pytest.approx(60000.0 * last.size / last.sum(), rel=REL)
        j = _rmssd_window_start(t, i)
        assert live.rmssd_window_start == j
        assert live.rmssd_n_intervals == i + 1 - j
        window = rr[j : i + 1]
        assert live.mean_hr_bpm == pytest.approx(float(np.mean(60000.0 / window)), rel=REL)
        if t[i] < 60.0:
            assert math.isnan(live.rmssd_ms)
            assert live.notes
            continue
        reference = math.sqrt(float(np.mean(np.diff(window) ** 2)))
        assert live.rmssd_ms == pytest.approx(reference, rel=REL)
        batch = hrv_time(window)
        assert live.rmssd_ms == pytest.approx(batch.rmssd_ms, rel=REL)
        assert live.mean_hr_bpm == pytest.approx(batch.mean_hr_bpm, rel=REL)
        checked += 1
    assert checked > 500  # 10 min at ~65 bpm, minus the first minute


def test_every_coherence_equals_the_batch_value(
    ten_minutes: tuple[np.ndarray, list[HrvLive]],
) -> None:
    rr, out = ten_minutes
    emitted = [live for live in out if live.coherence is not None]
    series = hrv_coherence_series(rr)
    np.testing.assert_array_equal([live.beat_index for live in emitted], series.beat_index)
    assert len(emitted) == 108  # (600 - 64) // 5 + 1 updates
    for live, ratio in zip(emitted, series.coherence_ratio, strict=True):
        assert live.coherence is not None
        i = live.beat_index
        assert live.coherence.coherence_ratio == ratio  # same beats, same times: identical
        window = hrv_coherence(rr[live.coherence_window_start : i + 1])
        assert live.coherence.coherence_ratio == pytest.approx(window.coherence_ratio, rel=REL)
        assert live.coherence.peak_hz == window.peak_hz
        assert live.coherence.peak_power_ms2 == pytest.approx(window.peak_power_ms2, rel=REL)
        assert live.coherence.total_power_ms2 == pytest.approx(window.total_power_ms2, rel=REL)
        assert live.last_coherence_ratio == live.coherence.coherence_ratio
    between = [live for live in out if live.coherence is None]
    assert all(live.coherence_window_start == -1 for live in between)
    assert math.isnan(out[0].last_coherence_ratio)


def test_precision_survives_a_large_outlier_leaving_the_window() -> None:
    sim = rr_simulate(900, np.random.default_rng(5), stress=1.0)
    rr = sim.rr_clean_ms.copy()
    rr[100] = 1900.0  # a huge successive difference that later leaves the window
    out = _push_all(rr)
    assert len(out) > 2 * REFRESH_EVERY
    t = np.cumsum(rr) / 1000.0
    for live in out[200:]:
        i = live.beat_index
        window = rr[_rmssd_window_start(t, i) : i + 1]
        reference = math.sqrt(float(np.mean(np.diff(window) ** 2)))
        assert live.rmssd_ms == pytest.approx(reference, rel=REL)


def test_invalid_beat_raises_and_leaves_the_state_unchanged() -> None:
    rr = rr_simulate(120, np.random.default_rng(6)).rr_clean_ms
    a = HrvStream()
    b = HrvStream()
    _push_all(rr[:80], a)
    _push_all(rr[:80], b)
    for bad in (float("nan"), 0.0, -800.0, float("inf")):
        with pytest.raises(InvalidInputError):
            a.push(bad)
    np.testing.assert_equal(
        dataclasses.astuple(a.push(float(rr[80]))), dataclasses.astuple(b.push(float(rr[80])))
    )


def test_reset_starts_over() -> None:
    rr = rr_simulate(120, np.random.default_rng(7)).rr_clean_ms
    stream = HrvStream()
    first = _push_all(rr, stream)
    stream.reset()
    again = _push_all(rr, stream)
    np.testing.assert_equal(
        [dataclasses.astuple(x) for x in first], [dataclasses.astuple(x) for x in again]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hr_beats": 0},
        {"rmssd_window_s": 5.0},
        {"coherence_step_s": 0.1},
        {"coherence_window_s": 8.0},
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        HrvStream(**kwargs)  # type: ignore[arg-type]
