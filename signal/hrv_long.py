"""Long recordings (up to 24 h and more): 5-min segment summaries, SDNN index, SDANN and
whole-record time-domain, spectral and nonlinear HRV, in bounded memory.

Method:

1. Artefacts are detected and corrected once on the whole record (``rr_clean``).
2. The corrected series is cut into consecutive segments of ``segment_s`` seconds (default
   300 s) on its own time axis: an interval belongs to the segment in which it *starts*
   (time measured from the first beat). Only complete segments are summarised; the trailing
   partial segment counts in the whole-record metrics only. Each segment gets the canonical
   short-term set (``summarize_nn``) with its own corrected-beat gate; a correction belongs to
   the segment in which its input interval starts on the input time axis.
3. SDNN index = mean of the segment SDNNs; SDANN = standard deviation (ddof 1) of the segment
   mean RRs; both over segments that passed the gate (Task Force 1996).
4. Whole record: time domain (``hrv_time``), Welch spectrum (``hrv_frequency``, segments of
   half the record, so VLF is resolved), Poincaré SD1/SD2 and DFA alpha1/alpha2
   (``hrv_nonlinear``; sample entropy is suppressed above 20 000 beats - its per-segment
   mean is reported instead).

Every step is O(N) in memory: no N x N matrix anywhere (sample entropy counts template pairs by
a sorted sweep, DFA reshapes the profile box by box, Lomb-Scargle works in sample chunks).

Pure composition of signal-core functions: no I/O, no clocks, no progress reporting (callers
that want a progress bar iterate over windows themselves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_frequency import HrvFrequency, hrv_frequency
from shuxin.signal.hrv_nonlinear import HrvNonlinear, hrv_nonlinear
from shuxin.signal.hrv_quality import DEFAULT_MAX_CORRECTED_PCT, validate_rr_ms
from shuxin.signal.hrv_summary import MIN_BEATS, HrvSummary, summarize_nn
from shuxin.signal.hrv_time import HrvTime, hrv_time
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.version import algorithm_version

__all__ = ["DEFAULT_SEGMENT_S", "HrvLong", "hrv_long"]

#: Segment length (s) of the SDNN index / SDANN (Task Force 1996: 5 min).
DEFAULT_SEGMENT_S: Final = 300.0

_VERSION: Final = algorithm_version("hrv_long")
_NAN: Final = float("nan")
_SEGMENT_MEANS: Final = (
    "rmssd_ms",
    "lf_ms2",
    "hf_ms2",
    "lf_hf",
    "sampen",
    "dfa_alpha1",
    "stress_index",
)


@dataclass(frozen=True, slots=True)
class HrvLong:
    """HRV of a long recording.

    Attributes
    ----------
    n_beats_input : int
        RR intervals given.
    duration_s : float
        Sum of the input intervals (s).
    segment_s : float
        Segment length (s).
    cleaned : bool
        Whether artefacts were corrected.
    artifact_pct, corrected_pct : float
        Whole-record % of input intervals classified as artefacts / changed.
    time : HrvTime
        Whole-record time domain (SDNN here is the 24-h SDNN when the record is 24 h).
    welch : HrvFrequency
        Whole-record Welch spectrum.
    nonlinear : HrvNonlinear
        Whole-record SD1/SD2 and DFA (sample entropy only up to 20 000 beats).
    sdnn_index_ms : float
        Mean of the segment SDNNs (ms).
    sdann_ms : float
        Standard deviation (ddof 1) of the segment mean RRs (ms).
    n_segments : int
        Complete segments.
    n_segments_valid : int
        Segments that passed the corrected-beat gate.
    segment_start_s : tuple[float, ...]
        Start time (s from the first beat) of every complete segment.
    segments : tuple[HrvSummary, ...]
        Canonical short-term set of every complete segment, in time order.
    segment_mean_rmssd_ms, segment_mean_lf_ms2, segment_mean_hf_ms2, segment_mean_lf_hf, \
segment_mean_sampen, segment_mean_dfa_alpha1, segment_mean_stress_index : float
        Means over the segments where the value is not NaN (NaN if there is none).
    suppressed : tuple[str, ...]
        Why whole-record values are NaN.
    notes : tuple[str, ...]
        Caveats.
    algorithm_version : str
        Version tag of this algorithm.
    """

    n_beats_input: int
    duration_s: float
    segment_s: float
    cleaned: bool
    artifact_pct: float
    corrected_pct: float
    time: HrvTime
    welch: HrvFrequency
    nonlinear: HrvNonlinear
    sdnn_index_ms: float
    sdann_ms: float
    n_segments: int
    n_segments_valid: int
    segment_start_s: tuple[float, ...]
    segments: tuple[HrvSummary, ...]
    segment_mean_rmssd_ms: float
    segment_mean_lf_ms2: float
    segment_mean_hf_ms2: float
    segment_mean_lf_hf: float
    segment_mean_sampen: float
    segment_mean_dfa_alpha1: float
    segment_mean_stress_index: float
    suppressed: tuple[str, ...]
    notes: tuple[str, ...]
    algorithm_version: str


def hrv_long(
    rr_ms: ArrayLike,
    *,
    correct: bool = True,
    segment_s: float = DEFAULT_SEGMENT_S,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
) -> HrvLong:
    """Analyse a long RR recording: segment summaries, SDNN index, SDANN, whole-record HRV.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms) as recorded, finite and > 0, at least 5; typically 24 h (about
        100 000 beats).
    correct : bool
        Detect and correct artefacts first (default); ``False`` analyses the series as given.
    segment_s : float
        Segment length (s), 60–3600; default 300 s (Task Force).
    max_corrected_pct : float
        Per segment, and for the whole record: above this % of corrected beats the metrics
        are NaN (default 5 %).

    Returns
    -------
    HrvLong
        Whole-record metrics, segment statistics and the per-segment summaries.

    Raises
    ------
    InvalidInputError
        Invalid series or ``segment_s`` outside 60–3600 s.
    InsufficientDataError
        Fewer than 5 intervals.

    References
    ----------
    Task Force of the ESC and NASPE (1996). Circulation 93(5):1043-1065 (SDANN, SDNN index).
    """
    if not (math.isfinite(segment_s) and 60.0 <= segment_s <= 3600.0):
        raise InvalidInputError(f"segment_s={segment_s!r} outside [60, 3600]")
    rr_in = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    cleaning = rr_clean(rr_in, correct=correct)
    rr = cleaning.rr_ms if correct else rr_in
    notes = [f"rr_clean: {note}" for note in cleaning.notes]
    corrected_pct = cleaning.corrected_pct
    time = hrv_time(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)
    welch = hrv_frequency(
        rr, method="welch", corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct
    )
    nonlinear = hrv_nonlinear(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)

    segments, starts = _segment_summaries(
        rr_in,
        rr,
        artefact_mask=cleaning.artefact_mask,
        corrections=cleaning.corrections,
        correct=correct,
        segment_s=segment_s,
        max_corrected_pct=max_corrected_pct,
        cleaning_version=cleaning.algorithm_version,
        notes=notes,
    )
    valid = [seg for seg in segments if not math.isnan(seg.mean_rr_ms)]
    sdnn_index = float(np.mean([seg.sdnn_ms for seg in valid])) if valid else _NAN
    sdann = _NAN
    if len(valid) >= 2:
        sdann = float(np.std([seg.mean_rr_ms for seg in valid], ddof=1))
    suppressed = [f"time: {reason}" for reason in time.suppressed]
    suppressed += [f"welch: {reason}" for reason in welch.suppressed]
    suppressed += [f"nonlinear: {reason}" for reason in nonlinear.suppressed]
    if len(valid) < 2:
        suppressed.append(f"sdann_ms: fewer than 2 valid {segment_s:g}-s segments")
    if not valid:
        suppressed.append(f"sdnn_index_ms: no valid {segment_s:g}-s segment")
    means = {name: _mean_defined([getattr(seg, name) for seg in valid]) for name in _SEGMENT_MEANS}

    return HrvLong(
        n_beats_input=int(rr_in.size),
        duration_s=float(rr_in.sum()) / 1000.0,
        segment_s=float(segment_s),
        cleaned=correct,
        artifact_pct=cleaning.artefact_pct,
        corrected_pct=cleaning.corrected_pct,
        time=time,
        welch=welch,
        nonlinear=nonlinear,
        sdnn_index_ms=sdnn_index,
        sdann_ms=sdann,
        n_segments=len(segments),
        n_segments_valid=len(valid),
        segment_start_s=starts,
        segments=tuple(segments),
        segment_mean_rmssd_ms=means["rmssd_ms"],
        segment_mean_lf_ms2=means["lf_ms2"],
        segment_mean_hf_ms2=means["hf_ms2"],
        segment_mean_lf_hf=means["lf_hf"],
        segment_mean_sampen=means["sampen"],
        segment_mean_dfa_alpha1=means["dfa_alpha1"],
        segment_mean_stress_index=means["stress_index"],
        suppressed=tuple(suppressed),
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )


def _segment_summaries(
    rr_in: NDArray[np.float64],
    rr: NDArray[np.float64],
    *,
    artefact_mask: NDArray[np.bool_],
    corrections: tuple[tuple[int, str], ...],
    correct: bool,
    segment_s: float,
    max_corrected_pct: float,
    cleaning_version: str,
    notes: list[str],
) -> tuple[list[HrvSummary], tuple[float, ...]]:
    """Summaries of the complete segments, and their start times (s)."""
    start_nn = np.cumsum(rr) / 1000.0 - rr / 1000.0
    start_in = np.cumsum(rr_in) / 1000.0 - rr_in / 1000.0
    n_segments = math.floor(float(rr.sum()) / 1000.0 / segment_s + 1e-9)
    edges = np.arange(n_segments + 1) * segment_s
    cut_nn = np.searchsorted(start_nn, edges, side="left")
    cut_in = np.searchsorted(start_in, edges, side="left")
    corrected_index = np.fromiter((index for index, _ in corrections), dtype=np.intp)
    corrected_kind = [kind for _, kind in corrections]
    cut_corr = np.searchsorted(corrected_index, cut_in, side="left")
    summaries: list[HrvSummary] = []
    starts: list[float] = []
    for k in range(n_segments):
        segment = rr[cut_nn[k] : cut_nn[k + 1]]
        n_in = int(cut_in[k + 1] - cut_in[k])
        if segment.size < MIN_BEATS or n_in == 0:
            notes.append(f"segment at {edges[k]:g} s skipped: fewer than {MIN_BEATS} intervals")
            continue
        c0, c1 = int(cut_corr[k]), int(cut_corr[k + 1])
        n_artefacts = int(np.count_nonzero(artefact_mask[cut_in[k] : cut_in[k + 1]]))
        summaries.append(
            summarize_nn(
                segment,
                n_beats_input=n_in,
                cleaned=correct,
                artifact_pct=100.0 * n_artefacts / n_in,
                corrected_pct=100.0 * (c1 - c0) / n_in,
                corrections=tuple(
                    zip(corrected_index[c0:c1].tolist(), corrected_kind[c0:c1], strict=True)
                ),
                max_corrected_pct=max_corrected_pct,
                notes=(),
                cleaning_version=cleaning_version,
            )
        )
        starts.append(float(edges[k]))
    return summaries, tuple(starts)


def _mean_defined(values: list[float]) -> float:
    defined = [value for value in values if not math.isnan(value)]
    return float(np.mean(defined)) if defined else _NAN
