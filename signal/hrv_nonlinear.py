"""Nonlinear HRV: Poincaré SD1/SD2, sample entropy and detrended fluctuation analysis (DFA).

Definitions (also in docs/signal/hrv.md):

* Poincaré (Brennan et al. 2001): with pairs (RR_n, RR_n+1), ``SD1 = std((RR_n - RR_n+1) /
  sqrt 2)`` and ``SD2 = std((RR_n + RR_n+1) / sqrt 2)``, sample standard deviations (ddof 1)
  over the N-1 pairs.
* Sample entropy (Richman & Moorman 2000): m = 2, tolerance ``r = 0.2 * SD`` with SD the sample
  standard deviation (ddof 1) of the series, Chebyshev distance, a match is ``d <= r``,
  self-matches excluded, the same N-m template start points for lengths m and m+1;
  ``SampEn = -ln(A / B)``. Pairs are counted by sorting the templates on their first
  coordinate and sweeping only the neighbours within r there, in blocks of at most 64
  offsets: memory O(N), never an N x N matrix; time O(N log N + N K), K the largest number of
  templates within r on the first coordinate.
* DFA (Peng et al. 1995): profile ``y = cumsum(RR - mean RR)``; for every integer box size n
  the profile is cut into ``floor(N / n)`` non-overlapping boxes from the first beat (the
  remainder is dropped), a least-squares line is removed in each box, and ``F(n)`` is the
  root mean square of all residuals. alpha1 is the least-squares slope of ``log F(n)`` on
  ``log n``, unweighted, over the box sizes n = 4, 5, ..., 16 beats (alpha1) and n = 16, 18,
  20, 23, 25, 29, 32, 36, 40, 45, 51, 57, 64 beats (alpha2: geometric spacing, factor
  2^(1/6), so every octave weighs the same and the few-box largest sizes do not dominate).
  A range is computed only when its largest box fits at least 3 times. Memory O(N).

Pure NumPy on a cleaned NN series; it does no artefact correction and no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_quality import (
    DEFAULT_MAX_CORRECTED_PCT,
    HrvQuality,
    hrv_quality,
    validate_rr_ms,
)
from shuxin.signal.version import algorithm_version

__all__ = [
    "DFA_ALPHA1_SCALES",
    "DFA_ALPHA2_SCALES",
    "HrvNonlinear",
    "dfa_alpha",
    "hrv_nonlinear",
    "hrv_nonlinear_validated",
    "poincare_sd",
    "sample_entropy",
]

#: Box sizes (beats) of DFA alpha1 (every integer 4..16) and alpha2 (13 sizes 16..64 spaced by a
#: factor 2^(1/6), rounded), so both fits have 13 points.
DFA_ALPHA1_SCALES: Final = tuple(range(4, 17))
DFA_ALPHA2_SCALES: Final = (16, 18, 20, 23, 25, 29, 32, 36, 40, 45, 51, 57, 64)
#: A DFA range needs its largest box to fit this many times into the series.
DFA_MIN_BOXES: Final = 3
#: Default embedding dimension and tolerance (fraction of the SD) of sample entropy.
SAMPEN_M: Final = 2
SAMPEN_R_SD: Final = 0.2
#: Above this many beats sample entropy is suppressed unless the caller raises the limit
#: (its cost grows about quadratically; long records go through ``hrv_long`` in 5-min segments).
SAMPEN_MAX_BEATS: Final = 20_000
#: Fewest RR intervals accepted (SD1/SD2 with ddof 1 need two pairs).
MIN_BEATS: Final = 3
_SWEEP_BLOCK: Final = 64
_DFA_BLOCK_ELEMENTS: Final = 1 << 20

_VERSION: Final = algorithm_version("hrv_nonlinear")
_NAN: Final = float("nan")


@dataclass(frozen=True, slots=True)
class HrvNonlinear:
    """Nonlinear HRV of one NN series.

    Attributes
    ----------
    n_beats : int
        Number of RR intervals analysed.
    sd1_ms, sd2_ms : float
        Poincaré short- and long-axis standard deviations (ms).
    sd2_sd1 : float
        SD2 / SD1.
    sampen : float
        Sample entropy (m = 2, r = 0.2 SD), dimensionless.
    sampen_r_ms : float
        Tolerance r used (ms).
    dfa_alpha1, dfa_alpha2 : float
        DFA scaling exponents over 4–16 and 16–64 beats.
    suppressed : tuple[str, ...]
        Why a field is NaN.
    algorithm_version : str
        Version tag of this algorithm.
    """

    n_beats: int
    sd1_ms: float
    sd2_ms: float
    sd2_sd1: float
    sampen: float
    sampen_r_ms: float
    dfa_alpha1: float
    dfa_alpha2: float
    suppressed: tuple[str, ...]
    algorithm_version: str


def hrv_nonlinear(
    rr_ms: ArrayLike,
    *,
    corrected_pct: float = 0.0,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
    sampen_max_beats: int | None = SAMPEN_MAX_BEATS,
) -> HrvNonlinear:
    """Compute Poincaré SD1/SD2, sample entropy and DFA alpha1/alpha2 from NN intervals.

    Parameters
    ----------
    rr_ms : array_like
        NN intervals (ms), finite and > 0, at least 3. Sample entropy needs >= 100 beats
        (10^m), alpha1 >= 48 and alpha2 >= 192 beats; below that the field is NaN with a
        reason.
    corrected_pct : float
        Percentage of beats corrected upstream (0–100, NaN if unknown).
    max_corrected_pct : float
        Above this percentage every field is NaN (default 5 %).
    sampen_max_beats : int or None
        Suppress sample entropy above this many beats (default 20 000; None: no limit).

    Returns
    -------
    HrvNonlinear
        The indices; see the class for units.

    Raises
    ------
    InvalidInputError
        NaN/inf, zero or negative intervals, wrong shape.
    InsufficientDataError
        Fewer than 3 intervals.

    References
    ----------
    Brennan M., Palaniswami M., Kamen P. (2001). Do existing measures of Poincaré plot
    geometry reflect nonlinear features of heart rate variability? IEEE Trans Biomed Eng
    48(11):1342-1347.
    Richman J.S., Moorman J.R. (2000). Physiological time-series analysis using approximate
    entropy and sample entropy. Am J Physiol Heart Circ Physiol 278(6):H2039-H2049.
    Peng C.-K., Havlin S., Stanley H.E., Goldberger A.L. (1995). Quantification of scaling
    exponents and crossover phenomena in nonstationary heartbeat time series. Chaos 5:82-87.
    """
    rr = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    quality = hrv_quality(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)
    return hrv_nonlinear_validated(rr, quality, sampen_max_beats=sampen_max_beats)


def hrv_nonlinear_validated(
    rr: NDArray[np.float64],
    quality: HrvQuality,
    *,
    sampen_max_beats: int | None = SAMPEN_MAX_BEATS,
) -> HrvNonlinear:
    """``hrv_nonlinear`` of a series already validated (>= 3 intervals) with its gates computed.

    For ``hrv_summary`` and ``hrv_long``, which validate once for all components.
    """
    if not quality.usable:
        return HrvNonlinear(
            n_beats=int(rr.size),
            sd1_ms=_NAN,
            sd2_ms=_NAN,
            sd2_sd1=_NAN,
            sampen=_NAN,
            sampen_r_ms=_NAN,
            dfa_alpha1=_NAN,
            dfa_alpha2=_NAN,
            suppressed=quality.reasons,
            algorithm_version=_VERSION,
        )
    suppressed: list[str] = []
    sd1, sd2 = poincare_sd(rr)
    sd2_sd1 = sd2 / sd1 if sd1 > 0.0 else _NAN
    if sd1 <= 0.0:
        suppressed.append("sd2_sd1: SD1 is 0")

    r_ms = SAMPEN_R_SD * _sample_sd(rr)
    sampen = _NAN
    if rr.size < 10**SAMPEN_M:
        suppressed.append(f"sampen: fewer than {10**SAMPEN_M} beats")
    elif sampen_max_beats is not None and rr.size > sampen_max_beats:
        suppressed.append(
            f"sampen: more than {sampen_max_beats} beats; analyse long records in segments"
        )
    elif r_ms <= 0.0:
        suppressed.append("sampen: SD is 0 (constant series)")
    else:
        sampen = sample_entropy(rr, m=SAMPEN_M, r=r_ms)
        if math.isnan(sampen):
            suppressed.append("sampen: no template matches at m or m+1 (undefined)")

    ranges = {"dfa_alpha1": DFA_ALPHA1_SCALES, "dfa_alpha2": DFA_ALPHA2_SCALES}
    wanted: dict[str, tuple[int, ...]] = {}
    for name, scales in ranges.items():
        need = DFA_MIN_BOXES * scales[-1]
        if rr.size < need:
            suppressed.append(f"{name}: fewer than {need} beats")
        else:
            wanted[name] = scales
    alphas = dict.fromkeys(ranges, _NAN)
    if wanted:
        all_scales = tuple(sorted({n for scales in wanted.values() for n in scales}))
        fluct_sq = dict(zip(all_scales, _dfa_fluctuations_sq(rr, all_scales), strict=True))
        for name, scales in wanted.items():
            alphas[name] = _dfa_slope(scales, np.array([fluct_sq[n] for n in scales]))
            if math.isnan(alphas[name]):
                suppressed.append(f"{name}: zero fluctuation (constant or linear series)")

    return HrvNonlinear(
        n_beats=int(rr.size),
        sd1_ms=sd1,
        sd2_ms=sd2,
        sd2_sd1=sd2_sd1,
        sampen=sampen,
        sampen_r_ms=r_ms,
        dfa_alpha1=alphas["dfa_alpha1"],
        dfa_alpha2=alphas["dfa_alpha2"],
        suppressed=tuple(suppressed),
        algorithm_version=_VERSION,
    )


def _sample_sd(x: NDArray[np.float64]) -> float:
    centred = x - x.mean()
    return math.sqrt(float(np.dot(centred, centred)) / (x.size - 1))


def poincare_sd(rr_ms: NDArray[np.float64]) -> tuple[float, float]:
    """Poincaré (SD1, SD2) in ms of a validated series with at least 3 intervals.

    Parameters
    ----------
    rr_ms : NDArray[np.float64]
        NN intervals (ms).

    Returns
    -------
    tuple[float, float]
        Sample standard deviations (ddof 1) of ``(RR_n - RR_n+1) / sqrt 2`` and
        ``(RR_n + RR_n+1) / sqrt 2``.
    """
    minus = (rr_ms[:-1] - rr_ms[1:]) * (1.0 / math.sqrt(2.0))
    plus = (rr_ms[:-1] + rr_ms[1:]) * (1.0 / math.sqrt(2.0))
    return _sample_sd(minus), _sample_sd(plus)


def sample_entropy(x: NDArray[np.float64], *, m: int = SAMPEN_M, r: float) -> float:
    """Sample entropy of a series with O(N) memory (Richman & Moorman 2000).

    Parameters
    ----------
    x : NDArray[np.float64]
        The series (finite), more than m + 1 values.
    m : int
        Template length (>= 1).
    r : float
        Tolerance (> 0, same unit as x); a match is a Chebyshev distance <= r.

    Returns
    -------
    float
        ``-ln(A / B)``, with B (A) the number of template pairs of length m (m+1) within r
        among the first N-m start points, self-matches excluded; NaN when A or B is 0.

    Raises
    ------
    InvalidInputError
        m < 1, r <= 0 or r not finite, or too few values.
    """
    if m < 1:
        raise InvalidInputError(f"m must be >= 1, got {m}")
    if not (math.isfinite(r) and r > 0.0):
        raise InvalidInputError(f"r must be finite and > 0, got {r}")
    n_templates = x.size - m
    if n_templates < 2:
        raise InvalidInputError(f"sample entropy needs more than {m + 1} values")
    order = np.argsort(x[:n_templates], kind="stable")
    columns = [x[d : d + n_templates][order] for d in range(m + 1)]
    first = columns[0]
    # Largest offset k (in sorted order) with first[i + k] - first[i] <= r for some i.
    reach = np.searchsorted(first, first + r, side="right") - np.arange(n_templates) - 1
    max_offset = int(reach.max())
    if max_offset < 1:
        return _NAN
    pad = np.full(max_offset, np.inf)
    padded = [np.concatenate((col, pad)) for col in columns]
    count_m = 0
    count_m1 = 0
    for k0 in range(1, max_offset + 1, _SWEEP_BLOCK):
        k1 = min(k0 + _SWEEP_BLOCK, max_offset + 1)
        width = k1 - k0
        views = [
            np.lib.stride_tricks.as_strided(
                col[k0:],
                shape=(n_templates, width),
                strides=(col.strides[0], col.strides[0]),
                writeable=False,
            )
            for col in padded
        ]
        ok = views[0] - first[:, None] <= r
        for d in range(1, m):
            ok &= np.abs(views[d] - columns[d][:, None]) <= r
        count_m += int(np.count_nonzero(ok))
        ok &= np.abs(views[m] - columns[m][:, None]) <= r
        count_m1 += int(np.count_nonzero(ok))
    if count_m == 0 or count_m1 == 0:
        return _NAN
    return -math.log(count_m1 / count_m)


def dfa_alpha(rr_ms: NDArray[np.float64], scales: tuple[int, ...]) -> float:
    """DFA scaling exponent over the given box sizes (Peng et al. 1995), O(N) memory.

    Parameters
    ----------
    rr_ms : NDArray[np.float64]
        NN intervals (ms); every box size must fit at least once.
    scales : tuple of int
        At least two distinct box sizes (beats), each >= 3.

    Returns
    -------
    float
        Slope of ``log F(n)`` on ``log n`` (least squares, every scale weighted equally);
        NaN when some F(n) is 0.

    Raises
    ------
    InvalidInputError
        Fewer than two scales, a scale < 3, or a scale longer than the series.
    """
    if len(set(scales)) < 2:
        raise InvalidInputError("DFA needs at least two distinct box sizes")
    if min(scales) < 3 or max(scales) > rr_ms.size:
        raise InvalidInputError(f"DFA box sizes must be in [3, {rr_ms.size}]")
    return _dfa_slope(scales, _dfa_fluctuations_sq(rr_ms, scales))


def _dfa_slope(scales: tuple[int, ...], fluct_sq: NDArray[np.float64]) -> float:
    """Least-squares slope of log F on log n; NaN when some F(n) is 0."""
    if not np.all(fluct_sq > 0.0):
        return _NAN
    log_n = np.log(np.asarray(scales, dtype=np.float64))
    log_f = 0.5 * np.log(fluct_sq)
    log_n -= log_n.mean()
    return float(np.dot(log_n, log_f - log_f.mean()) / np.dot(log_n, log_n))


def _dfa_fluctuations_sq(
    rr_ms: NDArray[np.float64], scales: tuple[int, ...]
) -> NDArray[np.float64]:
    """F(n)^2 for every box size, scales grouped so each group stays within the block budget."""
    profile = np.cumsum(rr_ms - rr_ms.mean())
    fluct_sq = np.empty(len(scales))
    done = 0
    while done < len(scales):
        group = [scales[done]]
        size = (profile.size // scales[done]) * scales[done]
        while done + len(group) < len(scales):
            nxt = scales[done + len(group)]
            extra = (profile.size // nxt) * nxt
            if size + extra > _DFA_BLOCK_ELEMENTS:
                break
            group.append(nxt)
            size += extra
        fluct_sq[done : done + len(group)] = _dfa_fluctuation_sq(profile, group)
        done += len(group)
    return fluct_sq


def _dfa_fluctuation_sq(profile: NDArray[np.float64], scales: list[int]) -> NDArray[np.float64]:
    """F(n)^2 for each scale: mean squared residual of a per-box linear fit."""
    box_size = np.asarray(scales, dtype=np.intp)
    n_boxes = profile.size // box_size
    values = np.concatenate([profile[: k * n] for n, k in zip(scales, n_boxes, strict=True)])
    sizes = np.repeat(box_size, n_boxes)
    starts = np.zeros(sizes.size, dtype=np.intp)
    np.cumsum(sizes[:-1], out=starts[1:])
    sizes_f = sizes.astype(np.float64)
    means = np.add.reduceat(values, starts) / sizes_f
    centred = values - np.repeat(means, sizes)
    # Position inside the box, centred: j - (n - 1) / 2.
    offset = np.arange(values.size, dtype=np.float64) - np.repeat(
        starts + (sizes_f - 1.0) / 2.0, sizes
    )
    ss_y = np.add.reduceat(centred * centred, starts)
    s_xy = np.add.reduceat(offset * centred, starts)
    s_xx = sizes_f * (sizes_f * sizes_f - 1.0) / 12.0
    residual = np.maximum(ss_y - s_xy * s_xy / s_xx, 0.0)
    group_starts = np.zeros(len(scales), dtype=np.intp)
    np.cumsum(n_boxes[:-1], out=group_starts[1:])
    out: NDArray[np.float64] = np.add.reduceat(residual, group_starts) / (n_boxes * box_size)
    return out
