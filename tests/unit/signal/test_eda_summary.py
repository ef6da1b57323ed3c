"""Tests of the EDA record summary (shuxin.signal.eda_summary)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.eda_summary import EdaSummary, eda_summary
from shuxin.signal.errors import InsufficientDataError, InvalidInputError

#: The fields ``shuxin analyze --eda`` and the gateway read (issue 3, item 8).
CONTRACT_FIELDS = (
    "scl_mean_us",
    "scl_slope_us_per_min",
    "scr_count",
    "scr_per_min",
    "scr_amp_mean_us",
    "algorithm_version",
)


def test_contract_fields_exist() -> None:
    names = {f.name for f in dataclasses.fields(EdaSummary)}
    assert set(CONTRACT_FIELDS) <= names


@pytest.mark.parametrize("fs", [4.0, 32.0])
def test_summary_recovers_simulated_ground_truth(fs: float) -> None:
    times = np.arange(15.0, 290.0, 25.0)
    amps = np.geomspace(0.1, 0.8, times.size)
    sim = eda_simulate(
        300.0,
        fs,
        np.random.default_rng(21),
        scl_start_us=4.0,
        drift_us_per_min=0.2,
        scr_times_s=times,
        scr_amplitudes_us=amps,
        half_recovery_s=(2.0, 5.0),
        noise_us=0.002,
    )
    s = eda_summary(sim.eda_us, fs)
    assert s.scr_count == times.size
    assert s.scr_per_min == pytest.approx(times.size / 5.0)
    # TTP amplitudes include drift over the rise (0.2 µS/min x <= 3 s = 0.01 µS): mean within 5 %.
    assert s.scr_amp_mean_us == pytest.approx(amps.mean(), rel=0.05)
    # The interpolated SCL keeps SCR tails past 4 half-recovery times (~6 % of amplitudes,
    # 0.02 µS on average here): within 0.03 µS of the true tonic mean.
    assert s.scl_mean_us == pytest.approx(sim.tonic_us.mean(), abs=0.03)
    assert s.scl_slope_us_per_min == pytest.approx(0.2, abs=0.03)
    assert s.valid_fraction == 1.0
    assert s.quality_flags == ()
    assert s.algorithm_version.startswith("eda_summary/")
    assert s.peaks is not None
    assert s.peaks.count == s.scr_count


def test_contact_loss_is_flagged_and_excluded() -> None:
    fs = 16.0
    times = [30.0, 95.0, 150.0]
    base = {
        "scr_times_s": times,
        "scr_amplitudes_us": [0.3, 0.4, 0.5],
        "noise_us": 0.002,
        "drift_us_per_min": 0.0,
    }
    clean = eda_summary(eda_simulate(200.0, fs, np.random.default_rng(4), **base).eda_us, fs)
    sim = eda_simulate(200.0, fs, np.random.default_rng(4), contact_loss=[(90.0, 15.0)], **base)
    s = eda_summary(sim.eda_us, fs)
    assert "contact_loss" in s.quality_flags
    # The SCR at 95 s lies in the lost span: not counted; the rate uses valid minutes only.
    assert s.scr_count == 2
    assert s.valid_duration_s == pytest.approx(200.0 - 25.0, abs=1.0)
    assert s.scr_per_min == pytest.approx(2 / (s.valid_duration_s / 60.0))
    # Bridging keeps the artefact out of the SCL: within 0.01 µS of the clean record's value.
    assert s.scl_mean_us == pytest.approx(clean.scl_mean_us, abs=0.01)


def test_constant_signal_suppresses_metrics_with_a_reason() -> None:
    s = eda_summary(np.full(600, 3.0), 10.0)
    assert "flat_line" in s.quality_flags
    assert s.scr_count is None
    assert math.isnan(s.scl_mean_us)
    assert math.isnan(s.scr_per_min)
    assert any("suppressed" in note for note in s.notes)


def test_negative_values_are_flagged_not_raised() -> None:
    fs = 8.0
    x = eda_simulate(120.0, fs, np.random.default_rng(5), noise_us=0.002).eda_us
    x[400:420] = -1.0
    s = eda_summary(x, fs)
    assert "out_of_range" in s.quality_flags
    assert s.valid_fraction < 1.0
    assert math.isfinite(s.scl_mean_us)


def test_no_scr_gives_nan_means_and_a_note() -> None:
    fs = 8.0
    x = eda_simulate(120.0, fs, np.random.default_rng(6), scr_rate_per_min=0.0).eda_us
    s = eda_summary(x, fs)
    assert s.scr_count == 0
    assert s.scr_per_min == 0.0
    assert math.isnan(s.scr_amp_mean_us)
    assert any("no SCR" in note for note in s.notes)


def test_noise_above_the_floor_is_reported() -> None:
    fs = 4.0
    x = eda_simulate(120.0, fs, np.random.default_rng(7), noise_us=0.01).eda_us
    s = eda_summary(x, fs)
    # White noise of 0.01 µS keeps ~0.007 µS after a 1 Hz low-pass at 4 Hz: 4x is > 0.01 µS.
    assert s.noise_us == pytest.approx(0.007, rel=0.3)
    assert any("noise" in note for note in s.notes)


def test_too_short_and_nan_inputs_raise() -> None:
    with pytest.raises(InsufficientDataError):
        eda_summary(np.full(40, 3.0), 8.0)
    x = np.full(200, 3.0)
    x[5] = np.nan
    with pytest.raises(InvalidInputError):
        eda_summary(x, 8.0)
