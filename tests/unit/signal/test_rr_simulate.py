"""Ground-truth tests of the IPFM RR simulator (shuxin.signal.rr_simulate)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_frequency import hrv_frequency
from shuxin.signal.rr_simulate import (
    ECTOPIC_PREMATURITY,
    LONG_FACTOR,
    SHORT_FACTOR,
    SimulatedRr,
    rr_simulate,
)


def _rmssd(rr: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)))


def _peak_hz(rr_ms: np.ndarray, band: tuple[float, float]) -> float:
    """Highest Welch peak (4 Hz linear tachogram, 120 s Hann segments, 0.002 Hz grid)."""
    t = np.cumsum(rr_ms) / 1000.0
    grid = np.arange(t[0], t[-1], 0.25)
    x = np.interp(grid, t, rr_ms)
    freq, psd = scipy.signal.welch(x, fs=4.0, nperseg=min(480, x.size), nfft=2000, detrend="linear")
    inside = (freq >= band[0]) & (freq <= band[1])
    return float(freq[inside][np.argmax(psd[inside])])


def test_same_generator_state_gives_the_same_series() -> None:
    a = rr_simulate(120, np.random.default_rng(7), ectopic=2)
    b = rr_simulate(120, np.random.default_rng(7), ectopic=2)
    c = rr_simulate(120, np.random.default_rng(8), ectopic=2)
    np.testing.assert_array_equal(a.rr_ms, b.rr_ms)
    np.testing.assert_array_equal(a.artefact_index, b.artefact_index)
    assert not np.array_equal(a.rr_clean_ms[:50], c.rr_clean_ms[:50])


def test_duration_mean_hr_and_result_fields() -> None:
    sim = rr_simulate(300, np.random.default_rng(1), mean_hr_bpm=72.0)
    assert isinstance(sim, SimulatedRr)
    total_ms = float(sim.rr_clean_ms.sum())
    # The clean beats fill the duration up to, at most, one interval.
    assert 300_000.0 - 2000.0 < total_ms <= 300_000.0
    # IPFM fires beats at the set mean rate; 2 % allows for the 1/f VLF and Mayer noise
    # whose 5-min mean is not exactly zero (their sd is 20 ms of ~830 ms).
    assert 60000.0 * sim.rr_clean_ms.size / total_ms == pytest.approx(72.0, rel=0.02)
    np.testing.assert_allclose(sim.beat_time_s, np.cumsum(sim.rr_clean_ms) / 1000.0)
    assert sim.mean_hr_bpm == 72.0
    assert sim.artefact_index.size == 0
    assert sim.algorithm_version.startswith("rr_simulate/")


def test_rsa_alone_has_the_requested_amplitude() -> None:
    sim = rr_simulate(
        120,
        np.random.default_rng(2),
        breathing_rate_bpm=12.0,
        rsa_amplitude_ms=40.0,
        mayer_amplitude_ms=0.0,
        vlf_sd_ms=0.0,
        beat_jitter_sd_ms=0.0,
        breathing_rate_cv=0.0,
    )
    half_swing = (np.percentile(sim.rr_clean_ms, 99) - np.percentile(sim.rr_clean_ms, 1)) / 2
    # IPFM averages the modulation over one beat (sinc(0.2 Hz x 0.92 s) = 0.95) and the beats
    # sample the sine at ~5 points per cycle, missing the crest by up to cos(pi/5) = 0.81:
    # the observed half swing lies between 0.75 and 1.0 of the set amplitude.
    assert 0.75 * 40.0 <= half_swing <= 40.0
    assert _peak_hz(sim.rr_clean_ms, (0.04, 0.5)) == pytest.approx(0.2, abs=0.004)


def test_six_per_minute_breathing_puts_the_lf_peak_at_0_1_hz() -> None:
    for seed in range(3):
        sim = rr_simulate(
            300, np.random.default_rng(seed), breathing_rate_bpm=6.0, resonance_bpm=6.0
        )
        # 120-s Welch segments resolve 1/120 Hz; the paced period varies 3 % breath to breath;
        # ±0.005 Hz is well inside the ±0.01 Hz required.
        assert _peak_hz(sim.rr_clean_ms, (0.04, 0.15)) == pytest.approx(0.1, abs=0.005)
        # The HRV helper's Welch LF peak (cubic 4 Hz, 150 s segments: 1/150 Hz resolution)
        # must agree within the required ±0.01 Hz (measured 0.100-0.103 Hz over 40 runs).
        assert hrv_frequency(sim.rr_clean_ms).lf_peak_hz == pytest.approx(0.1, abs=0.01)


def test_stress_raises_hr_and_lowers_rmssd() -> None:
    rmssd = []
    hr = []
    for stress in (0.0, 0.5, 1.0):
        sim = rr_simulate(300, np.random.default_rng(3), stress=stress)
        rmssd.append(_rmssd(sim.rr_clean_ms))
        hr.append(60000.0 / float(sim.rr_clean_ms.mean()))
    assert rmssd[0] > rmssd[1] > rmssd[2]
    assert hr[0] < hr[1] < hr[2]
    # Stress 1 removes 70 % of the RSA and 50 % of the jitter: RMSSD drops by well over half.
    assert rmssd[2] < 0.5 * rmssd[0]


def test_explicit_artefacts_are_exactly_where_reported() -> None:
    sim = rr_simulate(
        300,
        np.random.default_rng(4),
        ectopic=[10, 60],
        missed=[30],
        extra=[100],
        long=[150],
        short=[200],
    )
    clean = sim.rr_clean_ms
    out = sim.rr_ms
    assert sim.artefact_kind == ("ectopic", "missed", "ectopic", "extra", "long", "short")
    np.testing.assert_array_equal(sim.artefact_clean_index, [10, 30, 60, 100, 150, 200])
    # ectopic at 10 keeps the length; missed at 30 removes one interval; extra at 100 adds one.
    np.testing.assert_array_equal(sim.artefact_index, [10, 30, 59, 99, 150, 200])
    assert out.size == clean.size - 1 + 1

    for pos, kind, j in zip(
        sim.artefact_index, sim.artefact_kind, sim.artefact_clean_index, strict=True
    ):
        if kind == "ectopic":
            assert out[pos] == pytest.approx(clean[j] * (1 - ECTOPIC_PREMATURITY), rel=1e-12)
            assert out[pos] + out[pos + 1] == pytest.approx(clean[j] + clean[j + 1], rel=1e-12)
        elif kind == "missed":
            assert out[pos] == pytest.approx(clean[j] + clean[j + 1], rel=1e-12)
        elif kind == "extra":
            assert out[pos] + out[pos + 1] == pytest.approx(clean[j], rel=1e-12)
            assert min(out[pos], out[pos + 1]) >= 0.3 * clean[j] - 1e-9
        elif kind == "long":
            assert out[pos] == pytest.approx(clean[j] * LONG_FACTOR, rel=1e-12)
        else:
            assert out[pos] == pytest.approx(clean[j] * SHORT_FACTOR, rel=1e-12)

    # Every other interval is an untouched clean interval, in order.
    touched_out = set()
    touched_clean = set()
    for pos, kind, j in zip(
        sim.artefact_index, sim.artefact_kind, sim.artefact_clean_index, strict=True
    ):
        touched_out |= {pos, pos + 1} if kind in ("ectopic", "extra") else {pos}
        touched_clean |= {j, j + 1} if kind in ("ectopic", "missed") else {j}
    keep_out = [i for i in range(out.size) if i not in touched_out]
    keep_clean = [j for j in range(clean.size) if j not in touched_clean]
    np.testing.assert_array_equal(out[keep_out], clean[keep_clean])


def test_random_artefact_counts_are_spread_and_reported() -> None:
    sim = rr_simulate(600, np.random.default_rng(5), ectopic=4, missed=3, extra=2, long=2, short=2)
    assert len(sim.artefact_kind) == 13
    assert sorted(sim.artefact_kind) == sorted(
        ["ectopic"] * 4 + ["missed"] * 3 + ["extra"] * 2 + ["long"] * 2 + ["short"] * 2
    )
    assert np.all(np.diff(sim.artefact_clean_index) >= 3)
    assert sim.rr_ms.size == sim.rr_clean_ms.size - 3 + 2
    for pos, kind in zip(sim.artefact_index, sim.artefact_kind, strict=True):
        if kind == "missed":
            assert sim.rr_ms[pos] > 1.6 * np.median(sim.rr_clean_ms)
        if kind in ("ectopic", "extra", "short"):
            assert sim.rr_ms[pos] < 0.8 * np.median(sim.rr_clean_ms)


def test_resonance_makes_rsa_amplitude_peak_at_the_subject_rate() -> None:
    schedule = [(0.0, 6.5), (120.0, 6.0), (240.0, 5.5), (360.0, 5.0), (480.0, 4.5)]
    sim = rr_simulate(600, np.random.default_rng(6), breathing_schedule=schedule, resonance_bpm=5.5)
    rates = sim.breathing_rate_per_beat_bpm
    assert set(np.unique(rates)) == {6.5, 6.0, 5.5, 5.0, 4.5}
    # Beat times follow the schedule: every beat in the third step carries its rate.
    third = (sim.beat_time_s >= 240.0) & (sim.beat_time_s < 360.0)
    assert np.all(rates[third] == 5.5)
    by_rate = {r: float(sim.rsa_amplitude_per_beat_ms[rates == r][0]) for r in np.unique(rates)}
    assert max(by_rate, key=by_rate.__getitem__) == 5.5
    assert by_rate[5.5] == pytest.approx(30.0 * 3.0)
    assert sim.breathing_rate_bpm == pytest.approx(5.5)


def test_hr_trend_moves_the_heart_rate() -> None:
    sim = rr_simulate(600, np.random.default_rng(7), hr_trend_bpm=10.0)
    t = sim.beat_time_s
    first = 60000.0 / sim.rr_clean_ms[t < 120].mean()
    last = 60000.0 / sim.rr_clean_ms[t > 480].mean()
    # Linear +10 bpm over 600 s: the first and last 2-min means differ by 8 bpm; VLF noise
    # (sd 20 ms ~ 1.5 bpm) moves 2-min means by about 1 bpm, so ±3 bpm.
    assert last - first == pytest.approx(8.0, abs=3.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stress": 1.5},
        {"mean_hr_bpm": 10.0},
        {"ectopic": [5], "missed": [6]},
        {"ectopic": [10_000]},
        {"missed": -1},
        {"breathing_schedule": [(10.0, 6.0)]},
        {"breathing_schedule": [(0.0, 6.0), (0.0, 5.0)]},
        {"breathing_rate_cv": 0.9},
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        rr_simulate(120, np.random.default_rng(0), **kwargs)  # type: ignore[arg-type]
