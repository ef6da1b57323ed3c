"""Validation of the HRV metrics against NeuroKit2 (dev-only) on simulated and real RR series.

Real data: the RR (NN) series that pyHRV ships in its package (``pyhrv/files``: a 5-min and a
60-min series of real beats, integer ms; their origin is not documented in the package, and
the values are multiples of 1/128 s rounded to ms, i.e. a 128-Hz beat-timing device). They are
read from disk without importing pyHRV; the real-data cases are skipped when pyHRV is not
installed. Tolerances are those of issue 3; every remaining difference and its cause is in
docs/signal/hrv.md. NeuroKit2 gets intervals directly (``{"RRI": rr, "RRI_Time": t}``), so no
peak rounding enters.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shuxin.signal.hrv_frequency import hrv_frequency
from shuxin.signal.hrv_long import hrv_long
from shuxin.signal.hrv_nonlinear import DFA_ALPHA1_SCALES, DFA_ALPHA2_SCALES, hrv_nonlinear
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.rr_simulate import rr_simulate

nk: Any = pytest.importorskip("neurokit2")


def _pyhrv_files() -> Path | None:
    spec = importlib.util.find_spec("pyhrv")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "files"
    return folder if (folder / "SampleNNISeriesLong.npy").exists() else None


PYHRV_FILES = _pyhrv_files()
needs_real = pytest.mark.skipif(PYHRV_FILES is None, reason="pyHRV sample data not installed")


def _real(name: str) -> np.ndarray:
    assert PYHRV_FILES is not None
    return np.load(PYHRV_FILES / name).astype(np.float64)


def _record(name: str) -> np.ndarray:
    """5-min records: simulated at breathing rates inside the HF band, and real."""
    if name.startswith("sim"):
        seed, rate = {"sim12": (1, 12.0), "sim15": (2, 15.0), "sim18": (3, 18.0)}[name]
        return rr_simulate(300.0, np.random.default_rng(seed), breathing_rate_bpm=rate).rr_clean_ms
    if name == "real_short":
        return _real("SampleNNISeriesShort.npy")
    minute = int(name.rsplit("_", 1)[1])
    long = _real("SampleNNISeriesLong.npy")
    t_s = np.cumsum(long) / 1000.0
    return long[(t_s > 60.0 * minute) & (t_s <= 60.0 * minute + 300.0)]


RECORDS = [
    "sim12",
    "sim15",
    "sim18",
    pytest.param("real_short", marks=needs_real),
    pytest.param("real_long_0", marks=needs_real),
    pytest.param("real_long_20", marks=needs_real),
    pytest.param("real_long_40", marks=needs_real),
]


def _nk_input(rr: np.ndarray) -> dict[str, np.ndarray]:
    return {"RRI": rr, "RRI_Time": np.cumsum(rr) / 1000.0}


def _rel(ours: float, theirs: float) -> float:
    return abs(ours / theirs - 1.0)


@pytest.mark.parametrize("name", RECORDS)
def test_time_domain(name: str) -> None:
    rr = _record(name)
    ours = hrv_time(rr)
    theirs = nk.hrv_time(_nk_input(rr)).iloc[0]
    # Issue tolerance for definitions: <= 0.1 %. Measured: equal to 1e-15.
    assert _rel(ours.mean_rr_ms, theirs["HRV_MeanNN"]) <= 1e-3
    assert _rel(ours.sdnn_ms, theirs["HRV_SDNN"]) <= 1e-3
    assert _rel(ours.rmssd_ms, theirs["HRV_RMSSD"]) <= 1e-3
    assert _rel(ours.sdsd_ms, theirs["HRV_SDSD"]) <= 1e-3
    # NeuroKit2 divides NN50 by N (intervals), we by N-1 (differences): convert, then 0.1 %.
    n = rr.size
    assert _rel(ours.pnn50_pct * (n - 1) / n, theirs["HRV_pNN50"]) <= 1e-3
    # Same 7.8125 ms bins from 0 ms: <= 0.5 % (measured equal).
    assert _rel(ours.hrv_ti, theirs["HRV_HTI"]) <= 5e-3


@pytest.mark.parametrize("name", RECORDS)
def test_poincare_and_sample_entropy(name: str) -> None:
    rr = _record(name)
    ours = hrv_nonlinear(rr)
    theirs = nk.hrv_nonlinear(_nk_input(rr)).iloc[0]
    # Issue tolerances: SD1/SD2 <= 1 %, SampEn <= 2 % (both measured equal to 1e-12).
    assert _rel(ours.sd1_ms, theirs["HRV_SD1"]) <= 0.01
    assert _rel(ours.sd2_ms, theirs["HRV_SD2"]) <= 0.01
    assert _rel(ours.sampen, theirs["HRV_SampEn"]) <= 0.02
    direct, _ = nk.entropy_sample(rr, dimension=2, tolerance=ours.sampen_r_ms)
    assert _rel(ours.sampen, direct) <= 0.02


@pytest.mark.parametrize("name", RECORDS)
def test_dfa_with_the_same_box_sizes(name: str) -> None:
    rr = _record(name)
    ours = hrv_nonlinear(rr)
    alpha1, _ = nk.fractal_dfa(rr, scale=np.array(DFA_ALPHA1_SCALES), overlap=False)
    alpha2, _ = nk.fractal_dfa(rr, scale=np.array(DFA_ALPHA2_SCALES), overlap=False)
    # Issue tolerance +/- 0.10. Measured <= 0.006: NeuroKit2 drops boxes whose residual
    # variance is <= 1e-8 (exactly linear profile pieces, which occur with integer-ms data).
    assert abs(ours.dfa_alpha1 - alpha1) <= 0.10
    assert abs(ours.dfa_alpha2 - alpha2) <= 0.10


@pytest.mark.parametrize("name", RECORDS)
def test_lomb_scargle(name: str) -> None:
    pytest.importorskip("astropy")  # NeuroKit2's Lomb-Scargle needs astropy
    rr = _record(name)
    ours = hrv_frequency(rr, method="lomb")
    theirs = nk.hrv_frequency(
        _nk_input(rr), psd_method="lomb", interpolation_rate=None, normalize=False
    ).iloc[0]
    # Issue tolerance: LF/HF <= 2 % of NeuroKit2's Lomb (measured <= 0.8 %; the grids differ:
    # astropy's 5x oversampled autofrequency grid and trapezoids vs our 4x grid and
    # rectangles).
    assert _rel(ours.lf_hf, theirs["HRV_LFHF"]) <= 0.02
    # NeuroKit2 reports astropy's "psd" periodogram P (ms^2); our PSD is 2 P dt (ms^2/Hz).
    dt_s = (np.sum(rr) - rr[0]) / 1000.0 / (rr.size - 1)
    assert _rel(ours.lf_ms2, theirs["HRV_LF"] * 2.0 * dt_s) <= 0.02
    assert _rel(ours.hf_ms2, theirs["HRV_HF"] * 2.0 * dt_s) <= 0.02


@pytest.mark.parametrize("name", RECORDS)
def test_welch(name: str) -> None:
    rr = _record(name)
    ours = hrv_frequency(rr, method="welch")
    theirs = nk.hrv_frequency(_nk_input(rr), interpolation_rate=4, normalize=False).iloc[0]
    # Issue tolerance: LF/HF <= 15 % of NeuroKit2's Welch (absolute power, normalize=False),
    # at the same 4 Hz resampling (measured <= 3.1 %: natural cubic spline and linear
    # detrend here, quadratic interpolation and mean removal there). Band powers: <= 10 %
    # (measured <= 5 %).
    assert _rel(ours.lf_hf, theirs["HRV_LFHF"]) <= 0.15
    assert _rel(ours.lf_ms2, theirs["HRV_LF"]) <= 0.10
    assert _rel(ours.hf_ms2, theirs["HRV_HF"]) <= 0.10


@needs_real
@pytest.mark.parametrize("name", ["real_short", "real_long_0", "real_long_20", "real_long_40"])
def test_welch_against_neurokit_defaults_on_real_records(name: str) -> None:
    rr = _record(name)
    ours = hrv_frequency(rr, method="welch")
    theirs = nk.hrv_frequency(_nk_input(rr), normalize=False).iloc[0]
    # NeuroKit2's default resamples at 100 Hz; when the sample count n = 2 (mod 4) its Welch
    # keeps only 2 of 3 half-record segments (docs/signal/hrv.md). Within the 15 % on
    # these real records (measured <= 2.3 %); not on every simulated one (16 %).
    assert _rel(ours.lf_hf, theirs["HRV_LFHF"]) <= 0.15


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_sdnn_index_and_sdann_on_an_hour(seed: int) -> None:
    rr = rr_simulate(61 * 60.0, np.random.default_rng(seed)).rr_clean_ms
    ours = hrv_long(rr, correct=False)
    theirs = nk.hrv_time(_nk_input(rr)).iloc[0]
    assert ours.n_segments == 12  # NeuroKit2: round(61 / 5) = 12 windows as well
    # SDNN index: mean of 12 segment SDs; NeuroKit2 leaves out the last interval of every
    # window: <= 0.5 % (measured <= 0.06 %).
    assert _rel(ours.sdnn_index_ms, theirs["HRV_SDNNI5"]) <= 5e-3
    # SDANN is the SD of 12 segment means (a few ms); moving one interval across each
    # boundary moves it by up to ~10 % (measured 2 %, 2 %, 10 % over three seeds). 15 %.
    assert _rel(ours.sdann_ms, theirs["HRV_SDANN5"]) <= 0.15
    assert _rel(ours.time.sdnn_ms, theirs["HRV_SDNN"]) <= 1e-3
