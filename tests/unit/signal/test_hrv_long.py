"""Tests of long-recording HRV (shuxin.signal.hrv_long): segments, SDNN index, SDANN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_long import hrv_long
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.rr_simulate import rr_simulate


def test_long_record_segments_and_statistics() -> None:
    sim = rr_simulate(3600.0 + 100.0, np.random.default_rng(14), ectopic=6, missed=2)
    result = hrv_long(sim.rr_ms)
    cleaned = rr_clean(sim.rr_ms).rr_ms
    assert result.n_segments == 12
    assert result.n_segments_valid == 12
    assert result.segment_start_s == tuple(300.0 * k for k in range(12))
    # Re-cut the cleaned series independently: an interval belongs to the segment it starts in.
    starts = np.cumsum(cleaned) / 1000.0 - cleaned / 1000.0
    seg_sdnn = []
    seg_mean = []
    for k in range(12):
        part = cleaned[(starts >= 300.0 * k) & (starts < 300.0 * (k + 1))]
        seg_sdnn.append(float(np.std(part, ddof=1)))
        seg_mean.append(float(np.mean(part)))
    assert result.sdnn_index_ms == pytest.approx(float(np.mean(seg_sdnn)), rel=1e-9)
    assert result.sdann_ms == pytest.approx(float(np.std(seg_mean, ddof=1)), rel=1e-9)
    assert result.time.rmssd_ms == pytest.approx(hrv_time(cleaned).rmssd_ms, rel=1e-12)
    assert result.time.sdnn_ms == pytest.approx(float(np.std(cleaned, ddof=1)), rel=1e-9)
    assert result.welch.vlf_ms2 > 0.0  # a 1-h record resolves VLF
    assert not math.isnan(result.nonlinear.dfa_alpha2)
    assert not math.isnan(result.nonlinear.sampen)  # < 20 000 beats: whole record
    assert result.segment_mean_rmssd_ms == pytest.approx(
        float(np.mean([seg.rmssd_ms for seg in result.segments])), rel=1e-12
    )
    # Corrections are attributed to the segment holding their input interval.
    total = sum(len(seg.corrections) for seg in result.segments)
    assert 0 < total <= len(rr_clean(sim.rr_ms).corrections)


def test_long_record_shorter_than_a_segment() -> None:
    rr = rr_simulate(200.0, np.random.default_rng(15)).rr_clean_ms
    result = hrv_long(rr)
    assert result.n_segments == 0
    assert math.isnan(result.sdann_ms)
    assert math.isnan(result.sdnn_index_ms)
    assert math.isnan(result.segment_mean_lf_hf)
    assert any("sdann" in reason for reason in result.suppressed)
    assert not math.isnan(result.time.rmssd_ms)
    with pytest.raises(InvalidInputError):
        hrv_long(rr, segment_s=10.0)
