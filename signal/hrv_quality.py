"""Input checks and quality gates shared by the HRV modules (``hrv_time``, ``hrv_frequency``,
``hrv_nonlinear``, ``hrv_stress``, ``hrv_summary``, ``hrv_long``).

It validates an RR series (finite, positive, one-dimensional) and decides which metrics a
recording may report:

* HF power needs at least 60 s of data, LF power at least 120 s, and VLF power more than 300 s
  (Task Force 1996: VLF from recordings of 5 min or less "is a dubious measure and should be
  avoided"). A band that fails its gate is reported as NaN with a reason.
* When more than ``max_corrected_pct`` percent of the beats were corrected by artefact
  correction (default 5 %), every metric is suppressed: the series is mostly interpolation.

Pure functions on arrays; it does no I/O, computes no HRV metric itself and never modifies
the series it checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.version import algorithm_version

__all__ = [
    "DEFAULT_MAX_CORRECTED_PCT",
    "HF_MIN_DURATION_S",
    "LF_MIN_DURATION_S",
    "VLF_MIN_DURATION_S",
    "HrvQuality",
    "hrv_quality",
    "validate_rr_ms",
]

#: Minimum duration (s) for HF power (0.15–0.40 Hz): 60 s holds at least 9 cycles at 0.15 Hz.
HF_MIN_DURATION_S: Final = 60.0
#: Minimum duration (s) for LF power (0.04–0.15 Hz): 120 s holds about 5 cycles at 0.04 Hz.
LF_MIN_DURATION_S: Final = 120.0
#: VLF power (0.0033–0.04 Hz) needs strictly MORE than this duration (s); never from <= 5 min.
VLF_MIN_DURATION_S: Final = 300.0
#: Default ceiling (%) of corrected beats above which every metric is suppressed.
DEFAULT_MAX_CORRECTED_PCT: Final = 5.0

_VERSION: Final = algorithm_version("hrv_quality")


@dataclass(frozen=True, slots=True)
class HrvQuality:
    """What a recording may report.

    Attributes
    ----------
    n_beats : int
        Number of RR intervals.
    duration_s : float
        Sum of the RR intervals (s).
    corrected_pct : float
        Percentage of beats corrected upstream (NaN when unknown, e.g. not cleaned).
    max_corrected_pct : float
        Ceiling used for ``corrected_pct``.
    usable : bool
        False when ``corrected_pct`` exceeds the ceiling: every metric is suppressed.
    hf_ok, lf_ok, vlf_ok : bool
        Whether the duration allows HF, LF and VLF power (and ``usable`` is True).
    reasons : tuple[str, ...]
        One sentence per failed gate.
    algorithm_version : str
        Version tag of these gates.
    """

    n_beats: int
    duration_s: float
    corrected_pct: float
    max_corrected_pct: float
    usable: bool
    hf_ok: bool
    lf_ok: bool
    vlf_ok: bool
    reasons: tuple[str, ...]
    algorithm_version: str


def validate_rr_ms(rr_ms: ArrayLike, *, min_beats: int = 1) -> NDArray[np.float64]:
    """Check an RR series and return it as a contiguous float64 vector.

    Parameters
    ----------
    rr_ms : array_like
        RR (NN) intervals in milliseconds, one-dimensional.
    min_beats : int
        Minimum number of intervals the caller needs.

    Returns
    -------
    NDArray[np.float64]
        The same values (a copy only when a conversion was needed).

    Raises
    ------
    InvalidInputError
        Not one-dimensional, not numeric, NaN/inf, or any interval <= 0.
    InsufficientDataError
        Fewer than ``min_beats`` intervals.
    """
    try:
        rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"rr_ms is not a numeric array: {exc}") from exc
    if rr.ndim != 1:
        raise InvalidInputError(f"rr_ms must be one-dimensional, got shape {rr.shape}")
    if rr.size and not np.isfinite(rr).all():
        raise InvalidInputError("rr_ms contains NaN or infinite values")
    if rr.size and rr.min() <= 0.0:
        raise InvalidInputError("rr_ms contains zero or negative intervals")
    if rr.size < min_beats:
        raise InsufficientDataError(f"need at least {min_beats} RR intervals, got {rr.size}")
    return rr


def hrv_quality(
    rr_ms: ArrayLike,
    *,
    corrected_pct: float = 0.0,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
) -> HrvQuality:
    """Decide which HRV metrics a recording may report.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms), finite and positive.
    corrected_pct : float
        Percentage (0–100) of beats that artefact correction changed; NaN when the series
        was not cleaned (the corrected-beat gate is then not applied).
    max_corrected_pct : float
        Ceiling (0–100) for ``corrected_pct``; above it every metric is suppressed.

    Returns
    -------
    HrvQuality
        Gates and reasons.

    Raises
    ------
    InvalidInputError
        Invalid series or a percentage outside 0–100.

    References
    ----------
    Task Force of the ESC and NASPE (1996). Heart rate variability: standards of measurement,
    physiological interpretation and clinical use. Circulation 93(5):1043-1065.
    """
    rr = validate_rr_ms(rr_ms)
    if not 0.0 <= max_corrected_pct <= 100.0:
        raise InvalidInputError(f"max_corrected_pct={max_corrected_pct!r} outside [0, 100]")
    if not (math.isnan(corrected_pct) or 0.0 <= corrected_pct <= 100.0):
        raise InvalidInputError(f"corrected_pct={corrected_pct!r} outside [0, 100]")
    duration_s = float(rr.sum()) / 1000.0
    reasons: list[str] = []
    usable = math.isnan(corrected_pct) or corrected_pct <= max_corrected_pct
    if not usable:
        reasons.append(
            f"all metrics suppressed: {corrected_pct:.1f} % of beats corrected "
            f"(limit {max_corrected_pct:g} %)"
        )
    hf_ok = usable and duration_s >= HF_MIN_DURATION_S
    lf_ok = usable and duration_s >= LF_MIN_DURATION_S
    vlf_ok = usable and duration_s > VLF_MIN_DURATION_S
    if usable:
        if not hf_ok:
            reasons.append(f"hf: duration {duration_s:.0f} s < {HF_MIN_DURATION_S:g} s")
        if not lf_ok:
            reasons.append(f"lf: duration {duration_s:.0f} s < {LF_MIN_DURATION_S:g} s")
        if not vlf_ok:
            reasons.append(
                f"vlf: duration {duration_s:.0f} s <= {VLF_MIN_DURATION_S:g} s "
                "(never from 5 min or less)"
            )
    return HrvQuality(
        n_beats=int(rr.size),
        duration_s=duration_s,
        corrected_pct=float(corrected_pct),
        max_corrected_pct=float(max_corrected_pct),
        usable=usable,
        hf_ok=hf_ok,
        lf_ok=lf_ok,
        vlf_ok=vlf_ok,
        reasons=tuple(reasons),
        algorithm_version=_VERSION,
    )
