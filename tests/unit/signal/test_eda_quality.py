"""Tests of EDA quality flags (shuxin.signal.eda_quality)."""

from __future__ import annotations

import numpy as np
import pytest

from shuxin.signal.eda_quality import EdaFlag, eda_quality
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.errors import InvalidInputError

FS = 32.0


def _clean_record(seed: int = 0, duration_s: float = 120.0) -> np.ndarray:
    return eda_simulate(
        duration_s, FS, np.random.default_rng(seed), scr_rate_per_min=4.0, noise_us=0.003
    ).eda_us


def test_a_clean_record_with_large_scrs_is_all_valid() -> None:
    sim = eda_simulate(
        120.0,
        FS,
        np.random.default_rng(5),
        scr_times_s=[20.0, 60.0],
        scr_amplitudes_us=[2.0, 3.0],  # large and fast: 3 µS in 1 s must not look like a jump
        rise_time_s=1.0,
        noise_us=0.003,
    )
    q = eda_quality(sim.eda_us, FS)
    assert q.valid.all()
    assert q.valid_fraction == 1.0
    assert q.segments == ()
    assert q.reasons == ()


def test_injected_contact_loss_is_flagged_with_a_transition_margin() -> None:
    sim = eda_simulate(
        120.0, FS, np.random.default_rng(6), contact_loss=[(40.0, 10.0)], noise_us=0.003
    )
    q = eda_quality(sim.eda_us, FS, margin_s=5.0)
    lost = sim.artefact_mask
    assert (q.flags[lost] & EdaFlag.CONTACT_LOSS).all()
    assert len(q.segments) == 1
    seg = q.segments[0]
    assert "contact_loss" in seg.reasons
    assert "transition" in seg.reasons
    # The injected span widened by the 5 s margin on each side; the jump rule also flags its
    # 0.25 s lag span at both edges (tolerance: that lag plus one sample).
    assert seg.start_s == pytest.approx(35.0, abs=0.25 + 1.0 / FS)
    assert seg.stop_s == pytest.approx(55.0, abs=0.25 + 1.0 / FS)
    assert q.valid[: int(34 * FS)].all()
    assert q.valid[int(56 * FS) :].all()


def test_margin_zero_flags_only_the_bad_samples() -> None:
    x = _clean_record()
    x[1000:1100] = 0.01
    q = eda_quality(x, FS, margin_s=0.0)
    bad = np.flatnonzero(~q.valid)
    # Contact loss covers 1000..1099; the jump rule also flags the lag span at both edges.
    lag = round(0.25 * FS)
    assert bad.min() >= 1000 - lag
    assert bad.max() <= 1099 + lag
    assert (q.flags[1000:1100] & EdaFlag.CONTACT_LOSS).all()


def test_injected_clipping_is_flagged() -> None:
    sim = eda_simulate(
        120.0,
        FS,
        np.random.default_rng(7),
        clipping=[(70.0, 5.0)],
        clip_level_us=25.0,
        noise_us=0.003,
    )
    q = eda_quality(sim.eda_us, FS)
    assert (q.flags[sim.artefact_mask] & EdaFlag.CLIPPING).all()
    assert "clipping" in q.reasons


def test_clipping_at_a_known_full_scale_without_being_the_record_max() -> None:
    x = _clean_record()
    x[2000:2100] = 30.0
    x[3000] = 31.0  # a single higher spike makes 30 not the record maximum
    q = eda_quality(x, FS, range_max_us=30.0)
    assert (q.flags[2000:2100] & EdaFlag.CLIPPING).all()


def test_constant_signal_is_a_flat_line() -> None:
    q = eda_quality(np.full(int(60 * FS), 4.2), FS)
    assert not q.valid.any()
    assert q.valid_fraction == 0.0
    assert "flat_line" in q.reasons


def test_a_short_plateau_is_not_a_flat_line() -> None:
    x = _clean_record()
    x[500 : 500 + int(3 * FS)] = x[500]  # 3 s of one value: a coarse ADC at rest can do this
    q = eda_quality(x, FS)
    assert not (q.flags & EdaFlag.FLAT_LINE).any()


def test_negative_and_excessive_values_are_out_of_range() -> None:
    x = _clean_record()
    x[100:110] = -0.5
    x[3000:3010] = 75.0
    q = eda_quality(x, FS, margin_s=0.0)
    assert (q.flags[100:110] & EdaFlag.OUT_OF_RANGE).all()
    assert (q.flags[3000:3010] & EdaFlag.OUT_OF_RANGE).all()
    assert not (q.flags[100:110] & EdaFlag.CONTACT_LOSS).any()


def test_a_step_is_a_jump() -> None:
    x = _clean_record()
    x[2000:] += 4.0  # 4 µS between two samples: 128 µS/s
    q = eda_quality(x, FS, margin_s=1.0)
    assert (q.flags[1999:2001] & EdaFlag.JUMP).all()
    assert (q.flags[2000 - 32 : 1999] & EdaFlag.TRANSITION).any()
    assert q.valid[: 2000 - 64].all()


def test_segments_list_every_invalid_run_in_order() -> None:
    x = _clean_record(duration_s=200.0)
    x[1000:1100] = 0.0
    x[4000:4100] = 0.0
    q = eda_quality(x, FS, margin_s=1.0)
    assert len(q.segments) == 2
    assert q.segments[0].stop_index < q.segments[1].start_index
    n_invalid = sum(s.stop_index - s.start_index for s in q.segments)
    assert n_invalid == int((~q.valid).sum())


def test_bad_inputs_raise() -> None:
    x = np.ones(100)
    x[3] = np.nan
    with pytest.raises(InvalidInputError):
        eda_quality(x, FS)
    with pytest.raises(InvalidInputError):
        eda_quality(np.ones(100), FS, min_us=5.0, max_us=1.0)
    with pytest.raises(InvalidInputError):
        eda_quality(np.ones(100), FS, margin_s=-1.0)
