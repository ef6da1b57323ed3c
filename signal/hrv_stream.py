"""Live heart metrics updated one beat at a time: heart rate, RMSSD over 60 s, coherence every 5 s.

``HrvStream.push(rr_ms)`` takes the next RR interval and returns the live values in O(1)
amortised time: ring buffers (deques) hold the windows, running sums give the window means and
the sum of squared successive differences, and the sums are recomputed from the buffer every
``REFRESH_EVERY`` pushes so rounding never accumulates. The coherence ratio is recomputed on a
fixed 64 s window every 5 s of beat time by the same core as ``hrv_coherence``, so it is a
constant cost per update. Every value equals the batch computation on the same window within
1e-9 relative (tests/unit/signal/test_hrv_stream.py).

The stream keeps state in memory only: no I/O, no clocks (time is the running sum of the RR
intervals), no threads. It does not clean artefacts; feed it beats that passed the edge's
plausibility gate, or reset it after a gap.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_coherence import (
    STEP_S,
    HrvCoherence,
    coherence_from_beats,
    coherence_params,
    coherence_update_due,
)
from shuxin.signal.version import algorithm_version

__all__ = ["REFRESH_EVERY", "HrvLive", "HrvStream"]

#: Running sums are recomputed exactly from the buffers after this many pushes.
REFRESH_EVERY: Final = 256

_VERSION = algorithm_version("hrv_stream")
_NOTE_RMSSD_FILLING = "rmssd: window not yet full"


@dataclass(frozen=True, slots=True)
class HrvLive:
    """Live values after one beat.

    Attributes
    ----------
    beat_index : int
        0-based index of this beat in the stream.
    t_s : float
        Time of this beat (s) since the start of the stream: ``cumsum(rr_ms)[-1] / 1000``.
    rr_ms : float
        The interval just pushed.
    hr_bpm : float
        Live heart rate: 60000 x n / (sum of the last n intervals), n = ``hr_beats`` (fewer at
        the start).
    mean_hr_bpm : float
        Mean of 60000/RR over the RMSSD window (Task Force mean HR).
    rmssd_ms : float
        RMSSD over the intervals that lie entirely within the last ``rmssd_window_s`` seconds;
        NaN (see ``notes``) until the stream is that long.
    rmssd_n_intervals : int
        Number of RR intervals in the RMSSD window.
    rmssd_window_start : int
        Beat index of the first interval of the RMSSD window.
    coherence : HrvCoherence | None
        New coherence result when one was computed at this beat, else None.
    coherence_window_start : int
        Beat index of the first beat used by that coherence (-1 when ``coherence`` is None).
    last_coherence_ratio : float
        Most recent coherence ratio (NaN before the first), for displays that redraw every beat.
    notes : tuple[str, ...]
        Why a value is NaN.
    algorithm_version : str
        Version tag of this algorithm.
    """

    beat_index: int
    t_s: float
    rr_ms: float
    hr_bpm: float
    mean_hr_bpm: float
    rmssd_ms: float
    rmssd_n_intervals: int
    rmssd_window_start: int
    coherence: HrvCoherence | None
    coherence_window_start: int
    last_coherence_ratio: float
    notes: tuple[str, ...]
    algorithm_version: str


class HrvStream:
    """Per-beat live HR, RMSSD and coherence state.

    Parameters
    ----------
    hr_beats : int
        Beats averaged for the live heart rate (1–60).
    rmssd_window_s : float
        RMSSD window (s), 10–600.
    coherence_step_s : float
        Coherence update period (s of beat time), 0.5–600; updates follow the same schedule as
        ``hrv_coherence_series`` (first at ``coherence_window_s``, then every step).
    coherence_window_s : float
        Coherence window (s), 16–600.

    Notes
    -----
    Window rule, shared with the tests' batch reference: RR interval j (ending at beat time
    T_j = cumsum(rr_ms)[j] / 1000 s) belongs to the RMSSD window of beat i iff its start
    ``T_{j-1}`` is at or after ``T_i - rmssd_window_s`` (the newest interval always belongs).
    RMSSD = sqrt(mean of squared successive differences of the window's intervals), the Task
    Force 1996 definition (denominator N-1 differences for N intervals).
    """

    __slots__ = (
        "_coh_next_due",
        "_coh_params",
        "_coh_rr",
        "_coh_start",
        "_coh_step_s",
        "_coh_t",
        "_coh_window_s",
        "_hr_beats",
        "_hr_rr",
        "_hr_sum",
        "_last_ratio",
        "_n",
        "_pushes_since_refresh",
        "_rmssd_window_s",
        "_t_ms",
        "_w_inv_sum",
        "_w_rr",
        "_w_sq_sum",
        "_w_start",
        "_w_t0",
    )

    def __init__(
        self,
        *,
        hr_beats: int = 5,
        rmssd_window_s: float = 60.0,
        coherence_step_s: float = STEP_S,
        coherence_window_s: float = 64.0,
    ) -> None:
        if not 1 <= hr_beats <= 60:
            raise InvalidInputError(f"hr_beats={hr_beats!r} outside [1, 60]")
        if not (math.isfinite(rmssd_window_s) and 10.0 <= rmssd_window_s <= 600.0):
            raise InvalidInputError(f"rmssd_window_s={rmssd_window_s!r} outside [10, 600]")
        if not (math.isfinite(coherence_step_s) and 0.5 <= coherence_step_s <= 600.0):
            raise InvalidInputError(f"coherence_step_s={coherence_step_s!r} outside [0.5, 600]")
        self._coh_params = coherence_params(window_s=coherence_window_s)
        self._hr_beats = hr_beats
        self._rmssd_window_s = float(rmssd_window_s)
        self._coh_window_s = float(coherence_window_s)
        self._coh_step_s = float(coherence_step_s)
        self.reset()

    def reset(self) -> None:
        """Forget all beats (after a gap or a new session)."""
        self._n = 0
        self._t_ms = 0.0
        self._hr_rr: deque[float] = deque()
        self._hr_sum = 0.0
        self._w_rr: deque[float] = deque()  # RMSSD window intervals
        self._w_t0: deque[float] = deque()  # their start times
        self._w_start = 0
        self._w_sq_sum = 0.0
        self._w_inv_sum = 0.0
        self._coh_t: deque[float] = deque()
        self._coh_rr: deque[float] = deque()
        self._coh_start = 0
        self._coh_next_due = self._coh_window_s
        self._last_ratio = math.nan
        self._pushes_since_refresh = 0

    def push(self, rr_ms: float) -> HrvLive:
        """Add the next RR interval (ms) and return the live values.

        Raises
        ------
        InvalidInputError
            ``rr_ms`` is not a finite number > 0 (the state is left unchanged).
        """
        rr = float(rr_ms)
        if not (math.isfinite(rr) and rr > 0.0):
            raise InvalidInputError(f"rr_ms={rr_ms!r} must be finite and > 0")
        index = self._n
        t_start = self._t_ms / 1000.0
        self._t_ms += rr  # same additions as numpy.cumsum(rr_ms): identical beat times
        t_now = self._t_ms / 1000.0
        self._n = index + 1

        # Live HR over the last hr_beats intervals.
        self._hr_rr.append(rr)
        self._hr_sum += rr
        if len(self._hr_rr) > self._hr_beats:
            self._hr_sum -= self._hr_rr.popleft()

        # RMSSD window: add the new interval, then drop intervals that started too early.
        w_rr = self._w_rr
        if w_rr:
            d = rr - w_rr[-1]
            self._w_sq_sum += d * d
        w_rr.append(rr)
        self._w_t0.append(t_start)
        self._w_inv_sum += 60000.0 / rr
        limit = t_now - self._rmssd_window_s
        while len(w_rr) > 1 and self._w_t0[0] < limit:
            self._w_t0.popleft()
            old = w_rr.popleft()
            self._w_start += 1
            self._w_inv_sum -= 60000.0 / old
            d = w_rr[0] - old
            self._w_sq_sum -= d * d

        self._pushes_since_refresh += 1
        if self._pushes_since_refresh >= REFRESH_EVERY:
            self._refresh()

        # Coherence window: keep the last beat at or before the first grid point, and later.
        self._coh_t.append(t_now)
        self._coh_rr.append(rr)
        params = self._coh_params
        first_grid = t_now - (params.n_samples - 1) / params.fs_hz
        while len(self._coh_t) > 1 and self._coh_t[1] <= first_grid:
            self._coh_t.popleft()
            self._coh_rr.popleft()
            self._coh_start += 1
        due, self._coh_next_due = coherence_update_due(t_now, self._coh_next_due, self._coh_step_s)
        coherence = None
        if due:
            coherence = coherence_from_beats(
                np.fromiter(self._coh_t, np.float64, len(self._coh_t)),
                np.fromiter(self._coh_rr, np.float64, len(self._coh_rr)),
                params,
            )
            self._last_ratio = coherence.coherence_ratio

        n_w = len(w_rr)
        full = t_now >= self._rmssd_window_s
        if full and n_w >= 2:
            rmssd = math.sqrt(max(self._w_sq_sum, 0.0) / (n_w - 1))
            notes: tuple[str, ...] = ()
        else:
            rmssd = math.nan
            notes = (_NOTE_RMSSD_FILLING,)
        return HrvLive(
            beat_index=index,
            t_s=t_now,
            rr_ms=rr,
            hr_bpm=60000.0 * len(self._hr_rr) / self._hr_sum,
            mean_hr_bpm=self._w_inv_sum / n_w,
            rmssd_ms=rmssd,
            rmssd_n_intervals=n_w,
            rmssd_window_start=self._w_start,
            coherence=coherence,
            coherence_window_start=self._coh_start if coherence is not None else -1,
            last_coherence_ratio=self._last_ratio,
            notes=notes,
            algorithm_version=_VERSION,
        )

    def _refresh(self) -> None:
        """Recompute the running sums from the buffers (bounds rounding drift)."""
        self._pushes_since_refresh = 0
        self._hr_sum = math.fsum(self._hr_rr)
        w = self._w_rr
        self._w_inv_sum = math.fsum(60000.0 / r for r in w)
        self._w_sq_sum = math.fsum((b - a) * (b - a) for a, b in zip(w, list(w)[1:], strict=False))
