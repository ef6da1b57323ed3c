"""Respiration rate estimated from respiratory sinus arrhythmia in an RR series.

Breathing modulates the heart rate (RSA), so the dominant peak of the heart-period spectrum in a
respiratory band is the breathing frequency. This module finds that peak (Welch spectrum of the
4 Hz tachogram) and reports it in breaths per minute, or NaN with a reason when no single peak
dominates. It estimates; it does not measure respiration, and it does no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.signal
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_quality import validate_rr_ms
from shuxin.signal.version import algorithm_version

__all__ = ["PACED_BAND_HZ", "REST_BAND_HZ", "RspRateFromRr", "rsp_rate_from_rr"]

#: Respiratory band at rest (Hz): 7.2–30 breaths/min. The lower edge stays above the Mayer-wave
#: band (about 0.08–0.12 Hz), whose peak would otherwise be taken for slow breathing.
REST_BAND_HZ: Final = (0.12, 0.5)
#: Respiratory band during slow paced breathing (Hz): 3–30 breaths/min. Below 0.1 Hz the RSA
#: peak can no longer be told apart from Mayer waves unless the subject is known to breathe slowly.
PACED_BAND_HZ: Final = (0.05, 0.5)
#: Spectral grid step (Hz), reached by zero-padding: 0.12 breaths/min.
FREQ_STEP_HZ: Final = 0.002
#: Width of the window around the peak whose power is compared with the band power (Hz).
PEAK_WINDOW_HZ: Final = 0.030

_VERSION = algorithm_version("rsp_rate")


@dataclass(frozen=True, slots=True)
class RspRateFromRr:
    """Respiration rate estimated from RSA.

    Attributes
    ----------
    resp_rate_bpm : float
        Breaths per minute (60 x ``peak_hz``); NaN when suppressed (see ``notes``).
    peak_hz : float
        Frequency (Hz) of the dominant peak in the band (reported even when suppressed).
    peak_fraction : float
        Power within +-0.015 Hz of the peak divided by the power in the band (0–1).
    band_hz : tuple[float, float]
        Band searched (Hz), after any clamping to half the mean heart rate.
    n_segments : int
        Number of Welch segments averaged.
    notes : tuple[str, ...]
        Why the rate is NaN, or caveats (band clamped, ...).
    algorithm_version : str
        Version tag of this algorithm.
    """

    resp_rate_bpm: float
    peak_hz: float
    peak_fraction: float
    band_hz: tuple[float, float]
    n_segments: int
    notes: tuple[str, ...]
    algorithm_version: str


def rsp_rate_from_rr(
    rr_ms: ArrayLike,
    *,
    band_hz: tuple[float, float] = REST_BAND_HZ,
    segment_s: float = 120.0,
    fs_hz: float = 4.0,
    min_peak_fraction: float = 0.3,
) -> RspRateFromRr:
    """Estimate the breathing rate (breaths/min) from the RSA peak of an RR series.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms), 1-D, finite, > 0, cleaned of artefacts. At least
        ``max(30 s, 2 / band_hz[0])`` long; 1–5 min is typical.
    band_hz : (float, float)
        Respiratory band (Hz). ``REST_BAND_HZ`` (0.12–0.5, the default) at rest;
        ``PACED_BAND_HZ`` (0.05–0.5) for slow paced breathing. The upper edge is clamped to
        0.45 x the mean heart rate (Hz), since faster breathing aliases in a beat-sampled series.
    segment_s : float
        Welch segment length (s), 16–300; 50 % overlap, Hann window, linear detrend per segment.
        Shorter series use one segment of their whole length. 120 s resolves a paced rate from
        the Mayer-wave peak at 0.1 Hz (64 s segments bias 5/min towards it by about 0.2/min).
    fs_hz : float
        Resampling rate of the tachogram (Hz), 2–10 (linear interpolation).
    min_peak_fraction : float
        Quality gate, 0–1: the rate is NaN when the peak window holds less than this fraction
        of the band power (no single dominant breathing rhythm).

    Returns
    -------
    RspRateFromRr

    Raises
    ------
    InvalidInputError
        Not 1-D, NaN/inf, non-positive intervals, or parameters out of range.
    InsufficientDataError
        Too short for two cycles of the lowest band frequency (or 30 s).

    Notes
    -----
    Valid only while RSA follows breathing one-to-one: at rest and during paced breathing in
    healthy subjects. Very shallow breathing, strong vagal withdrawal (exercise, high stress) and
    arrhythmia weaken or hide the peak; the quality gate then returns NaN.

    References
    ----------
    Schäfer A, Kratky KW (2008). Estimation of breathing rate from respiratory sinus arrhythmia:
    comparison of various methods. Ann Biomed Eng 36(3):476-485.
    """
    rr = validate_rr_ms(rr_ms)
    lo, hi = float(band_hz[0]), float(band_hz[1])
    if not (0.01 <= lo < hi <= 1.0):
        raise InvalidInputError(f"band_hz={band_hz!r} must satisfy 0.01 <= lo < hi <= 1")
    if not (math.isfinite(segment_s) and 16.0 <= segment_s <= 300.0):
        raise InvalidInputError(f"segment_s={segment_s!r} outside [16, 300]")
    if not (math.isfinite(fs_hz) and 2.0 <= fs_hz <= 10.0):
        raise InvalidInputError(f"fs_hz={fs_hz!r} outside [2, 10]")
    if not (0.0 <= min_peak_fraction <= 1.0):
        raise InvalidInputError(f"min_peak_fraction={min_peak_fraction!r} outside [0, 1]")
    duration_s = float(rr.sum()) / 1000.0 if rr.size else 0.0
    min_duration_s = max(30.0, 2.0 / lo)
    if rr.size < 4 or duration_s < min_duration_s:
        raise InsufficientDataError(
            f"respiration rate needs {min_duration_s:g} s of beats, got {duration_s:.1f} s"
        )

    notes: list[str] = []
    beat_rate_hz = 1000.0 / float(rr.mean())
    if hi > 0.45 * beat_rate_hz:
        hi = 0.45 * beat_rate_hz
        notes.append(f"band upper edge clamped to {hi:.3f} Hz (0.45 x mean heart rate)")
        if hi <= lo:
            raise InvalidInputError("heart rate too low to resolve the respiratory band")

    beat_t_s = np.cumsum(rr) / 1000.0
    grid = np.arange(beat_t_s[0], beat_t_s[-1], 1.0 / fs_hz)
    x = np.interp(grid, beat_t_s, rr)
    nperseg = min(round(segment_s * fs_hz), x.size)
    nfft = max(round(fs_hz / FREQ_STEP_HZ), nperseg)
    freq, psd = scipy.signal.welch(
        x,
        fs=fs_hz,
        window="hann",
        nperseg=nperseg,
        noverlap=nperseg // 2,
        nfft=nfft,
        detrend="linear",
        scaling="density",
    )
    n_segments = 1 + (x.size - nperseg) // (nperseg - nperseg // 2)
    return _peak(
        freq=np.asarray(freq),
        psd=np.asarray(psd),
        band=(lo, hi),
        min_peak_fraction=min_peak_fraction,
        n_segments=n_segments,
        notes=notes,
    )


def _peak(
    *,
    freq: NDArray[np.float64],
    psd: NDArray[np.float64],
    band: tuple[float, float],
    min_peak_fraction: float,
    n_segments: int,
    notes: list[str],
) -> RspRateFromRr:
    eps = 1e-9
    k_lo = int(np.searchsorted(freq, band[0] - eps))
    k_hi = int(np.searchsorted(freq, band[1] + eps, side="right"))
    seg = psd[k_lo:k_hi]
    df = float(freq[1] - freq[0])
    band_power = float(seg.sum()) * df
    interior = (seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:])
    candidates = np.flatnonzero(interior) + 1
    if band_power <= 0.0 or candidates.size == 0:
        notes.append("no spectral peak inside the respiratory band")
        return RspRateFromRr(
            resp_rate_bpm=math.nan,
            peak_hz=math.nan,
            peak_fraction=0.0,
            band_hz=band,
            n_segments=n_segments,
            notes=tuple(notes),
            algorithm_version=_VERSION,
        )
    k = int(candidates[np.argmax(seg[candidates])])
    half = round(PEAK_WINDOW_HZ / df / 2.0 - 0.5)
    fraction = float(seg[max(k - half, 0) : k + half + 1].sum()) * df / band_power
    peak_hz = float(freq[k_lo + k])
    rate = 60.0 * peak_hz
    if fraction < min_peak_fraction:
        notes.append(
            f"no dominant respiratory peak: {fraction:.2f} of band power in the peak window "
            f"(< {min_peak_fraction:.2f})"
        )
        rate = math.nan
    return RspRateFromRr(
        resp_rate_bpm=rate,
        peak_hz=peak_hz,
        peak_fraction=fraction,
        band_hz=band,
        n_segments=n_segments,
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )
