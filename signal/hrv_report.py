"""Everything the signal core reports about one RR recording, in one call.

``hrv_report`` composes the canonical HRV set (``hrv_summary``: cleaning, time, Welch, Lomb,
nonlinear, stress) with the biofeedback measures that need the cleaned series: the record's
coherence (the mean of HeartMath-style 64-s coherence ratios updated every 5 s) and the
breathing rate from RSA. ``shuxin analyze`` and the gateway's session summaries call this, so
both report the same numbers. Pure composition: no I/O, no clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from shuxin.signal.errors import InsufficientDataError
from shuxin.signal.hrv_coherence import WINDOW_S, hrv_coherence_series
from shuxin.signal.hrv_quality import DEFAULT_MAX_CORRECTED_PCT
from shuxin.signal.hrv_summary import HrvSummary, hrv_summary
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.rsp_rate import PACED_BAND_HZ, REST_BAND_HZ, rsp_rate_from_rr
from shuxin.signal.version import algorithm_version

_VERSION: Final = algorithm_version("hrv_report")


@dataclass(frozen=True, slots=True)
class HrvReport:
    """The canonical HRV set plus record-level coherence and breathing rate.

    Attributes
    ----------
    summary : HrvSummary
        Cleaning, time, frequency (Welch and Lomb), nonlinear and stress indices.
    coherence_ratio : float
        Mean of the coherence ratios computed every 5 s over 64-s windows (McCraty et al.
        2009 form, see docs/signal/biofeedback.md); NaN when the record is shorter than 64 s.
    coherence_ratio_max : float
        Largest of those ratios (NaN as above).
    coherence_updates : int
        Number of 5-s updates averaged.
    resp_rate_bpm : float
        Breathing rate from the dominant RSA peak (breaths/min); NaN when no single rhythm
        dominates or the record is too short (reason in ``notes``).
    notes : tuple[str, ...]
        Why a biofeedback value is NaN, each prefixed by its component.
    algorithm_version : str
        Version tag of this composition.
    """

    summary: HrvSummary
    coherence_ratio: float
    coherence_ratio_max: float
    coherence_updates: int
    resp_rate_bpm: float
    notes: tuple[str, ...]
    algorithm_version: str


def hrv_report(
    rr_ms: ArrayLike,
    *,
    correct: bool = True,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
    paced: bool = False,
) -> HrvReport:
    """Analyse one RR recording: the canonical HRV set, coherence and breathing rate.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms) as recorded, finite and > 0, at least 5 (typically 5 min).
    correct : bool
        Detect and correct artefacts first (default); ``False`` analyses the series as given.
    max_corrected_pct : float
        Suppress every HRV metric above this % of corrected beats (default 5 %).
    paced : bool
        The subject breathed with a slow pacer: search the breathing rate down to 3/min
        (``PACED_BAND_HZ``) instead of the resting band (``REST_BAND_HZ``, 7.2–30/min).

    Returns
    -------
    HrvReport

    Raises
    ------
    InvalidInputError, InsufficientDataError
        As ``hrv_summary``.

    References
    ----------
    McCraty R. et al. (2009) The coherent heart. Integral Review 5(2):10-115.
    Task Force of the ESC and NASPE (1996). Circulation 93(5):1043-1065.
    """
    summary = hrv_summary(rr_ms, correct=correct, max_corrected_pct=max_corrected_pct)
    # hrv_summary keeps only metrics, so the cleaned series is rebuilt here (deterministic);
    # without correction the series is analysed as given and needs no cleaning pass.
    rr_in = np.asarray(rr_ms, dtype=np.float64)
    nn_ms = rr_clean(rr_in).rr_ms if correct else rr_in
    notes: list[str] = []

    coherence = math.nan
    coherence_max = math.nan
    updates = 0
    series = hrv_coherence_series(nn_ms)
    if series.coherence_ratio.size:
        updates = int(series.coherence_ratio.size)
        coherence = float(np.mean(series.coherence_ratio))
        coherence_max = float(np.max(series.coherence_ratio))
    else:
        notes.append(f"hrv_coherence: record shorter than the {WINDOW_S:g}-s window")

    resp_rate = math.nan
    try:
        rsp = rsp_rate_from_rr(nn_ms, band_hz=PACED_BAND_HZ if paced else REST_BAND_HZ)
    except InsufficientDataError as exc:
        notes.append(f"rsp_rate: {exc}")
    else:
        resp_rate = rsp.resp_rate_bpm
        notes.extend(f"rsp_rate: {note}" for note in rsp.notes)

    return HrvReport(
        summary=summary,
        coherence_ratio=coherence,
        coherence_ratio_max=coherence_max,
        coherence_updates=updates,
        resp_rate_bpm=resp_rate,
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )
