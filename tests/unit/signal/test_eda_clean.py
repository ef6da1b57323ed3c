"""Tests of EDA low-pass cleaning (shuxin.signal.eda_clean)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from shuxin.signal.eda_clean import eda_clean
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.errors import InsufficientDataError, InvalidInputError


def test_scr_amplitude_and_timing_are_kept_by_the_zero_phase_filter() -> None:
    fs = 32.0
    sim = eda_simulate(
        60.0,
        fs,
        np.random.default_rng(1),
        scr_times_s=[20.0],
        scr_amplitudes_us=[0.5],
        rise_time_s=1.0,
        half_recovery_s=3.0,
        noise_us=0.0,
    )
    out = eda_clean(sim.eda_us, fs)
    assert out.filtered
    assert out.zero_phase
    assert out.notes == ()
    peak_in = int(np.argmax(sim.eda_us))
    peak_out = int(np.argmax(out.eda_us))
    # Zero phase: the peak does not move (a 1 s rise has little energy near 1 Hz).
    assert abs(peak_out - peak_in) <= 1
    # Within 2 % for the fastest SCR rise of the simulator's default range: the order-2
    # design passes the rise and its step overshoot adds about 1 %.
    amp_in = sim.eda_us.max() - sim.eda_us[0]
    amp_out = out.eda_us.max() - out.eda_us[0]
    assert amp_out == pytest.approx(amp_in, rel=0.02)


def test_white_noise_is_reduced_as_the_filter_response_predicts() -> None:
    fs = 32.0
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(200_000) * 0.01
    out = eda_clean(5.0 + noise, fs).eda_us - 5.0
    # Expected SD ratio = sqrt(mean |H|^4) over 0..Nyquist (forward-backward squares |H|).
    sos = scipy.signal.butter(2, 1.0, btype="lowpass", output="sos", fs=fs)
    _, h = scipy.signal.sosfreqz(sos, worN=8192, fs=fs)
    expected = 0.01 * np.sqrt(np.mean(np.abs(h) ** 4))
    # 200k samples estimate the SD to well under 2 %; 5 % leaves room for edge effects.
    assert np.std(out) == pytest.approx(expected, rel=0.05)


def test_causal_filter_starts_in_steady_state_and_has_unit_gain() -> None:
    out = eda_clean(np.full(100, 3.0), 16.0, zero_phase=False)
    assert not out.zero_phase
    # A constant input stays constant: no start-up transient, DC gain exactly 1 (to rounding).
    np.testing.assert_allclose(out.eda_us, 3.0, rtol=0, atol=1e-12)


def test_causal_filter_uses_no_future_samples() -> None:
    rng = np.random.default_rng(3)
    x = 4.0 + 0.1 * rng.standard_normal(400)
    full = eda_clean(x, 32.0, zero_phase=False).eda_us
    prefix = eda_clean(x[:250], 32.0, zero_phase=False).eda_us
    # Identical arithmetic on the same past: bit-for-bit equal.
    np.testing.assert_array_equal(full[:250], prefix)


def test_filter_is_skipped_with_a_note_when_cutoff_is_near_nyquist() -> None:
    x = np.linspace(1.0, 2.0, 50)
    out = eda_clean(x, 2.0, cutoff_hz=1.0)
    assert not out.filtered
    assert "skipped" in out.notes[0]
    np.testing.assert_array_equal(out.eda_us, x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected(bad: float) -> None:
    x = np.full(64, 2.0)
    x[10] = bad
    with pytest.raises(InvalidInputError, match="index 10"):
        eda_clean(x, 32.0)


@pytest.mark.parametrize("fs", [0.0, -4.0, 0.5, np.nan, np.inf, 20_000.0])
def test_bad_sampling_rates_are_rejected(fs: float) -> None:
    with pytest.raises(InvalidInputError):
        eda_clean(np.ones(64), fs)


def test_bad_shapes_orders_and_lengths_are_rejected() -> None:
    with pytest.raises(InvalidInputError):
        eda_clean(np.ones((8, 2)), 32.0)
    with pytest.raises(InvalidInputError):
        eda_clean(np.ones(64), 32.0, order=0)
    with pytest.raises(InvalidInputError):
        eda_clean(np.ones(64), 32.0, cutoff_hz=-1.0)
    with pytest.raises(InsufficientDataError):
        eda_clean(np.ones(1), 32.0)


def test_very_short_input_is_filtered_without_error() -> None:
    out = eda_clean(np.array([1.0, 1.0, 1.0]), 32.0)
    np.testing.assert_allclose(out.eda_us, 1.0, atol=1e-12)
