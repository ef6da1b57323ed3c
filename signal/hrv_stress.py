"""Baevsky stress index, its square root (Kubios-style "stress index") and Kubios-style PNS/SNS
indices.

Baevsky stress index (Baevsky & Chernikova 2017)::

    SI = AMo / (2 * Mo * MxDMn)

* RR histogram with 50 ms bins whose edges are integer multiples of 50 ms (bins
  [50 k, 50 (k + 1)) ms); ties for the tallest bin go to the lowest bin.
* AMo: height of the tallest bin as a percentage of all intervals (%).
* Mo: the mode, the centre of the tallest bin, in seconds (``mo_method="histogram"``,
  Baevsky's definition), or the median RR in seconds (``mo_method="median"``, as the Kubios
  user guide describes).
* MxDMn: longest minus shortest interval, in seconds.
* ``stress_index = sqrt(SI)``, the value Kubios displays as "Stress index". Kubios also
  removes the VLF trend (smoothness priors) first; this module does not.

PNS and SNS indices, **Kubios-style, not identical to Kubios** (its weights are not published):
the mean of z-scores against normative values of 5-min supine rest in healthy adults::

    PNS = (z(mean RR) + z(RMSSD) + z(SD1)) / 3
    SNS = (z(mean HR) + z(sqrt SI) - z(SD2)) / 3

with ``z(v) = (v - mean) / sd`` and the constants ``PNS_SNS_NORMS`` below. Sources: mean RR
926 +/- 90 ms and RMSSD 42 +/- 15 ms and SDNN 50 +/- 16 ms from Nunan et al. (2010), Table 2;
SD1 = RMSSD / sqrt 2 (29.7 +/- 10.6 ms); SD2 = sqrt(2 SDNN^2 - SD1^2) = 64.2 ms with sd
16 * 2 SDNN / SD2 = 24.9 ms (first-order propagation); mean HR = 60000 / 926 = 64.8 bpm with
sd 60000 * 90 / 926^2 = 6.3 bpm; sqrt SI from the normal range 50-150 of SI (Kubios user
guide) taken as mean +/- 1 sd: 9.66 +/- 2.59. Everything after "Sources" except the three
Nunan values is derived by us and says so in docs/signal/hrv.md.

Pure NumPy on a cleaned NN series; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_nonlinear import poincare_sd
from shuxin.signal.hrv_quality import (
    DEFAULT_MAX_CORRECTED_PCT,
    HrvQuality,
    hrv_quality,
    validate_rr_ms,
)
from shuxin.signal.hrv_time import tallest_bin
from shuxin.signal.version import algorithm_version

__all__ = [
    "BAEVSKY_BIN_MS",
    "PNS_SNS_NORMS",
    "HrvStress",
    "MoMethod",
    "baevsky_si",
    "hrv_stress",
    "hrv_stress_validated",
]

MoMethod = Literal["histogram", "median"]

#: Histogram bin width (ms) of the Baevsky stress index.
BAEVSKY_BIN_MS: Final = 50.0
#: Normative (mean, sd) of the PNS/SNS inputs, see the module docstring for sources.
PNS_SNS_NORMS: Final[dict[str, tuple[float, float]]] = {
    "mean_rr_ms": (926.0, 90.0),
    "rmssd_ms": (42.0, 15.0),
    "sd1_ms": (29.7, 10.6),
    "mean_hr_bpm": (64.8, 6.3),
    "stress_index": (9.66, 2.59),
    "sd2_ms": (64.2, 24.9),
}
#: Durations (s) the norms describe (5-min recordings); outside, a note is added.
NORM_DURATION_S: Final = (240.0, 360.0)
#: Fewest RR intervals accepted.
MIN_BEATS: Final = 3

_VERSION: Final = algorithm_version("hrv_stress")
_NAN: Final = float("nan")


@dataclass(frozen=True, slots=True)
class HrvStress:
    """Baevsky stress index and Kubios-style autonomic indices.

    Attributes
    ----------
    baevsky_si : float
        AMo / (2 Mo MxDMn), in %/s^2 (usually quoted without unit).
    stress_index : float
        sqrt(baevsky_si), Kubios-style "stress index".
    amo_pct : float
        Mode amplitude (% of intervals in the tallest 50 ms bin).
    mo_s : float
        Mode (s): centre of the tallest bin, or the median RR for ``mo_method="median"``.
    mxdmn_s : float
        Variation range, max RR - min RR (s).
    pns_index, sns_index : float
        Kubios-style PNS and SNS indices (SD units relative to 5-min resting norms).
    mo_method : {"histogram", "median"}
        How Mo was taken.
    suppressed : tuple[str, ...]
        Why a field is NaN.
    notes : tuple[str, ...]
        Caveats that did not suppress a value.
    algorithm_version : str
        Version tag of this algorithm.
    """

    baevsky_si: float
    stress_index: float
    amo_pct: float
    mo_s: float
    mxdmn_s: float
    pns_index: float
    sns_index: float
    mo_method: MoMethod
    suppressed: tuple[str, ...]
    notes: tuple[str, ...]
    algorithm_version: str


def baevsky_si(
    rr_ms: NDArray[np.float64], *, mo_method: MoMethod = "histogram"
) -> tuple[float, float, float, float]:
    """Baevsky stress index of a validated series.

    Parameters
    ----------
    rr_ms : NDArray[np.float64]
        NN intervals (ms), finite and > 0.
    mo_method : {"histogram", "median"}
        Mode as the centre of the tallest 50 ms bin, or as the median.

    Returns
    -------
    tuple[float, float, float, float]
        (SI, AMo in %, Mo in s, MxDMn in s); SI is NaN when MxDMn is 0.

    Raises
    ------
    InvalidInputError
        Unknown ``mo_method``.
    """
    if mo_method not in ("histogram", "median"):
        raise InvalidInputError(f"mo_method must be 'histogram' or 'median', got {mo_method!r}")
    modal, count = tallest_bin(rr_ms, BAEVSKY_BIN_MS)
    amo_pct = 100.0 * count / rr_ms.size
    if mo_method == "histogram":
        mo_s = (modal + 0.5) * BAEVSKY_BIN_MS / 1000.0
    else:
        mo_s = float(np.median(rr_ms)) / 1000.0
    mxdmn_s = float(rr_ms.max() - rr_ms.min()) / 1000.0
    si = amo_pct / (2.0 * mo_s * mxdmn_s) if mxdmn_s > 0.0 else _NAN
    return si, amo_pct, mo_s, mxdmn_s


def hrv_stress(
    rr_ms: ArrayLike,
    *,
    mo_method: MoMethod = "histogram",
    corrected_pct: float = 0.0,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
) -> HrvStress:
    """Compute the Baevsky stress index and Kubios-style PNS/SNS indices.

    Parameters
    ----------
    rr_ms : array_like
        NN intervals (ms), finite and > 0, at least 3; the norms describe 5-min resting
        recordings.
    mo_method : {"histogram", "median"}
        How the mode Mo is taken (see the module docstring).
    corrected_pct : float
        Percentage of beats corrected upstream (0–100, NaN if unknown).
    max_corrected_pct : float
        Above this percentage every field is NaN (default 5 %).

    Returns
    -------
    HrvStress
        The indices; see the class for units.

    Raises
    ------
    InvalidInputError
        NaN/inf, zero or negative intervals, wrong shape, unknown ``mo_method``.
    InsufficientDataError
        Fewer than 3 intervals.

    References
    ----------
    Baevsky R.M., Chernikova A.G. (2017). Heart rate variability analysis: physiological
    foundations and main methods. Cardiometry 10:66-76.
    Nunan D., Sandercock G.R.H., Brodie D.A. (2010). A quantitative systematic review of normal
    values for short-term heart rate variability in healthy adults. Pacing Clin
    Electrophysiol 33(11):1407-1417.
    Tarvainen M.P. et al. Kubios HRV user's guide (PNS/SNS index, stress index).
    """
    rr = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    quality = hrv_quality(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)
    return hrv_stress_validated(rr, quality, mo_method=mo_method)


def hrv_stress_validated(
    rr: NDArray[np.float64], quality: HrvQuality, *, mo_method: MoMethod = "histogram"
) -> HrvStress:
    """``hrv_stress`` of a series already validated (>= 3 intervals) with its gates computed.

    For ``hrv_summary`` and ``hrv_long``, which validate once for all components.
    """
    if not quality.usable:
        return HrvStress(
            baevsky_si=_NAN,
            stress_index=_NAN,
            amo_pct=_NAN,
            mo_s=_NAN,
            mxdmn_s=_NAN,
            pns_index=_NAN,
            sns_index=_NAN,
            mo_method=mo_method,
            suppressed=quality.reasons,
            notes=(),
            algorithm_version=_VERSION,
        )
    si, amo_pct, mo_s, mxdmn_s = baevsky_si(rr, mo_method=mo_method)
    suppressed: list[str] = []
    notes: list[str] = []
    if math.isnan(si):
        suppressed.append("baevsky_si, stress_index, sns_index: MxDMn is 0 (constant series)")
    stress_index = math.sqrt(si) if not math.isnan(si) else _NAN
    mean_rr = float(rr.mean())
    diff = np.diff(rr)
    rmssd = math.sqrt(float(np.dot(diff, diff)) / diff.size)
    mean_hr = float((60000.0 / rr).mean())
    sd1, sd2 = poincare_sd(rr)
    pns = (_z("mean_rr_ms", mean_rr) + _z("rmssd_ms", rmssd) + _z("sd1_ms", sd1)) / 3.0
    sns = (_z("mean_hr_bpm", mean_hr) + _z("stress_index", stress_index) - _z("sd2_ms", sd2)) / 3.0
    if not NORM_DURATION_S[0] <= quality.duration_s <= NORM_DURATION_S[1]:
        notes.append("pns_index, sns_index: norms describe 5-min recordings")
    return HrvStress(
        baevsky_si=si,
        stress_index=stress_index,
        amo_pct=amo_pct,
        mo_s=mo_s,
        mxdmn_s=mxdmn_s,
        pns_index=pns,
        sns_index=sns,
        mo_method=mo_method,
        suppressed=tuple(suppressed),
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )


def _z(name: str, value: float) -> float:
    mean, sd = PNS_SNS_NORMS[name]
    return (value - mean) / sd
