"""EDA quality flags: contact loss, out-of-range, flat line, clipping and sudden jumps.

Rules follow Kleckner et al. (2018): conductance outside 0.05-60 µS is invalid, a change
faster than 10 µS/s is invalid, and data within 5 s of invalid data is "transitional" and
also dropped. Flat-line and clipping rules are added for consumer GSR modules (a stuck ADC
repeats one value; a saturated one sits at its rail). Every sample gets a bit mask of
reasons, and contiguous invalid samples are reported as segments with their reasons.

Pure NumPy: no I/O, no state. It flags; it never edits, fills or drops samples (callers
decide, e.g. ``eda_summary`` bridges flagged samples and leaves them out of its metrics).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.eda_clean import checked_eda
from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

_COMPONENT: Final = "eda_quality"


class EdaFlag(enum.IntFlag):
    """Per-sample reasons (bits of ``EdaQuality.flags``)."""

    CONTACT_LOSS = 1  # 0 <= SC < min_us: open circuit, electrode off the skin
    OUT_OF_RANGE = 2  # SC < 0 (impossible) or SC > max_us
    FLAT_LINE = 4  # no change for >= flat_min_s: stuck sensor or ADC
    CLIPPING = 8  # pinned at the ADC rail (record extreme or range_max_us) for >= clip_min_s
    JUMP = 16  # change faster than max_slope_us_per_s
    TRANSITION = 32  # within margin_s of any of the above


#: Reason names, in bit order, as they appear in segments and summaries.
FLAG_NAMES: Final[dict[EdaFlag, str]] = {
    EdaFlag.CONTACT_LOSS: "contact_loss",
    EdaFlag.OUT_OF_RANGE: "out_of_range",
    EdaFlag.FLAT_LINE: "flat_line",
    EdaFlag.CLIPPING: "clipping",
    EdaFlag.JUMP: "jump",
    EdaFlag.TRANSITION: "transition",
}


@dataclass(frozen=True, slots=True)
class EdaQualitySegment:
    """One run of invalid samples: ``[start_index, stop_index)`` and why."""

    start_index: int
    stop_index: int
    start_s: float
    stop_s: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EdaQuality:
    """Quality of an EDA record.

    Attributes
    ----------
    valid : NDArray[np.bool_]
        Per sample: True when no flag is set.
    flags : NDArray[np.uint8]
        Per sample: OR of ``EdaFlag`` bits (0 = valid).
    segments : tuple[EdaQualitySegment, ...]
        Contiguous invalid runs, in time order, each with its reason names.
    valid_fraction : float
        Fraction of valid samples, 0..1.
    reasons : tuple[str, ...]
        Every reason name present anywhere in the record (empty when all valid).
    algorithm_version : str
        Version tag of this algorithm.
    """

    valid: NDArray[np.bool_]
    flags: NDArray[np.uint8]
    segments: tuple[EdaQualitySegment, ...]
    valid_fraction: float
    reasons: tuple[str, ...]
    algorithm_version: str


def eda_quality(
    eda_us: ArrayLike,
    fs_hz: float,
    *,
    min_us: float = 0.05,
    max_us: float = 60.0,
    max_slope_us_per_s: float = 10.0,
    jump_lag_s: float = 0.25,
    flat_min_s: float = 10.0,
    flat_tol_us: float = 0.0,
    clip_min_s: float = 1.0,
    range_max_us: float | None = None,
    margin_s: float = 5.0,
) -> EdaQuality:
    """Flag contact loss, out-of-range values, flat lines, clipping and jumps per sample.

    Parameters
    ----------
    eda_us : array_like of float, shape (n,)
        Raw skin conductance (µS), n >= 2, finite (NaN/inf raise ``InvalidInputError``:
        gaps must be marked by the caller, not encoded as NaN).
    fs_hz : float
        Sampling rate (Hz), 1 to 10000.
    min_us : float, default 0.05
        Below this (and >= 0) the electrode has lost contact (Kleckner et al. 2018).
    max_us : float, default 60.0
        Above this the value is out of range (Kleckner et al. 2018). Negative values are
        always out of range.
    max_slope_us_per_s : float, default 10.0
        A change faster than this over ``jump_lag_s`` is a jump (Kleckner et al. 2018).
    jump_lag_s : float, default 0.25
        Lag (s) over which the slope is measured (>= 1 sample), so that white noise at
        1 kHz does not look like a jump.
    flat_min_s : float, default 10.0
        A run of at least this many seconds with sample-to-sample change <= ``flat_tol_us``
        is a flat line. Real skin conductance drifts; 10 s of an identical value is a stuck
        sensor even with a 12-bit ADC at rest.
    flat_tol_us : float, default 0.0
        Largest sample-to-sample change still counted as "no change".
    clip_min_s : float, default 1.0
        Runs of at least this long at exactly the record's maximum or minimum value (or at or
        above ``range_max_us``) are clipping.
    range_max_us : float or None
        The device's full-scale reading, if known (device profile).
    margin_s : float, default 5.0
        Samples within this many seconds of a flagged sample are flagged ``transition``
        (Kleckner et al. 2018: 5 s).

    Returns
    -------
    EdaQuality

    References
    ----------
    Kleckner I.R. et al. (2018) Simple, transparent, and flexible automated quality assessment
    procedures for ambulatory electrodermal activity data. IEEE Trans Biomed Eng
    65(7):1460-1467.
    """
    x = checked_eda(eda_us, fs_hz)
    for name, value in (
        ("min_us", min_us),
        ("max_us", max_us),
        ("max_slope_us_per_s", max_slope_us_per_s),
        ("jump_lag_s", jump_lag_s),
        ("flat_min_s", flat_min_s),
        ("clip_min_s", clip_min_s),
    ):
        if not (np.isfinite(value) and value > 0.0):
            raise InvalidInputError(f"{name} must be finite and > 0, got {value!r}")
    if not (np.isfinite(flat_tol_us) and flat_tol_us >= 0.0):
        raise InvalidInputError(f"flat_tol_us must be finite and >= 0, got {flat_tol_us!r}")
    if not (np.isfinite(margin_s) and margin_s >= 0.0):
        raise InvalidInputError(f"margin_s must be finite and >= 0, got {margin_s!r}")
    if min_us >= max_us:
        raise InvalidInputError(f"min_us ({min_us}) must be < max_us ({max_us})")

    n = x.size
    flags = np.zeros(n, dtype=np.uint8)
    flags[(x >= 0.0) & (x < min_us)] |= np.uint8(EdaFlag.CONTACT_LOSS)
    flags[(x < 0.0) | (x > max_us)] |= np.uint8(EdaFlag.OUT_OF_RANGE)

    # Flat line: runs of unchanged samples (a run of k equal steps covers k + 1 samples).
    flat_steps = np.abs(np.diff(x)) <= flat_tol_us
    min_flat_steps = max(1, round(flat_min_s * fs_hz) - 1)
    for start, stop in zip(*_runs(flat_steps), strict=True):
        if stop - start >= min_flat_steps:
            flags[start : stop + 1] |= np.uint8(EdaFlag.FLAT_LINE)

    # Clipping: pinned at the record's extreme value (or the device's full scale).
    min_clip = max(2, round(clip_min_s * fs_hz))
    pinned = (x == x.max()) | (x == x.min())
    if range_max_us is not None:
        pinned |= x >= range_max_us
    for start, stop in zip(*_runs(pinned), strict=True):
        if stop - start >= min_clip:
            flags[start:stop] |= np.uint8(EdaFlag.CLIPPING)

    # Jumps: |x[k] - x[k - lag]| faster than the slope limit; flags the whole lag span.
    lag = max(1, round(jump_lag_s * fs_hz))
    if n > lag:
        limit = max_slope_us_per_s * lag / fs_hz
        jump_end = np.flatnonzero(np.abs(x[lag:] - x[:-lag]) > limit) + lag
        if jump_end.size:
            flags[_span_mask(jump_end - lag, jump_end + 1, n)] |= np.uint8(EdaFlag.JUMP)

    invalid = flags != 0
    margin = round(margin_s * fs_hz)
    if margin > 0 and invalid.any():
        starts, stops = _runs(invalid)
        near = _span_mask(starts - margin, stops + margin, n) & ~invalid
        flags[near] |= np.uint8(EdaFlag.TRANSITION)
        invalid = flags != 0

    segments = []
    for start, stop in zip(*_runs(invalid), strict=True):
        present = np.bitwise_or.reduce(flags[start:stop])
        segments.append(
            EdaQualitySegment(
                start_index=int(start),
                stop_index=int(stop),
                start_s=float(start / fs_hz),
                stop_s=float(stop / fs_hz),
                reasons=_names(int(present)),
            )
        )
    all_bits = int(np.bitwise_or.reduce(flags)) if n else 0
    return EdaQuality(
        valid=~invalid,
        flags=flags,
        segments=tuple(segments),
        valid_fraction=float(1.0 - invalid.mean()),
        reasons=_names(all_bits),
        algorithm_version=algorithm_version(_COMPONENT),
    )


def _names(bits: int) -> tuple[str, ...]:
    return tuple(name for flag, name in FLAG_NAMES.items() if bits & flag)


def _runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Starts and (exclusive) stops of the True runs of ``mask``."""
    edges = np.diff(mask.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _span_mask(starts: NDArray[np.intp], stops: NDArray[np.intp], n: int) -> NDArray[np.bool_]:
    """Union of ``[start, stop)`` spans (clipped to 0..n) as a boolean mask, in O(n + spans)."""
    count = np.zeros(n + 1, dtype=np.int64)
    np.add.at(count, np.clip(starts, 0, n), 1)
    np.add.at(count, np.clip(stops, 0, n), -1)
    return np.cumsum(count[:n]) > 0
