"""Time-domain HRV (Task Force 1996 definitions): mean RR, mean HR, SDNN, RMSSD, lnRMSSD,
SDSD, NN50, pNN50 and the HRV triangular index.

Conventions (also in docs/signal/hrv.md):

* mean HR is the mean of the instantaneous heart rates ``60000 / RR`` (bpm), not
  ``60000 / mean RR`` (the two differ by the RR variance; Jensen's inequality).
* SDNN and SDSD use the sample standard deviation (ddof = 1).
* RMSSD = sqrt(mean(dRR^2)) over the N-1 successive differences.
* NN50 counts successive differences with ``|dRR| > 50 ms`` (strictly greater); pNN50 divides
  by the number of differences, N-1 (NeuroKit2 divides by N).
* HRV triangular index = N / (height of the RR histogram) with bin width 1/128 s = 7.8125 ms
  and bin edges at integer multiples of 7.8125 ms from 0 ms (bins [k w, (k+1) w)).

Pure NumPy on an already cleaned NN series: it does no artefact correction, no I/O, and never
modifies its input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.hrv_quality import (
    DEFAULT_MAX_CORRECTED_PCT,
    HrvQuality,
    hrv_quality,
    validate_rr_ms,
)
from shuxin.signal.version import algorithm_version

__all__ = ["HRV_TI_BIN_MS", "HrvTime", "hrv_time", "hrv_time_validated", "tallest_bin"]

#: Histogram bin width (ms) of the HRV triangular index: 1/128 s (Task Force 1996).
HRV_TI_BIN_MS: Final = 1000.0 / 128.0
#: Task Force 1996: geometric methods need at least 20 min of data.
HRV_TI_MIN_DURATION_S: Final = 20.0 * 60.0
#: Threshold (ms) of NN50.
NN50_THRESHOLD_MS: Final = 50.0
#: Fewest RR intervals accepted (SDSD with ddof = 1 needs two differences).
MIN_BEATS: Final = 3

_VERSION: Final = algorithm_version("hrv_time")
_NAN: Final = float("nan")


@dataclass(frozen=True, slots=True)
class HrvTime:
    """Time-domain HRV of one NN series.

    Attributes
    ----------
    n_beats : int
        Number of RR intervals analysed.
    duration_s : float
        Sum of the intervals (s).
    mean_rr_ms : float
        Mean RR interval (ms).
    mean_hr_bpm : float
        Mean of the instantaneous heart rates 60000/RR (beats/min).
    sdnn_ms : float
        Standard deviation of the RR intervals, ddof = 1 (ms).
    rmssd_ms : float
        Root mean square of the N-1 successive differences (ms).
    ln_rmssd : float
        Natural log of RMSSD in ms (NaN when RMSSD is 0).
    sdsd_ms : float
        Standard deviation of the successive differences, ddof = 1 (ms).
    nn50 : float
        Number of successive differences with ``|dRR| > 50 ms`` (a count; float so that a
        suppressed value can be NaN).
    pnn50_pct : float
        ``100 * NN50 / (N - 1)`` (%).
    hrv_ti : float
        HRV triangular index, N / maximum bin count with 7.8125 ms bins (dimensionless).
    suppressed : tuple[str, ...]
        Why a field is NaN.
    notes : tuple[str, ...]
        Caveats that did not suppress a value.
    algorithm_version : str
        Version tag of this algorithm.
    """

    n_beats: int
    duration_s: float
    mean_rr_ms: float
    mean_hr_bpm: float
    sdnn_ms: float
    rmssd_ms: float
    ln_rmssd: float
    sdsd_ms: float
    nn50: float
    pnn50_pct: float
    hrv_ti: float
    suppressed: tuple[str, ...]
    notes: tuple[str, ...]
    algorithm_version: str


def hrv_time(
    rr_ms: ArrayLike,
    *,
    corrected_pct: float = 0.0,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
) -> HrvTime:
    """Compute time-domain HRV from NN intervals.

    Parameters
    ----------
    rr_ms : array_like
        NN intervals (ms), finite and > 0, at least 3 of them. Typical range 300–2000 ms.
    corrected_pct : float
        Percentage of beats corrected upstream (0–100, NaN if unknown); see ``hrv_quality``.
    max_corrected_pct : float
        Above this percentage every field is NaN (default 5 %).

    Returns
    -------
    HrvTime
        The metrics; see the class for units and conventions.

    Raises
    ------
    InvalidInputError
        NaN/inf, zero or negative intervals, wrong shape.
    InsufficientDataError
        Fewer than 3 intervals.

    References
    ----------
    Task Force of the ESC and NASPE (1996). Heart rate variability: standards of measurement,
    physiological interpretation and clinical use. Circulation 93(5):1043-1065.
    """
    rr = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    quality = hrv_quality(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)
    return hrv_time_validated(rr, quality)


def hrv_time_validated(rr: NDArray[np.float64], quality: HrvQuality) -> HrvTime:
    """``hrv_time`` of a series already validated (>= 3 intervals) with its gates computed.

    For ``hrv_summary`` and ``hrv_long``, which validate once for all components.
    """
    if not quality.usable:
        return _suppressed(rr, quality.reasons)
    n = rr.size
    duration_s = float(rr.sum()) / 1000.0
    mean_rr = float(rr.mean())
    mean_hr = float((60000.0 / rr).mean())
    sdnn = float(rr.std(ddof=1))
    diff = np.diff(rr)
    sq = float(np.dot(diff, diff))
    rmssd = math.sqrt(sq / (n - 1))
    sdsd = float(diff.std(ddof=1))
    nn50 = int(np.count_nonzero(np.abs(diff) > NN50_THRESHOLD_MS))
    _, tallest = tallest_bin(rr, HRV_TI_BIN_MS)
    hrv_ti = n / tallest
    suppressed: list[str] = []
    notes: list[str] = []
    ln_rmssd = math.log(rmssd) if rmssd > 0.0 else _NAN
    if rmssd <= 0.0:
        suppressed.append("ln_rmssd: RMSSD is 0")
    if duration_s < HRV_TI_MIN_DURATION_S:
        notes.append("hrv_ti: recording shorter than 20 min (Task Force minimum for geometry)")
    return HrvTime(
        n_beats=n,
        duration_s=duration_s,
        mean_rr_ms=mean_rr,
        mean_hr_bpm=mean_hr,
        sdnn_ms=sdnn,
        rmssd_ms=rmssd,
        ln_rmssd=ln_rmssd,
        sdsd_ms=sdsd,
        nn50=float(nn50),
        pnn50_pct=100.0 * nn50 / (n - 1),
        hrv_ti=hrv_ti,
        suppressed=tuple(suppressed),
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )


def tallest_bin(rr_ms: NDArray[np.float64], bin_ms: float) -> tuple[int, int]:
    """Tallest bin of the RR histogram with bins [k w, (k+1) w), w = ``bin_ms``, from 0 ms.

    Parameters
    ----------
    rr_ms : NDArray[np.float64]
        Validated NN intervals (ms), at least one.
    bin_ms : float
        Bin width w (ms), > 0.

    Returns
    -------
    tuple[int, int]
        (k, count) of the tallest bin; ties go to the lowest k.
    """
    index = (rr_ms / bin_ms).astype(np.intp)
    low = int(index.min())
    span = int(index.max()) - low + 1
    if span <= 4 * index.size + 1024:
        counts = np.bincount(index - low)
        best = int(np.argmax(counts))
        return low + best, int(counts[best])
    values, counts = np.unique(index, return_counts=True)  # sparse: absurd spread
    best = int(np.argmax(counts))
    return int(values[best]), int(counts[best])


def _suppressed(rr: NDArray[np.float64], reasons: tuple[str, ...]) -> HrvTime:
    return HrvTime(
        n_beats=int(rr.size),
        duration_s=float(rr.sum()) / 1000.0,
        mean_rr_ms=_NAN,
        mean_hr_bpm=_NAN,
        sdnn_ms=_NAN,
        rmssd_ms=_NAN,
        ln_rmssd=_NAN,
        sdsd_ms=_NAN,
        nn50=_NAN,
        pnn50_pct=_NAN,
        hrv_ti=_NAN,
        suppressed=reasons,
        notes=(),
        algorithm_version=_VERSION,
    )
