"""Tests of the canonical short-term set (shuxin.signal.hrv_summary)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_frequency import hrv_frequency
from shuxin.signal.hrv_nonlinear import hrv_nonlinear
from shuxin.signal.hrv_stress import hrv_stress
from shuxin.signal.hrv_summary import hrv_summary
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.rr_simulate import rr_simulate

#: Keys ``shuxin analyze --json`` must carry for RR input (issue 3, item 8) that come from HRV.
ISSUE_KEYS = (
    "n_beats",
    "duration_s",
    "artifact_pct",
    "mean_rr_ms",
    "mean_hr_bpm",
    "sdnn_ms",
    "rmssd_ms",
    "ln_rmssd",
    "pnn50_pct",
    "vlf_ms2",
    "lf_ms2",
    "hf_ms2",
    "lf_hf",
    "lf_nu",
    "hf_nu",
    "lf_ms2_lomb",
    "hf_ms2_lomb",
    "lf_hf_lomb",
    "sd1_ms",
    "sd2_ms",
    "sampen",
    "dfa_alpha1",
    "dfa_alpha2",
    "baevsky_si",
    "stress_index",
    "algorithm_version",
)


@pytest.fixture(scope="module")
def with_artefacts() -> np.ndarray:
    return rr_simulate(300.0, np.random.default_rng(11), ectopic=2, missed=1).rr_ms


def test_summary_equals_its_components_on_the_cleaned_series(with_artefacts: np.ndarray) -> None:
    summary = hrv_summary(with_artefacts)
    cleaning = rr_clean(with_artefacts)
    rr = cleaning.rr_ms
    gate = {"corrected_pct": cleaning.corrected_pct}
    time = hrv_time(rr, **gate)
    welch = hrv_frequency(rr, **gate)
    lomb = hrv_frequency(rr, method="lomb", **gate)
    nonlinear = hrv_nonlinear(rr, **gate)
    stress = hrv_stress(rr, **gate)
    assert summary.cleaned
    assert summary.corrections == cleaning.corrections
    assert len(summary.corrections) >= 3
    assert summary.artifact_pct == pytest.approx(cleaning.artefact_pct)
    assert summary.n_beats_input == with_artefacts.size
    assert summary.n_beats == rr.size
    pairs = [
        (summary.rmssd_ms, time.rmssd_ms),
        (summary.mean_hr_bpm, time.mean_hr_bpm),
        (summary.lf_ms2, welch.lf_ms2),
        (summary.hf_peak_hz, welch.hf_peak_hz),
        (summary.lf_hf_lomb, lomb.lf_hf),
        (summary.hf_ms2_lomb, lomb.hf_ms2),
        (summary.sampen, nonlinear.sampen),
        (summary.dfa_alpha1, nonlinear.dfa_alpha1),
        (summary.baevsky_si, stress.baevsky_si),
        (summary.sns_index, stress.sns_index),
    ]
    for got, want in pairs:
        assert got == want
    assert math.isnan(summary.vlf_ms2)  # 5 min: never VLF
    assert any("vlf" in reason for reason in summary.suppressed)


def test_summary_is_json_ready_with_the_issue_keys(with_artefacts: np.ndarray) -> None:
    fields = dataclasses.asdict(hrv_summary(with_artefacts))
    missing = [key for key in ISSUE_KEYS if key not in fields]
    assert missing == []
    text = json.dumps(fields)  # NaN is emitted as NaN by json; the CLI decides its policy
    assert '"corrections": [[' in text


def test_no_correct_analyses_the_series_as_given(with_artefacts: np.ndarray) -> None:
    summary = hrv_summary(with_artefacts, correct=False)
    assert not summary.cleaned
    assert summary.corrections == ()
    assert summary.corrected_pct == 0.0
    assert summary.artifact_pct > 0.0
    assert summary.n_beats == with_artefacts.size
    assert summary.mean_rr_ms == pytest.approx(float(with_artefacts.mean()), rel=1e-12)
    assert summary.rmssd_ms == hrv_time(with_artefacts).rmssd_ms


def test_too_many_corrections_suppress_everything() -> None:
    rr = rr_simulate(300.0, np.random.default_rng(12), ectopic=20).rr_ms
    summary = hrv_summary(rr)
    assert summary.corrected_pct > 5.0
    for value in (summary.rmssd_ms, summary.lf_ms2, summary.sampen, summary.baevsky_si):
        assert math.isnan(value)
    assert any("corrected" in reason for reason in summary.suppressed)
    relaxed = hrv_summary(rr, max_corrected_pct=50.0)
    assert not math.isnan(relaxed.rmssd_ms)


def test_summary_errors() -> None:
    with pytest.raises(InvalidInputError):
        hrv_summary([800.0, 810.0, float("nan"), 820.0, 830.0, 840.0])
    with pytest.raises(InvalidInputError):
        hrv_summary([800.0, 810.0, -1.0, 820.0, 830.0, 840.0])
    with pytest.raises(InsufficientDataError):
        hrv_summary([800.0, 810.0, 820.0])


def test_summary_of_a_short_record_gates_bands() -> None:
    rr = rr_simulate(90.0, np.random.default_rng(13)).rr_clean_ms
    summary = hrv_summary(rr)
    assert not math.isnan(summary.hf_ms2)
    assert math.isnan(summary.lf_ms2)
    assert math.isnan(summary.lf_hf_lomb)
    assert math.isnan(summary.sampen)  # < 100 beats
