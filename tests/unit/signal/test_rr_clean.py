"""Ground-truth tests of rr_clean (Lipponen & Tarvainen 2019 + plausibility gates).

Series come from shuxin.signal.rr_simulate (IPFM model with RSA, Mayer waves, jitter), whose
injected artefacts carry their positions and kinds.
"""

from __future__ import annotations

import numpy as np
import pytest

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.rr_clean import BEAT_CLASSES, MIN_BEATS, rr_clean
from shuxin.signal.rr_simulate import rr_simulate

KINDS = ("ectopic", "missed", "extra", "long", "short")


def _expected_flags(index: np.ndarray, kinds: tuple[str, ...]) -> set[tuple[int, str]]:
    """(input index, class) the injected artefacts must produce, and nothing else.

    An ectopic beat changes two intervals (premature + compensatory pause) and an extra beat
    splits one interval into two: both intervals carry the class. A missed beat merges two
    intervals into one, a long/short artefact changes one.
    """
    flags: set[tuple[int, str]] = set()
    for i, kind in zip(index.tolist(), kinds, strict=True):
        flags.add((i, kind))
        if kind in ("ectopic", "extra"):
            flags.add((i + 1, kind))
    return flags


def _rmssd(rr: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)))


@pytest.mark.parametrize("seed", range(8))
def test_injected_artefacts_are_classified_exactly(seed: int) -> None:
    sim = rr_simulate(
        300.0, np.random.default_rng(seed), ectopic=2, missed=2, extra=2, long=2, short=2
    )
    result = rr_clean(sim.rr_ms)
    expected = _expected_flags(sim.artefact_index, sim.artefact_kind)
    flagged = set(result.corrections)
    # Every injected artefact is found with the right class ...
    assert expected <= flagged
    # ... and anything else flagged is an interval of the clean series L&T itself flags
    # (its measured false-positive rate on these series is ~0.04 % of beats).
    clean_flags = rr_clean(sim.rr_clean_ms).corrections
    assert len(flagged - expected) <= len(clean_flags) + 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["first", "second", "second_last", "last"])
def test_artefacts_at_the_edges(kind: str, where: str) -> None:
    rng_seed = 11
    n = rr_simulate(300.0, np.random.default_rng(rng_seed)).rr_clean_ms.size
    width = 2 if kind in ("ectopic", "missed") else 1  # footprint in the clean series
    position = {"first": 0, "second": 1, "second_last": n - width - 1, "last": n - width}[where]
    sim = rr_simulate(300.0, np.random.default_rng(rng_seed), **{kind: [position]})
    result = rr_clean(sim.rr_ms)
    index = int(sim.artefact_index[0])
    expected = _expected_flags(sim.artefact_index, sim.artefact_kind)
    near = {flag for flag in result.corrections if abs(flag[0] - index) <= 3}
    assert near == expected


@pytest.mark.parametrize("seed", range(5))
def test_clean_series_have_almost_no_false_positives(seed: int) -> None:
    for kwargs in ({}, {"stress": 0.8}, {"breathing_rate_bpm": 6.0}, {"mean_hr_bpm": 95.0}):
        sim = rr_simulate(300.0, np.random.default_rng(seed), **kwargs)
        result = rr_clean(sim.rr_ms)
        # Measured over 240 such records: 0.04 % of beats flagged; allow 1 % per record.
        assert result.artefact_pct <= 1.0, (kwargs, result.corrections)


@pytest.mark.parametrize("seed", range(6))
def test_correction_restores_the_clean_series(seed: int) -> None:
    sim = rr_simulate(
        300.0, np.random.default_rng(seed), ectopic=2, missed=2, extra=2, long=2, short=2
    )
    result = rr_clean(sim.rr_ms)
    # Missed beats are re-inserted and extra beats removed: the beat count is the clean one.
    assert result.rr_ms.size == sim.rr_clean_ms.size
    # Interpolation cannot restore the true value exactly; 8 % per interval is > 2x the
    # largest error measured (3.4 %) and far below the artefacts' 35-65 % deviations.
    assert np.max(np.abs(result.rr_ms / sim.rr_clean_ms - 1.0)) < 0.08
    # RMSSD: the raw series is off by ~500 %; measured corrected error <= 1.4 %.
    assert _rmssd(result.rr_ms) == pytest.approx(_rmssd(sim.rr_clean_ms), rel=0.05)
    assert _rmssd(sim.rr_ms) > 2.0 * _rmssd(sim.rr_clean_ms)


def test_run_of_premature_beats_is_caught() -> None:
    """A salvo L&T's dRR tests miss in its middle: the mRR test and the gates catch all of it."""
    sim = rr_simulate(300.0, np.random.default_rng(3))
    rr = sim.rr_ms.copy()
    start = 100
    rr[start : start + 4] *= 0.7  # four premature beats in a row
    rr[start + 4] *= 1.25  # then a pause
    result = rr_clean(rr)
    flagged = {i for i, _ in result.corrections}
    assert set(range(start, start + 5)) <= flagged
    assert all(result.beat_class[i] != "normal" for i in range(start, start + 5))
    assert flagged <= set(range(start - 1, start + 6))


def test_bigeminy_is_flagged_throughout() -> None:
    sim = rr_simulate(120.0, np.random.default_rng(4))
    rr = sim.rr_ms.copy()
    rr[40:80:2] *= 0.7  # every other beat premature, with a compensatory pause
    rr[41:81:2] += 0.3 * sim.rr_ms[40:80:2]
    result = rr_clean(rr)
    assert all(result.beat_class[i] == "ectopic" for i in range(40, 80))
    # Moving each premature beat to the midpoint restores the beat count and the rhythm.
    assert result.rr_ms.size == rr.size
    assert np.max(np.abs(result.rr_ms[40:80] / sim.rr_ms[40:80] - 1.0)) < 0.1


def test_absolute_gate_flags_implausible_intervals() -> None:
    # A smooth slowing from 1700 to 2300 ms: nothing for L&T to see, but beyond 2000 ms the
    # intervals are outside the physiological range the gate accepts.
    rng = np.random.default_rng(8)
    rr = np.linspace(1700.0, 2300.0, 120) + rng.normal(0.0, 5.0, 120)
    result = rr_clean(rr)
    expected = rr > 2000.0
    assert [c == "implausible" for c in result.beat_class] == expected.tolist()
    # Linear interpolation over beat number from the normal intervals (held beyond the last).
    normal = np.flatnonzero(~expected)
    assert np.allclose(
        result.rr_ms[expected], np.interp(np.flatnonzero(expected), normal, rr[normal])
    )
    with pytest.raises(InsufficientDataError):
        rr_clean(np.full(30, 2100.0))  # nothing normal left to interpolate from
    assert set(rr_clean(np.full(30, 2100.0), correct=False).beat_class) == {"implausible"}


def test_metronomic_series_uses_the_threshold_floor() -> None:
    rr = np.full(40, 800.0)
    assert rr_clean(rr).corrections == ()
    rr_missed = np.concatenate([rr[:20], [1600.0], rr[22:]])
    result = rr_clean(rr_missed)
    assert result.corrections == ((20, "missed"),)
    assert np.allclose(result.rr_ms, 800.0)
    assert any("floor" in note for note in result.notes)


def test_series_shorter_than_the_window_work() -> None:
    sim = rr_simulate(40.0, np.random.default_rng(5), ectopic=[20])
    assert sim.rr_ms.size < 91
    result = rr_clean(sim.rr_ms)
    assert set(result.corrections) == _expected_flags(sim.artefact_index, sim.artefact_kind)


def test_classify_only_leaves_the_series_alone() -> None:
    sim = rr_simulate(120.0, np.random.default_rng(6), missed=1, ectopic=1)
    corrected = rr_clean(sim.rr_ms)
    classified = rr_clean(sim.rr_ms, correct=False)
    assert np.array_equal(classified.rr_ms, sim.rr_ms)
    assert classified.corrections == ()
    assert classified.corrected_pct == 0.0
    assert classified.beat_class == corrected.beat_class
    assert classified.artefact_pct == corrected.artefact_pct > 0.0


def test_result_fields_are_consistent() -> None:
    sim = rr_simulate(120.0, np.random.default_rng(7), extra=1, long=1)
    result = rr_clean(sim.rr_ms)
    assert len(result.beat_class) == sim.rr_ms.size == result.artefact_mask.size
    assert set(result.beat_class) <= set(BEAT_CLASSES)
    assert np.array_equal(
        result.artefact_mask, np.array([c != "normal" for c in result.beat_class])
    )
    assert [i for i, _ in result.corrections] == np.flatnonzero(result.artefact_mask).tolist()
    assert result.corrected_pct == pytest.approx(100.0 * len(result.corrections) / sim.rr_ms.size)
    assert result.algorithm_version.startswith("rr_clean/")


@pytest.mark.parametrize(
    "bad",
    [
        [800.0, 810.0, np.nan, 790.0, 800.0, 805.0],
        [800.0, 810.0, np.inf, 790.0, 800.0, 805.0],
        [800.0, 810.0, 0.0, 790.0, 800.0, 805.0],
        [800.0, -810.0, 820.0, 790.0, 800.0, 805.0],
        [[800.0, 810.0, 820.0], [790.0, 800.0, 805.0]],
        ["a", "b", "c", "d", "e"],
    ],
)
def test_invalid_input_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        rr_clean(bad)  # type: ignore[arg-type]


def test_too_short_input_is_rejected() -> None:
    with pytest.raises(InsufficientDataError):
        rr_clean(np.full(MIN_BEATS - 1, 800.0))
    assert len(rr_clean(np.full(MIN_BEATS, 800.0)).beat_class) == MIN_BEATS


def test_bad_parameters_are_rejected() -> None:
    rr = np.full(20, 800.0)
    with pytest.raises(InvalidInputError):
        rr_clean(rr, window_beats=90)
    with pytest.raises(InvalidInputError):
        rr_clean(rr, min_rr_ms=2500.0)
    with pytest.raises(InvalidInputError):
        rr_clean(rr, alpha=0.0)
