"""Synthetic ECG from a beat series, with the true R-peak times (ground truth for detectors).

Each beat is a sum of Gaussian waves P, Q, R, S, T (the waveform model of McSharry et al.
2003, "ECGSYN", without its dynamical system: the beat times come from the given RR series)
with P/T positions and T width scaled by sqrt(RR) (Bazett-like), plus respiratory amplitude
modulation, baseline wander, optional power-line interference and white noise.

Pure NumPy: no I/O, no clocks, no global random state (a ``numpy.random.Generator`` is passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

__all__ = ["SimulatedEcg", "ecg_simulate"]

# (offset from R at RR = 1 s in s, amplitude relative to R, width sd in s, scales with RR)
_WAVES: Final = (
    (-0.200, 0.12, 0.025, True),  # P
    (-0.025, -0.12, 0.010, False),  # Q
    (0.000, 1.00, 0.010, False),  # R
    (0.025, -0.25, 0.010, False),  # S
    (0.280, 0.30, 0.060, True),  # T
)
_TRUTH_STEP_S: Final = 1e-4  # resolution of the true R-peak time search
_TRUTH_HALF_WIDTH_S: Final = 0.012


@dataclass(frozen=True, slots=True)
class SimulatedEcg:
    """Result of :func:`ecg_simulate`.

    Attributes
    ----------
    ecg_mv : NDArray[np.float64]
        The ECG (mV) sampled at ``fs_hz``.
    fs_hz : float
        Sampling rate (Hz).
    r_peak_time_s : NDArray[np.float64]
        True time (s) of each R peak: the maximum of the noise-free QRS, found to 0.1 ms.
        ``np.diff(r_peak_time_s) * 1000`` equals the input RR to within a few 0.1 ms.
    r_peak_index : NDArray[np.intp]
        Nearest sample of each R peak, ``round(r_peak_time_s * fs_hz)``.
    rr_ms : NDArray[np.float64]
        The RR series the ECG was built from (ms).
    algorithm_version : str
        ``"ecg_simulate/<version>"``.
    """

    ecg_mv: NDArray[np.float64]
    fs_hz: float
    r_peak_time_s: NDArray[np.float64]
    r_peak_index: NDArray[np.intp]
    rr_ms: NDArray[np.float64]
    algorithm_version: str


def ecg_simulate(
    rr_ms: ArrayLike,
    fs_hz: float,
    rng: np.random.Generator,
    *,
    r_amplitude_mv: float = 1.2,
    noise_mv: float = 0.01,
    baseline_wander_mv: float = 0.1,
    breathing_rate_bpm: float = 12.0,
    respiratory_modulation: float = 0.1,
    powerline_mv: float = 0.0,
    powerline_hz: float = 50.0,
    start_s: float = 0.6,
    end_s: float = 0.6,
) -> SimulatedEcg:
    """Build an ECG whose R peaks are separated exactly by ``rr_ms``.

    Parameters
    ----------
    rr_ms : array_like, shape (n,)
        RR intervals (ms), 200–3000; the ECG has n + 1 beats.
    fs_hz : float
        Sampling rate (Hz), 50–10000 (Polar H10: 130).
    rng : numpy.random.Generator
        Source of the noise, baseline-wander phase and beat-to-beat amplitude jitter.
    r_amplitude_mv : float
        R-wave amplitude (mV, > 0) before modulation; negative values flip the polarity.
    noise_mv : float
        Standard deviation of the white measurement noise (mV, >= 0).
    baseline_wander_mv : float
        Amplitude of the baseline wander (mV, >= 0): a sine at the breathing rate plus a
        slower random drift of the same size.
    breathing_rate_bpm : float
        Breathing rate (breaths/min) of the baseline wander and amplitude modulation.
    respiratory_modulation : float
        Relative QRS amplitude modulation by breathing, 0–0.5.
    powerline_mv, powerline_hz : float
        Amplitude (mV) and frequency (Hz) of power-line interference (off by default).
    start_s, end_s : float
        Time before the first and after the last R peak (s, >= 0.3 so P and T fit).

    Returns
    -------
    SimulatedEcg
        The waveform and the true R-peak times and samples.

    Raises
    ------
    InvalidInputError
        If an argument is outside its range or ``rr_ms`` is not a finite 1-D series.

    References
    ----------
    McSharry PE, Clifford GD, Tarassenko L, Smith LA (2003). A dynamical model for generating
    synthetic electrocardiogram signals. IEEE Trans Biomed Eng 50(3):289-294.
    """
    rr = _validated_rr(rr_ms)
    _check(fs_hz, 50.0, 10_000.0, "fs_hz")
    _check(noise_mv, 0.0, 10.0, "noise_mv")
    _check(baseline_wander_mv, 0.0, 10.0, "baseline_wander_mv")
    _check(breathing_rate_bpm, 2.0, 60.0, "breathing_rate_bpm")
    _check(respiratory_modulation, 0.0, 0.5, "respiratory_modulation")
    _check(powerline_mv, 0.0, 10.0, "powerline_mv")
    _check(start_s, 0.3, 60.0, "start_s")
    _check(end_s, 0.3, 60.0, "end_s")
    if r_amplitude_mv == 0 or not np.isfinite(r_amplitude_mv):
        raise InvalidInputError("r_amplitude_mv must be finite and non-zero")

    beat_s = start_s + np.concatenate(([0.0], np.cumsum(rr) / 1000.0))
    n_samples = int(np.ceil((beat_s[-1] + end_s) * fs_hz)) + 1
    t_s = np.arange(n_samples) / fs_hz
    breathing_hz = breathing_rate_bpm / 60.0
    phase = rng.uniform(0.0, 2.0 * np.pi)
    # Each beat's scale: respiratory modulation and a 3 % beat-to-beat jitter.
    amplitude = (
        r_amplitude_mv
        * (1.0 + respiratory_modulation * np.sin(2.0 * np.pi * breathing_hz * beat_s + phase))
        * (1.0 + 0.03 * rng.standard_normal(beat_s.size))
    )
    # Interval around each beat that scales P/T: the mean of its two RR intervals (s).
    rr_s = np.concatenate(([rr[0]], 0.5 * (rr[:-1] + rr[1:]), [rr[-1]])) / 1000.0
    scale = np.sqrt(rr_s)

    ecg = np.zeros(n_samples)
    for offset_s, relative, width_s, scaled in _WAVES:
        centre_s = beat_s + (offset_s * scale if scaled else offset_s)
        sd_s = width_s * scale if scaled else np.full(beat_s.size, width_s)
        _add_gaussians(ecg, fs_hz, centre_s, sd_s, relative * amplitude)

    truth_s = _true_peak_times(beat_s, scale, amplitude)
    ecg += baseline_wander_mv * np.sin(2.0 * np.pi * breathing_hz * t_s + phase)
    ecg += baseline_wander_mv * _slow_drift(n_samples, fs_hz, rng)
    if powerline_mv > 0:
        ecg += powerline_mv * np.sin(2.0 * np.pi * powerline_hz * t_s + rng.uniform(0, 6.28))
    if noise_mv > 0:
        ecg += noise_mv * rng.standard_normal(n_samples)
    return SimulatedEcg(
        ecg_mv=ecg,
        fs_hz=float(fs_hz),
        r_peak_time_s=truth_s,
        r_peak_index=np.rint(truth_s * fs_hz).astype(np.intp),
        rr_ms=rr.copy(),
        algorithm_version=algorithm_version("ecg_simulate"),
    )


def _validated_rr(rr_ms: ArrayLike) -> NDArray[np.float64]:
    try:
        rr = np.array(rr_ms, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"rr_ms must be numeric: {exc}") from exc
    if rr.ndim != 1 or rr.size == 0:
        raise InvalidInputError(f"rr_ms must be a non-empty 1-D series, got shape {rr.shape}")
    if not np.all(np.isfinite(rr)) or np.any(rr < 200.0) or np.any(rr > 3000.0):
        raise InvalidInputError("rr_ms must be finite and within 200-3000 ms")
    return rr


def _check(value: float, low: float, high: float, name: str) -> None:
    if not low <= value <= high:
        raise InvalidInputError(f"{name} must be within [{low}, {high}], got {value}")


def _add_gaussians(
    signal: NDArray[np.float64],
    fs_hz: float,
    centre_s: NDArray[np.float64],
    sd_s: NDArray[np.float64],
    amplitude: NDArray[np.float64],
) -> None:
    """Add one Gaussian per beat, each evaluated over +-4 sd around its centre."""
    half = int(np.ceil(4.0 * float(np.max(sd_s)) * fs_hz)) + 1
    first = np.floor(centre_s * fs_hz).astype(np.intp)
    index = first[:, None] + np.arange(-half, half + 1)[None, :]
    values = amplitude[:, None] * np.exp(
        -0.5 * ((index / fs_hz - centre_s[:, None]) / sd_s[:, None]) ** 2
    )
    inside = (index >= 0) & (index < signal.size)
    signal += np.bincount(index[inside], weights=values[inside], minlength=signal.size)


def _true_peak_times(
    beat_s: NDArray[np.float64], scale: NDArray[np.float64], amplitude: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Maximum of each beat's noise-free waveform near its R wave, to 0.1 ms.

    Only the beat's own Q, R and S waves matter there (P and T of the neighbours are > 100 ms
    away and add < 1e-9 mV/s of slope); the peak lies within a fraction of a ms of R.
    """
    offsets = np.arange(-_TRUTH_HALF_WIDTH_S, _TRUTH_HALF_WIDTH_S + _TRUTH_STEP_S, _TRUTH_STEP_S)
    grid = beat_s[:, None] + offsets[None, :]
    waveform = np.zeros_like(grid)
    for offset_s, relative, width_s, scaled in _WAVES:
        centre = beat_s + (offset_s * scale if scaled else offset_s)
        sd = width_s * scale if scaled else np.full(beat_s.size, width_s)
        waveform += (relative * amplitude)[:, None] * np.exp(
            -0.5 * ((grid - centre[:, None]) / sd[:, None]) ** 2
        )
    polarity = np.sign(amplitude)[:, None]
    best = np.argmax(polarity * waveform, axis=1)
    return np.asarray(grid[np.arange(beat_s.size), best], dtype=np.float64)


def _slow_drift(n_samples: int, fs_hz: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Random drift below ~0.05 Hz: standard-normal knots 20 s apart, linearly joined."""
    knots_t = np.arange(0.0, n_samples / fs_hz + 20.0, 20.0)
    knots = rng.standard_normal(knots_t.size)
    return np.interp(np.arange(n_samples) / fs_hz, knots_t, knots)
