"""Synthetic photoplethysmogram (PPG) from a beat series, with the true systolic-peak times.

Each heart beat launches a pulse that arrives ``pulse_delay_s`` later: a systolic wave (a
Gaussian whose rise is steeper than its fall) plus a smaller, later diastolic/dicrotic wave,
both widened with sqrt(RR). Breathing modulates the pulse amplitude and the baseline; white
noise is added. The ground truth is the maximum of the noise-free pulse train near each
systolic wave, found to 0.5 ms, so detectors can be scored on timing as well as on counts.

Pure NumPy: no I/O, no clocks, no global random state (a ``numpy.random.Generator`` is passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

__all__ = ["SimulatedPpg", "ppg_simulate"]

# Systolic wave: rise and fall sd (s, at RR = 1 s); dicrotic wave: delay (s), sd (s), size.
_SYSTOLIC_RISE_S: Final = 0.06
_SYSTOLIC_FALL_S: Final = 0.14
_DICROTIC_DELAY_S: Final = 0.30
_DICROTIC_SD_S: Final = 0.09
_DICROTIC_AMPLITUDE: Final = 0.35
_TRUTH_STEP_S: Final = 5e-4
_TRUTH_HALF_WIDTH_S: Final = 0.08


@dataclass(frozen=True, slots=True)
class SimulatedPpg:
    """Result of :func:`ppg_simulate`.

    Attributes
    ----------
    ppg : NDArray[np.float64]
        The PPG (arbitrary units; pulse amplitude about 1) sampled at ``fs_hz``.
    fs_hz : float
        Sampling rate (Hz).
    peak_time_s : NDArray[np.float64]
        True systolic-peak time (s) of each pulse: the maximum of the noise-free, baseline-free
        pulse train within +-80 ms of the systolic wave's centre, to 0.5 ms.
    peak_index : NDArray[np.intp]
        Nearest sample of each systolic peak.
    beat_time_s : NDArray[np.float64]
        Time (s) of the heart beat (R wave) that launched each pulse.
    rr_ms : NDArray[np.float64]
        The RR series the PPG was built from (ms).
    algorithm_version : str
        ``"ppg_simulate/<version>"``.
    """

    ppg: NDArray[np.float64]
    fs_hz: float
    peak_time_s: NDArray[np.float64]
    peak_index: NDArray[np.intp]
    beat_time_s: NDArray[np.float64]
    rr_ms: NDArray[np.float64]
    algorithm_version: str


def ppg_simulate(
    rr_ms: ArrayLike,
    fs_hz: float,
    rng: np.random.Generator,
    *,
    pulse_delay_s: float = 0.25,
    noise: float = 0.01,
    baseline_wander: float = 0.2,
    breathing_rate_bpm: float = 12.0,
    respiratory_modulation: float = 0.15,
    start_s: float = 0.5,
    end_s: float = 1.0,
) -> SimulatedPpg:
    """Build a PPG whose pulses follow the beats of ``rr_ms``.

    Parameters
    ----------
    rr_ms : array_like, shape (n,)
        RR intervals (ms), 250–3000; the PPG has n + 1 pulses.
    fs_hz : float
        Sampling rate (Hz), 20–10000.
    rng : numpy.random.Generator
        Source of the noise, the breathing phase and the beat-to-beat amplitude jitter.
    pulse_delay_s : float
        Delay from beat to systolic peak (pulse arrival time, s), 0.1–0.5.
    noise : float
        Standard deviation of the white noise, relative to the pulse amplitude (>= 0).
    baseline_wander : float
        Amplitude of the breathing-synchronous baseline, relative to the pulse (>= 0).
    breathing_rate_bpm : float
        Breathing rate (breaths/min) of the baseline and amplitude modulation.
    respiratory_modulation : float
        Relative pulse-amplitude modulation by breathing, 0–0.5.
    start_s, end_s : float
        Time before the first beat and after the last one (s, >= 0.3 and >= 0.8).

    Returns
    -------
    SimulatedPpg
        The waveform and the true systolic-peak times and samples.

    Raises
    ------
    InvalidInputError
        If an argument is outside its range or ``rr_ms`` is not a finite 1-D series.

    References
    ----------
    Allen J (2007). Photoplethysmography and its application in clinical physiological
    measurement. Physiol Meas 28(3):R1-R39 (pulse shape: systolic and diastolic waves).
    """
    rr = _validated_rr(rr_ms)
    _check(fs_hz, 20.0, 10_000.0, "fs_hz")
    _check(pulse_delay_s, 0.1, 0.5, "pulse_delay_s")
    _check(noise, 0.0, 10.0, "noise")
    _check(baseline_wander, 0.0, 10.0, "baseline_wander")
    _check(breathing_rate_bpm, 2.0, 60.0, "breathing_rate_bpm")
    _check(respiratory_modulation, 0.0, 0.5, "respiratory_modulation")
    _check(start_s, 0.3, 60.0, "start_s")
    _check(end_s, 0.8, 60.0, "end_s")

    beat_s = start_s + np.concatenate(([0.0], np.cumsum(rr) / 1000.0))
    n_samples = int(np.ceil((beat_s[-1] + end_s) * fs_hz)) + 1
    t_s = np.arange(n_samples) / fs_hz
    breathing_hz = breathing_rate_bpm / 60.0
    phase = rng.uniform(0.0, 2.0 * np.pi)
    amplitude = (
        1.0 + respiratory_modulation * np.sin(2.0 * np.pi * breathing_hz * beat_s + phase)
    ) * (1.0 + 0.03 * rng.standard_normal(beat_s.size))
    rr_s = np.concatenate(([rr[0]], rr)) / 1000.0  # the interval ending at each beat
    scale = np.sqrt(rr_s)
    systolic_s = beat_s + pulse_delay_s

    ppg = _pulse_train(t_s, systolic_s, scale, amplitude)
    truth_s = _true_peak_times(systolic_s, scale, amplitude)
    ppg += baseline_wander * np.sin(2.0 * np.pi * breathing_hz * t_s + phase + 1.0)
    if noise > 0:
        ppg += noise * rng.standard_normal(n_samples)
    return SimulatedPpg(
        ppg=ppg,
        fs_hz=float(fs_hz),
        peak_time_s=truth_s,
        peak_index=np.rint(truth_s * fs_hz).astype(np.intp),
        beat_time_s=beat_s,
        rr_ms=rr.copy(),
        algorithm_version=algorithm_version("ppg_simulate"),
    )


def _validated_rr(rr_ms: ArrayLike) -> NDArray[np.float64]:
    try:
        rr = np.array(rr_ms, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"rr_ms must be numeric: {exc}") from exc
    if rr.ndim != 1 or rr.size == 0:
        raise InvalidInputError(f"rr_ms must be a non-empty 1-D series, got shape {rr.shape}")
    if not np.all(np.isfinite(rr)) or np.any(rr < 250.0) or np.any(rr > 3000.0):
        raise InvalidInputError("rr_ms must be finite and within 250-3000 ms")
    return rr


def _check(value: float, low: float, high: float, name: str) -> None:
    if not low <= value <= high:
        raise InvalidInputError(f"{name} must be within [{low}, {high}], got {value}")


def _pulse(
    t_s: NDArray[np.float64], centre_s: float, scale: float, amplitude: float
) -> NDArray[np.float64]:
    """One pulse (systolic + dicrotic wave) evaluated at ``t_s``."""
    dt = t_s - centre_s
    sd = np.where(dt < 0, _SYSTOLIC_RISE_S, _SYSTOLIC_FALL_S) * scale
    systolic = np.exp(-0.5 * (dt / sd) ** 2)
    dicrotic_dt = dt - _DICROTIC_DELAY_S * scale
    dicrotic = _DICROTIC_AMPLITUDE * np.exp(-0.5 * (dicrotic_dt / (_DICROTIC_SD_S * scale)) ** 2)
    return np.asarray(amplitude * (systolic + dicrotic), dtype=np.float64)


def _support(scale: float) -> tuple[float, float]:
    """Time span (s, relative to the systolic centre) outside which a pulse is < 1e-6."""
    return -5.3 * _SYSTOLIC_RISE_S * scale, (_DICROTIC_DELAY_S + 5.3 * _DICROTIC_SD_S) * scale


def _pulse_train(
    t_s: NDArray[np.float64],
    systolic_s: NDArray[np.float64],
    scale: NDArray[np.float64],
    amplitude: NDArray[np.float64],
) -> NDArray[np.float64]:
    fs_hz = 1.0 / (t_s[1] - t_s[0])
    train = np.zeros(t_s.size)
    beats = zip(systolic_s.tolist(), scale.tolist(), amplitude.tolist(), strict=True)
    for centre, sc, amp in beats:
        before, after = _support(sc)
        lo = max(0, int(np.floor((centre + before) * fs_hz)))
        hi = min(t_s.size, int(np.ceil((centre + after) * fs_hz)) + 1)
        train[lo:hi] += _pulse(t_s[lo:hi], centre, sc, amp)
    return train


def _true_peak_times(
    systolic_s: NDArray[np.float64], scale: NDArray[np.float64], amplitude: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Maximum of the noise-free pulse train near each systolic wave (own and adjacent pulses)."""
    offsets = np.arange(-_TRUTH_HALF_WIDTH_S, _TRUTH_HALF_WIDTH_S + _TRUTH_STEP_S, _TRUTH_STEP_S)
    truth = np.empty(systolic_s.size)
    for k, centre in enumerate(systolic_s.tolist()):
        grid = centre + offsets
        total = np.zeros(grid.size)
        for j in range(max(0, k - 2), min(systolic_s.size, k + 2)):
            total += _pulse(grid, float(systolic_s[j]), float(scale[j]), float(amplitude[j]))
        truth[k] = grid[int(np.argmax(total))]
    return truth
