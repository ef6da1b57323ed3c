"""EDA simulator with ground truth: tonic drift, SCRs at known times, noise, artefacts.

Skin conductance (µS) = linear tonic level + sum of SCRs + white noise, optionally quantised
like an ADC, with contact loss and clipping injected at known times. Each SCR has the
sigmoid-exponential shape of Lim et al. (1997),

    f(t) = (1 + (t_r / t)^2)^-2 * exp(-t / t_d),  t > 0 after the onset,

scaled to its peak amplitude; (t_r, t_d) are solved so that the onset-to-peak rise time and
the peak-to-half-recovery time take the requested values (rise 1-3 s and half recovery
2-10 s by default, Dawson, Schell & Filion 2007). Unlike the Bateman function, this shape
allows any half-recovery/rise ratio above 0.67 and starts smoothly (no kink at onset).

Randomness comes only from the ``numpy.random.Generator`` passed in (no global seeds).
Pure NumPy/SciPy, no I/O; it must not call the analysis modules (ground truth stays
independent of the code it checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import scipy.optimize
from numpy.typing import NDArray

from shuxin.signal.eda_clean import check_fs
from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

_COMPONENT: Final = "eda_simulate"
#: Reading of an open circuit (µS): uniform in [0, this) while contact is lost.
CONTACT_LOSS_MAX_US: Final = 0.02
#: Smallest and largest half-recovery/rise ratios the SCR shape can take here.
_RATIO_MIN: Final = 0.68
_RATIO_MAX: Final = 40.0


@dataclass(frozen=True, slots=True)
class SimulatedEda:
    """A simulated EDA record and its ground truth.

    Attributes
    ----------
    eda_us : NDArray[np.float64]
        What the sensor reports (µS): noise, quantisation and artefacts included.
    eda_true_us : NDArray[np.float64]
        Tonic + phasic without noise or artefacts (µS).
    tonic_us, phasic_us : NDArray[np.float64]
        The two components of ``eda_true_us`` (µS).
    t_s : NDArray[np.float64]
        Sample times (s).
    fs_hz : float
        Sampling rate (Hz).
    scr_onset_s, scr_peak_s, scr_amplitude_us, scr_rise_time_s, scr_half_recovery_s :
        Ground truth per SCR (onset and peak times in s, peak height of the SCR itself in µS,
        onset-to-peak and peak-to-half-recovery times in s), sorted by onset.
    artefact_mask : NDArray[np.bool_]
        Samples replaced by an injected artefact (or saturated at ``clip_level_us``).
    artefact_segments : tuple[tuple[float, float, str], ...]
        (start_s, stop_s, kind) with kind "contact_loss" or "clipping".
    algorithm_version : str
        Version tag of this simulator.
    """

    eda_us: NDArray[np.float64]
    eda_true_us: NDArray[np.float64]
    tonic_us: NDArray[np.float64]
    phasic_us: NDArray[np.float64]
    t_s: NDArray[np.float64]
    fs_hz: float
    scr_onset_s: NDArray[np.float64]
    scr_peak_s: NDArray[np.float64]
    scr_amplitude_us: NDArray[np.float64]
    scr_rise_time_s: NDArray[np.float64]
    scr_half_recovery_s: NDArray[np.float64]
    artefact_mask: NDArray[np.bool_]
    artefact_segments: tuple[tuple[float, float, str], ...]
    algorithm_version: str


def eda_simulate(
    duration_s: float,
    fs_hz: float,
    rng: np.random.Generator,
    *,
    scl_start_us: float = 5.0,
    drift_us_per_min: float = 0.0,
    scr_times_s: Sequence[float] | None = None,
    scr_amplitudes_us: Sequence[float] | None = None,
    scr_rate_per_min: float = 3.0,
    min_gap_s: float = 8.0,
    amplitude_range_us: tuple[float, float] = (0.05, 1.0),
    rise_time_s: float | tuple[float, float] = (1.0, 3.0),
    half_recovery_s: float | tuple[float, float] = (2.0, 10.0),
    noise_us: float = 0.002,
    quantization_us: float = 0.0,
    contact_loss: Sequence[tuple[float, float]] = (),
    clipping: Sequence[tuple[float, float]] = (),
    clip_level_us: float | None = None,
) -> SimulatedEda:
    """Simulate skin conductance with known SCRs, drift, noise and artefacts.

    Parameters
    ----------
    duration_s : float
        Length (s), > 0.
    fs_hz : float
        Sampling rate (Hz), 1 to 10000 (consumer GSR modules: 4-32 Hz).
    rng : numpy.random.Generator
        Source of all randomness.
    scl_start_us : float, default 5.0
        Tonic level at t = 0 (µS), > 0.
    drift_us_per_min : float, default 0.0
        Linear tonic drift (µS/min). The tonic must stay > 0.
    scr_times_s : sequence of float, optional
        SCR onset times (s) within [0, duration). When omitted, onsets are drawn as a
        Poisson process at ``scr_rate_per_min`` with a refractory gap of ``min_gap_s``.
    scr_amplitudes_us : sequence of float, optional
        SCR peak amplitudes (µS), one per onset; when omitted, drawn log-uniformly from
        ``amplitude_range_us``.
    scr_rate_per_min, min_gap_s : float
        Rate (per min, >= 0) and minimum onset spacing (s) of the random onsets.
    amplitude_range_us : (float, float)
        Range of random amplitudes (µS).
    rise_time_s, half_recovery_s : float or (float, float)
        Onset-to-peak and peak-to-half-recovery times (s): fixed, or drawn uniformly per SCR.
        Their ratio is kept within 0.68..40 (the shape's range).
    noise_us : float, default 0.002
        Standard deviation of white Gaussian measurement noise (µS), >= 0.
    quantization_us : float, default 0.0
        ADC step (µS); 0 = none.
    contact_loss : sequence of (start_s, duration_s)
        Spans where the electrode is off: readings drop to [0, 0.02) µS.
    clipping : sequence of (start_s, duration_s)
        Spans where the reading is pinned at ``clip_level_us`` (required then).
    clip_level_us : float, optional
        Full-scale reading; samples above it are saturated at it (and marked).

    Returns
    -------
    SimulatedEda

    References
    ----------
    Lim C.L. et al. (1997) Decomposing skin conductance into tonic and phasic components.
    Int J Psychophysiol 25(2):97-109.
    Boucsein W. et al. (2012) Psychophysiology 49(8):1017-1034.
    """
    check_fs(fs_hz)
    if not isinstance(rng, np.random.Generator):
        raise InvalidInputError("rng must be a numpy.random.Generator")
    if not (np.isfinite(duration_s) and duration_s > 0.0):
        raise InvalidInputError(f"duration_s must be > 0, got {duration_s!r}")
    n = max(2, round(duration_s * fs_hz))
    t = np.arange(n, dtype=np.float64) / fs_hz
    tonic = scl_start_us + drift_us_per_min * t / 60.0
    if not (np.isfinite(scl_start_us) and tonic.min() > 0.0):
        raise InvalidInputError("the tonic level must stay > 0 µS over the record")

    onsets = _onsets(duration_s, rng, scr_times_s, scr_rate_per_min, min_gap_s)
    amplitudes = _amplitudes(onsets.size, rng, scr_amplitudes_us, amplitude_range_us)
    rises = _draw(onsets.size, rng, rise_time_s, "rise_time_s")
    halves = _draw(onsets.size, rng, half_recovery_s, "half_recovery_s")
    halves = np.clip(halves, _RATIO_MIN * rises, _RATIO_MAX * rises)

    phasic = np.zeros(n)
    for onset, amp, rise, half in zip(onsets, amplitudes, rises, halves, strict=True):
        phasic += amp * _scr_shape(t - onset, float(rise), float(half))
    truth = tonic + phasic

    if not (np.isfinite(noise_us) and noise_us >= 0.0):
        raise InvalidInputError(f"noise_us must be >= 0, got {noise_us!r}")
    eda = truth + noise_us * rng.standard_normal(n) if noise_us > 0.0 else truth.copy()
    if quantization_us < 0.0 or not np.isfinite(quantization_us):
        raise InvalidInputError(f"quantization_us must be >= 0, got {quantization_us!r}")
    if quantization_us > 0.0:
        eda = np.round(eda / quantization_us) * quantization_us

    mask = np.zeros(n, dtype=np.bool_)
    segments: list[tuple[float, float, str]] = []
    for start_s, span_s in contact_loss:
        sl = _span(start_s, span_s, fs_hz, n)
        eda[sl] = rng.uniform(0.0, CONTACT_LOSS_MAX_US, sl.stop - sl.start)
        mask[sl] = True
        segments.append((sl.start / fs_hz, sl.stop / fs_hz, "contact_loss"))
    if clipping and clip_level_us is None:
        raise InvalidInputError("clipping spans need clip_level_us")
    if clip_level_us is not None:
        if not (np.isfinite(clip_level_us) and clip_level_us > 0.0):
            raise InvalidInputError(f"clip_level_us must be > 0, got {clip_level_us!r}")
        for start_s, span_s in clipping:
            sl = _span(start_s, span_s, fs_hz, n)
            eda[sl] = clip_level_us
            mask[sl] = True
            segments.append((sl.start / fs_hz, sl.stop / fs_hz, "clipping"))
        saturated = eda > clip_level_us
        eda[saturated] = clip_level_us
        mask |= saturated

    return SimulatedEda(
        eda_us=eda,
        eda_true_us=truth,
        tonic_us=tonic,
        phasic_us=phasic,
        t_s=t,
        fs_hz=float(fs_hz),
        scr_onset_s=onsets,
        scr_peak_s=onsets + rises,
        scr_amplitude_us=amplitudes,
        scr_rise_time_s=rises,
        scr_half_recovery_s=halves,
        artefact_mask=mask,
        artefact_segments=tuple(sorted(segments)),
        algorithm_version=algorithm_version(_COMPONENT),
    )


def _scr_shape(tau: NDArray[np.float64], rise_s: float, half_s: float) -> NDArray[np.float64]:
    """Unit-peak SCR, zero before onset, with the given rise and half-recovery times."""
    q, peak_unit = _shape_for_ratio(round(half_s / rise_s, 9))
    scale = rise_s / peak_unit  # t_r in seconds; t_d = q * t_r
    out = np.zeros_like(tau)
    pos = tau > 0.0
    u = tau[pos] / scale
    out[pos] = _unit_shape(u, q) / _unit_shape(np.array([peak_unit]), q)[0]
    return out


def _unit_shape(u: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """Lim et al. (1997) shape with t_r = 1 and t_d = q (u > 0)."""
    return np.asarray((1.0 + u**-2) ** -2 * np.exp(-u / q), dtype=np.float64)


def _peak_unit(q: float) -> float:
    """Peak time of the unit shape: root of u^3 + u - 4q = 0 (d/du log f = 0)."""
    roots = np.roots([1.0, 0.0, 1.0, -4.0 * q])
    return float(max(r.real for r in roots if abs(r.imag) < 1e-9))


def _half_ratio(q: float) -> float:
    """Half-recovery time / peak time of the unit shape with t_d = q."""
    peak = _peak_unit(q)
    top = float(_unit_shape(np.array([peak]), q)[0])

    def above_half(u: float) -> float:
        return float(_unit_shape(np.array([u]), q)[0]) - top / 2.0

    hi = peak + 1.0
    while above_half(hi) > 0.0:
        hi *= 2.0
    half_time = float(scipy.optimize.brentq(above_half, peak, hi, xtol=1e-12))
    return (half_time - peak) / peak


@lru_cache(maxsize=4096)
def _shape_for_ratio(ratio: float) -> tuple[float, float]:
    """(q, unit peak time) whose half-recovery/rise ratio is ``ratio`` (0.68..40)."""
    q = scipy.optimize.brentq(lambda q: _half_ratio(q) - ratio, 0.12, 2000.0, xtol=1e-12)
    return float(q), _peak_unit(float(q))


def _onsets(
    duration_s: float,
    rng: np.random.Generator,
    scr_times_s: Sequence[float] | None,
    rate_per_min: float,
    min_gap_s: float,
) -> NDArray[np.float64]:
    if scr_times_s is not None:
        onsets = np.sort(np.asarray(scr_times_s, dtype=np.float64))
        if onsets.size and not (np.isfinite(onsets).all() and onsets.min() >= 0.0):
            raise InvalidInputError("scr_times_s must be finite and >= 0")
        if onsets.size and onsets.max() >= duration_s:
            raise InvalidInputError("scr_times_s must lie before duration_s")
        return onsets
    if not (np.isfinite(rate_per_min) and rate_per_min >= 0.0):
        raise InvalidInputError(f"scr_rate_per_min must be >= 0, got {rate_per_min!r}")
    if not (np.isfinite(min_gap_s) and min_gap_s >= 0.0):
        raise InvalidInputError(f"min_gap_s must be >= 0, got {min_gap_s!r}")
    if rate_per_min == 0.0:
        return np.empty(0)
    mean_gap = 60.0 / rate_per_min
    if mean_gap <= min_gap_s:
        raise InvalidInputError("scr_rate_per_min is too high for min_gap_s")
    times: list[float] = []
    now = rng.exponential(mean_gap - min_gap_s)
    while now < duration_s:
        times.append(now)
        now += min_gap_s + rng.exponential(mean_gap - min_gap_s)
    return np.asarray(times, dtype=np.float64)


def _amplitudes(
    count: int,
    rng: np.random.Generator,
    given: Sequence[float] | None,
    amplitude_range_us: tuple[float, float],
) -> NDArray[np.float64]:
    if given is not None:
        amps = np.asarray(given, dtype=np.float64)
        if amps.shape != (count,):
            raise InvalidInputError(f"need {count} scr_amplitudes_us, got {amps.size}")
        if count and not (np.isfinite(amps).all() and amps.min() > 0.0):
            raise InvalidInputError("scr_amplitudes_us must be finite and > 0")
        return amps
    low, high = amplitude_range_us
    if not (0.0 < low <= high < math.inf):
        raise InvalidInputError(f"bad amplitude_range_us {amplitude_range_us!r}")
    return np.exp(rng.uniform(math.log(low), math.log(high), count))


def _draw(
    count: int, rng: np.random.Generator, spec: float | tuple[float, float], name: str
) -> NDArray[np.float64]:
    if isinstance(spec, tuple):
        low, high = spec
        if not (0.0 < low <= high < math.inf):
            raise InvalidInputError(f"bad {name} range {spec!r}")
        return rng.uniform(low, high, count)
    if not (np.isfinite(spec) and spec > 0.0):
        raise InvalidInputError(f"{name} must be > 0, got {spec!r}")
    return np.full(count, float(spec))


def _span(start_s: float, span_s: float, fs_hz: float, n: int) -> slice:
    if not (np.isfinite(start_s) and np.isfinite(span_s) and start_s >= 0.0 and span_s > 0.0):
        raise InvalidInputError(f"bad artefact span ({start_s!r}, {span_s!r})")
    start = min(n, round(start_s * fs_hz))
    stop = min(n, round((start_s + span_s) * fs_hz))
    return slice(start, stop)
