"""HeartMath-style heart-rhythm coherence ratio, on one 64 s window or every 5 s over a recording.

Implements the coherence ratio of McCraty et al. (2009), "The coherent heart", Integral Review
5(2):10-115: in the power spectrum of the last 64 s of the RR tachogram (resampled at 2 Hz),
find the highest peak in 0.04–0.26 Hz, integrate the power in a 0.030 Hz window centred on it
(peak power), and divide by the rest of the spectrum::

    coherence_ratio = peak_power / (total_power - peak_power)

Exact spectral conventions (HeartMath does not publish theirs) are in docs/signal/biofeedback.md.
Pure NumPy; no I/O, no clocks, no state: the live, per-beat version is
``shuxin.signal.hrv_stream`` and it calls the same core, so both give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_quality import validate_rr_ms
from shuxin.signal.version import algorithm_version

__all__ = [
    "COHERENCE_LEVEL_THRESHOLDS",
    "HrvCoherence",
    "HrvCoherenceSeries",
    "coherence_level",
    "coherence_update_due",
    "hrv_coherence",
    "hrv_coherence_series",
]

#: Coherence-ratio thresholds (low/medium, medium/high) used for the VR feed: a ratio of 1 puts
#: half of the spectral power in the 0.030 Hz peak window, a ratio of 3 puts three quarters
#: there. HeartMath's own thresholds are proprietary; these were checked on simulated rest
#: (12/min) and paced (6/min) breathing, see docs/signal/biofeedback.md.
COHERENCE_LEVEL_THRESHOLDS: Final = (1.0, 3.0)

WINDOW_S: Final = 64.0
RESAMPLE_HZ: Final = 2.0
STEP_S: Final = 5.0
PEAK_BAND_HZ: Final = (0.04, 0.26)
PEAK_WINDOW_HZ: Final = 0.030
TOTAL_BAND_HZ: Final = (0.0033, 0.4)
#: Spectral grid step (Hz): the 128-sample window is zero-padded to 2 Hz / 0.002 Hz = 1000
#: points, so the 0.030 Hz peak window is exactly 15 grid bins.
FREQ_STEP_HZ: Final = 0.002

_VERSION = algorithm_version("hrv_coherence")
_NOTE_FLAT = "no heart-rate variability in the window (total power is zero)"
_NOTE_NO_LOCAL_PEAK = "no local maximum in the peak band: its highest point (an edge) was used"


@dataclass(frozen=True, slots=True)
class HrvCoherence:
    """Coherence of the heart rhythm over one window.

    Attributes
    ----------
    coherence_ratio : float
        ``peak_power_ms2 / (total_power_ms2 - peak_power_ms2)``; NaN when not computable.
    peak_hz : float
        Frequency (Hz) of the highest spectral peak in the peak band.
    peak_power_ms2 : float
        Power (ms²) in the 0.030 Hz window centred on ``peak_hz``.
    total_power_ms2 : float
        Power (ms²) in the total band (0.0033–0.4 Hz by default).
    peak_fraction : float
        ``peak_power_ms2 / total_power_ms2`` (0–1) = ratio / (1 + ratio); a bounded view of the
        same quantity, NOT HeartMath's proprietary 0–16 coherence score.
    level : str
        "low", "medium" or "high" by ``COHERENCE_LEVEL_THRESHOLDS`` (or the thresholds given);
        "unknown" when the ratio is NaN.
    window_s : float
        Window length (s).
    t_end_s : float
        Time (s, from the start of the series given) of the last beat, i.e. the window's end.
    notes : tuple[str, ...]
        Why a value is NaN, or caveats.
    algorithm_version : str
        Version tag of this algorithm.
    """

    coherence_ratio: float
    peak_hz: float
    peak_power_ms2: float
    total_power_ms2: float
    peak_fraction: float
    level: str
    window_s: float
    t_end_s: float
    notes: tuple[str, ...]
    algorithm_version: str


@dataclass(frozen=True, slots=True)
class HrvCoherenceSeries:
    """Coherence every ``step_s`` over a recording (one row per update).

    Attributes
    ----------
    beat_index : NDArray[np.intp]
        Index of the beat (in the input) that ends each window.
    t_s : NDArray[np.float64]
        Time (s) of that beat from the start of the series.
    coherence_ratio, peak_hz, peak_power_ms2, total_power_ms2 : NDArray[np.float64]
        As in ``HrvCoherence``, per update.
    level : tuple[str, ...]
        Level per update.
    algorithm_version : str
        Version tag of this algorithm.
    """

    beat_index: NDArray[np.intp]
    t_s: NDArray[np.float64]
    coherence_ratio: NDArray[np.float64]
    peak_hz: NDArray[np.float64]
    peak_power_ms2: NDArray[np.float64]
    total_power_ms2: NDArray[np.float64]
    level: tuple[str, ...]
    algorithm_version: str


def hrv_coherence(
    rr_ms: ArrayLike,
    *,
    window_s: float = WINDOW_S,
    fs_hz: float = RESAMPLE_HZ,
    peak_band_hz: tuple[float, float] = PEAK_BAND_HZ,
    peak_window_hz: float = PEAK_WINDOW_HZ,
    total_band_hz: tuple[float, float] = TOTAL_BAND_HZ,
    thresholds: tuple[float, float] = COHERENCE_LEVEL_THRESHOLDS,
) -> HrvCoherence:
    """Coherence ratio over the last ``window_s`` seconds of an RR series.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms), 1-D, finite, > 0, in time order, already cleaned of artefacts.
        Only the last ``window_s`` seconds (plus the beat just before) are used.
    window_s : float
        Analysis window (s), 16–600; HeartMath uses 64.
    fs_hz : float
        Resampling rate of the tachogram (Hz), 1–10; HeartMath uses 2 (128 samples in 64 s).
    peak_band_hz : (float, float)
        Band searched for the coherence peak (Hz); McCraty et al. 2009: 0.04–0.26.
    peak_window_hz : float
        Width of the integration window centred on the peak (Hz); McCraty et al. 2009: 0.030.
    total_band_hz : (float, float)
        Band of the total power (Hz); default 0.0033–0.4 (the Task Force 1996 total band).
    thresholds : (float, float)
        Ratio thresholds low/medium and medium/high for ``level``.

    Returns
    -------
    HrvCoherence

    Raises
    ------
    InvalidInputError
        Not 1-D, NaN/inf, non-positive intervals, or parameters out of range.
    InsufficientDataError
        The series is shorter than ``window_s``.

    Notes
    -----
    The tachogram (RR value at each beat's time) is linearly interpolated at ``fs_hz`` on the
    grid ending at the last beat, the mean is removed, a periodic Hann window applied, and the
    one-sided periodogram (ms²/Hz) computed with zero-padding to a 0.002 Hz grid. Integrals are
    bin sums times the grid step.

    References
    ----------
    McCraty R, Atkinson M, Tomasino D, Bradley RT (2009). The coherent heart: heart-brain
    interactions, psychophysiological coherence, and the emergence of system-wide order.
    Integral Review 5(2):10-115.
    """
    rr = validate_rr_ms(rr_ms, min_beats=2)
    params = coherence_params(
        window_s=window_s,
        fs_hz=fs_hz,
        peak_band_hz=peak_band_hz,
        peak_window_hz=peak_window_hz,
        total_band_hz=total_band_hz,
        thresholds=thresholds,
    )
    beat_t_s = np.cumsum(rr) / 1000.0
    if beat_t_s[-1] < window_s:
        raise InsufficientDataError(
            f"coherence needs {window_s:g} s of beats, got {float(beat_t_s[-1]):.1f} s"
        )
    start = window_start(beat_t_s, float(beat_t_s[-1]), window_s, fs_hz)
    return coherence_from_beats(beat_t_s[start:], rr[start:], params)


def hrv_coherence_series(
    rr_ms: ArrayLike,
    *,
    step_s: float = STEP_S,
    window_s: float = WINDOW_S,
    fs_hz: float = RESAMPLE_HZ,
    peak_band_hz: tuple[float, float] = PEAK_BAND_HZ,
    peak_window_hz: float = PEAK_WINDOW_HZ,
    total_band_hz: tuple[float, float] = TOTAL_BAND_HZ,
    thresholds: tuple[float, float] = COHERENCE_LEVEL_THRESHOLDS,
) -> HrvCoherenceSeries:
    """Coherence ratio every ``step_s`` seconds over a recording (HeartMath: every 5 s).

    Updates happen at the first beat whose time (from the series start) reaches ``window_s``,
    then at the first beat at or after each further ``step_s`` (``window_s + k step_s``); each
    update is ``hrv_coherence`` of the series up to that beat. ``HrvStream`` uses the same rule.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms), cleaned, 1-D, finite, > 0.
    step_s : float
        Update period (s), 0.5–600.
    window_s, fs_hz, peak_band_hz, peak_window_hz, total_band_hz, thresholds
        As in ``hrv_coherence``.

    Returns
    -------
    HrvCoherenceSeries
        Empty arrays when the series is shorter than ``window_s``.

    Raises
    ------
    InvalidInputError
        Bad input or parameters.
    """
    rr = validate_rr_ms(rr_ms, min_beats=2)
    params = coherence_params(
        window_s=window_s,
        fs_hz=fs_hz,
        peak_band_hz=peak_band_hz,
        peak_window_hz=peak_window_hz,
        total_band_hz=total_band_hz,
        thresholds=thresholds,
    )
    if not (math.isfinite(step_s) and 0.5 <= step_s <= 600.0):
        raise InvalidInputError(f"step_s={step_s!r} outside [0.5, 600]")
    beat_t_s = np.cumsum(rr) / 1000.0
    rows: list[tuple[int, HrvCoherence]] = []
    next_due = window_s
    for i in range(rr.size):
        t_now = float(beat_t_s[i])
        due, next_due = coherence_update_due(t_now, next_due, step_s)
        if due:
            start = window_start(beat_t_s[: i + 1], t_now, window_s, fs_hz)
            rows.append(
                (i, coherence_from_beats(beat_t_s[start : i + 1], rr[start : i + 1], params))
            )
    return HrvCoherenceSeries(
        beat_index=np.asarray([i for i, _ in rows], dtype=np.intp),
        t_s=np.asarray([c.t_end_s for _, c in rows], dtype=np.float64),
        coherence_ratio=np.asarray([c.coherence_ratio for _, c in rows], dtype=np.float64),
        peak_hz=np.asarray([c.peak_hz for _, c in rows], dtype=np.float64),
        peak_power_ms2=np.asarray([c.peak_power_ms2 for _, c in rows], dtype=np.float64),
        total_power_ms2=np.asarray([c.total_power_ms2 for _, c in rows], dtype=np.float64),
        level=tuple(c.level for _, c in rows),
        algorithm_version=_VERSION,
    )


def coherence_level(
    ratio: float, thresholds: tuple[float, float] = COHERENCE_LEVEL_THRESHOLDS
) -> str:
    """Map a coherence ratio to "low" / "medium" / "high" ("unknown" for NaN)."""
    if math.isnan(ratio):
        return "unknown"
    if ratio < thresholds[0]:
        return "low"
    return "medium" if ratio < thresholds[1] else "high"


def coherence_update_due(t_now_s: float, next_due_s: float, step_s: float) -> tuple[bool, float]:
    """Shared update schedule: ``(update now?, next due time)`` for a beat at ``t_now_s``."""
    if t_now_s < next_due_s:
        return False, next_due_s
    while next_due_s <= t_now_s:
        next_due_s += step_s
    return True, next_due_s


@dataclass(frozen=True, slots=True)
class CoherenceParams:
    """Validated spectral parameters, with the precomputed window and bin masks."""

    window_s: float
    fs_hz: float
    n_samples: int
    n_fft: int
    df_hz: float
    grid_offset_s: NDArray[np.float64]
    taper: NDArray[np.float64]
    scale2: float
    freq_hz: NDArray[np.float64]
    peak_lo: int
    peak_hi: int
    total_lo: int
    total_hi: int
    half_width_bins: int
    thresholds: tuple[float, float]


def window_start(
    beat_t_s: NDArray[np.float64], t_end_s: float, window_s: float, fs_hz: float
) -> int:
    """Index of the first beat needed to interpolate the window ending at ``t_end_s``.

    That is the last beat at or before the first grid point (or 0), so the interpolation on the
    grid never depends on earlier beats.
    """
    n = round(window_s * fs_hz)
    first_grid = t_end_s - (n - 1) / fs_hz
    return max(int(np.searchsorted(beat_t_s, first_grid, side="right")) - 1, 0)


def coherence_from_beats(
    beat_t_s: NDArray[np.float64], rr_ms: NDArray[np.float64], params: CoherenceParams
) -> HrvCoherence:
    """Core: coherence of the window ending at ``beat_t_s[-1]`` (no validation)."""
    t_end = float(beat_t_s[-1])
    x = np.interp(t_end - params.grid_offset_s, beat_t_s, rr_ms)
    x -= x.mean()
    x *= params.taper
    spectrum = np.fft.rfft(x, params.n_fft)[: params.total_hi]
    psd = spectrum.real * spectrum.real
    psd += spectrum.imag * spectrum.imag
    psd *= params.scale2  # one-sided density (ms²/Hz); bin 0 is outside every band used
    df = params.df_hz
    total = float(psd[params.total_lo :].sum()) * df
    notes: list[str] = []
    band = psd[params.peak_lo : params.peak_hi]
    interior = (band[1:-1] >= band[:-2]) & (band[1:-1] > band[2:])
    candidates = np.flatnonzero(interior) + 1
    if candidates.size:
        k = int(candidates[np.argmax(band[candidates])]) + params.peak_lo
    else:
        k = int(np.argmax(band)) + params.peak_lo
        notes.append(_NOTE_NO_LOCAL_PEAK)
    h = params.half_width_bins
    peak = float(psd[max(k - h, 0) : k + h + 1].sum()) * df
    peak_hz = float(params.freq_hz[k])
    if not total > 0.0:
        notes.append(_NOTE_FLAT)
        return HrvCoherence(
            coherence_ratio=math.nan,
            peak_hz=math.nan,
            peak_power_ms2=0.0,
            total_power_ms2=0.0,
            peak_fraction=math.nan,
            level="unknown",
            window_s=params.window_s,
            t_end_s=t_end,
            notes=tuple(notes),
            algorithm_version=_VERSION,
        )
    rest = max(total - peak, 0.0)
    ratio = peak / rest if rest > 0.0 else math.inf
    return HrvCoherence(
        coherence_ratio=ratio,
        peak_hz=peak_hz,
        peak_power_ms2=peak,
        total_power_ms2=total,
        peak_fraction=peak / total,
        level=coherence_level(ratio, params.thresholds),
        window_s=params.window_s,
        t_end_s=t_end,
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )


def coherence_params(
    *,
    window_s: float = WINDOW_S,
    fs_hz: float = RESAMPLE_HZ,
    peak_band_hz: tuple[float, float] = PEAK_BAND_HZ,
    peak_window_hz: float = PEAK_WINDOW_HZ,
    total_band_hz: tuple[float, float] = TOTAL_BAND_HZ,
    thresholds: tuple[float, float] = COHERENCE_LEVEL_THRESHOLDS,
) -> CoherenceParams:
    """Validate the spectral parameters once (shared with ``hrv_stream``)."""
    if not (math.isfinite(window_s) and 16.0 <= window_s <= 600.0):
        raise InvalidInputError(f"window_s={window_s!r} outside [16, 600]")
    if not (math.isfinite(fs_hz) and 1.0 <= fs_hz <= 10.0):
        raise InvalidInputError(f"fs_hz={fs_hz!r} outside [1, 10]")
    nyquist = fs_hz / 2.0
    for name, (lo, hi) in (("peak_band_hz", peak_band_hz), ("total_band_hz", total_band_hz)):
        if not (0.0 < lo < hi < nyquist):
            raise InvalidInputError(f"{name}={(lo, hi)!r} must satisfy 0 < lo < hi < fs_hz / 2")
    if not (0.0 < peak_window_hz < 0.5):
        raise InvalidInputError(f"peak_window_hz={peak_window_hz!r} outside (0, 0.5)")
    half = peak_window_hz / 2.0
    if not (
        total_band_hz[0] <= peak_band_hz[0] - half and peak_band_hz[1] + half <= total_band_hz[1]
    ):
        raise InvalidInputError(
            "the peak band widened by half the peak window must lie in total_band_hz"
        )
    if not (0.0 <= thresholds[0] <= thresholds[1]):
        raise InvalidInputError(f"thresholds={thresholds!r} must be 0 <= low/medium <= medium/high")
    return _params(
        window_s=float(window_s),
        fs_hz=float(fs_hz),
        peak_band_hz=(float(peak_band_hz[0]), float(peak_band_hz[1])),
        peak_window_hz=float(peak_window_hz),
        total_band_hz=(float(total_band_hz[0]), float(total_band_hz[1])),
        thresholds=(float(thresholds[0]), float(thresholds[1])),
    )


@lru_cache(maxsize=32)
def _params(
    *,
    window_s: float,
    fs_hz: float,
    peak_band_hz: tuple[float, float],
    peak_window_hz: float,
    total_band_hz: tuple[float, float],
    thresholds: tuple[float, float],
) -> CoherenceParams:
    n = round(window_s * fs_hz)
    n_fft = max(round(fs_hz / FREQ_STEP_HZ), n)
    df = fs_hz / n_fft
    k = np.arange(n)
    taper = 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)  # periodic Hann
    freq = np.arange(n_fft // 2 + 1, dtype=np.float64) * df
    eps = 1e-9
    offsets = (n - 1 - k) / fs_hz  # grid = t_end - offsets, ending at the last beat
    offsets.setflags(write=False)
    taper.setflags(write=False)
    freq.setflags(write=False)
    return CoherenceParams(
        window_s=window_s,
        fs_hz=fs_hz,
        n_samples=n,
        n_fft=n_fft,
        df_hz=df,
        grid_offset_s=offsets,
        taper=taper,
        scale2=2.0 / (fs_hz * float(np.sum(taper * taper))),
        freq_hz=freq,
        peak_lo=int(np.searchsorted(freq, peak_band_hz[0] - eps)),
        peak_hi=int(np.searchsorted(freq, peak_band_hz[1] + eps, side="right")),
        total_lo=int(np.searchsorted(freq, total_band_hz[0] - eps)),
        total_hi=int(np.searchsorted(freq, total_band_hz[1] + eps, side="right")),
        half_width_bins=round(peak_window_hz / df / 2.0 - 0.5),
        thresholds=thresholds,
    )
