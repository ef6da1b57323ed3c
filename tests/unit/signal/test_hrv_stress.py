"""Tests of the Baevsky stress index and Kubios-style PNS/SNS (shuxin.signal.hrv_stress)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_nonlinear import poincare_sd
from shuxin.signal.hrv_stress import PNS_SNS_NORMS, baevsky_si, hrv_stress
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.rr_simulate import rr_simulate


def test_baevsky_hand_example() -> None:
    rr = np.array([800.0, 810.0, 820.0, 849.9, 850.0, 900.0])
    si, amo, mo, mxdmn = baevsky_si(rr)
    # Bins [800, 850): 4 intervals (849.9 included, 850 opens the next bin), [850, 900): 1,
    # [900, 950): 1. AMo = 4/6 = 66.67 %, Mo = 0.825 s (bin centre), MxDMn = 0.1 s.
    assert amo == pytest.approx(400.0 / 6.0, rel=1e-12)
    assert mo == pytest.approx(0.825, rel=1e-12)
    assert mxdmn == pytest.approx(0.1, rel=1e-12)
    assert si == pytest.approx((400.0 / 6.0) / (2 * 0.825 * 0.1), rel=1e-12)
    result = hrv_stress(rr)
    assert result.baevsky_si == pytest.approx(si, rel=1e-12)
    assert result.stress_index == pytest.approx(math.sqrt(si), rel=1e-12)
    assert result.mo_method == "histogram"


def test_median_mode_and_ties() -> None:
    rr = np.array([800.0, 860.0, 1000.0, 1010.0, 820.0, 870.0])
    # Bins 800-849: 2, 850-899: 2, 1000-1049: 2 -> tie, the lowest bin wins: Mo = 0.825 s.
    _, amo, mo, _ = baevsky_si(rr)
    assert mo == pytest.approx(0.825)
    assert amo == pytest.approx(100.0 / 3.0)
    _, _, mo_median, _ = baevsky_si(rr, mo_method="median")
    assert mo_median == pytest.approx(float(np.median(rr)) / 1000.0)
    with pytest.raises(InvalidInputError):
        baevsky_si(rr, mo_method="mean")  # type: ignore[arg-type]


def test_pns_sns_are_the_documented_z_score_means() -> None:
    rr = rr_simulate(300.0, np.random.default_rng(1)).rr_clean_ms
    result = hrv_stress(rr)
    time = hrv_time(rr)
    sd1, sd2 = poincare_sd(rr)

    def z(name: str, value: float) -> float:
        mean, sd = PNS_SNS_NORMS[name]
        return (value - mean) / sd

    pns = (z("mean_rr_ms", time.mean_rr_ms) + z("rmssd_ms", time.rmssd_ms) + z("sd1_ms", sd1)) / 3
    sns = (
        z("mean_hr_bpm", time.mean_hr_bpm)
        + z("stress_index", result.stress_index)
        - z("sd2_ms", sd2)
    ) / 3
    assert result.pns_index == pytest.approx(pns, rel=1e-12)
    assert result.sns_index == pytest.approx(sns, rel=1e-12)


def test_stress_moves_the_indices_the_right_way() -> None:
    calm = hrv_stress(rr_simulate(300.0, np.random.default_rng(2), stress=0.0).rr_clean_ms)
    tense = hrv_stress(rr_simulate(300.0, np.random.default_rng(2), stress=1.0).rr_clean_ms)
    assert tense.baevsky_si > calm.baevsky_si
    assert tense.sns_index > calm.sns_index
    assert tense.pns_index < calm.pns_index


def test_norm_constants_are_consistent_with_their_derivation() -> None:
    mean_rr, sd_rr = PNS_SNS_NORMS["mean_rr_ms"]
    mean_rmssd, sd_rmssd = PNS_SNS_NORMS["rmssd_ms"]
    # Derived values (module docstring), to the printed precision.
    assert PNS_SNS_NORMS["sd1_ms"][0] == pytest.approx(mean_rmssd / math.sqrt(2), abs=0.05)
    assert PNS_SNS_NORMS["sd1_ms"][1] == pytest.approx(sd_rmssd / math.sqrt(2), abs=0.05)
    assert PNS_SNS_NORMS["mean_hr_bpm"][0] == pytest.approx(60000 / mean_rr, abs=0.05)
    assert PNS_SNS_NORMS["mean_hr_bpm"][1] == pytest.approx(60000 * sd_rr / mean_rr**2, abs=0.05)
    sd2 = math.sqrt(2 * 50.0**2 - PNS_SNS_NORMS["sd1_ms"][0] ** 2)
    assert PNS_SNS_NORMS["sd2_ms"][0] == pytest.approx(sd2, abs=0.05)


def test_constant_series_and_gates() -> None:
    flat = hrv_stress(np.full(300, 1000.0))
    assert math.isnan(flat.baevsky_si)
    assert math.isnan(flat.stress_index)
    assert math.isnan(flat.sns_index)
    assert flat.amo_pct == 100.0
    assert any("MxDMn" in reason for reason in flat.suppressed)
    gated = hrv_stress(np.linspace(800, 900, 300), corrected_pct=7.0)
    assert math.isnan(gated.baevsky_si)
    assert math.isnan(gated.pns_index)
    short = hrv_stress(np.linspace(800, 900, 30))
    assert any("5-min" in note for note in short.notes)


def test_invalid_and_short() -> None:
    with pytest.raises(InvalidInputError):
        hrv_stress([800.0, float("nan"), 900.0])
    with pytest.raises(InvalidInputError):
        hrv_stress([800.0, 0.0, 900.0])
    with pytest.raises(InsufficientDataError):
        hrv_stress([800.0, 900.0])
