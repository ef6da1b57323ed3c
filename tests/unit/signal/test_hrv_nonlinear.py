"""Tests of nonlinear HRV (shuxin.signal.hrv_nonlinear): Poincaré, sample entropy, DFA."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_nonlinear import (
    DFA_ALPHA1_SCALES,
    DFA_ALPHA2_SCALES,
    dfa_alpha,
    hrv_nonlinear,
    poincare_sd,
    sample_entropy,
)
from shuxin.signal.hrv_time import hrv_time


def _rr(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beats = np.arange(n)
    return 850.0 + 40.0 * np.sin(2 * np.pi * beats / 4.7) + rng.normal(0.0, 15.0, n)


def _sampen_brute_force(x: np.ndarray, m: int, r: float) -> float:
    """Richman & Moorman by definition, O(N^2): a reference for small N only."""
    n_templates = x.size - m
    b = a = 0
    for i in range(n_templates):
        for j in range(i + 1, n_templates):
            if max(abs(x[i + k] - x[j + k]) for k in range(m)) <= r:
                b += 1
                if abs(x[i + m] - x[j + m]) <= r:
                    a += 1
    return -math.log(a / b) if a and b else float("nan")


def _dfa_brute_force(x: np.ndarray, scales: tuple[int, ...]) -> float:
    """Peng et al. DFA with np.polyfit in every box: a reference."""
    profile = np.cumsum(x - x.mean())
    log_f = []
    for n in scales:
        k = profile.size // n
        residuals = []
        for box in range(k):
            seg = profile[box * n : (box + 1) * n]
            j = np.arange(n)
            fit = np.polyval(np.polyfit(j, seg, 1), j)
            residuals.append(seg - fit)
        log_f.append(0.5 * math.log(float(np.mean(np.concatenate(residuals) ** 2))))
    return float(np.polyfit(np.log(scales), log_f, 1)[0])


def test_poincare_identities() -> None:
    rr = _rr(300, 1)
    sd1, sd2 = poincare_sd(rr)
    time = hrv_time(rr)
    # SD1 = SDSD / sqrt(2) exactly; SD1^2 + SD2^2 = var(RR_n) + var(RR_n+1) (both ddof 1).
    assert sd1 == pytest.approx(time.sdsd_ms / math.sqrt(2.0), rel=1e-12)
    expected = np.var(rr[:-1], ddof=1) + np.var(rr[1:], ddof=1)
    assert sd1**2 + sd2**2 == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("r_sd", [0.1, 0.2, 0.35])
def test_sample_entropy_equals_brute_force(m: int, r_sd: float) -> None:
    x = np.round(_rr(220, 2))  # integer ms, as real recordings: many exact ties at d == r
    r = r_sd * float(np.std(x, ddof=1))
    assert sample_entropy(x, m=m, r=r) == pytest.approx(
        _sampen_brute_force(x, m, r), rel=1e-12, nan_ok=True
    )


def test_sample_entropy_with_ties_on_the_tolerance() -> None:
    x = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0, 2.0, 1.0, 3.0, 2.0, 1.0, 1.0] * 4)
    # Integer data with r = 1: many distances equal r exactly; they must count as matches.
    assert sample_entropy(x, m=2, r=1.0) == pytest.approx(_sampen_brute_force(x, 2, 1.0), rel=1e-12)


def test_sample_entropy_of_noise_and_of_a_periodic_series() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(size=2000)
    # Independent samples: A/B = P(|X - Y| <= r) with X - Y ~ N(0, 2 sd^2), so SampEn =
    # -ln(erf(0.2 / 2)) = 2.18 for r = 0.2 sd; +/- 0.15 covers the finite-N spread.
    expected = -math.log(math.erf(0.1))
    assert sample_entropy(noise, r=0.2 * noise.std(ddof=1)) == pytest.approx(expected, abs=0.15)
    periodic = np.tile([800.0, 900.0, 850.0, 820.0], 100)
    assert sample_entropy(periodic, r=10.0) == pytest.approx(0.0, abs=1e-3)


def test_sample_entropy_undefined_and_invalid() -> None:
    assert math.isnan(sample_entropy(np.arange(50.0), r=0.5))  # no two templates within r
    with pytest.raises(InvalidInputError):
        sample_entropy(np.arange(50.0), r=0.0)
    with pytest.raises(InvalidInputError):
        sample_entropy(np.arange(50.0), m=0, r=1.0)
    with pytest.raises(InvalidInputError):
        sample_entropy(np.arange(3.0), m=2, r=1.0)


@pytest.mark.parametrize("scales", [DFA_ALPHA1_SCALES, DFA_ALPHA2_SCALES, (3, 7, 11)])
def test_dfa_equals_brute_force(scales: tuple[int, ...]) -> None:
    x = _rr(700, 4)
    assert dfa_alpha(x, scales) == pytest.approx(_dfa_brute_force(x, scales), rel=1e-9)


def test_dfa_ground_truth_exponents() -> None:
    rng = np.random.default_rng(5)
    white = rng.normal(size=8192)
    walk = np.cumsum(rng.normal(size=8192))
    # White noise has alpha 0.5 and its running sum (Brownian) 1.5 (Peng et al. 1995); the
    # tolerances cover the finite-N spread (about +/- 0.03 over seeds). Over 4-16 beats DFA-1
    # is known to overestimate white noise (about 0.59 here: the linear fit in boxes of a
    # few points removes relatively more variance from the small boxes), so alpha1 of white
    # noise is checked against that band rather than 0.5.
    assert dfa_alpha(white, DFA_ALPHA2_SCALES) == pytest.approx(0.5, abs=0.06)
    assert dfa_alpha(walk, DFA_ALPHA1_SCALES) == pytest.approx(1.5, abs=0.06)
    assert dfa_alpha(walk, DFA_ALPHA2_SCALES) == pytest.approx(1.5, abs=0.08)
    assert 0.55 <= dfa_alpha(white, DFA_ALPHA1_SCALES) <= 0.62


def test_dfa_invalid_scales() -> None:
    x = _rr(100, 6)
    with pytest.raises(InvalidInputError):
        dfa_alpha(x, (4,))
    with pytest.raises(InvalidInputError):
        dfa_alpha(x, (2, 4))
    with pytest.raises(InvalidInputError):
        dfa_alpha(x, (4, 200))


def test_hrv_nonlinear_consistency() -> None:
    rr = _rr(400, 7)
    result = hrv_nonlinear(rr)
    sd1, sd2 = poincare_sd(rr)
    assert result.sd1_ms == sd1
    assert result.sd2_sd1 == pytest.approx(sd2 / sd1, rel=1e-12)
    r = 0.2 * float(np.std(rr, ddof=1))
    assert result.sampen_r_ms == pytest.approx(r, rel=1e-12)
    assert result.sampen == pytest.approx(sample_entropy(rr, r=r), rel=1e-12)
    assert result.dfa_alpha1 == pytest.approx(dfa_alpha(rr, DFA_ALPHA1_SCALES), rel=1e-12)
    assert result.dfa_alpha2 == pytest.approx(dfa_alpha(rr, DFA_ALPHA2_SCALES), rel=1e-12)
    assert result.suppressed == ()


def test_gates_by_length() -> None:
    short = hrv_nonlinear(_rr(60, 8))
    assert not math.isnan(short.sd1_ms)
    assert math.isnan(short.sampen)
    assert not math.isnan(short.dfa_alpha1)  # 60 >= 3 * 16
    assert math.isnan(short.dfa_alpha2)  # 60 < 3 * 64
    assert any(reason.startswith("sampen") for reason in short.suppressed)
    assert any(reason.startswith("dfa_alpha2") for reason in short.suppressed)
    tiny = hrv_nonlinear(_rr(20, 8))
    assert math.isnan(tiny.dfa_alpha1)
    limited = hrv_nonlinear(_rr(300, 8), sampen_max_beats=200)
    assert math.isnan(limited.sampen)
    assert any("segments" in reason for reason in limited.suppressed)


def test_constant_series() -> None:
    result = hrv_nonlinear(np.full(300, 900.0))
    assert result.sd1_ms == 0.0
    assert math.isnan(result.sd2_sd1)
    assert math.isnan(result.sampen)
    assert math.isnan(result.dfa_alpha1)
    assert any("constant" in reason for reason in result.suppressed)


def test_corrected_gate_and_errors() -> None:
    result = hrv_nonlinear(_rr(300, 9), corrected_pct=20.0)
    assert math.isnan(result.sd1_ms)
    assert math.isnan(result.dfa_alpha1)
    assert any("corrected" in reason for reason in result.suppressed)
    with pytest.raises(InvalidInputError):
        hrv_nonlinear([800.0, float("inf"), 810.0])
    with pytest.raises(InsufficientDataError):
        hrv_nonlinear([800.0, 810.0])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(min_value=0.5, max_value=2.0),
    shift=st.floats(min_value=-200.0, max_value=200.0),
)
def test_property_affine_invariance(seed: int, scale: float, shift: float) -> None:
    rr = _rr(260, seed % 1000)
    base = hrv_nonlinear(rr)
    moved = hrv_nonlinear(rr * scale + 300.0 + shift)
    # SD1/SD2 scale with the data; SampEn (r follows the SD) and DFA exponents do not change.
    # Floating-point ties at d == r can flip after rescaling, hence 1e-6 on SampEn.
    assert moved.sd1_ms == pytest.approx(base.sd1_ms * scale, rel=1e-9)
    assert moved.sd2_ms == pytest.approx(base.sd2_ms * scale, rel=1e-9)
    assert moved.sampen == pytest.approx(base.sampen, rel=1e-2)
    assert moved.dfa_alpha1 == pytest.approx(base.dfa_alpha1, rel=1e-9)
    assert moved.dfa_alpha2 == pytest.approx(base.dfa_alpha2, rel=1e-9)
