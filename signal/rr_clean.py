"""RR artefact detection and correction (Lipponen & Tarvainen 2019) plus plausibility gates.

`rr_clean` classifies every input RR interval as normal or as one of the artefact kinds of
Lipponen & Tarvainen (2019) — ectopic, long, short, missed, extra — adds two plausibility gates
(an absolute 300–2000 ms range and a Malik-style relative rule, because L&T alone under-detects
runs of premature beats), and optionally corrects the series. The exact rules, and every place
where this implementation differs from NeuroKit2's ``signal_fixpeaks(method="Kubios")``, are
written down in ``docs/signal/beats.md``.

Pure NumPy: no I/O, no clocks, no logging, no pandas or NeuroKit2 here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.version import algorithm_version

__all__ = ["BEAT_CLASSES", "MIN_BEATS", "RrCleaning", "rr_clean"]

#: Class names, in the order of their integer codes (code 0 is "normal").
BEAT_CLASSES: Final = ("normal", "ectopic", "long", "short", "missed", "extra", "implausible")
_NORMAL, _ECTOPIC, _LONG, _SHORT, _MISSED, _EXTRA, _IMPLAUSIBLE = range(7)
# Internal codes: first interval of an ectopic pair (reported "ectopic"), and an S1 centre
# without a compensating partner (resolved before the result is built).
_ECTOPIC_PARTNER, _LONE_CENTRE = 7, 8
#: Smallest deviation (fraction of the local reference) of each half of a pair re-classed as
#: ectopic after the fact (:func:`_pair_short_long`).
_PAIR_MIN_DEVIATION: Final = 0.075
_CODE_NAMES: Final = np.asarray((*BEAT_CLASSES, "ectopic", "normal"), dtype=object)

#: Fewest RR intervals the classifier accepts (it needs j-1 … j+2 around every beat).
MIN_BEATS: Final = 5

_ROW_CHUNK: Final = 4096  # rows of the sliding window sorted at once (bounds memory on 24 h)


@dataclass(frozen=True, slots=True)
class _Beats:
    """Per-interval quantities the classification rules read (all arrays of length n)."""

    rr: NDArray[np.float64]  # RR (ms)
    med: NDArray[np.float64]  # medRR (ms)
    s11: NDArray[np.float64]  # dRR / Th1
    s12: NDArray[np.float64]
    s22: NDArray[np.float64]
    nmrr: NDArray[np.float64]  # mRR / Th2
    sum_tol: NDArray[np.float64]  # tolerance (ms) of the "sum of intervals" tests


@dataclass(frozen=True, slots=True)
class RrCleaning:
    """Result of :func:`rr_clean`.

    Attributes
    ----------
    rr_ms : NDArray[np.float64]
        The corrected RR series in ms (a copy of the input when ``correct=False``). Its length
        differs from the input when extra beats were removed or missed beats inserted.
    beat_class : tuple[str, ...]
        One class per INPUT interval: "normal", "ectopic", "long", "short", "missed", "extra"
        or "implausible". Both intervals of an ectopic pair and both halves of an extra-beat
        split carry the class.
    artefact_mask : NDArray[np.bool_]
        ``beat_class != "normal"``, per input interval.
    corrections : tuple[tuple[int, str], ...]
        ``(input_index, kind)`` for every input interval that was changed (empty when
        ``correct=False``).
    artefact_pct : float
        Share of input intervals classified as not normal, in %.
    corrected_pct : float
        Share of input intervals changed by the correction, in % (``artefact_pct`` when
        ``correct=True``, 0 otherwise).
    notes : tuple[str, ...]
        Anything the caller should know (e.g. thresholds hit their floor).
    algorithm_version : str
        ``"rr_clean/<version>"``.
    """

    rr_ms: NDArray[np.float64]
    beat_class: tuple[str, ...]
    artefact_mask: NDArray[np.bool_]
    corrections: tuple[tuple[int, str], ...]
    artefact_pct: float
    corrected_pct: float
    notes: tuple[str, ...]
    algorithm_version: str


def rr_clean(
    rr_ms: ArrayLike,
    *,
    correct: bool = True,
    alpha: float = 5.2,
    c1: float = 0.13,
    c2: float = 0.17,
    window_beats: int = 91,
    median_beats: int = 11,
    min_threshold_ms: float = 20.0,
    min_rr_ms: float = 300.0,
    max_rr_ms: float = 2000.0,
    max_relative_change: float = 0.20,
    split_merge_tolerance: float = 0.15,
) -> RrCleaning:
    """Detect and correct artefacts in an RR-interval series.

    Parameters
    ----------
    rr_ms : array_like, shape (n,)
        RR intervals in milliseconds, n >= 5, all finite and > 0.
    correct : bool
        Correct the series (default). ``False`` classifies only and returns the input series.
    alpha : float
        Threshold multiplier of the quartile deviation (L&T: 5.2).
    c1, c2 : float
        Slope and offset of the ectopic decision boundary in subspace S1 (L&T: 0.13, 0.17).
    window_beats : int
        Odd length of the centred window of the time-varying thresholds Th1/Th2 (L&T: 91);
        truncated at the ends of the series, so series shorter than the window work.
    median_beats : int
        Odd length of the centred median filter giving medRR (L&T: 11).
    min_threshold_ms : float
        Floor of Th1 and Th2 in ms (not in L&T): keeps a metronomic series, whose quartile
        deviation is 0, from dividing by zero, and beat jitter of a few ms from being flagged.
    min_rr_ms, max_rr_ms : float
        Absolute plausibility gate: a normal, long or short interval outside is "implausible".
    max_relative_change : float
        Malik-style relative gate: a normal-classified interval is "implausible" when it
        deviates by more than this fraction BOTH from the median of the accepted intervals in
        its centred ``median_beats`` window AND from the previous accepted interval.
    split_merge_tolerance : float
        Extension of L&T's missed/extra tests: a long interval is "missed" when
        ``|RR/m - medRR| < max(Th2, split_merge_tolerance * medRR)`` (m = round(RR/medRR) >= 2),
        a short one "extra" when ``|RR(j) + RR(j+1) - medRR| < max(Th2, tol * medRR)``.
        0 gives L&T's ``< Th2`` exactly.

    Returns
    -------
    RrCleaning
        Corrected series, per-input-interval class, corrections and percentages.

    Raises
    ------
    InvalidInputError
        If the input is not 1-D, contains NaN/inf or values <= 0, or a parameter is invalid.
    InsufficientDataError
        If fewer than 5 intervals are given, or nothing normal is left to interpolate from.

    Notes
    -----
    Detection follows L&T: ``dRR(j) = RR(j) - RR(j-1)`` (``dRR(0)`` = mean of the others),
    ``Th1 = alpha * QD(|dRR|)`` over the window, ``mRR = RR - medRR`` with negative values
    doubled, ``Th2 = alpha * QD(|mRR|)``; subspaces ``S11 = dRR/Th1``,
    ``S12 = max/min(S11(j-1), S11(j+1))``, ``S22 = min/max(S11(j+1), S11(j+2))``. Ectopic
    centre j (NPN/PNP pattern): ``S11 > 1 and S12 < -c1*S11 - c2`` or
    ``S11 < -1 and S12 > -c1*S11 + c2``. Long/short: ``S11 > 1 and S22 < -1`` (long),
    ``S11 < -1 and S22 > 1`` (short) or ``|mRR/Th2| > 3`` (sign decides); missed if
    ``|RR/m - medRR| < tol`` (m = round(RR/medRR) >= 2; L&T: m = 2, tol = Th2), extra if
    ``|RR(j) + RR(j+1) - medRR| < tol``. An ectopic centre whose partner j-1 compensates it
    (premature beat + pause) makes an ectopic pair (both intervals classed); a centre without
    one is a single long/short interval, or the return beat after another artefact (normal).
    dRR evidence that involves an artefact interval is not used. Corrections: ectopic pair ->
    the misplaced beat moved to the midpoint (both intervals = their mean), missed -> split
    into m equal parts, extra -> merged with the next interval, long/short/implausible ->
    linear interpolation over beat number from the nearest normal intervals. Every rule and
    difference from NeuroKit2 is listed in ``docs/signal/beats.md``.

    References
    ----------
    Lipponen JA, Tarvainen MP (2019). A robust algorithm for heart rate variability time series
    artefact correction using novel beat classification. J Med Eng Technol 43(3):173-181.
    doi:10.1080/03091902.2019.1640306.
    Malik M, et al. (1989). Heart rate variability in relation to prognosis after myocardial
    infarction: selection of optimal processing techniques. Eur Heart J 10(12):1060-1074.
    """
    rr = _validated(rr_ms)
    _check_parameters(
        alpha=alpha,
        windows=(window_beats, median_beats),
        min_rr_ms=min_rr_ms,
        max_rr_ms=max_rr_ms,
        max_relative_change=max_relative_change,
    )
    n = rr.size
    notes: list[str] = []

    drr = np.empty(n)
    drr[1:] = np.diff(rr)
    drr[0] = drr[1:].mean()
    med_rr = _centred_quantiles(rr, median_beats, (0.5,))[0]
    mrr = rr - med_rr
    mrr[mrr < 0] *= 2.0
    q1, q3 = _centred_quantiles(np.abs(np.stack((drr, mrr))), window_beats, (0.25, 0.75))
    th1_raw, th2_raw = alpha * (q3 - q1) / 2.0  # alpha x quartile deviation
    s11 = drr / np.maximum(th1_raw, min_threshold_ms)
    th2 = np.maximum(th2_raw, min_threshold_ms)
    nmrr = mrr / th2
    if np.any(th1_raw < min_threshold_ms) or np.any(th2_raw < min_threshold_ms):
        notes.append(f"threshold floor of {min_threshold_ms:g} ms applied to Th1/Th2")

    # Neighbours of S11; beyond the ends there is none (NaN).
    padded = np.pad(s11, 2, constant_values=np.nan)
    before, after, after2 = padded[1 : n + 1], padded[3 : n + 3], padded[4 : n + 4]
    with np.errstate(invalid="ignore"):
        s12 = np.where(s11 > 0, np.fmax(before, after), np.fmin(before, after))
        s12[s11 == 0] = 0.0
        s22 = np.where(s11 >= 0, np.fmin(after, after2), np.fmax(after, after2))
    s22 = np.nan_to_num(s22, nan=0.0)  # nothing after the last interval: no S2 evidence

    # Tolerance (ms) of every "sum of intervals vs. its expected value" test.
    sum_tol = np.maximum(th2, split_merge_tolerance * med_rr)
    beats = _Beats(rr=rr, med=med_rr, s11=s11, s12=s12, s22=s22, nmrr=nmrr, sum_tol=sum_tol)
    codes = np.zeros(n, dtype=np.int8)
    missed_parts = np.ones(n, dtype=np.int64)
    _classify_ectopic(codes, beats, c1=c1, c2=c2)
    s2_only = _classify_long_short(codes, missed_parts, beats)
    _resolve_lone_centres(codes, beats)
    _gate_plausibility(
        codes,
        rr,
        med_rr,
        median_beats=median_beats,
        min_rr_ms=min_rr_ms,
        max_rr_ms=max_rr_ms,
        max_relative_change=max_relative_change,
    )
    _recheck_s2(codes, s2_only, s11)
    _pair_short_long(codes, beats)

    mask = codes != _NORMAL
    n_flagged = int(np.count_nonzero(mask))
    artefact_pct = 100.0 * n_flagged / n
    names = _CODE_NAMES[codes]
    beat_class: tuple[str, ...] = tuple(names.tolist())

    if correct and n_flagged:
        corrected = _correct(rr, codes, missed_parts)
        flagged_idx = np.flatnonzero(mask)
        corrections = tuple(zip(flagged_idx.tolist(), names[flagged_idx].tolist(), strict=True))
        corrected_pct = artefact_pct
    else:
        corrected = rr.copy()
        corrections = ()
        corrected_pct = 0.0

    return RrCleaning(
        rr_ms=corrected,
        beat_class=beat_class,
        artefact_mask=mask,
        corrections=corrections,
        artefact_pct=artefact_pct,
        corrected_pct=corrected_pct,
        notes=tuple(notes),
        algorithm_version=algorithm_version("rr_clean"),
    )


def _validated(rr_ms: ArrayLike) -> NDArray[np.float64]:
    try:
        rr = np.array(rr_ms, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"rr_ms must be numeric: {exc}") from exc
    if rr.ndim != 1:
        raise InvalidInputError(f"rr_ms must be 1-D, got shape {rr.shape}")
    if not np.all(np.isfinite(rr)):
        raise InvalidInputError("rr_ms contains NaN or inf")
    if np.any(rr <= 0):
        raise InvalidInputError("rr_ms contains values <= 0 ms")
    if rr.size < MIN_BEATS:
        raise InsufficientDataError(f"rr_clean needs >= {MIN_BEATS} intervals, got {rr.size}")
    return rr


def _check_parameters(
    *,
    alpha: float,
    windows: tuple[int, int],
    min_rr_ms: float,
    max_rr_ms: float,
    max_relative_change: float,
) -> None:
    if not alpha > 0:
        raise InvalidInputError(f"alpha must be > 0, got {alpha}")
    for name, value in zip(("window_beats", "median_beats"), windows, strict=True):
        if value < 3 or value % 2 == 0:
            raise InvalidInputError(f"{name} must be an odd integer >= 3, got {value}")
    if not 0 < min_rr_ms < max_rr_ms:
        raise InvalidInputError(f"need 0 < min_rr_ms < max_rr_ms, got {min_rr_ms}, {max_rr_ms}")
    if not max_relative_change > 0:
        raise InvalidInputError(f"max_relative_change must be > 0, got {max_relative_change}")


def _centred_quantiles(
    x: NDArray[np.float64], window: int, quantiles: tuple[float, ...]
) -> list[NDArray[np.float64]]:
    """Quantiles over a centred window truncated at the ends, row by row, ignoring NaN.

    ``x`` is 1-D or a 2-D stack of series (same window for every row). Linear interpolation
    between order statistics, as ``pandas.Series.rolling(window, center=True,
    min_periods=1).quantile(q)``. Positions without any finite value give NaN.
    """
    stack = np.atleast_2d(x)
    rows, n = stack.shape
    half = window // 2
    padded = np.full((rows, n + 2 * half), np.nan)
    padded[:, half : half + n] = stack
    row_stride, col_stride = padded.strides
    has_nan = bool(np.isnan(stack).any())
    position = np.arange(n)
    full_count = np.minimum(position + half, n - 1) - np.maximum(position - half, 0) + 1
    out = [np.empty((rows, n)) for _ in quantiles]
    for start in range(0, n, _ROW_CHUNK):
        stop = min(start + _ROW_CHUNK, n)
        windows = as_strided(
            padded[:, start:],
            shape=(rows, stop - start, window),
            strides=(row_stride, col_stride, col_stride),
            writeable=False,
        )
        block = np.sort(windows, axis=2)  # NaN sort last
        if has_nan:
            valid = np.count_nonzero(~np.isnan(block), axis=2)
        else:
            valid = np.broadcast_to(full_count[start:stop], (rows, stop - start))
        last = np.maximum(valid - 1, 0)
        flat = block.reshape(-1, window)
        row = np.arange(flat.shape[0]).reshape(last.shape)
        for result, q in zip(out, quantiles, strict=True):
            exact = q * last
            low = np.floor(exact).astype(np.intp)
            high = np.minimum(low + 1, last)
            low_value = flat[row, low]
            value = low_value + (exact - low) * (flat[row, high] - low_value)
            if has_nan:
                value[valid == 0] = np.nan
            result[:, start:stop] = value
    return [result.reshape(np.shape(x)) for result in out]


def _classify_ectopic(codes: NDArray[np.int8], beats: _Beats, *, c1: float, c2: float) -> None:
    """Ectopic centres (subspace S1) and their compensating partner.

    The centre j of an NPN/PNP dRR pattern (L&T's S1 test) points at a misplaced beat between
    intervals j-1 and j. When the two compensate each other (:func:`_compensates`: premature
    beat with a compensatory pause, or a mistimed detection) both are ectopic and the beat is
    moved back to the midpoint. A centre without such a partner is kept as a lone
    centre, tested like any other interval by S2/mRR and resolved afterwards.
    """
    s11, s12 = beats.s11, beats.s12
    centre = ((s11 > 1) & (s12 < -c1 * s11 - c2)) | ((s11 < -1) & (s12 > -c1 * s11 + c2))
    for j in np.flatnonzero(centre).tolist():
        if codes[j] != _NORMAL:
            continue
        if j >= 1 and codes[j - 1] == _NORMAL and _compensates(j - 1, beats):
            codes[j - 1], codes[j] = _ECTOPIC_PARTNER, _ECTOPIC
        else:
            codes[j] = _LONE_CENTRE


def _classify_long_short(
    codes: NDArray[np.int8], missed_parts: NDArray[np.int64], beats: _Beats
) -> list[int]:
    """Long/short, missed and extra intervals (subspace S2 and the mRR test), in beat order.

    Two refinements keep an artefact from making its neighbours look abnormal: dRR(k) is not
    used when interval k-1 is already an artefact, and a long/short interval followed by one
    of opposite sign that compensates it (sum ~ 2 medRR) becomes an ectopic pair. Returns the
    intervals flagged long/short on S2 evidence alone (for :func:`_recheck_s2`).
    """
    rr, med_rr, s11, s22, nmrr, sum_tol = (
        beats.rr,
        beats.med,
        beats.s11,
        beats.s22,
        beats.nmrr,
        beats.sum_tol,
    )
    n = rr.size
    open_codes = (_NORMAL, _LONE_CENTRE)
    s2_only: list[int] = []
    candidates = np.flatnonzero((np.abs(s11) > 1) | (np.abs(nmrr) > 3) | (codes == _LONE_CENTRE))
    for j in candidates.tolist():
        if codes[j] not in open_codes:
            continue
        to_test = [j]
        if j + 2 < n and abs(s11[j + 1]) < abs(s11[j + 2]):
            to_test.append(j + 1)
        for k in to_test:
            if codes[k] not in open_codes:
                continue
            if k >= 1 and codes[k - 1] in (_LONG, _SHORT) and _compensates(k - 1, beats):
                codes[k - 1], codes[k] = _ECTOPIC_PARTNER, _ECTOPIC
                continue
            drr_valid = k == 0 or codes[k - 1] == _NORMAL
            eq3 = drr_valid and s11[k] > 1 and s22[k] < -1
            eq5 = drr_valid and s11[k] < -1 and s22[k] > 1
            eq4 = abs(nmrr[k]) > 3
            if eq3:
                is_long = True
            elif eq5:
                is_long = False
            elif eq4:
                is_long = bool(nmrr[k] > 0)
            else:
                continue
            if not is_long:
                if (
                    k + 1 < n
                    and codes[k + 1] in open_codes
                    and abs(rr[k] + rr[k + 1] - med_rr[k]) < sum_tol[k]
                ):
                    codes[k] = codes[k + 1] = _EXTRA
                else:
                    codes[k] = _SHORT
                    if not eq4:
                        s2_only.append(k)
                continue
            parts = max(2, round(rr[k] / med_rr[k]))
            if abs(rr[k] - parts * med_rr[k]) < parts * sum_tol[k]:
                codes[k] = _MISSED
                missed_parts[k] = parts
            else:
                codes[k] = _LONG
                if not eq4:
                    s2_only.append(k)
    return s2_only


def _compensates(first: int, beats: _Beats, *, min_deviation: float = 0.0) -> bool:
    """Do intervals ``first`` and ``first + 1`` compensate each other?

    The reference is the median of the up to two intervals on either side of the pair (robust
    to one artefact among them): the two deviations from it have opposite signs,
    magnitudes within a factor of 2 and above ``min_deviation`` x reference, and a sum below the
    two intervals' ``sum_tol`` added. Then exactly one
    beat, the one between them, is misplaced.
    """
    rr = beats.rr
    second = first + 1
    flanks = sorted(rr[max(first - 2, 0) : first].tolist() + rr[second + 1 : second + 3].tolist())
    middle = len(flanks) // 2
    reference = flanks[middle] if len(flanks) % 2 else 0.5 * (flanks[middle - 1] + flanks[middle])
    dev_a = rr[first] - reference
    dev_b = rr[second] - reference
    return bool(
        dev_a * dev_b < 0
        and min(abs(dev_a), abs(dev_b)) > min_deviation * reference
        and 0.5 * abs(dev_a) <= abs(dev_b) <= 2.0 * abs(dev_a)
        and abs(dev_a + dev_b) < beats.sum_tol[first] + beats.sum_tol[second]
    )


def _recheck_s2(codes: NDArray[np.int8], s2_only: list[int], s11: NDArray[np.float64]) -> None:
    """Drop a long/short flag whose only evidence was a dRR that involves a later artefact.

    S22 of interval j looks at dRR(j+1) and dRR(j+2); each involves RR(j+1) (and dRR(j+2)
    also RR(j+2)). When those intervals turned out to be artefacts, the evidence is theirs,
    not j's: S22 is recomputed from the valid terms only.
    """
    n = codes.size
    for j in s2_only:
        if codes[j] not in (_LONG, _SHORT):
            continue
        terms = []
        if j + 1 < n and codes[j + 1] == _NORMAL:
            terms.append(s11[j + 1])
            if j + 2 < n and codes[j + 2] == _NORMAL:
                terms.append(s11[j + 2])
        still_long = codes[j] == _LONG and bool(terms) and min(terms) < -1
        still_short = codes[j] == _SHORT and bool(terms) and max(terms) > 1
        if not (still_long or still_short):
            codes[j] = _NORMAL


def _resolve_lone_centres(codes: NDArray[np.int8], beats: _Beats) -> None:
    """Turn every remaining lone S1 centre into normal, long or short.

    Right after a long, short, missed or extra interval the return to baseline makes an
    NPN/PNP dRR pattern by itself: such a centre whose own interval is no mRR outlier
    (``|mRR/Th2| <= 3``) is that return beat and normal. Any other lone centre is a single
    deviant interval (no compensating partner, hence no misplaced beat): long or short by
    the sign of ``RR - medRR``.
    """
    for j in np.flatnonzero(codes == _LONE_CENTRE).tolist():
        if j >= 1 and codes[j - 1] != _NORMAL and abs(beats.nmrr[j]) <= 3:
            codes[j] = _NORMAL
        else:
            codes[j] = _LONG if beats.rr[j] > beats.med[j] else _SHORT


def _pair_short_long(codes: NDArray[np.int8], beats: _Beats) -> None:
    """Re-class adjacent flagged intervals of opposite sign summing to ~2 medRR as ectopic.

    Catches the premature-beat + compensatory-pause pattern where S1 cannot see it: at the
    start of the series (dRR(0) is a filler value), or when a plausibility gate rather than
    L&T flagged one of the two. Both must be long, short or implausible and compensate each
    other (:func:`_compensates`).
    """
    flagged = (codes == _LONG) | (codes == _SHORT) | (codes == _IMPLAUSIBLE)
    first = np.flatnonzero(flagged[:-1] & flagged[1:])
    for j in first.tolist():
        if codes[j] in (_ECTOPIC, _ECTOPIC_PARTNER):
            continue  # already paired with the previous interval
        # Only clear deviations pair up: an interval merely out of the absolute range (a
        # slow rhythm above 2000 ms) is no half of a misplaced beat.
        if _compensates(j, beats, min_deviation=_PAIR_MIN_DEVIATION):
            codes[j], codes[j + 1] = _ECTOPIC_PARTNER, _ECTOPIC


def _gate_plausibility(
    codes: NDArray[np.int8],
    rr: NDArray[np.float64],
    med_rr: NDArray[np.float64],
    *,
    median_beats: int,
    min_rr_ms: float,
    max_rr_ms: float,
    max_relative_change: float,
) -> None:
    """Absolute range and Malik-style relative rule on intervals L&T left normal."""
    # The absolute range overrides a long/short class too (missed/extra are judged after
    # their split/merge, ectopic pairs after the move).
    judged = (codes == _NORMAL) | (codes == _LONG) | (codes == _SHORT)
    out_of_range = judged & ((rr < min_rr_ms) | (rr > max_rr_ms))
    codes[out_of_range] = _IMPLAUSIBLE
    accepted = codes == _NORMAL
    if accepted.all():
        reference = med_rr  # nothing excluded: the median of the accepted intervals is medRR
    else:
        reference = _centred_quantiles(np.where(accepted, rr, np.nan), median_beats, (0.5,))[0]
    with np.errstate(invalid="ignore"):
        off_median = accepted & (np.abs(rr - reference) > max_relative_change * reference)
    for j in np.flatnonzero(off_median).tolist():
        previous = j - 1
        while previous >= 0 and codes[previous] != _NORMAL:
            previous -= 1
        if previous < 0 or abs(rr[j] - rr[previous]) > max_relative_change * rr[previous]:
            codes[j] = _LONG if rr[j] > reference[j] else _SHORT


def _correct(
    rr: NDArray[np.float64], codes: NDArray[np.int8], missed_parts: NDArray[np.int64]
) -> NDArray[np.float64]:
    values = rr.copy()
    repeats = np.ones(rr.size, dtype=np.int64)

    partner = np.flatnonzero(codes == _ECTOPIC_PARTNER)
    lone_ectopic = codes == _ECTOPIC
    lone_ectopic[partner + 1] = False
    interpolate = lone_ectopic | (codes == _LONG) | (codes == _SHORT) | (codes == _IMPLAUSIBLE)
    if np.any(interpolate):
        anchors = np.flatnonzero(codes == _NORMAL)
        if anchors.size == 0:
            raise InsufficientDataError("no normal interval left to interpolate from")
        targets = np.flatnonzero(interpolate)
        values[targets] = np.interp(targets, anchors, rr[anchors])

    # A compensating ectopic pair: the misplaced beat moves to the midpoint of its neighbours.
    values[partner] = values[partner + 1] = 0.5 * (rr[partner] + rr[partner + 1])

    extra = np.flatnonzero(codes == _EXTRA)[::2]  # pairs (j, j+1), marked disjoint, in order
    values[extra] = rr[extra] + rr[extra + 1]
    repeats[extra + 1] = 0

    missed = np.flatnonzero(codes == _MISSED)
    repeats[missed] = missed_parts[missed]
    values[missed] = rr[missed] / missed_parts[missed]
    return np.repeat(values, repeats)
