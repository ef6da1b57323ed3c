"""Live EDA: per-sample update of SCL and SCR rate over a sliding window, O(1) amortised.

Each pushed sample goes through exactly the causal batch pipeline, one step at a time:

1. ``eda_clean(..., zero_phase=False)``: the Butterworth sections in direct form II
   transposed, the same arithmetic as ``scipy.signal.sosfilt``, started in steady state;
2. ``eda_phasic(..., method="causal")``: trailing minimum through a monotone deque;
3. ``eda_peaks``: the same hysteresis state machine, and the same ``PeakSettings.score`` on a
   ring buffer of the last ``history_n`` cleaned samples when a candidate closes.

Live SCL is the mean causal tonic over the last ``window_s`` (a running sum, re-summed once
per window so rounding cannot drift); the SCR rate counts SCRs whose peak lies in the window
and that are already confirmed. Results equal the batch functions run on all samples so far,
restricted to the same window, to 1e-9 µS (SCL) and exactly (SCR count) - see
``tests/unit/signal/test_eda_stream.py``. Before ``window_s`` has passed, the window is
everything so far.

Pure Python/NumPy state, no I/O, no clocks (time is the sample count / ``fs_hz``), no
threads; one instance per sensor stream. It must not judge quality or skip samples:
NaN/inf raise ``InvalidInputError`` and leave the state unchanged.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.signal
from numpy.typing import ArrayLike

from shuxin.signal.eda_clean import DEFAULT_CUTOFF_HZ, DEFAULT_ORDER, check_fs, lowpass_sos
from shuxin.signal.eda_peaks import (
    DEFAULT_AMPLITUDE_MIN_US,
    DEFAULT_MAX_CONFIRM_S,
    DEFAULT_MAX_RISE_S,
    DEFAULT_MIN_RISE_S,
    DEFAULT_ONSET_SLOPE_FRACTION,
    DEFAULT_TREND_S,
    PeakSettings,
)
from shuxin.signal.eda_phasic import (
    DEFAULT_TONIC_RATE_US_PER_MIN,
    DEFAULT_TONIC_WINDOW_S,
    tonic_step_us,
    tonic_window_samples,
)
from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

_COMPONENT: Final = "eda_stream"
#: Default live window (s) for SCL and SCR rate.
DEFAULT_WINDOW_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class EdaLive:
    """Live EDA state after the newest sample.

    Attributes
    ----------
    n_samples : int
        Samples pushed so far.
    t_s : float
        Time of the newest sample (s from the first), ``(n_samples - 1) / fs_hz``.
    eda_clean_us : float
        Newest causally cleaned conductance (µS).
    tonic_us : float
        Newest causal tonic level (trailing minimum, µS).
    scl_us : float
        Mean causal tonic over the window (µS).
    scr_count : int
        Confirmed SCRs whose peak lies in the window.
    scr_per_min : float
        ``scr_count`` per minute of window covered so far.
    window_covered_s : float
        Length of the window actually covered (< ``window_s`` at the start).
    last_scr_amplitude_us : float
        Amplitude of the most recently confirmed SCR (NaN before the first).
    algorithm_version : str
        Version tag.
    """

    n_samples: int
    t_s: float
    eda_clean_us: float
    tonic_us: float
    scl_us: float
    scr_count: int
    scr_per_min: float
    window_covered_s: float
    last_scr_amplitude_us: float
    algorithm_version: str


class EdaStream:
    """Incremental live SCL and SCR rate for one EDA sensor stream.

    Parameters
    ----------
    fs_hz : float
        Sampling rate (Hz), 1 to 10000.
    window_s : float, default 60.0
        Sliding window (s) for SCL and SCR rate.
    cutoff_hz, order :
        Causal low-pass settings, as ``eda_clean``.
    tonic_window_s, tonic_rate_us_per_min : float, default 3.0 and 0.6
        Causal tonic settings, as ``eda_phasic`` and ``eda_peaks``.
    amplitude_min_us, hysteresis_us, min_rise_s, max_rise_s, max_confirm_s,
    onset_slope_fraction, trend_s :
        SCR criteria, as ``eda_peaks``.

    Notes
    -----
    Cost per sample: the filter sections, amortised O(1) deque work, a few comparisons;
    scoring a closed candidate reads ``history_n`` samples, at most once per candidate.
    Memory: O(window + history) floats.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        cutoff_hz: float = DEFAULT_CUTOFF_HZ,
        order: int = DEFAULT_ORDER,
        tonic_window_s: float = DEFAULT_TONIC_WINDOW_S,
        tonic_rate_us_per_min: float = DEFAULT_TONIC_RATE_US_PER_MIN,
        amplitude_min_us: float = DEFAULT_AMPLITUDE_MIN_US,
        hysteresis_us: float | None = None,
        min_rise_s: float = DEFAULT_MIN_RISE_S,
        max_rise_s: float = DEFAULT_MAX_RISE_S,
        max_confirm_s: float = DEFAULT_MAX_CONFIRM_S,
        onset_slope_fraction: float = DEFAULT_ONSET_SLOPE_FRACTION,
        trend_s: float = DEFAULT_TREND_S,
    ) -> None:
        check_fs(fs_hz)
        if not (math.isfinite(window_s) and window_s > 0.0):
            raise InvalidInputError(f"window_s must be > 0, got {window_s!r}")
        self._fs = float(fs_hz)
        sos, _ = lowpass_sos(fs_hz, cutoff_hz, order)
        self._sos = None if sos is None else [tuple(float(c) for c in row) for row in sos]
        self._zi_unit = None if sos is None else scipy.signal.sosfilt_zi(sos)
        self._tonic_n = tonic_window_samples(fs_hz, tonic_window_s)
        self._tonic_step = tonic_step_us(fs_hz, tonic_rate_us_per_min)
        self._window_n = max(1, round(window_s * fs_hz))
        self._peaks = PeakSettings.make(
            fs_hz,
            amplitude_min_us=amplitude_min_us,
            hysteresis_us=hysteresis_us,
            min_rise_s=min_rise_s,
            max_rise_s=max_rise_s,
            max_confirm_s=max_confirm_s,
            onset_slope_fraction=onset_slope_fraction,
            trend_s=trend_s,
        )
        self._version = algorithm_version(_COMPONENT)
        self.reset()

    def reset(self) -> None:
        """Forget every sample (e.g. after the sensor reconnects)."""
        self._n = 0
        self._zi: list[list[float]] = []
        self._min_deque: deque[tuple[int, float]] = deque()
        self._tonic_runmin = math.inf
        self._tonic_ring = np.zeros(self._window_n)
        self._tonic_sum = 0.0
        self._history = np.zeros(self._peaks.history_n)
        self._history_free = np.zeros(self._peaks.history_n)
        self._rising = False
        self._trough_v = self._peak_v = 0.0
        self._trough_i = self._peak_i = 0
        self._scr_peaks: deque[int] = deque()
        self._last_amplitude = math.nan

    @property
    def n_samples(self) -> int:
        """Samples pushed since construction or the last ``reset``."""
        return self._n

    def push(self, eda_us: float) -> EdaLive:
        """Add one raw sample (µS) and return the live state.

        Raises
        ------
        InvalidInputError
            The sample is NaN/inf (the state is left unchanged).
        """
        x = float(eda_us)
        if not math.isfinite(x):
            raise InvalidInputError(f"EDA sample {self._n} is not finite: {eda_us!r}")
        n = self._n
        y = self._filter(x)
        tonic = self._tonic(n, y)

        slot = n % self._window_n
        self._tonic_sum += tonic - self._tonic_ring[slot]
        self._tonic_ring[slot] = tonic
        covered = min(n + 1, self._window_n)
        if slot == self._window_n - 1:  # once per window: drop accumulated rounding
            self._tonic_sum = float(self._tonic_ring.sum())
        drift_free = y - tonic
        self._history[n % self._history.size] = y
        self._history_free[n % self._history.size] = drift_free
        self._detect(n, drift_free)
        first_in_window = n - self._window_n + 1
        while self._scr_peaks and self._scr_peaks[0] < first_in_window:
            self._scr_peaks.popleft()
        self._n = n + 1
        count = len(self._scr_peaks)
        return EdaLive(
            n_samples=self._n,
            t_s=n / self._fs,
            eda_clean_us=y,
            tonic_us=tonic,
            scl_us=self._tonic_sum / covered,
            scr_count=count,
            scr_per_min=count * 60.0 * self._fs / covered,
            window_covered_s=covered / self._fs,
            last_scr_amplitude_us=self._last_amplitude,
            algorithm_version=self._version,
        )

    def push_many(self, eda_us: ArrayLike) -> EdaLive | None:
        """Push samples in order; return the state after the last (None if empty)."""
        values = np.asarray(eda_us, dtype=np.float64).ravel()
        live = None
        for value in values.tolist():
            live = self.push(value)
        return live

    def _filter(self, x: float) -> float:
        if self._sos is None:
            return x
        if self._n == 0:
            assert self._zi_unit is not None
            self._zi = [[float(a) * x, float(b) * x] for a, b in self._zi_unit]
        cur = x
        for (b0, b1, b2, _a0, a1, a2), z in zip(self._sos, self._zi, strict=True):
            new = b0 * cur + z[0]
            z[0] = b1 * cur - a1 * new + z[1]
            z[1] = b2 * cur - a2 * new
            cur = new
        return cur

    def _tonic(self, n: int, y: float) -> float:
        """Rate-limited trailing minimum, as ``eda_phasic.causal_tonic`` (same operations)."""
        window = self._min_deque
        while window and window[-1][1] >= y:
            window.pop()
        window.append((n, y))
        while window[0][0] <= n - self._tonic_n:
            window.popleft()
        ramp = n * self._tonic_step
        trailing = window[0][1]
        self._tonic_runmin = min(self._tonic_runmin, trailing - ramp)
        return min(self._tonic_runmin + ramp, trailing)

    def _detect(self, n: int, v: float) -> None:
        """One step of the hysteresis machine of ``eda_peaks._hysteresis_candidates``."""
        h = self._peaks.hysteresis_us
        if n == 0:
            self._trough_v = self._peak_v = v
            self._trough_i = self._peak_i = 0
            return
        if self._rising:
            if v > self._peak_v:
                self._peak_v, self._peak_i = v, n
            elif v < self._peak_v - h:
                self._close(self._trough_i, self._peak_i, n)
                self._rising = False
                self._trough_v, self._trough_i = v, n
        elif v <= self._trough_v:
            self._trough_v, self._trough_i = v, n
        elif v > self._trough_v + h:
            self._rising = True
            self._peak_v, self._peak_i = v, n

    def _close(self, trough: int, peak: int, confirm: int) -> None:
        """Score a closed candidate on the history rings (indices shifted to their start)."""
        size = self._history.size
        if confirm < size:
            base = 0
            recent = self._history[: confirm + 1]
            recent_free = self._history_free[: confirm + 1]
        else:
            base = confirm - size + 1
            start = base % size
            recent = np.concatenate((self._history[start:], self._history[:start]))
            recent_free = np.concatenate((self._history_free[start:], self._history_free[:start]))
        onset = self._peaks.score(
            recent, recent_free, max(trough, base) - base, peak - base, confirm - base
        )
        if onset >= 0:
            self._scr_peaks.append(peak)
            self._last_amplitude = float(recent[peak - base] - recent[onset])
