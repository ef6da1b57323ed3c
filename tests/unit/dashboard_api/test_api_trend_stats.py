"""The trend statistics of the dashboard API (``queries.band`` and ``queries.rolling``):
the personal band and the 7-session rolling mean and CV, against the statistics module."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuxin.dashboard_api.queries import ROLLING_MIN, ROLLING_WINDOW, band, rolling

finite = st.floats(min_value=0.5, max_value=6.0, allow_nan=False)


def test_band_needs_two_values() -> None:
    assert band([]) is None
    assert band([3.2]) is None


@given(st.lists(finite, min_size=2, max_size=60))
def test_band_is_mean_plus_minus_one_sample_sd(values: list[float]) -> None:
    result = band(values)
    assert result is not None
    # Two independent float implementations: agreement to 1e-9 on values ≤ 6 is rounding.
    assert result.n == len(values)
    assert result.mean == pytest.approx(statistics.fmean(values), abs=1e-9)
    assert result.sd == pytest.approx(statistics.stdev(values), abs=1e-9)
    assert result.low == pytest.approx(result.mean - result.sd, abs=1e-12)
    assert result.high == pytest.approx(result.mean + result.sd, abs=1e-12)


def test_rolling_skips_missing_values_and_waits_for_three() -> None:
    pairs = [("a", 3.0), ("b", None), ("c", 3.2), ("d", 3.4), ("e", None)]
    out = rolling(pairs)
    assert [r.session_id for r in out] == ["a", "b", "c", "d", "e"]
    assert [r.mean7 for r in out[:3]] == [None, None, None]
    assert out[3].mean7 == pytest.approx(3.2, abs=1e-12)
    assert out[3].cv7 == pytest.approx(statistics.stdev([3.0, 3.2, 3.4]) / 3.2, abs=1e-12)
    assert out[4].mean7 == out[3].mean7  # a missing value leaves the window unchanged


@given(st.lists(finite, min_size=ROLLING_MIN, max_size=30))
def test_rolling_uses_the_last_seven_values(values: list[float]) -> None:
    out = rolling([(str(i), v) for i, v in enumerate(values)])
    window = values[-ROLLING_WINDOW:]
    assert out[-1].mean7 == pytest.approx(statistics.fmean(window), abs=1e-9)
    expected = statistics.stdev(window) / statistics.fmean(window)
    assert out[-1].cv7 == pytest.approx(expected, abs=1e-9)
