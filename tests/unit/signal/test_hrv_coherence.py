"""Tests of the HeartMath-style coherence ratio (shuxin.signal.hrv_coherence)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_coherence import (
    COHERENCE_LEVEL_THRESHOLDS,
    HrvCoherence,
    coherence_level,
    hrv_coherence,
    hrv_coherence_series,
)
from shuxin.signal.rr_simulate import rr_simulate


def _sine_rr(
    duration_s: float, freq_hz: float, amp_ms: float, mean_ms: float = 900.0
) -> np.ndarray:
    """RR series whose tachogram samples a pure sine at each beat time."""
    rr = []
    t = 0.0
    while t < duration_s:
        value = mean_ms + amp_ms * math.sin(2 * math.pi * freq_hz * t)
        rr.append(value)
        t += value / 1000.0
    return np.asarray(rr)


def _reference(rr_ms: np.ndarray) -> tuple[float, float, float]:
    """Independent restatement with scipy.signal.periodogram: (ratio, peak_hz, total)."""
    t = np.cumsum(rr_ms) / 1000.0
    grid = t[-1] - (127 - np.arange(128)) / 2.0
    x = np.interp(grid, t, rr_ms)
    freq, psd = scipy.signal.periodogram(
        x, fs=2.0, window="hann", nfft=1000, detrend="constant", scaling="density"
    )
    df = freq[1]
    total = psd[(freq >= 0.0033) & (freq <= 0.4 + 1e-9)].sum() * df
    band = np.flatnonzero((freq >= 0.04 - 1e-9) & (freq <= 0.26 + 1e-9))
    local = [k for k in band[1:-1] if psd[k] >= psd[k - 1] and psd[k] > psd[k + 1]]
    k = max(local, key=lambda i: psd[i])
    peak = psd[k - 7 : k + 8].sum() * df  # 15 bins of 0.002 Hz = 0.030 Hz
    return peak / (total - peak), float(freq[k]), total


def test_matches_an_independent_periodogram_restatement() -> None:
    sim = rr_simulate(180, np.random.default_rng(11))
    got = hrv_coherence(sim.rr_clean_ms)
    ratio, peak_hz, total = _reference(sim.rr_clean_ms)
    assert isinstance(got, HrvCoherence)
    # Same arithmetic in another order (scipy's periodogram): rounding only.
    assert got.coherence_ratio == pytest.approx(ratio, rel=1e-9)
    assert got.total_power_ms2 == pytest.approx(total, rel=1e-9)
    assert got.peak_hz == pytest.approx(peak_hz, abs=1e-12)
    assert got.peak_fraction == pytest.approx(ratio / (1 + ratio), rel=1e-9)
    assert got.window_s == 64.0
    assert got.algorithm_version.startswith("hrv_coherence/")


def test_pure_sine_at_0_1_hz_is_highly_coherent() -> None:
    got = hrv_coherence(_sine_rr(120, 0.1, 60.0))
    # Zero-padded 0.002 Hz grid: a pure tone peaks within one grid step of its frequency.
    assert got.peak_hz == pytest.approx(0.1, abs=0.002)
    # A Hann-windowed pure tone keeps 90.5 % of its power within ±0.015 Hz over 64 s, so the
    # ratio's ceiling is 9.5; beat-time sampling and linear interpolation cost a little more.
    assert 9.0 < got.coherence_ratio < 9.5
    assert got.level == "high"
    assert got.notes == ()


def test_resonance_breathing_at_6_per_minute_is_high_and_peaks_at_0_1_hz() -> None:
    for seed in range(3):
        sim = rr_simulate(
            300, np.random.default_rng(seed), breathing_rate_bpm=6.0, resonance_bpm=6.0
        )
        series = hrv_coherence_series(sim.rr_clean_ms)
        # ±0.01 Hz: the 64 s window's resolution is 1/64 = 0.016 Hz; the paced period varies
        # 3 % breath to breath and Mayer waves (centred at 0.1 Hz, sd 0.01 Hz) merge with the
        # RSA peak, so a single window may sit a few grid steps (0.002 Hz) off 0.1 Hz.
        assert np.all(np.abs(series.peak_hz - 0.1) <= 0.01)
        assert float(np.median(series.coherence_ratio)) > COHERENCE_LEVEL_THRESHOLDS[1]
        assert series.level.count("high") >= 0.8 * len(series.level)


def test_spontaneous_12_per_minute_breathing_at_rest_is_low() -> None:
    for seed in range(3):
        sim = rr_simulate(300, np.random.default_rng(seed), breathing_rate_bpm=12.0)
        series = hrv_coherence_series(sim.rr_clean_ms)
        assert float(np.median(series.coherence_ratio)) < COHERENCE_LEVEL_THRESHOLDS[0]
        assert series.level.count("high") == 0


def test_white_noise_rr_is_low() -> None:
    rr = 900.0 + np.random.default_rng(3).normal(0.0, 30.0, 200)
    got = hrv_coherence(rr)
    assert got.coherence_ratio < 0.5
    assert got.level == "low"


def test_only_the_last_window_matters() -> None:
    sim = rr_simulate(120, np.random.default_rng(4))
    rr = sim.rr_clean_ms
    longer = np.concatenate((np.full(50, 1400.0), rr))
    a = hrv_coherence(rr)
    b = hrv_coherence(longer)
    # Identical window; the beat times differ only by a constant offset (70 s), so the
    # interpolation differs by floating-point rounding of the times.
    assert a.coherence_ratio == pytest.approx(b.coherence_ratio, rel=1e-9)
    assert a.peak_hz == b.peak_hz


def test_series_schedule_every_5_s_after_the_first_64_s() -> None:
    sim = rr_simulate(300, np.random.default_rng(5))
    rr = sim.rr_clean_ms
    series = hrv_coherence_series(rr)
    t = np.cumsum(rr) / 1000.0
    due = 64.0 + 5.0 * np.arange(series.t_s.size)
    # Each update is the first beat at or after its due time.
    np.testing.assert_array_equal(series.t_s, t[series.beat_index])
    assert np.all(series.t_s >= due)
    assert np.all(t[series.beat_index - 1] < due)
    assert series.t_s.size == int((t[-1] - 64.0) // 5.0) + 1
    for k in (0, series.t_s.size // 2, series.t_s.size - 1):
        single = hrv_coherence(rr[: series.beat_index[k] + 1])
        assert single.coherence_ratio == series.coherence_ratio[k]


def test_series_shorter_than_the_window_is_empty() -> None:
    series = hrv_coherence_series(np.full(50, 1000.0))
    assert series.t_s.size == 0
    assert series.level == ()


def test_flat_rr_gives_nan_with_a_note() -> None:
    got = hrv_coherence(np.full(100, 800.0))
    assert math.isnan(got.coherence_ratio)
    assert got.level == "unknown"
    assert any("no heart-rate variability" in note for note in got.notes)


def test_levels() -> None:
    low, high = COHERENCE_LEVEL_THRESHOLDS
    assert coherence_level(low - 1e-6) == "low"
    assert coherence_level(low) == "medium"
    assert coherence_level(high) == "high"
    assert coherence_level(float("nan")) == "unknown"
    assert coherence_level(float("inf")) == "high"
    assert coherence_level(2.0, thresholds=(0.5, 1.8)) == "high"


def test_too_short_raises() -> None:
    with pytest.raises(InsufficientDataError):
        hrv_coherence(np.full(60, 1000.0))


@pytest.mark.parametrize(
    "rr",
    [np.array([800.0, float("nan")] * 50), np.array([800.0, -5.0] * 50), np.ones((10, 10)) * 800],
)
def test_invalid_input_raises(rr: np.ndarray) -> None:
    with pytest.raises(InvalidInputError):
        hrv_coherence(rr)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_s": 5.0},
        {"fs_hz": 0.5},
        {"peak_band_hz": (0.3, 0.2)},
        {"peak_band_hz": (0.04, 0.39)},
        {"thresholds": (2.0, 1.0)},
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        hrv_coherence(np.full(100, 800.0), **kwargs)  # type: ignore[arg-type]
