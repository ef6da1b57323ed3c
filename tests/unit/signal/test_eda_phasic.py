"""Tests of the tonic/phasic split (shuxin.signal.eda_phasic)."""

from __future__ import annotations

import numpy as np
import pytest

from shuxin.signal.eda_clean import eda_clean
from shuxin.signal.eda_peaks import eda_peaks
from shuxin.signal.eda_phasic import causal_tonic, eda_phasic
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.errors import InvalidInputError


def _reference_causal_tonic(
    y: np.ndarray, fs: float, window_s: float, rate_us_per_min: float
) -> np.ndarray:
    """Literal restatement: tonic[n] = min(trailing_min[n], tonic[n-1] + step)."""
    width = round(window_s * fs)
    step = rate_us_per_min / 60.0 / fs
    out = np.empty_like(y)
    for n in range(y.size):
        trailing = y[max(0, n - width + 1) : n + 1].min()
        out[n] = trailing if n == 0 else min(trailing, out[n - 1] + step)
    return out


def test_causal_tonic_matches_a_literal_restatement() -> None:
    rng = np.random.default_rng(0)
    y = 5.0 + np.cumsum(rng.standard_normal(3000)) * 0.01
    got = causal_tonic(y, 16.0, 10.0, 0.6)
    # Closed form vs recursion: the same minima, rounding of n*step only (~1e-15 µS).
    np.testing.assert_allclose(got, _reference_causal_tonic(y, 16.0, 10.0, 0.6), atol=1e-12)
    assert np.all(got <= y)


def test_causal_tonic_uses_no_future_samples() -> None:
    rng = np.random.default_rng(1)
    y = 5.0 + np.cumsum(rng.standard_normal(2000)) * 0.01
    np.testing.assert_array_equal(causal_tonic(y, 8.0)[:1200], causal_tonic(y[:1200], 8.0))


def test_causal_tonic_follows_slow_drift_and_holds_the_trough_during_an_scr() -> None:
    fs = 32.0
    sim = eda_simulate(
        120.0,
        fs,
        np.random.default_rng(2),
        scr_times_s=[60.0],
        scr_amplitudes_us=[0.5],
        rise_time_s=2.0,
        drift_us_per_min=0.3,
        noise_us=0.0,
    )
    ph = eda_phasic(sim.eda_us, fs, method="causal")
    onset, peak = int(60.0 * fs), int(62.0 * fs)
    # Before the SCR the tonic lags the drift by the 3 s window: 0.3 µS/min x 3 s = 0.015 µS
    # (less one sample of drift; tolerance 0.002 µS).
    lag = sim.eda_us[onset] - ph.tonic_us[onset]
    assert lag == pytest.approx(0.015, abs=0.002)
    # During the rise the tonic keeps following the drift, not the SCR: phasic ~ SCR + lag.
    assert ph.phasic_us[peak] == pytest.approx(0.5 + lag, abs=0.01)
    assert np.all(ph.phasic_us >= 0.0)


def test_interpolated_tonic_recovers_the_true_tonic_between_isolated_scrs() -> None:
    fs = 16.0
    sim = eda_simulate(
        300.0,
        fs,
        np.random.default_rng(3),
        scr_times_s=[30.0, 90.0, 150.0, 210.0, 270.0],
        scr_amplitudes_us=[0.2, 0.5, 0.1, 0.8, 0.3],
        half_recovery_s=(2.0, 5.0),
        drift_us_per_min=0.1,
        noise_us=0.002,
    )
    y = eda_clean(sim.eda_us, fs).eda_us
    ph = eda_phasic(y, fs, method="interpolation")
    assert ph.method == "interpolation"
    err = ph.tonic_us - sim.tonic_us
    # Tails beyond 4 half-recovery times (about 6 % of an SCR) stay in the tonic: the error is
    # bounded by 6 % of the largest SCR (0.05 µS); the mean error is far smaller.
    assert np.abs(err).max() < 0.06
    assert abs(err.mean()) < 0.01
    np.testing.assert_allclose(ph.tonic_us + ph.phasic_us, y, atol=1e-12)
    assert np.all(ph.phasic_us >= 0.0)


def test_interpolated_tonic_without_scrs_is_the_signal() -> None:
    y = np.linspace(3.0, 3.5, 2000)
    ph = eda_phasic(y, 8.0)
    np.testing.assert_array_equal(ph.tonic_us, y)
    assert "no SCRs" in ph.notes[0]


def test_interpolation_accepts_precomputed_peaks_and_checks_their_rate() -> None:
    fs = 8.0
    sim = eda_simulate(60.0, fs, np.random.default_rng(4), scr_times_s=[20.0])
    peaks = eda_peaks(sim.eda_us, fs)
    a = eda_phasic(sim.eda_us, fs, peaks=peaks)
    b = eda_phasic(sim.eda_us, fs)
    np.testing.assert_array_equal(a.tonic_us, b.tonic_us)
    with pytest.raises(InvalidInputError, match="Hz"):
        eda_phasic(sim.eda_us, 16.0, peaks=peaks)


def test_highpass_split_removes_the_mean_from_the_phasic_part() -> None:
    fs = 16.0
    sim = eda_simulate(300.0, fs, np.random.default_rng(5), scr_rate_per_min=4.0)
    ph = eda_phasic(sim.eda_us, fs, method="highpass")
    # A 0.05 Hz high-pass leaves no DC: the phasic mean is ~0 (edges aside).
    assert abs(ph.phasic_us.mean()) < 0.01
    # Its tonic carries the mean SCR level, so it sits above the true tonic on average.
    assert ph.tonic_us.mean() > sim.tonic_us.mean()


def test_unknown_method_and_bad_settings_raise() -> None:
    y = np.linspace(3.0, 3.5, 200)
    with pytest.raises(InvalidInputError):
        eda_phasic(y, 8.0, method="cvxeda")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        eda_phasic(y, 8.0, method="causal", tonic_window_s=0.0)
    with pytest.raises(InvalidInputError):
        eda_phasic(y, 8.0, method="highpass", highpass_hz=5.0)
