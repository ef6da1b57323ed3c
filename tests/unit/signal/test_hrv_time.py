"""Tests of time-domain HRV and the shared input checks / quality gates
(shuxin.signal.hrv_time, shuxin.signal.hrv_quality)."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_quality import (
    HF_MIN_DURATION_S,
    LF_MIN_DURATION_S,
    VLF_MIN_DURATION_S,
    hrv_quality,
    validate_rr_ms,
)
from shuxin.signal.hrv_time import HRV_TI_BIN_MS, hrv_time, tallest_bin

RR_EXAMPLE = [812.0, 790.0, 845.0, 901.0, 870.0, 815.0, 760.0, 798.0, 880.0, 930.0]

rr_lists = st.lists(
    st.floats(min_value=300.0, max_value=2000.0, allow_nan=False), min_size=3, max_size=200
)


def test_definitions_match_hand_computation() -> None:
    result = hrv_time(RR_EXAMPLE)
    diffs = [b - a for a, b in itertools.pairwise(RR_EXAMPLE)]
    n = len(RR_EXAMPLE)
    # Reference values from the Python standard library, independent of NumPy; 1e-9 relative
    # covers floating-point summation order only.
    assert result.n_beats == n
    assert result.duration_s == pytest.approx(sum(RR_EXAMPLE) / 1000.0, rel=1e-12)
    assert result.mean_rr_ms == pytest.approx(statistics.fmean(RR_EXAMPLE), rel=1e-9)
    assert result.mean_hr_bpm == pytest.approx(
        statistics.fmean(60000.0 / rr for rr in RR_EXAMPLE), rel=1e-9
    )
    assert result.sdnn_ms == pytest.approx(statistics.stdev(RR_EXAMPLE), rel=1e-9)
    rmssd = math.sqrt(sum(d * d for d in diffs) / (n - 1))
    assert result.rmssd_ms == pytest.approx(rmssd, rel=1e-9)
    assert result.ln_rmssd == pytest.approx(math.log(rmssd), rel=1e-9)
    assert result.sdsd_ms == pytest.approx(statistics.stdev(diffs), rel=1e-9)
    nn50 = sum(abs(d) > 50.0 for d in diffs)
    assert result.nn50 == nn50 == 5  # 55, 56, -55, -55, 82; the +50 is not counted
    assert result.pnn50_pct == pytest.approx(100.0 * nn50 / (n - 1), rel=1e-12)
    assert result.suppressed == ()
    assert result.algorithm_version.startswith("hrv_time/")


def test_mean_hr_is_mean_of_instantaneous_rates() -> None:
    result = hrv_time([600.0, 1200.0, 600.0, 1200.0])
    # 60000/600 = 100 and 60000/1200 = 50 bpm: mean 75, whereas 60000 / mean RR = 66.7.
    assert result.mean_hr_bpm == pytest.approx(75.0, rel=1e-12)
    assert 60000.0 / result.mean_rr_ms == pytest.approx(66.6667, rel=1e-5)


def test_pnn50_uses_n_minus_1_differences_and_strict_threshold() -> None:
    # Differences: +50 (not counted: strictly greater), +51, -101 -> NN50 = 2 of 3 differences.
    result = hrv_time([800.0, 850.0, 901.0, 800.0])
    assert result.nn50 == 2
    assert result.pnn50_pct == pytest.approx(200.0 / 3.0, rel=1e-12)


def test_triangular_index_bins_are_7_8125_ms_from_zero() -> None:
    assert pytest.approx(1000.0 / 128.0) == HRV_TI_BIN_MS
    # 781.25 ms is exactly the lower edge of bin 100; 789.0 is inside it; 789.0625 opens bin 101.
    result = hrv_time([781.25, 789.0, 789.0625, 900.0])
    assert result.hrv_ti == pytest.approx(4.0 / 2.0)
    assert tallest_bin(np.array([781.25, 789.0, 789.0625]), HRV_TI_BIN_MS) == (100, 2)


def test_tallest_bin_ties_go_low_and_sparse_spread_works() -> None:
    assert tallest_bin(np.array([810.0, 860.0]), 50.0) == (16, 1)
    huge = np.array([400.0, 410.0, 1e9, 2e9])  # span far larger than the count: unique path
    assert tallest_bin(huge, 50.0) == (8, 2)


def test_constant_series() -> None:
    result = hrv_time(np.full(50, 1000.0))
    assert result.sdnn_ms == 0.0
    assert result.rmssd_ms == 0.0
    assert result.sdsd_ms == 0.0
    assert result.nn50 == 0
    assert result.hrv_ti == 1.0
    assert math.isnan(result.ln_rmssd)
    assert any("ln_rmssd" in reason for reason in result.suppressed)


def test_short_record_notes_the_triangular_index() -> None:
    assert any("hrv_ti" in note for note in hrv_time(RR_EXAMPLE).notes)
    assert hrv_time(np.full(1600, 800.0)).notes == ()  # 21.3 min


def test_corrected_beat_gate_suppresses_everything() -> None:
    result = hrv_time(RR_EXAMPLE, corrected_pct=6.0, max_corrected_pct=5.0)
    assert result.n_beats == len(RR_EXAMPLE)
    for value in (result.mean_rr_ms, result.sdnn_ms, result.rmssd_ms, result.pnn50_pct):
        assert math.isnan(value)
    assert any("corrected" in reason for reason in result.suppressed)
    assert not math.isnan(hrv_time(RR_EXAMPLE, corrected_pct=5.0).rmssd_ms)


@pytest.mark.parametrize(
    "bad",
    [
        [800.0, float("nan"), 810.0],
        [800.0, float("inf"), 810.0],
        [800.0, -5.0, 810.0],
        [800.0, 0.0, 810.0],
        [[800.0, 810.0], [820.0, 830.0]],
        ["a", "b", "c"],
    ],
)
def test_invalid_input_raises(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        hrv_time(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("short", [[], [800.0], [800.0, 810.0]])
def test_too_short_raises(short: list[float]) -> None:
    with pytest.raises(InsufficientDataError):
        hrv_time(short)


def test_validate_does_not_copy_clean_float64() -> None:
    rr = np.array(RR_EXAMPLE)
    assert validate_rr_ms(rr) is rr
    assert validate_rr_ms([800, 810]).dtype == np.float64


def test_quality_gates_at_their_edges() -> None:
    def gates(duration_s: float) -> tuple[bool, bool, bool]:
        q = hrv_quality(np.full(10, duration_s * 100.0))  # 10 intervals summing to duration
        return q.hf_ok, q.lf_ok, q.vlf_ok

    assert gates(HF_MIN_DURATION_S - 1) == (False, False, False)
    assert gates(HF_MIN_DURATION_S) == (True, False, False)
    assert gates(LF_MIN_DURATION_S) == (True, True, False)
    assert gates(VLF_MIN_DURATION_S) == (True, True, False)  # never from <= 5 min
    assert gates(VLF_MIN_DURATION_S + 1) == (True, True, True)


def test_quality_corrected_gate() -> None:
    q = hrv_quality(np.full(400, 1000.0), corrected_pct=12.0, max_corrected_pct=10.0)
    assert not q.usable
    assert not q.hf_ok
    assert not q.lf_ok
    assert not q.vlf_ok
    assert "12.0 %" in q.reasons[0]
    unknown = hrv_quality(np.full(400, 1000.0), corrected_pct=float("nan"))
    assert unknown.usable
    with pytest.raises(InvalidInputError):
        hrv_quality(np.full(400, 1000.0), corrected_pct=120.0)
    with pytest.raises(InvalidInputError):
        hrv_quality(np.full(400, 1000.0), max_corrected_pct=-1.0)


@settings(max_examples=60, deadline=None)
@given(value=st.floats(min_value=300.0, max_value=2000.0), n=st.integers(3, 300))
def test_property_constant_series_has_zero_variability(value: float, n: int) -> None:
    result = hrv_time(np.full(n, value))
    assert result.rmssd_ms == 0.0
    assert result.sdnn_ms == pytest.approx(0.0, abs=1e-9 * value)
    assert result.pnn50_pct == 0.0


@settings(max_examples=60, deadline=None)
@given(rr=rr_lists, scale=st.floats(min_value=0.5, max_value=2.0))
def test_property_scaling(rr: list[float], scale: float) -> None:
    base = hrv_time(rr)
    scaled = hrv_time(np.asarray(rr) * scale)
    # Pure rescaling: relative 1e-9 plus an absolute floor for near-zero spreads.
    assert scaled.mean_rr_ms == pytest.approx(base.mean_rr_ms * scale, rel=1e-9)
    assert scaled.mean_hr_bpm == pytest.approx(base.mean_hr_bpm / scale, rel=1e-9)
    assert scaled.sdnn_ms == pytest.approx(base.sdnn_ms * scale, rel=1e-9, abs=1e-6)
    assert scaled.rmssd_ms == pytest.approx(base.rmssd_ms * scale, rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(rr=rr_lists, shift=st.floats(min_value=-250.0, max_value=250.0))
def test_property_shift_invariance(rr: list[float], shift: float) -> None:
    base = hrv_time(rr)
    moved = hrv_time(np.asarray(rr) + shift)
    # Differences are unchanged by a shift; the tolerance covers rounding of rr + shift.
    assert moved.rmssd_ms == pytest.approx(base.rmssd_ms, rel=1e-7, abs=1e-6)
    assert moved.sdnn_ms == pytest.approx(base.sdnn_ms, rel=1e-7, abs=1e-6)
