"""SCR detection by trough-to-peak scoring with an absolute amplitude floor (Boucsein 2012).

A hysteresis state machine proposes candidates on the drift-free signal d = SC - causal
tonic (``eda_phasic``'s rate-limited trailing minimum, which follows slow drift exactly): a
trough opens one when d has risen more than ``hysteresis_us`` above it, and the highest
point after that becomes the peak once d has fallen more than ``hysteresis_us`` below it
(on SC itself, rising drift can hide the fall after a small SCR).
Each candidate is then scored as Boucsein et al. (2012) define an SCR:

- onset: the start of the last run of steep slopes before the peak, searched within
  ``max_rise_s`` before the peak and not before the trough; slopes are changes of d over
  0.5 s, steep when above ``onset_slope_fraction`` (10 %) of the steepest one there, and the
  onset is the lowest sample (of d) of the last flat 0.5 s before that run (the trough
  itself when the rise starts there). Under tonic drift, or when a small SCR is merged into
  the rise of the next, the lowest point lies before the response; the slope rule finds
  where it starts;
- amplitude = SC(peak) - SC(onset) (trough-to-peak on SC), >= ``amplitude_min_us``
  (0.01 µS); the rise of d, and SC's rise minus the rising trend of the ``trend_s`` before
  the onset extended over the rise, must pass the floor too (so a slow tonic rise is not
  scored as an SCR);
- rise time = peak - onset within [``min_rise_s``, ``max_rise_s``]; the peak must start to
  recover (fall by the hysteresis) within ``max_confirm_s``;
- half-recovery time = peak to the first sample at or below SC(peak) - amplitude/2 before the
  next SCR's onset (NaN when not reached).

Every decision uses past samples only, so ``EdaStream`` finds the same SCRs sample by sample;
``confirm_index`` is the sample at which each SCR became known (only the half-recovery time
looks ahead). Pure NumPy, no I/O; the input must already be cleaned (``eda_clean``); this
module must not filter, decompose into SCL or judge data quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.eda_clean import checked_eda
from shuxin.signal.eda_phasic import (
    DEFAULT_TONIC_RATE_US_PER_MIN,
    DEFAULT_TONIC_WINDOW_S,
    causal_tonic,
)
from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

#: Boucsein et al. (2012): the usual minimum SCR amplitude criterion.
DEFAULT_AMPLITUDE_MIN_US: Final = 0.01
#: Rise times outside this range are not SCRs: faster ones are noise or artefact, slower
#: ones are tonic drift (Dawson, Schell & Filion 2007: typical rise 1-3 s).
DEFAULT_MIN_RISE_S: Final = 0.5
DEFAULT_MAX_RISE_S: Final = 7.0
#: A peak not followed within this time by a fall of the hysteresis is not an SCR.
DEFAULT_MAX_CONFIRM_S: Final = 15.0
#: A 0.5 s slope of the rise is "steep" above this fraction of its steepest one (onset rule).
DEFAULT_ONSET_SLOPE_FRACTION: Final = 0.1
#: Window (s) before the onset whose rising trend is discounted from the amplitude check.
DEFAULT_TREND_S: Final = 2.0
#: Lag (s) over which the onset rule measures slopes (noise on single steps at 4-8 Hz would
#: otherwise break a rise into several "steep runs").
DEFAULT_SLOPE_LAG_S: Final = 0.5

_COMPONENT: Final = "eda_peaks"


@dataclass(frozen=True, slots=True)
class EdaPeaks:
    """Skin conductance responses found in one signal (all arrays have ``count`` entries).

    Attributes
    ----------
    onset_index, peak_index : NDArray[np.int64]
        Sample of the SCR onset (trough) and peak.
    confirm_index : NDArray[np.int64]
        First sample at which the SCR is known to a causal (live) detector.
    onset_s, peak_s : NDArray[np.float64]
        Same as times (s from the first sample).
    amplitude_us : NDArray[np.float64]
        SC(peak) - SC(onset) (µS), >= ``amplitude_min_us``.
    rise_time_s : NDArray[np.float64]
        Peak time - onset time (s).
    half_recovery_s : NDArray[np.float64]
        Peak to 50 % recovery (s); NaN when the next SCR or the record end comes first.
    fs_hz, amplitude_min_us : float
        Settings used.
    n_rejected : int
        Candidates rejected by the amplitude or rise-time criteria.
    algorithm_version : str
        Version tag of this algorithm.
    """

    onset_index: NDArray[np.int64]
    peak_index: NDArray[np.int64]
    confirm_index: NDArray[np.int64]
    onset_s: NDArray[np.float64]
    peak_s: NDArray[np.float64]
    amplitude_us: NDArray[np.float64]
    rise_time_s: NDArray[np.float64]
    half_recovery_s: NDArray[np.float64]
    fs_hz: float
    amplitude_min_us: float
    n_rejected: int
    algorithm_version: str

    @property
    def count(self) -> int:
        """Number of SCRs."""
        return int(self.peak_index.size)


def eda_peaks(
    eda_us: ArrayLike,
    fs_hz: float,
    *,
    amplitude_min_us: float = DEFAULT_AMPLITUDE_MIN_US,
    hysteresis_us: float | None = None,
    min_rise_s: float = DEFAULT_MIN_RISE_S,
    max_rise_s: float = DEFAULT_MAX_RISE_S,
    max_confirm_s: float = DEFAULT_MAX_CONFIRM_S,
    onset_slope_fraction: float = DEFAULT_ONSET_SLOPE_FRACTION,
    trend_s: float = DEFAULT_TREND_S,
    tonic_window_s: float = DEFAULT_TONIC_WINDOW_S,
    tonic_rate_us_per_min: float = DEFAULT_TONIC_RATE_US_PER_MIN,
) -> EdaPeaks:
    """Find skin conductance responses (onset, peak, amplitude, rise, half recovery).

    Parameters
    ----------
    eda_us : array_like of float, shape (n,)
        Cleaned skin conductance (µS), n >= 2, finite.
    fs_hz : float
        Sampling rate (Hz), 1 to 10000.
    amplitude_min_us : float, default 0.01
        Absolute amplitude floor (µS), > 0 (Boucsein et al. 2012). Raise it to about 4x the
        noise of the cleaned signal for noisy consumer sensors.
    hysteresis_us : float, optional
        Rise/fall (µS) that opens/closes a candidate; defaults to ``amplitude_min_us``. Dips
        shallower than this inside a rise do not split an SCR.
    min_rise_s, max_rise_s : float, default 0.5 and 7.0
        Accepted rise-time range (s).
    max_confirm_s : float, default 15.0
        The peak must be followed by a fall of the hysteresis within this time (s).
    onset_slope_fraction : float, default 0.1
        Onset rule (see module docstring), in (0, 1).
    trend_s : float, default 2.0
        Window (s) before the onset used to discount a rising trend from the amplitude check.
    tonic_window_s, tonic_rate_us_per_min : float, default 3.0 and 0.6
        Causal tonic removed before the hysteresis (``eda_phasic``, method ``causal``).

    Returns
    -------
    EdaPeaks

    References
    ----------
    Boucsein W. et al. (2012) Publication recommendations for electrodermal measurements.
    Psychophysiology 49(8):1017-1034.
    Dawson M.E., Schell A.M., Filion D.L. (2007) The electrodermal system. In: Handbook of
    Psychophysiology, 3rd ed., Cambridge University Press, 159-181.
    """
    y = checked_eda(eda_us, fs_hz)
    settings = PeakSettings.make(
        fs_hz,
        amplitude_min_us=amplitude_min_us,
        hysteresis_us=hysteresis_us,
        min_rise_s=min_rise_s,
        max_rise_s=max_rise_s,
        max_confirm_s=max_confirm_s,
        onset_slope_fraction=onset_slope_fraction,
        trend_s=trend_s,
    )
    drift_free = y - causal_tonic(y, fs_hz, tonic_window_s, tonic_rate_us_per_min)
    troughs, peaks, confirms = _hysteresis_candidates(drift_free, settings.hysteresis_us)
    candidates = zip(troughs.tolist(), peaks.tolist(), confirms.tolist(), strict=True)
    onsets = np.array(
        [settings.score(y, drift_free, t, p, c) for t, p, c in candidates], dtype=np.intp
    )
    keep = onsets >= 0
    onsets, peaks, confirms = onsets[keep], peaks[keep], confirms[keep]
    amplitude = y[peaks] - y[onsets]

    half = np.full(peaks.size, np.nan)
    ends = np.append(onsets[1:], y.size)
    for k in range(peaks.size):
        tail = y[peaks[k] + 1 : ends[k]]
        below = np.flatnonzero(tail <= y[peaks[k]] - amplitude[k] / 2.0)
        if below.size:
            half[k] = (below[0] + 1) / fs_hz
    return EdaPeaks(
        onset_index=onsets.astype(np.int64),
        peak_index=peaks.astype(np.int64),
        confirm_index=confirms.astype(np.int64),
        onset_s=onsets / fs_hz,
        peak_s=peaks / fs_hz,
        amplitude_us=amplitude.astype(np.float64),
        rise_time_s=(peaks - onsets) / fs_hz,
        half_recovery_s=half,
        fs_hz=float(fs_hz),
        amplitude_min_us=float(amplitude_min_us),
        n_rejected=int((~keep).sum()),
        algorithm_version=algorithm_version(_COMPONENT),
    )


@dataclass(frozen=True, slots=True)
class PeakSettings:
    """Validated detector settings in samples, shared by ``eda_peaks`` and ``EdaStream``."""

    amplitude_min_us: float
    hysteresis_us: float
    min_rise_n: int
    max_rise_n: int
    max_confirm_n: int
    onset_slope_fraction: float
    trend_n: int
    slope_lag_n: int

    @classmethod
    def make(
        cls,
        fs_hz: float,
        *,
        amplitude_min_us: float = DEFAULT_AMPLITUDE_MIN_US,
        hysteresis_us: float | None = None,
        min_rise_s: float = DEFAULT_MIN_RISE_S,
        max_rise_s: float = DEFAULT_MAX_RISE_S,
        max_confirm_s: float = DEFAULT_MAX_CONFIRM_S,
        onset_slope_fraction: float = DEFAULT_ONSET_SLOPE_FRACTION,
        trend_s: float = DEFAULT_TREND_S,
    ) -> PeakSettings:
        """Check the settings and convert times to sample counts."""
        if not (np.isfinite(amplitude_min_us) and amplitude_min_us > 0.0):
            raise InvalidInputError(f"amplitude_min_us must be > 0, got {amplitude_min_us!r}")
        hyst = amplitude_min_us if hysteresis_us is None else hysteresis_us
        if not (np.isfinite(hyst) and hyst > 0.0):
            raise InvalidInputError(f"hysteresis_us must be > 0, got {hysteresis_us!r}")
        if not (np.isfinite(min_rise_s) and 0.0 <= min_rise_s < max_rise_s < np.inf):
            raise InvalidInputError(
                f"need 0 <= min_rise_s < max_rise_s, got {min_rise_s!r}, {max_rise_s!r}"
            )
        if not (np.isfinite(max_confirm_s) and max_confirm_s > 0.0):
            raise InvalidInputError(f"max_confirm_s must be > 0, got {max_confirm_s!r}")
        if not 0.0 < onset_slope_fraction < 1.0:
            raise InvalidInputError(
                f"onset_slope_fraction must be in (0, 1), got {onset_slope_fraction!r}"
            )
        if not (np.isfinite(trend_s) and trend_s > 0.0):
            raise InvalidInputError(f"trend_s must be > 0, got {trend_s!r}")
        return cls(
            amplitude_min_us=float(amplitude_min_us),
            hysteresis_us=float(hyst),
            min_rise_n=max(1, int(np.ceil(min_rise_s * fs_hz - 1e-9))),
            max_rise_n=max(1, int(np.floor(max_rise_s * fs_hz + 1e-9))),
            max_confirm_n=max(1, round(max_confirm_s * fs_hz)),
            onset_slope_fraction=float(onset_slope_fraction),
            trend_n=max(1, round(trend_s * fs_hz)),
            slope_lag_n=max(1, round(DEFAULT_SLOPE_LAG_S * fs_hz)),
        )

    @property
    def history_n(self) -> int:
        """Samples a causal detector must keep (ending at the confirmation) to score."""
        return self.max_rise_n + self.max_confirm_n + self.trend_n + 1

    def score(
        self,
        y: NDArray[np.float64],
        drift_free: NDArray[np.float64],
        trough: int,
        peak: int,
        confirm: int,
    ) -> int:
        """Onset sample of a candidate that is an SCR, or -1 when it is not.

        ``y`` is the cleaned SC, ``drift_free`` the signal the hysteresis ran on. Only
        ``[confirm - history_n + 1, peak]`` is read (a trough further back may be passed as
        that window's first sample with the same result).
        """
        if confirm - peak > self.max_confirm_n:
            return -1
        start = max(trough, peak - self.max_rise_n)
        lag = self.slope_lag_n
        if peak - start < lag:
            return -1
        d = drift_free
        slopes = d[start + lag : peak + 1] - d[start : peak + 1 - lag]
        if slopes.max() <= 0.0:
            return -1
        steep = slopes > self.onset_slope_fraction * slopes.max()
        last_steep = int(np.flatnonzero(steep)[-1])
        quiet = np.flatnonzero(~steep[:last_steep])
        if quiet.size:
            k = start + int(quiet[-1])
            window = d[k : k + lag + 1]
            onset = k + window.size - 1 - int(np.argmin(window[::-1]))
        elif start == trough:
            onset = start
        else:
            return -1  # still rising max_rise_n before the peak: too slow for an SCR
        rise = peak - onset
        if not self.min_rise_n <= rise <= self.max_rise_n:
            return -1
        amplitude = float(y[peak] - y[onset])
        trend_start = max(onset - self.trend_n, trough)
        trend = 0.0
        if onset > trend_start:
            trend = max(0.0, float(y[onset] - y[trend_start]) / (onset - trend_start))
        smallest = min(amplitude, amplitude - trend * rise, float(d[peak] - d[onset]))
        if smallest < self.amplitude_min_us:
            return -1
        return onset


def _hysteresis_candidates(
    d: NDArray[np.float64], hysteresis: float
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Trough/peak/confirmation samples of the hysteresis state machine, vectorised.

    Equivalent to running, sample by sample (as ``EdaStream`` does)::

        rising = False; trough = peak = (d[0], 0)
        for n, v in enumerate(d):
            if rising:
                if v > peak.v: peak = (v, n)
                elif v < peak.v - h: emit(trough.n, peak.n, n); rising = False; trough = (v, n)
            else:
                if v <= trough.v: trough = (v, n)
                elif v > trough.v + h: rising = True; peak = (v, n)

    Runs of equal values are collapsed (a trough takes a run's last sample, a peak its first),
    and only runs that are local extrema (plus both ends) can change the outcome, because the
    state only moves to a more extreme value; the confirmation sample, which may fall between
    extrema, is found afterwards by a search between the peak and the confirming extremum.
    """
    n = d.size
    change = np.flatnonzero(d[1:] != d[:-1]) + 1
    run_start = np.concatenate(([0], change))
    run_end = np.concatenate((change, [n])) - 1
    values = d[run_start]
    if values.size > 2:
        inner = values[1:-1]
        is_max = (inner > values[:-2]) & (inner > values[2:])
        is_min = (inner < values[:-2]) & (inner < values[2:])
        keep = np.concatenate(([True], is_max | is_min, [True]))
        run_start, run_end, values = run_start[keep], run_end[keep], values[keep]

    starts = run_start.tolist()
    ends = run_end.tolist()
    vals = values.tolist()
    troughs: list[int] = []
    peaks: list[int] = []
    confirm_runs: list[int] = []
    rising = False
    trough_v = peak_v = vals[0]
    trough_i = ends[0]
    peak_i = 0
    for k in range(1, len(vals)):
        v = vals[k]
        if rising:
            if v > peak_v:
                peak_v, peak_i = v, starts[k]
            elif v < peak_v - hysteresis:
                troughs.append(trough_i)
                peaks.append(peak_i)
                confirm_runs.append(starts[k])
                rising = False
                trough_v, trough_i = v, ends[k]
        elif v <= trough_v:
            trough_v, trough_i = v, ends[k]
        elif v > trough_v + hysteresis:
            rising = True
            peak_v, peak_i = v, starts[k]

    confirms = np.empty(len(peaks), dtype=np.intp)
    for k, (p, stop) in enumerate(zip(peaks, confirm_runs, strict=True)):
        segment = d[p + 1 : stop + 1]
        confirms[k] = p + 1 + int(np.argmax(segment < d[p] - hysteresis))
    return (
        np.asarray(troughs, dtype=np.intp),
        np.asarray(peaks, dtype=np.intp),
        confirms,
    )
