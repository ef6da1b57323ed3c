"""Tests that live EDA (shuxin.signal.eda_stream) equals the causal batch functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shuxin.signal.eda_clean import eda_clean
from shuxin.signal.eda_peaks import eda_peaks
from shuxin.signal.eda_phasic import eda_phasic
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.eda_stream import EdaStream
from shuxin.signal.errors import InvalidInputError


@pytest.mark.parametrize(("fs", "window_s"), [(4.0, 60.0), (32.0, 30.0), (128.0, 60.0)])
def test_every_live_value_equals_the_batch_causal_pipeline(fs: float, window_s: float) -> None:
    sim = eda_simulate(
        240.0,
        fs,
        np.random.default_rng(int(fs)),
        scr_rate_per_min=5.0,
        drift_us_per_min=0.3,
        noise_us=0.003,
    )
    x = sim.eda_us
    y = eda_clean(x, fs, zero_phase=False).eda_us
    tonic = eda_phasic(y, fs, method="causal").tonic_us
    peaks = eda_peaks(y, fs)
    assert peaks.count >= 10  # enough SCRs for the count comparison to mean something

    stream = EdaStream(fs, window_s=window_s)
    lives = [stream.push(v) for v in x.tolist()]
    width = round(window_s * fs)
    live_y = np.array([live.eda_clean_us for live in lives])
    live_tonic = np.array([live.tonic_us for live in lives])
    # Same filter arithmetic as scipy's sosfilt and the same minima: equal to the last bit.
    np.testing.assert_array_equal(live_y, y)
    np.testing.assert_array_equal(live_tonic, tonic)
    csum = np.concatenate(([0.0], np.cumsum(tonic)))
    for n, live in enumerate(lives):
        first = max(0, n - width + 1)
        covered = n - first + 1
        scl = (csum[n + 1] - csum[first]) / covered
        # Running sum vs cumulative sum: rounding differs by ~1e-12 µS; 1e-9 is the contract.
        assert live.scl_us == pytest.approx(scl, abs=1e-9)
        expected = int(np.sum((peaks.confirm_index <= n) & (peaks.peak_index >= first)))
        assert live.scr_count == expected
        assert live.scr_per_min == pytest.approx(expected * 60.0 * fs / covered)
        assert live.window_covered_s == pytest.approx(covered / fs)
    assert lives[-1].n_samples == x.size
    assert lives[-1].t_s == pytest.approx((x.size - 1) / fs)


def test_last_scr_amplitude_equals_the_batch_amplitude() -> None:
    fs = 16.0
    sim = eda_simulate(
        120.0, fs, np.random.default_rng(1), scr_times_s=[30.0, 80.0], scr_amplitudes_us=[0.3, 0.6]
    )
    y = eda_clean(sim.eda_us, fs, zero_phase=False).eda_us
    peaks = eda_peaks(y, fs)
    stream = EdaStream(fs)
    live = stream.push_many(sim.eda_us)
    assert live is not None
    assert peaks.count == 2
    assert live.last_scr_amplitude_us == peaks.amplitude_us[-1]


def test_nan_is_rejected_and_leaves_the_state_unchanged() -> None:
    fs = 8.0
    x = eda_simulate(60.0, fs, np.random.default_rng(2)).eda_us
    a, b = EdaStream(fs), EdaStream(fs)
    a.push_many(x[:200])
    b.push_many(x[:200])
    with pytest.raises(InvalidInputError):
        a.push(math.nan)
    with pytest.raises(InvalidInputError):
        a.push(math.inf)
    assert a.n_samples == 200
    last_a = a.push_many(x[200:])
    last_b = b.push_many(x[200:])
    assert last_a == last_b


def test_reset_starts_over_and_empty_push_many_returns_none() -> None:
    fs = 8.0
    x = eda_simulate(60.0, fs, np.random.default_rng(3)).eda_us
    stream = EdaStream(fs)
    first = stream.push_many(x)
    stream.reset()
    assert stream.n_samples == 0
    assert stream.push_many([]) is None
    again = stream.push_many(x)
    assert again == first


def test_before_any_scr_the_rate_is_zero_and_amplitude_nan() -> None:
    live = EdaStream(4.0).push(5.0)
    assert live.scr_count == 0
    assert live.scr_per_min == 0.0
    assert math.isnan(live.last_scr_amplitude_us)
    assert live.scl_us == 5.0
    assert live.tonic_us == 5.0


def test_bad_settings_raise() -> None:
    with pytest.raises(InvalidInputError):
        EdaStream(0.0)
    with pytest.raises(InvalidInputError):
        EdaStream(32.0, window_s=0.0)
    with pytest.raises(InvalidInputError):
        EdaStream(32.0, amplitude_min_us=-1.0)
