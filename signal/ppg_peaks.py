"""Systolic-peak (pulse) detection in a PPG (Elgendi et al. 2013), with per-beat quality.

Band-pass 0.5-8 Hz, keep the positive part and square it, then mark the blocks where a
systolic-peak-wide moving average (111 ms) exceeds a beat-wide one (667 ms) plus an offset;
the maximum of the filtered PPG in each block is a systolic peak, refined below one sample by
a parabola. Each pulse gets the same quality flags as an ECG beat (implausible interval,
amplitude outlier, low correlation with the record's median pulse shape).

Pure NumPy/SciPy: no I/O, no clocks, no logging. The small window/threshold helpers are shared
with :mod:`shuxin.signal.ecg_peaks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal as sp_signal

from shuxin.signal.ecg_peaks import (
    FLAG_AMPLITUDE,
    FLAG_LOW_CORRELATION,
    FLAG_RR_IMPLAUSIBLE,
    _block_maxima,
    _block_mean,
    _moving_average,
    _parabolic_offset,
    _quality_flags,
    _refractory,
    _search_back,
    _template_correlation,
    _validated_signal,
    _windows,
)
from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.version import algorithm_version

__all__ = ["FLAG_AMPLITUDE", "FLAG_LOW_CORRELATION", "FLAG_RR_IMPLAUSIBLE", "PpgPeaks", "ppg_peaks"]

_WORK_FS_HZ: Final = 100.0  # detection runs at fs / floor(fs / 100)
_BAND_HZ: Final = (0.5, 8.0)
_PEAK_WINDOW_S: Final = 0.111  # W1
_BEAT_WINDOW_S: Final = 0.667  # W2
_BETA: Final = 0.02
_TEMPLATE_S: Final = 0.25  # pulse template: +-250 ms around the systolic peak
_MIN_DURATION_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class PpgPeaks:
    """Result of :func:`ppg_peaks`.

    Attributes
    ----------
    peak_index : NDArray[np.intp]
        Sample index of each systolic peak (nearest sample of ``peak_time_s``).
    peak_time_s : NDArray[np.float64]
        Systolic-peak time (s from the first sample) of the band-passed PPG, refined below one
        sample by a parabola.
    rr_ms : NDArray[np.float64]
        Peak-to-peak (pulse) intervals in ms, the RR surrogate; ``len(peak_index) - 1`` values.
    amplitude : NDArray[np.float64]
        Band-passed peak height (input units).
    template_corr : NDArray[np.float64]
        Correlation of each +-250 ms pulse with the record's median pulse.
    quality_flags : NDArray[np.uint8]
        Bit mask per pulse (``FLAG_RR_IMPLAUSIBLE``, ``FLAG_AMPLITUDE``,
        ``FLAG_LOW_CORRELATION``, same meaning as for :func:`ecg_peaks`).
    beat_ok : NDArray[np.bool_]
        ``quality_flags == 0``.
    fs_hz : float
        Sampling rate of the input (Hz).
    notes : tuple[str, ...]
        Anything the caller should know (e.g. no pulse found).
    algorithm_version : str
        ``"ppg_peaks/<version>"``.
    """

    peak_index: NDArray[np.intp]
    peak_time_s: NDArray[np.float64]
    rr_ms: NDArray[np.float64]
    amplitude: NDArray[np.float64]
    template_corr: NDArray[np.float64]
    quality_flags: NDArray[np.uint8]
    beat_ok: NDArray[np.bool_]
    fs_hz: float
    notes: tuple[str, ...]
    algorithm_version: str


def ppg_peaks(ppg: ArrayLike, fs_hz: float, *, refractory_ms: float = 300.0) -> PpgPeaks:
    """Detect systolic peaks in a PPG.

    Parameters
    ----------
    ppg : array_like, shape (n,)
        PPG in any unit, larger = more blood volume (invert a raw absorbance signal first),
        finite, at least 2 s long.
    fs_hz : float
        Sampling rate (Hz), 20-10000.
    refractory_ms : float
        Shortest accepted pulse interval (ms), 150-600; of two peaks closer than this the
        larger is kept. 300 ms (200 beats/min) keeps dicrotic waves out.

    Returns
    -------
    PpgPeaks
        Systolic-peak samples and times, pulse intervals and per-pulse quality.

    Raises
    ------
    InvalidInputError
        If the input is not a finite 1-D series or ``fs_hz``/``refractory_ms`` is out of range.
    InsufficientDataError
        If the record is shorter than 2 s.

    Notes
    -----
    Elgendi et al. (2013): 2nd-order Butterworth band-pass 0.5-8 Hz forwards and backwards,
    ``y = max(S, 0) ** 2``, moving averages of 111 ms and 667 ms, blocks where the first
    exceeds the second plus ``0.02 * mean(y)`` and that last at least 111 ms; the systolic
    peak is the maximum of S in the block. Run at ``fs / floor(fs / 100)`` (block means as
    the anti-alias filter), with parabolic sub-sample refinement, a search-back in gaps
    longer than 1.5x the local interval (two pulses in one block at fast rates) and a
    refractory period (300 ms, as NeuroKit2's implementation) added.

    References
    ----------
    Elgendi M, Norton I, Brearley M, Abbott D, Schuurmans D (2013). Systolic peak detection in
    acceleration photoplethysmograms measured from emergency responders in tropical
    conditions. PLoS ONE 8(10):e76585.
    """
    x = _validated_signal(ppg)
    if not 20.0 <= fs_hz <= 10_000.0:
        raise InvalidInputError(f"fs_hz must be within 20-10000 Hz, got {fs_hz}")
    if not 150.0 <= refractory_ms <= 600.0:
        raise InvalidInputError(f"refractory_ms must be within 150-600 ms, got {refractory_ms}")
    if x.size < _MIN_DURATION_S * fs_hz:
        raise InsufficientDataError(f"ppg_peaks needs >= {_MIN_DURATION_S:g} s of signal")

    factor = max(1, int(fs_hz // _WORK_FS_HZ))
    work_fs = fs_hz / factor
    work = _block_mean(x[: x.size - x.size % factor], factor)
    sos = sp_signal.butter(2, _BAND_HZ, btype="bandpass", fs=work_fs, output="sos")
    band = sp_signal.sosfiltfilt(sos, work - np.mean(work))

    energy = np.square(np.maximum(band, 0.0))
    peak_width = round(_PEAK_WINDOW_S * work_fs)
    ma_peak = _moving_average(energy, peak_width)
    ma_beat = _moving_average(energy, round(_BEAT_WINDOW_S * work_fs))
    inside = ma_peak > ma_beat + _BETA * float(np.mean(energy))
    edges = np.diff(inside.astype(np.int8), prepend=0, append=0)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = stops - starts >= peak_width
    blocks = np.stack((starts[keep], stops[keep]), axis=1).astype(np.intp)
    if blocks.size == 0:
        return _empty(fs_hz)

    peak = _block_maxima(band, blocks)
    peak = _search_back(band, peak, round(refractory_ms / 1000.0 * work_fs))
    amplitude = band[peak]
    peak, amplitude = _refractory(peak, amplitude, round(refractory_ms / 1000.0 * work_fs))
    fraction = _parabolic_offset(_windows(band, peak, 1))
    # Work sample j is the mean of input samples j*factor ... j*factor + factor - 1.
    time_s = ((peak + fraction) * factor + 0.5 * (factor - 1)) / fs_hz
    rr_ms = np.diff(time_s) * 1000.0
    corr = _template_correlation(_windows(band, peak, round(_TEMPLATE_S * work_fs)))
    flags = _quality_flags(rr_ms, amplitude, corr)
    notes = [f"only {peak.size} pulse(s) found: no interval"] if peak.size < 2 else []
    return PpgPeaks(
        peak_index=np.rint(time_s * fs_hz).astype(np.intp).clip(0, x.size - 1),
        peak_time_s=time_s,
        rr_ms=rr_ms,
        amplitude=amplitude,
        template_corr=corr,
        quality_flags=flags,
        beat_ok=flags == 0,
        fs_hz=float(fs_hz),
        notes=tuple(notes),
        algorithm_version=algorithm_version("ppg_peaks"),
    )


def _empty(fs_hz: float) -> PpgPeaks:
    nothing = np.empty(0)
    return PpgPeaks(
        peak_index=np.empty(0, dtype=np.intp),
        peak_time_s=nothing,
        rr_ms=nothing,
        amplitude=nothing,
        template_corr=nothing,
        quality_flags=np.empty(0, dtype=np.uint8),
        beat_ok=np.empty(0, dtype=bool),
        fs_hz=float(fs_hz),
        notes=("no pulse found",),
        algorithm_version=algorithm_version("ppg_peaks"),
    )
