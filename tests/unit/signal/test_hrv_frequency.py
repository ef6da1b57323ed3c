"""Tests of frequency-domain HRV (shuxin.signal.hrv_frequency): Welch and Lomb-Scargle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.interpolate
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from shuxin.signal import hrv_frequency as freq_module
from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_frequency import hrv_frequency, rr_psd


def _sine_rr(
    duration_s: float, components: list[tuple[float, float]], mean_ms: float = 800.0
) -> np.ndarray:
    """RR series sampling mean + sum(A sin(2 pi f t)) at each beat's start time."""
    out = []
    t_s = 0.0
    while t_s < duration_s:
        rr = mean_ms + sum(a * math.sin(2 * math.pi * f * t_s) for f, a in components)
        out.append(rr)
        t_s += rr / 1000.0
    return np.asarray(out)


def _noisy_rr(duration_s: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = _sine_rr(duration_s, [(0.1, 30.0), (0.25, 25.0)])
    return base + rng.normal(0.0, 8.0, base.size)


def test_lomb_equals_scipy_lombscargle() -> None:
    rr = _noisy_rr(300.0, 1)
    tau = np.cumsum(rr) / 1000.0
    tau -= tau[0]
    y = rr - rr.mean()
    df = 1.0 / (4.0 * tau[-1])
    n_freq = 480
    ours = freq_module._lomb_power(tau, y, df, n_freq)
    reference = scipy.signal.lombscargle(
        tau, y, 2 * np.pi * df * np.arange(1, n_freq + 1), floating_mean=True
    )
    # Same quantity, different summation order: 1e-9 of the peak.
    assert np.max(np.abs(ours - reference)) <= 1e-9 * reference.max()


def test_lomb_equals_scipy_when_samples_are_chunked() -> None:
    rr = _noisy_rr(3000.0, 2)  # ~3800 beats: more samples than one chunk of the tables
    tau = np.cumsum(rr) / 1000.0
    tau -= tau[0]
    y = rr - rr.mean()
    df = 0.4 / 4096
    ours = freq_module._lomb_power(tau, y, df, 4095)
    picks = np.arange(1, 4096, 97)  # scipy on a subset keeps its N x F matrices small
    reference = scipy.signal.lombscargle(tau, y, 2 * np.pi * df * picks, floating_mean=True)
    assert np.max(np.abs(ours[picks - 1] - reference)) <= 1e-9 * reference.max()


def test_natural_spline_equals_scipy() -> None:
    rr = _noisy_rr(120.0, 3)
    t = np.cumsum(rr) / 1000.0
    grid = t[0] + np.arange(int((t[-1] - t[0]) * 4) + 1) / 4.0
    ours = freq_module._natural_cubic_spline(t, rr, grid)
    reference = scipy.interpolate.CubicSpline(t, rr, bc_type="natural")(grid)
    assert np.max(np.abs(ours - reference)) < 1e-9


@pytest.mark.parametrize("method", ["welch", "lomb"])
@pytest.mark.parametrize(("f0", "band"), [(0.1, "lf"), (0.25, "hf")])
def test_sinusoid_power_and_peak(method: str, f0: float, band: str) -> None:
    amplitude = 40.0
    rr = _sine_rr(300.0, [(f0, amplitude)])
    result = hrv_frequency(rr, method=method)  # type: ignore[arg-type]
    power = getattr(result, f"{band}_ms2")
    other = result.hf_ms2 if band == "lf" else result.lf_ms2
    # A sinusoid of amplitude A has variance A^2/2 = 800 ms^2 (measured within 1 %). 3 %
    # allows the beat-time sampling of the sine (RR modulates the sample times) and leakage.
    assert power == pytest.approx(amplitude**2 / 2.0, rel=0.03)
    assert other < 0.03 * power
    # Peak within one Welch bin (2/T = 0.0067 Hz) of the true frequency.
    assert getattr(result, f"{band}_peak_hz") == pytest.approx(f0, abs=0.007)
    assert result.method == method


@pytest.mark.parametrize("method", ["welch", "lomb"])
def test_total_power_is_the_variance_of_a_band_limited_series(method: str) -> None:
    components = [(0.05, 20.0), (0.1, 25.0), (0.2, 15.0), (0.3, 10.0)]
    rr = _sine_rr(600.0, components)
    result = hrv_frequency(rr, method=method)  # type: ignore[arg-type]
    expected = sum(a * a / 2.0 for _, a in components)
    # Parseval: the PSD integrates to the variance (in ms^2); measured within 0.3 %, 3 % for
    # beat-time sampling and leakage.
    assert result.total_power_ms2 == pytest.approx(expected, rel=0.03)
    parts = result.vlf_ms2 + result.lf_ms2 + result.hf_ms2
    assert parts == pytest.approx(result.total_power_ms2, rel=1e-12)
    rel_sum = result.vlf_rel_pct + result.lf_rel_pct + result.hf_rel_pct
    assert rel_sum == pytest.approx(100.0, rel=1e-12)
    assert result.lf_nu + result.hf_nu == pytest.approx(100.0, rel=1e-12)
    assert result.lf_hf == pytest.approx(result.lf_ms2 / result.hf_ms2, rel=1e-12)
    assert result.ln_hf == pytest.approx(math.log(result.hf_ms2), rel=1e-12)


def test_lomb_psd_scaling_matches_white_noise_variance() -> None:
    rng = np.random.default_rng(4)
    rr = 800.0 + rng.normal(0.0, 20.0, 2000)
    freq, psd = rr_psd(rr, method="lomb")
    # White noise: flat one-sided PSD of level var * 2 dt (dt = mean spacing 0.8 s).
    # The mean over 0-0.4 Hz of a 2000-sample periodogram has ~1/sqrt(bins) spread: 10 %.
    assert freq[0] > 0.0
    assert freq[-1] < 0.4
    assert psd.mean() == pytest.approx(rr.var() * 2.0 * 0.8, rel=0.10)


@pytest.mark.parametrize("method", ["welch", "lomb"])
def test_duration_gates(method: str) -> None:
    short = hrv_frequency(_noisy_rr(50.0, 5), method=method)  # type: ignore[arg-type]
    assert math.isnan(short.hf_ms2)
    assert math.isnan(short.total_power_ms2)
    assert any("hf" in reason for reason in short.suppressed)

    hf_only = hrv_frequency(_noisy_rr(90.0, 5), method=method)  # type: ignore[arg-type]
    assert hf_only.hf_ms2 > 0.0
    assert math.isnan(hf_only.lf_ms2)
    assert math.isnan(hf_only.lf_hf)
    assert math.isnan(hf_only.lf_nu)
    assert any(reason.startswith("lf") for reason in hf_only.suppressed)

    five_min = hrv_frequency(_noisy_rr(299.0, 5), method=method)  # type: ignore[arg-type]
    assert five_min.lf_ms2 > 0.0
    assert math.isnan(five_min.vlf_ms2)
    assert math.isnan(five_min.vlf_rel_pct)
    assert not math.isnan(five_min.lf_rel_pct)
    assert any(reason.startswith("vlf") for reason in five_min.suppressed)

    long = hrv_frequency(_noisy_rr(420.0, 5), method=method)  # type: ignore[arg-type]
    assert long.vlf_ms2 >= 0.0
    assert long.suppressed == ()


def test_corrected_gate_suppresses_everything() -> None:
    result = hrv_frequency(_noisy_rr(300.0, 6), corrected_pct=9.0)
    assert math.isnan(result.hf_ms2)
    assert math.isnan(result.lf_hf)
    assert any("corrected" in reason for reason in result.suppressed)


@pytest.mark.parametrize("method", ["welch", "lomb"])
def test_constant_series(method: str) -> None:
    result = hrv_frequency(np.full(400, 800.0), method=method)  # type: ignore[arg-type]
    assert result.total_power_ms2 == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(result.lf_hf)
    assert math.isnan(result.lf_nu)
    assert math.isnan(result.hf_peak_hz)
    assert any("zero power" in reason for reason in result.suppressed)


def test_invalid_inputs() -> None:
    with pytest.raises(InvalidInputError):
        hrv_frequency(_noisy_rr(300.0, 7), method="burg")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        hrv_frequency([800.0, float("nan"), 800.0, 800.0, 810.0])
    with pytest.raises(InvalidInputError):
        hrv_frequency([800.0, -1.0, 800.0, 800.0, 810.0])
    with pytest.raises(InsufficientDataError):
        hrv_frequency([800.0, 810.0, 820.0])


def test_long_record_lomb_grid_is_capped() -> None:
    freq, psd = rr_psd(_noisy_rr(4000.0, 8), method="lomb")
    assert freq.size <= freq_module.LOMB_MAX_FREQUENCIES
    assert np.all(psd >= 0.0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    duration_s=st.floats(min_value=130.0, max_value=400.0),
    method=st.sampled_from(["welch", "lomb"]),
)
def test_property_partition(seed: int, duration_s: float, method: str) -> None:
    rng = np.random.default_rng(seed)
    n = int(duration_s / 0.8)
    rr = rng.uniform(600.0, 1000.0, n)
    result = hrv_frequency(rr, method=method)  # type: ignore[arg-type]
    assert result.lf_ms2 >= 0.0
    assert result.hf_ms2 >= 0.0
    assert result.lf_nu + result.hf_nu == pytest.approx(100.0, rel=1e-9)
    assert 0.04 <= result.lf_peak_hz < 0.15
    assert 0.15 <= result.hf_peak_hz < 0.40
