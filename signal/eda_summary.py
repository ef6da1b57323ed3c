"""EDA summary of one record: SCL mean and slope, SCR count and rate, SCR amplitude, quality.

This is what ``shuxin analyze --eda`` and the gateway call. The pipeline:

1. ``eda_quality`` flags contact loss, out-of-range, flat line, clipping and jumps (with
   Kleckner et al.'s 5 s transition margin);
2. flagged samples are bridged by straight lines between valid neighbours (so the filter
   does not smear an artefact into good data) and left out of every metric;
3. ``eda_clean`` (zero-phase 1 Hz Butterworth), ``eda_peaks`` (trough-to-peak SCRs, 0.01 µS
   floor) and ``eda_phasic`` (``interpolation`` tonic between SCR-free samples);
4. metrics over valid samples only: SCL mean, SCL slope (least squares, µS/min), SCRs whose
   onset-to-peak span is fully valid, rate per valid minute (NS-SCR frequency when there are
   no stimuli), mean amplitude, rise and half-recovery times.

Pure NumPy/SciPy, no I/O. It never returns a number it cannot stand behind: when too little
valid data is left, the metrics are NaN (count None) and ``notes`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.eda_clean import DEFAULT_CUTOFF_HZ, DEFAULT_ORDER, checked_eda, eda_clean
from shuxin.signal.eda_peaks import DEFAULT_AMPLITUDE_MIN_US, EdaPeaks, eda_peaks
from shuxin.signal.eda_phasic import EdaPhasic, eda_phasic
from shuxin.signal.eda_quality import EdaQualitySegment, eda_quality
from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.version import algorithm_version

_COMPONENT: Final = "eda_summary"
#: Records shorter than this (s) are refused.
DEFAULT_MIN_DURATION_S: Final = 10.0
#: Metrics need at least this much valid data (s).
DEFAULT_MIN_VALID_S: Final = 10.0
#: SCR rates from less valid data than this (s) get a precision note.
_RATE_NOTE_BELOW_S: Final = 60.0
#: Gaussian noise: 1.4826 x median absolute deviation estimates the standard deviation.
_MAD_TO_SD: Final = 1.4826
#: Samples used (evenly spaced) for the noise estimate.
_NOISE_SAMPLES: Final = 20_000
#: An SCR floor below this many noise SDs of the cleaned signal lets noise through.
_FLOOR_NOISE_RATIO: Final = 4.0


@dataclass(frozen=True, slots=True)
class EdaSummary:
    """Summary of one EDA record (field names carry their units).

    Attributes
    ----------
    n_samples, fs_hz, duration_s :
        Input size, rate (Hz) and length (s).
    valid_fraction, valid_duration_s :
        Share and length (s) of samples without a quality flag.
    scl_mean_us : float
        Mean tonic level over valid samples (µS).
    scl_slope_us_per_min : float
        Least-squares slope of the tonic level over valid samples (µS/min).
    scr_count : int or None
        SCRs whose onset-to-peak span is fully valid (None when suppressed).
    scr_per_min : float
        ``scr_count`` per valid minute.
    scr_amp_mean_us, scr_rise_time_mean_s, scr_half_recovery_mean_s : float
        Means over those SCRs (half recovery over the SCRs where it was reached); NaN when
        there is no SCR.
    noise_us : float
        Estimated noise SD left in the cleaned signal (µS).
    amplitude_min_us : float
        SCR amplitude floor used (µS).
    quality_flags : tuple[str, ...]
        Every quality reason present (e.g. ``("contact_loss", "transition")``).
    quality_segments : tuple[EdaQualitySegment, ...]
        The invalid runs with their reasons.
    peaks : EdaPeaks or None
        The SCRs counted (None when suppressed).
    phasic : EdaPhasic or None
        Tonic/phasic split of the bridged, cleaned signal (None when suppressed).
    notes : tuple[str, ...]
        What was suppressed or is uncertain, and why.
    algorithm_version : str
        Version tag.
    """

    n_samples: int
    fs_hz: float
    duration_s: float
    valid_fraction: float
    valid_duration_s: float
    scl_mean_us: float
    scl_slope_us_per_min: float
    scr_count: int | None
    scr_per_min: float
    scr_amp_mean_us: float
    scr_rise_time_mean_s: float
    scr_half_recovery_mean_s: float
    noise_us: float
    amplitude_min_us: float
    quality_flags: tuple[str, ...]
    quality_segments: tuple[EdaQualitySegment, ...]
    peaks: EdaPeaks | None
    phasic: EdaPhasic | None
    notes: tuple[str, ...]
    algorithm_version: str


def eda_summary(
    eda_us: ArrayLike,
    fs_hz: float,
    *,
    amplitude_min_us: float = DEFAULT_AMPLITUDE_MIN_US,
    cutoff_hz: float = DEFAULT_CUTOFF_HZ,
    order: int = DEFAULT_ORDER,
    range_max_us: float | None = None,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    min_valid_s: float = DEFAULT_MIN_VALID_S,
) -> EdaSummary:
    """Summarise a skin conductance record (SCL, SCRs, quality).

    Parameters
    ----------
    eda_us : array_like of float, shape (n,)
        Raw skin conductance (µS). NaN/inf raise ``InvalidInputError`` (mark gaps upstream);
        negative or out-of-range values are flagged and excluded, not raised.
    fs_hz : float
        Sampling rate (Hz), 1 to 10000 (GSR modules: 4-32 Hz).
    amplitude_min_us : float, default 0.01
        SCR amplitude floor (µS), Boucsein et al. (2012). ``notes`` warns when it is below
        4x the estimated noise of the cleaned signal.
    cutoff_hz, order :
        Low-pass settings (``eda_clean``).
    range_max_us : float, optional
        Device full scale (µS) for clipping detection (``eda_quality``).
    min_duration_s : float, default 10.0
        Shorter records raise ``InsufficientDataError``.
    min_valid_s : float, default 10.0
        With less valid data the metrics are NaN and ``notes`` says so.

    Returns
    -------
    EdaSummary

    References
    ----------
    Boucsein W. et al. (2012) Publication recommendations for electrodermal measurements.
    Psychophysiology 49(8):1017-1034.
    Kleckner I.R. et al. (2018) IEEE Trans Biomed Eng 65(7):1460-1467.
    """
    x = checked_eda(eda_us, fs_hz)
    duration_s = x.size / fs_hz
    if not (np.isfinite(min_duration_s) and min_duration_s >= 0.0):
        raise InvalidInputError(f"min_duration_s must be >= 0, got {min_duration_s!r}")
    if duration_s < min_duration_s:
        raise InsufficientDataError(
            f"EDA record is {duration_s:.1f} s; at least {min_duration_s:g} s is needed"
        )
    quality = eda_quality(x, fs_hz, range_max_us=range_max_us)
    valid = quality.valid
    n_valid = int(valid.sum())
    valid_s = n_valid / fs_hz
    notes: list[str] = []

    def suppressed(reason: str) -> EdaSummary:
        return EdaSummary(
            n_samples=x.size,
            fs_hz=float(fs_hz),
            duration_s=duration_s,
            valid_fraction=quality.valid_fraction,
            valid_duration_s=valid_s,
            scl_mean_us=float("nan"),
            scl_slope_us_per_min=float("nan"),
            scr_count=None,
            scr_per_min=float("nan"),
            scr_amp_mean_us=float("nan"),
            scr_rise_time_mean_s=float("nan"),
            scr_half_recovery_mean_s=float("nan"),
            noise_us=float("nan"),
            amplitude_min_us=float(amplitude_min_us),
            quality_flags=quality.reasons,
            quality_segments=quality.segments,
            peaks=None,
            phasic=None,
            notes=(*notes, reason),
            algorithm_version=algorithm_version(_COMPONENT),
        )

    if valid_s < min_valid_s:
        return suppressed(
            f"all metrics suppressed: {valid_s:.1f} s of valid data < {min_valid_s:g} s "
            f"(flags: {', '.join(quality.reasons) or 'none'})"
        )

    index = np.arange(x.size, dtype=np.float64)
    good = np.flatnonzero(valid)
    bridged = x if n_valid == x.size else np.interp(index, good.astype(np.float64), x[good])
    cleaned = eda_clean(bridged, fs_hz, cutoff_hz=cutoff_hz, order=order)
    notes.extend(cleaned.notes)
    y = cleaned.eda_us
    all_peaks = eda_peaks(y, fs_hz, amplitude_min_us=amplitude_min_us)
    peaks = _valid_peaks(all_peaks, valid)
    if peaks.count < all_peaks.count:
        notes.append(f"{all_peaks.count - peaks.count} SCRs overlapping flagged data ignored")
    phasic = eda_phasic(y, fs_hz, method="interpolation", peaks=peaks)
    tonic = phasic.tonic_us[valid]

    t_min = index[valid] / fs_hz / 60.0
    t_centred = t_min - t_min.mean()
    slope = float(np.dot(t_centred, tonic - tonic.mean()) / np.dot(t_centred, t_centred))

    noise = _noise_of_cleaned(bridged, y, valid, cutoff_hz if cleaned.filtered else None, fs_hz)
    if noise * _FLOOR_NOISE_RATIO > amplitude_min_us:
        notes.append(
            f"noise ~{noise:.4f} µS after cleaning: SCRs below ~{_FLOOR_NOISE_RATIO * noise:.3f}"
            f" µS may be noise (amplitude_min_us={amplitude_min_us:g})"
        )
    if valid_s < _RATE_NOTE_BELOW_S:
        notes.append(f"scr_per_min from only {valid_s:.0f} s of valid data: low precision")
    if peaks.count == 0:
        notes.append("no SCR above the amplitude floor: SCR amplitude/timing means are NaN")
    half = peaks.half_recovery_s[np.isfinite(peaks.half_recovery_s)]
    return EdaSummary(
        n_samples=x.size,
        fs_hz=float(fs_hz),
        duration_s=duration_s,
        valid_fraction=quality.valid_fraction,
        valid_duration_s=valid_s,
        scl_mean_us=float(tonic.mean()),
        scl_slope_us_per_min=slope,
        scr_count=peaks.count,
        scr_per_min=peaks.count / (valid_s / 60.0),
        scr_amp_mean_us=_mean(peaks.amplitude_us),
        scr_rise_time_mean_s=_mean(peaks.rise_time_s),
        scr_half_recovery_mean_s=_mean(half),
        noise_us=noise,
        amplitude_min_us=float(amplitude_min_us),
        quality_flags=quality.reasons,
        quality_segments=quality.segments,
        peaks=peaks,
        phasic=phasic,
        notes=tuple(notes),
        algorithm_version=algorithm_version(_COMPONENT),
    )


def _valid_peaks(peaks: EdaPeaks, valid: NDArray[np.bool_]) -> EdaPeaks:
    """The SCRs whose onset..peak samples are all valid."""
    bad_before = np.concatenate(([0], np.cumsum(~valid)))
    bad_in_span = bad_before[peaks.peak_index + 1] - bad_before[peaks.onset_index]
    keep = bad_in_span == 0
    if keep.all():
        return peaks
    return EdaPeaks(
        onset_index=peaks.onset_index[keep],
        peak_index=peaks.peak_index[keep],
        confirm_index=peaks.confirm_index[keep],
        onset_s=peaks.onset_s[keep],
        peak_s=peaks.peak_s[keep],
        amplitude_us=peaks.amplitude_us[keep],
        rise_time_s=peaks.rise_time_s[keep],
        half_recovery_s=peaks.half_recovery_s[keep],
        fs_hz=peaks.fs_hz,
        amplitude_min_us=peaks.amplitude_min_us,
        n_rejected=peaks.n_rejected,
        algorithm_version=peaks.algorithm_version,
    )


def _noise_of_cleaned(
    raw: NDArray[np.float64],
    cleaned: NDArray[np.float64],
    valid: NDArray[np.bool_],
    cutoff_hz: float | None,
    fs_hz: float,
) -> float:
    """Noise SD left in the cleaned signal (robust, white-noise assumption).

    The low-pass removes the share 1 - f of white-noise power, f = 2 x cutoff / fs, so the
    remaining SD is SD(raw - cleaned) x sqrt(f / (1 - f)). Without a filter the noise is
    estimated from first differences of the raw signal (SD(diff) / sqrt(2)).
    """
    # Medians of at most ~20 000 evenly spaced samples: plenty for an SD estimate, and it keeps
    # the cost flat at kHz rates.
    stride = max(1, raw.size // _NOISE_SAMPLES)
    if cutoff_hz is None:
        steps = np.diff(raw[valid])[::stride]
        return float(_MAD_TO_SD * np.median(np.abs(steps - np.median(steps))) / np.sqrt(2.0))
    r = (raw - cleaned)[valid][::stride]
    passed = min(0.99, 2.0 * cutoff_hz / fs_hz)
    sd = _MAD_TO_SD * float(np.median(np.abs(r - np.median(r))))
    return float(sd * np.sqrt(passed / (1.0 - passed)))


def _mean(values: NDArray[np.float64]) -> float:
    return float(values.mean()) if values.size else float("nan")
