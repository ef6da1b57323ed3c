"""Tonic (SCL) / phasic split of cleaned skin conductance, three documented methods.

- ``"causal"`` (live): tonic = minimum of the last ``tonic_window_s`` seconds (trailing
  lower envelope), allowed to rise no faster than ``tonic_rate_us_per_min``:
  ``tonic[n] = min_k<=n (trailing_min[k] + rate * (n - k) / fs)``. SCRs only add positive
  deflections to the tonic level, so the trailing minimum stays at the pre-SCR trough
  through any rise shorter than the window; the rate limit stops it from jumping up when
  an old trough leaves the window in the middle of the next SCR, while slower tonic drift
  is followed exactly. It uses no future sample and updates in O(1) amortised time
  (monotone deque and a running minimum in ``EdaStream``).
- ``"interpolation"`` (offline, default for summaries): tonic = linear interpolation of the
  signal between SCR-free samples. Every sample from an SCR's onset to
  ``recovery_spans`` x its half-recovery time after the peak (or to the next SCR onset, or
  ``max_tail_s`` after the peak) is bridged by a straight line from the onset trough to the
  first SCR-free sample; elsewhere tonic = signal. This is the trough-to-trough SCL estimate
  of the Boucsein et al. (2012) tradition, with tails removed, without a model fit
  (cvxEDA needs a QP solver; its result depends on its priors).
- ``"highpass"`` (peer-compatible): tonic = 0.05 Hz 2nd-order Butterworth low-pass, phasic =
  0.05 Hz high-pass, both forward-backward, as NeuroKit2's default and Biopac AcqKnowledge.
  Kept for comparison: its tonic contains the mean of the SCRs and its phasic goes negative.

``causal`` and ``interpolation`` keep tonic <= signal (phasic >= 0). Pure NumPy/SciPy, no
I/O; the input is expected to be cleaned already (``eda_clean``), and this module must not
clean, flag or detect SCRs itself (``interpolation`` takes them from ``eda_peaks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import scipy.ndimage
import scipy.signal
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.eda_clean import checked_eda
from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

if TYPE_CHECKING:
    from shuxin.signal.eda_peaks import EdaPeaks

PhasicMethod = Literal["interpolation", "causal", "highpass"]

#: Trailing window (s) of the causal tonic. 3 s holds the trough through typical 1-3 s SCR
#: rises (beyond that the rate limit below takes over), and is short enough that a rising
#: drift lifts the drift-free signal by only drift x 3 s (0.02 µS at 0.4 µS/min), below the
#: SCR floor; with 10 s such drift ramps turned into false SCRs (measured on simulations).
DEFAULT_TONIC_WINDOW_S: Final = 3.0
#: Fastest rise (µS/min) of the causal tonic; resting SCL drifts by well under 0.6 µS/min,
#: while SCRs rise at 1.2 µS/min (0.02 µS/s) and faster even when only 0.05 µS high.
DEFAULT_TONIC_RATE_US_PER_MIN: Final = 0.6
#: The SCR span ends this many half-recovery times after the peak (a mono-exponential
#: recovery has 1/16 ~ 6 % of its amplitude left after 4 half-lives).
DEFAULT_RECOVERY_SPANS: Final = 4.0
#: Longest SCR tail (s after the peak) treated as phasic when recovery is not reached.
DEFAULT_MAX_TAIL_S: Final = 20.0
#: High-pass/low-pass corner of the peer-compatible split (NeuroKit2 / Biopac default).
DEFAULT_HIGHPASS_HZ: Final = 0.05

_COMPONENT: Final = "eda_phasic"


@dataclass(frozen=True, slots=True)
class EdaPhasic:
    """Tonic and phasic components (µS); ``tonic_us + phasic_us`` equals the input."""

    tonic_us: NDArray[np.float64]
    phasic_us: NDArray[np.float64]
    method: str
    fs_hz: float
    notes: tuple[str, ...]
    algorithm_version: str


def eda_phasic(
    eda_us: ArrayLike,
    fs_hz: float,
    *,
    method: PhasicMethod = "interpolation",
    peaks: EdaPeaks | None = None,
    tonic_window_s: float = DEFAULT_TONIC_WINDOW_S,
    tonic_rate_us_per_min: float = DEFAULT_TONIC_RATE_US_PER_MIN,
    recovery_spans: float = DEFAULT_RECOVERY_SPANS,
    max_tail_s: float = DEFAULT_MAX_TAIL_S,
    highpass_hz: float = DEFAULT_HIGHPASS_HZ,
) -> EdaPhasic:
    """Split cleaned skin conductance into tonic (SCL) and phasic components.

    Parameters
    ----------
    eda_us : array_like of float, shape (n,)
        Cleaned skin conductance (µS, from ``eda_clean``), n >= 2, finite.
    fs_hz : float
        Sampling rate (Hz), 1 to 10000.
    method : {"interpolation", "causal", "highpass"}
        See the module docstring. ``causal`` is what the live stream computes;
        ``interpolation`` is what ``eda_summary`` reports.
    peaks : EdaPeaks, optional
        SCRs for ``interpolation``; detected with ``eda_peaks`` defaults when omitted.
    tonic_window_s : float, default 3.0
        Trailing window (s) of the ``causal`` minimum, > 0.
    tonic_rate_us_per_min : float, default 0.6
        Fastest rise of the ``causal`` tonic (µS/min), > 0.
    recovery_spans : float, default 4.0
        ``interpolation``: half-recovery times after the peak that still count as phasic.
    max_tail_s : float, default 20.0
        ``interpolation``: cap (s after the peak) of an SCR span.
    highpass_hz : float, default 0.05
        ``highpass``: corner frequency (Hz).

    Returns
    -------
    EdaPhasic

    References
    ----------
    Boucsein W. et al. (2012) Psychophysiology 49(8):1017-1034 (SCL vs SCR definitions).
    Benedek M., Kaernbach C. (2010) Decomposition of skin conductance data by means of
    nonnegative deconvolution. Psychophysiology 47(4):647-658 (tonic from inter-SCR periods).
    """
    y = checked_eda(eda_us, fs_hz)
    notes: tuple[str, ...] = ()
    if method == "causal":
        tonic = causal_tonic(y, fs_hz, tonic_window_s, tonic_rate_us_per_min)
    elif method == "interpolation":
        if peaks is None:
            from shuxin.signal.eda_peaks import eda_peaks

            peaks = eda_peaks(y, fs_hz)
        if peaks.fs_hz != float(fs_hz):
            raise InvalidInputError(f"peaks were found at {peaks.fs_hz} Hz, signal is {fs_hz} Hz")
        tonic, notes = _interpolated_tonic(y, fs_hz, peaks, recovery_spans, max_tail_s)
    elif method == "highpass":
        if not (np.isfinite(highpass_hz) and 0.0 < highpass_hz < fs_hz / 2.0):
            raise InvalidInputError(f"highpass_hz must be in (0, fs/2), got {highpass_hz!r}")
        low = scipy.signal.butter(2, highpass_hz, btype="lowpass", output="sos", fs=fs_hz)
        high = scipy.signal.butter(2, highpass_hz, btype="highpass", output="sos", fs=fs_hz)
        tonic = np.asarray(scipy.signal.sosfiltfilt(low, y), dtype=np.float64)
        phasic = np.asarray(scipy.signal.sosfiltfilt(high, y), dtype=np.float64)
        return EdaPhasic(
            tonic_us=tonic,
            phasic_us=phasic,
            method=method,
            fs_hz=float(fs_hz),
            notes=("phasic from a separate high-pass: tonic + phasic only approximates input",),
            algorithm_version=algorithm_version(_COMPONENT),
        )
    else:
        raise InvalidInputError(f"unknown method {method!r}")
    return EdaPhasic(
        tonic_us=tonic,
        phasic_us=y - tonic,
        method=method,
        fs_hz=float(fs_hz),
        notes=notes,
        algorithm_version=algorithm_version(_COMPONENT),
    )


def causal_tonic(
    eda_us: NDArray[np.float64],
    fs_hz: float,
    tonic_window_s: float = DEFAULT_TONIC_WINDOW_S,
    tonic_rate_us_per_min: float = DEFAULT_TONIC_RATE_US_PER_MIN,
) -> NDArray[np.float64]:
    """Rate-limited trailing minimum (the ``causal`` tonic), always <= the signal.

    ``tonic[n] = n*step + min_k<=n (trailing_min[k] - k*step)`` with ``step`` the largest
    rise per sample: the closed form of ``tonic[n] = min(trailing_min[n], tonic[n-1] + step)``
    that ``EdaStream`` evaluates with the same operations.
    """
    width = tonic_window_samples(fs_hz, tonic_window_s)
    step = tonic_step_us(fs_hz, tonic_rate_us_per_min)
    if width == 1:
        trailing = eda_us.copy()
    else:
        # A trailing window [k - width + 1, k]: origin shifts scipy's centred window right.
        # mode="nearest" repeats x[0] before the start, which leaves min(x[0..k]) unchanged.
        trailing = np.asarray(
            scipy.ndimage.minimum_filter1d(
                eda_us, size=width, mode="nearest", origin=(width - 1) // 2
            ),
            dtype=np.float64,
        )
    ramp = np.arange(eda_us.size, dtype=np.float64) * step
    # The final minimum only undoes rounding of (x - ramp) + ramp, keeping tonic <= signal.
    return np.minimum(np.minimum.accumulate(trailing - ramp) + ramp, trailing)


def tonic_window_samples(fs_hz: float, tonic_window_s: float) -> int:
    """Number of samples in the causal tonic window (>= 1)."""
    if not (np.isfinite(tonic_window_s) and tonic_window_s > 0.0):
        raise InvalidInputError(f"tonic_window_s must be finite and > 0, got {tonic_window_s!r}")
    return max(1, round(tonic_window_s * fs_hz))


def tonic_step_us(fs_hz: float, tonic_rate_us_per_min: float) -> float:
    """Largest rise of the causal tonic per sample (µS)."""
    if not (np.isfinite(tonic_rate_us_per_min) and tonic_rate_us_per_min > 0.0):
        raise InvalidInputError(
            f"tonic_rate_us_per_min must be finite and > 0, got {tonic_rate_us_per_min!r}"
        )
    return float(tonic_rate_us_per_min) / 60.0 / float(fs_hz)


def _interpolated_tonic(
    y: NDArray[np.float64],
    fs_hz: float,
    peaks: EdaPeaks,
    recovery_spans: float,
    max_tail_s: float,
) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    if not (np.isfinite(recovery_spans) and recovery_spans > 0.0):
        raise InvalidInputError(f"recovery_spans must be > 0, got {recovery_spans!r}")
    if not (np.isfinite(max_tail_s) and max_tail_s > 0.0):
        raise InvalidInputError(f"max_tail_s must be > 0, got {max_tail_s!r}")
    n = y.size
    onsets = peaks.onset_index
    if onsets.size and int(peaks.peak_index.max()) >= n:
        raise InvalidInputError("peaks refer to samples beyond the end of the signal")
    if onsets.size == 0:
        return y.copy(), ("no SCRs: tonic equals the signal",)
    half = peaks.half_recovery_s
    tail_s = np.where(np.isfinite(half), recovery_spans * np.nan_to_num(half), max_tail_s)
    tail_s = np.minimum(tail_s, max_tail_s)
    stops = peaks.peak_index + np.ceil(tail_s * fs_hz).astype(np.int64) + 1
    next_onset = np.append(onsets[1:], n)
    stops = np.minimum(np.minimum(stops, next_onset), n)
    # Exclude (onset, stop): the onset trough itself stays an anchor.
    count = np.zeros(n + 1, dtype=np.int64)
    np.add.at(count, onsets + 1, 1)
    np.add.at(count, np.maximum(stops, onsets + 1), -1)
    in_span = np.cumsum(count[:n]) > 0
    anchors = np.flatnonzero(~in_span)
    index = np.arange(n, dtype=np.float64)
    tonic = np.interp(index, anchors.astype(np.float64), y[anchors])
    return np.minimum(tonic, y), ()
