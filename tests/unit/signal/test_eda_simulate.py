"""Tests of the EDA simulator's ground truth (shuxin.signal.eda_simulate)."""

from __future__ import annotations

import numpy as np
import pytest

from shuxin.signal.eda_simulate import CONTACT_LOSS_MAX_US, eda_simulate
from shuxin.signal.errors import InvalidInputError


def test_same_generator_state_gives_the_same_record() -> None:
    a = eda_simulate(60.0, 8.0, np.random.default_rng(11))
    b = eda_simulate(60.0, 8.0, np.random.default_rng(11))
    c = eda_simulate(60.0, 8.0, np.random.default_rng(12))
    np.testing.assert_array_equal(a.eda_us, b.eda_us)
    assert not np.array_equal(a.eda_us, c.eda_us)


@pytest.mark.parametrize(("rise", "half"), [(1.0, 2.0), (3.0, 2.1), (2.0, 10.0), (1.5, 6.0)])
def test_scr_shape_has_the_requested_rise_half_recovery_and_amplitude(
    rise: float, half: float
) -> None:
    fs = 1000.0
    sim = eda_simulate(
        60.0,
        fs,
        np.random.default_rng(0),
        scr_times_s=[5.0],
        scr_amplitudes_us=[0.4],
        rise_time_s=rise,
        half_recovery_s=half,
        noise_us=0.0,
    )
    phasic = sim.phasic_us
    k = int(np.argmax(phasic))
    # Sample grid of 1 ms: times within 2 ms, amplitude within 1e-6 µS of the request.
    assert phasic[k] == pytest.approx(0.4, abs=1e-6)
    assert k / fs - 5.0 == pytest.approx(rise, abs=2e-3)
    half_k = k + int(np.argmax(phasic[k:] <= 0.2))
    assert (half_k - k) / fs == pytest.approx(half, abs=2e-3)
    assert sim.scr_peak_s[0] == pytest.approx(5.0 + rise)
    assert np.all(phasic[: int(5.0 * fs) + 1] == 0.0)


def test_tonic_drift_and_noise_level_are_as_requested() -> None:
    sim = eda_simulate(
        600.0, 32.0, np.random.default_rng(3), scr_rate_per_min=0.0, drift_us_per_min=-0.2
    )
    slope_per_min = np.polyfit(sim.t_s / 60.0, sim.tonic_us, 1)[0]
    assert slope_per_min == pytest.approx(-0.2, rel=1e-9)
    noise = sim.eda_us - sim.eda_true_us
    # 19200 samples: the SD estimate is within ~1 % (3 SE); 3 % leaves margin.
    assert np.std(noise) == pytest.approx(0.002, rel=0.03)


def test_random_onsets_respect_rate_and_gap() -> None:
    sim = eda_simulate(3600.0, 4.0, np.random.default_rng(4), scr_rate_per_min=3.0, min_gap_s=8.0)
    gaps = np.diff(sim.scr_onset_s)
    assert gaps.min() >= 8.0
    # About 180 onsets per hour; Poisson SD ~13, so 3 SD around the mean.
    assert 140 <= sim.scr_onset_s.size <= 220
    assert sim.scr_amplitude_us.min() >= 0.05
    assert sim.scr_amplitude_us.max() <= 1.0


def test_quantisation_rounds_to_the_adc_step() -> None:
    sim = eda_simulate(30.0, 16.0, np.random.default_rng(5), quantization_us=0.01)
    steps = np.round(sim.eda_us / 0.01)
    np.testing.assert_allclose(sim.eda_us, steps * 0.01, atol=1e-12)


def test_contact_loss_and_clipping_are_injected_at_known_times() -> None:
    fs = 10.0
    sim = eda_simulate(
        100.0,
        fs,
        np.random.default_rng(6),
        contact_loss=[(20.0, 5.0)],
        clipping=[(60.0, 3.0)],
        clip_level_us=20.0,
    )
    assert sim.artefact_segments == ((20.0, 25.0, "contact_loss"), (60.0, 63.0, "clipping"))
    lost = slice(200, 250)
    clipped = slice(600, 630)
    assert np.all(sim.eda_us[lost] < CONTACT_LOSS_MAX_US)
    assert np.all(sim.eda_us[clipped] == 20.0)
    assert sim.artefact_mask.sum() == 80
    # Ground truth is untouched by artefacts.
    assert np.all(sim.eda_true_us > 1.0)


def test_invalid_arguments_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError):
        eda_simulate(60.0, 32.0, 7)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        eda_simulate(60.0, 32.0, rng, scr_times_s=[70.0])
    with pytest.raises(InvalidInputError):
        eda_simulate(60.0, 32.0, rng, scr_times_s=[10.0], scr_amplitudes_us=[0.1, 0.2])
    with pytest.raises(InvalidInputError):
        eda_simulate(60.0, 32.0, rng, clipping=[(1.0, 1.0)])
    with pytest.raises(InvalidInputError):
        eda_simulate(60.0, 32.0, rng, scl_start_us=1.0, drift_us_per_min=-2.0)
    with pytest.raises(InvalidInputError):
        eda_simulate(-1.0, 32.0, rng)
