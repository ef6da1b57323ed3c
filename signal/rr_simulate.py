"""Simulated RR intervals with known ground truth: respiration, Mayer waves, stress, artefacts.

An integral pulse frequency modulation (IPFM) generator: a continuous modulating signal sets the
instantaneous heart rate, and a beat fires each time the integral of that rate crosses the next
integer. The modulating signal is the sum of

* respiratory sinus arrhythmia (RSA): a sine locked to the breathing phase, with breath-to-breath
  variability of period and depth, at a chosen breathing rate or a stepped breathing schedule,
  optionally amplified near the subject's baroreflex resonance rate;
* Mayer waves: narrow-band noise centred near 0.1 Hz (Gaussian spectrum, sd 0.01 Hz);
* very-low-frequency noise (1/f spectrum, 0.003–0.04 Hz) and an optional linear heart-rate trend;

plus a small independent beat-to-beat jitter. A ``stress`` level 0–1 lowers vagal tone: smaller
RSA and jitter, higher heart rate, hence lower RMSSD. Ectopic, missed, extra, long and short
beats are then injected at known positions and reported.

This module only generates data: it does no I/O, keeps no global random state (callers pass a
``numpy.random.Generator``) and must never be used to analyse recordings.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.version import algorithm_version

__all__ = ["ARTEFACT_KINDS", "SimulatedRr", "rr_simulate"]

#: Kinds of injected artefact, as reported in ``SimulatedRr.artefact_kind``.
ARTEFACT_KINDS = ("ectopic", "missed", "extra", "long", "short")

#: Fraction by which an ectopic (premature) beat shortens its interval; the next interval is
#: lengthened by the same amount (full compensatory pause, so the sum of the two is kept).
ECTOPIC_PREMATURITY = 0.35
#: Factor applied to one interval for a "long" artefact (no compensation).
LONG_FACTOR = 1.4
#: Factor applied to one interval for a "short" artefact (no compensation).
SHORT_FACTOR = 0.65
#: An "extra" beat splits one interval at a uniform random fraction in this range.
EXTRA_SPLIT_RANGE = (0.3, 0.7)

#: Stress model: heart rate rises by this fraction at stress 1 ...
STRESS_HR_GAIN = 0.30
#: ... vagal tone (RSA amplitude) falls by this fraction at stress 1 ...
STRESS_VAGAL_LOSS = 0.70
#: ... beat-to-beat jitter falls by this fraction at stress 1 ...
STRESS_JITTER_LOSS = 0.50
#: ... and Mayer-wave amplitude falls by this (smaller) fraction, so LF/HF rises with stress.
STRESS_MAYER_LOSS = 0.25

#: Breath-to-breath coefficient of variation of period and depth used when
#: ``breathing_rate_cv`` is None: paced breathing (a schedule, or a rate <= 7.5 breaths/min,
#: i.e. following a pacer) is regular, spontaneous breathing is not.
PACED_BREATHING_CV = 0.03
SPONTANEOUS_BREATHING_CV = 0.15
PACED_RATE_LIMIT_BPM = 7.5

MAYER_BANDWIDTH_HZ = 0.01
VLF_BAND_HZ = (0.003, 0.04)
_GRID_HZ = 20.0
_MIN_RR_MS = 250.0

_VERSION = algorithm_version("rr_simulate")


@dataclass(frozen=True, slots=True)
class SimulatedRr:
    """A simulated RR series and its ground truth.

    Attributes
    ----------
    rr_ms : NDArray[np.float64]
        RR intervals (ms) with the artefacts injected.
    rr_clean_ms : NDArray[np.float64]
        RR intervals (ms) before injection.
    artefact_index : NDArray[np.intp]
        Position in ``rr_ms`` of each injected artefact, ascending. For "ectopic" it is the
        premature (short) interval, whose successor carries the compensatory pause; for
        "missed" the merged interval; for "extra" the first of the two split parts.
    artefact_kind : tuple[str, ...]
        Kind of each artefact, aligned with ``artefact_index``.
    artefact_clean_index : NDArray[np.intp]
        Position in ``rr_clean_ms`` where each artefact was injected (aligned as above).
    breathing_rate_bpm : float
        Breathing rate (breaths/min) asked for; for a schedule, the duration-weighted mean.
    beat_time_s : NDArray[np.float64]
        Time (s) of the end of each clean interval, from the first beat (``cumsum(rr_clean_ms)``).
    breathing_rate_per_beat_bpm : NDArray[np.float64]
        Nominal (paced or requested) breathing rate at each clean beat.
    rsa_amplitude_per_beat_ms : NDArray[np.float64]
        Nominal RSA amplitude (half peak-to-trough, ms) at each clean beat, after stress and
        resonance are applied and before breath-to-breath depth variability.
    mean_hr_bpm : float
        Mean heart rate set for the generator, after the stress increase.
    stress : float
        Stress level used (0–1).
    resonance_bpm : float | None
        Simulated subject's resonance breathing rate, or None if RSA does not depend on rate.
    algorithm_version : str
        Version tag of this simulator.
    """

    rr_ms: NDArray[np.float64]
    rr_clean_ms: NDArray[np.float64]
    artefact_index: NDArray[np.intp]
    artefact_kind: tuple[str, ...]
    artefact_clean_index: NDArray[np.intp]
    breathing_rate_bpm: float
    beat_time_s: NDArray[np.float64]
    breathing_rate_per_beat_bpm: NDArray[np.float64]
    rsa_amplitude_per_beat_ms: NDArray[np.float64]
    mean_hr_bpm: float
    stress: float
    resonance_bpm: float | None
    algorithm_version: str


def rr_simulate(
    duration_s: float,
    rng: np.random.Generator,
    *,
    mean_hr_bpm: float = 65.0,
    breathing_rate_bpm: float = 12.0,
    rsa_amplitude_ms: float = 30.0,
    mayer_amplitude_ms: float = 25.0,
    stress: float = 0.0,
    ectopic: int | Sequence[int] = (),
    missed: int | Sequence[int] = (),
    extra: int | Sequence[int] = (),
    long: int | Sequence[int] = (),
    short: int | Sequence[int] = (),
    breathing_schedule: Sequence[tuple[float, float]] | None = None,
    breathing_rate_cv: float | None = None,
    resonance_bpm: float | None = None,
    resonance_gain: float = 3.0,
    resonance_width_bpm: float = 1.0,
    mayer_hz: float = 0.1,
    vlf_sd_ms: float = 20.0,
    beat_jitter_sd_ms: float = 4.0,
    hr_trend_bpm: float = 0.0,
) -> SimulatedRr:
    """Simulate an RR-interval series by integral pulse frequency modulation.

    Parameters
    ----------
    duration_s : float
        Length of the series (s), 10 s to 48 h. The clean intervals sum to at most this.
    rng : numpy.random.Generator
        Source of all randomness.
    mean_hr_bpm : float
        Mean heart rate (beats/min) at stress 0, 30–200.
    breathing_rate_bpm : float
        Breathing rate (breaths/min), 2–40; ignored when ``breathing_schedule`` is given.
    rsa_amplitude_ms : float
        RSA amplitude (half the peak-to-trough RR swing, ms) at stress 0, off resonance. IPFM
        averages the modulation over each beat, so the measured swing is slightly smaller
        (about 5 % at 12 breaths/min and 65 bpm).
    mayer_amplitude_ms : float
        Equivalent sine amplitude (ms) of the Mayer-wave noise: its sd is this / sqrt(2).
    stress : float
        0 (relaxed) to 1 (high stress). Heart rate x (1 + 0.30 stress); RSA x (1 - 0.70
        stress); jitter x (1 - 0.50 stress); Mayer waves x (1 - 0.25 stress).
    ectopic, missed, extra, long, short : int or sequence of int
        Artefacts to inject. A sequence gives positions in ``rr_clean_ms``; an int asks for
        that many at random positions in 2..n-4, with at least 3 clean intervals between
        footprints. Footprints (ectopic and missed use intervals i and i+1, the others
        interval i) must not overlap.
    breathing_schedule : sequence of (start_s, rate_bpm), optional
        Stepped breathing, e.g. ``((0, 6.5), (120, 6.0), ...)``; the first start must be 0.
    breathing_rate_cv : float, optional
        Breath-to-breath coefficient of variation of period and depth, 0–0.5. Default: 0.03
        for paced breathing (a schedule, or a rate <= 7.5 breaths/min) and 0.15 otherwise.
    resonance_bpm : float, optional
        The subject's resonance breathing rate (breaths/min). When given, the RSA amplitude at
        breathing rate r is ``rsa_amplitude_ms * (1 + (resonance_gain - 1) *
        exp(-0.5 ((r - resonance_bpm) / resonance_width_bpm) ** 2))``, largest at resonance.
    resonance_gain : float
        RSA amplification at the resonance rate (>= 1).
    resonance_width_bpm : float
        Width (sd, breaths/min) of the resonance curve (> 0).
    mayer_hz : float
        Centre frequency of the Mayer waves (Hz), 0.05–0.15.
    vlf_sd_ms : float
        sd (ms) of the 1/f very-low-frequency component.
    beat_jitter_sd_ms : float
        sd (ms) of the beat-to-beat jitter of the intervals at stress 0. It is applied to the
        beat times (sd / sqrt(2) each), so the series never drifts from the breathing schedule;
        successive interval errors are then anti-correlated (lag-1 correlation -0.5).
    hr_trend_bpm : float
        Linear heart-rate change over the recording (beats/min, end minus start), centred so
        the mean heart rate is kept.

    Returns
    -------
    SimulatedRr
        The series, the clean series and the ground truth.

    Raises
    ------
    InvalidInputError
        Any parameter out of range, or artefact positions that overlap or fall outside.

    Notes
    -----
    IPFM after Mateo & Laguna (2000), "Improved heart rate variability signal analysis from the
    beat occurrence times according to the IPFM model", IEEE Trans Biomed Eng 47(8):985-996.
    The Mayer/respiratory spectral shape follows McSharry et al. (2003), "A dynamical model for
    generating synthetic electrocardiogram signals", IEEE Trans Biomed Eng 50(3):289-294.
    Resonance: Vaschillo et al. (2002), Appl Psychophysiol Biofeedback 27(1):1-27.
    """
    _check_range("duration_s", duration_s, 10.0, 48 * 3600.0)
    _check_range("mean_hr_bpm", mean_hr_bpm, 30.0, 200.0)
    _check_range("breathing_rate_bpm", breathing_rate_bpm, 2.0, 40.0)
    _check_range("stress", stress, 0.0, 1.0)
    _check_range("mayer_hz", mayer_hz, 0.05, 0.15)
    _check_range("resonance_gain", resonance_gain, 1.0, 20.0)
    _check_range("resonance_width_bpm", resonance_width_bpm, 1e-3, 20.0)
    _check_range("hr_trend_bpm", hr_trend_bpm, -60.0, 60.0)
    for name, value in (
        ("rsa_amplitude_ms", rsa_amplitude_ms),
        ("mayer_amplitude_ms", mayer_amplitude_ms),
        ("vlf_sd_ms", vlf_sd_ms),
        ("beat_jitter_sd_ms", beat_jitter_sd_ms),
    ):
        _check_range(name, value, 0.0, 500.0)
    if resonance_bpm is not None:
        _check_range("resonance_bpm", resonance_bpm, 2.0, 40.0)
    schedule = _normalise_schedule(breathing_schedule, breathing_rate_bpm)
    paced = breathing_schedule is not None or breathing_rate_bpm <= PACED_RATE_LIMIT_BPM
    if breathing_rate_cv is None:
        breathing_rate_cv = PACED_BREATHING_CV if paced else SPONTANEOUS_BREATHING_CV
    _check_range("breathing_rate_cv", breathing_rate_cv, 0.0, 0.5)

    hr_bpm = mean_hr_bpm * (1.0 + STRESS_HR_GAIN * stress)
    vagal = 1.0 - STRESS_VAGAL_LOSS * stress
    mayer_ms = mayer_amplitude_ms * (1.0 - STRESS_MAYER_LOSS * stress)
    jitter_ms = beat_jitter_sd_ms * (1.0 - STRESS_JITTER_LOSS * stress)

    def rsa_at(rate_bpm: NDArray[np.float64]) -> NDArray[np.float64]:
        gain = np.ones_like(rate_bpm)
        if resonance_bpm is not None:
            z = (rate_bpm - resonance_bpm) / resonance_width_bpm
            gain = 1.0 + (resonance_gain - 1.0) * np.exp(-0.5 * z * z)
        out: NDArray[np.float64] = rsa_amplitude_ms * vagal * gain
        return out

    # Generate a little more than asked (lower heart rate at the trend's start).
    span_s = duration_s + 20.0 + 3.0 * 60.0 / max(hr_bpm - abs(hr_trend_bpm), 20.0)
    n_grid = math.ceil(span_s * _GRID_HZ) + 1
    t_grid = np.arange(n_grid, dtype=np.float64) / _GRID_HZ

    rate_grid = _schedule_rate(schedule, t_grid)
    phase, depth = _breathing_phase(
        schedule=schedule,
        span_s=span_s,
        cv=breathing_rate_cv,
        rng=rng,
        t_grid=t_grid,
        rsa_at=rsa_at,
    )
    rsa_ms = -depth * np.sin(phase)  # inspiration: heart rate up, RR down
    mayer = _band_noise(
        n_grid, rng, lambda f: np.exp(-0.5 * ((f - mayer_hz) / MAYER_BANDWIDTH_HZ) ** 2)
    )
    vlf = _band_noise(n_grid, rng, _vlf_shape)
    deviation_ms = rsa_ms + mayer * (mayer_ms / math.sqrt(2.0)) + vlf * vlf_sd_ms

    hr0_bpm = hr_bpm + hr_trend_bpm * (t_grid / duration_s - 0.5)
    rr0_ms = 60000.0 / np.maximum(hr0_bpm, 20.0)
    rate_hz = 1000.0 / np.maximum(rr0_ms + deviation_ms, _MIN_RR_MS)

    # IPFM: beat k fires where the integral of the rate reaches k; the first beat is at t = 0.
    integral = np.concatenate(([0.0], np.cumsum(0.5 * (rate_hz[1:] + rate_hz[:-1]) / _GRID_HZ)))
    beat_t = np.interp(np.arange(0.0, integral[-1], 1.0), integral, t_grid)
    # Jitter moves beat times (not intervals), so the series never drifts from the schedule.
    beat_t = beat_t + rng.normal(0.0, jitter_ms / math.sqrt(2.0) / 1000.0, beat_t.size)
    beat_t[0] = 0.0
    rr_all = np.maximum(np.diff(beat_t) * 1000.0, _MIN_RR_MS)
    n_clean = int(np.searchsorted(np.cumsum(rr_all), duration_s * 1000.0, side="right"))
    if n_clean < 8:
        raise InvalidInputError("duration_s too short: fewer than 8 beats simulated")
    rr_clean = np.ascontiguousarray(rr_all[:n_clean], dtype=np.float64)
    beat_time_s = np.cumsum(rr_clean) / 1000.0
    rate_per_beat = np.interp(beat_time_s, t_grid, rate_grid)

    positions = _artefact_positions(
        n_clean,
        rng,
        {"ectopic": ectopic, "missed": missed, "extra": extra, "long": long, "short": short},
    )
    rr_ms, index, kinds, clean_index = _inject(rr_clean, positions, rng)
    weights = np.diff(np.append([s for s, _ in schedule], max(duration_s, schedule[-1][0])))
    mean_rate = float(np.average([r for _, r in schedule], weights=np.maximum(weights, 1e-12)))

    return SimulatedRr(
        rr_ms=rr_ms,
        rr_clean_ms=rr_clean,
        artefact_index=index,
        artefact_kind=kinds,
        artefact_clean_index=clean_index,
        breathing_rate_bpm=breathing_rate_bpm if breathing_schedule is None else mean_rate,
        beat_time_s=beat_time_s,
        breathing_rate_per_beat_bpm=rate_per_beat,
        rsa_amplitude_per_beat_ms=rsa_at(rate_per_beat),
        mean_hr_bpm=hr_bpm,
        stress=float(stress),
        resonance_bpm=resonance_bpm,
        algorithm_version=_VERSION,
    )


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidInputError(f"{name}={value!r} outside [{low}, {high}]")


def _normalise_schedule(
    schedule: Sequence[tuple[float, float]] | None, rate_bpm: float
) -> list[tuple[float, float]]:
    if schedule is None:
        return [(0.0, float(rate_bpm))]
    steps = [(float(start), float(rate)) for start, rate in schedule]
    if not steps or steps[0][0] != 0.0:
        raise InvalidInputError("breathing_schedule must start at 0 s")
    for (start, _), (next_start, _) in itertools.pairwise(steps):
        if not next_start > start:
            raise InvalidInputError("breathing_schedule start times must increase")
    for _, rate in steps:
        _check_range("breathing_schedule rate", rate, 2.0, 40.0)
    return steps


def _schedule_rate(
    schedule: list[tuple[float, float]], t_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    starts = np.array([s for s, _ in schedule])
    rates = np.array([r for _, r in schedule])
    out: NDArray[np.float64] = rates[np.searchsorted(starts, t_s, side="right") - 1]
    return out


def _breathing_phase(
    *,
    schedule: list[tuple[float, float]],
    span_s: float,
    cv: float,
    rng: np.random.Generator,
    t_grid: NDArray[np.float64],
    rsa_at: Callable[[NDArray[np.float64]], NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Breath-by-breath phase (rad) and RSA depth (ms) on the grid."""
    starts = [s for s, _ in schedule]
    rates = [r for _, r in schedule]
    # Random initial phase: the first breath began up to one period before t = 0.
    t = -float(rng.uniform(0.0, 1.0)) * 60.0 / rates[0]
    bounds = [t]
    breath_rates: list[float] = []
    step = 0
    while t < span_s:
        while step + 1 < len(starts) and starts[step + 1] <= t:
            step += 1
        breath_rates.append(rates[step])
        factor = min(max(1.0 + cv * float(rng.standard_normal()), 0.5), 1.5)
        t += 60.0 / rates[step] * factor
        bounds.append(t)
    edges = np.asarray(bounds)
    depth = rsa_at(np.asarray(breath_rates))
    depth = depth * np.maximum(1.0 + cv * rng.standard_normal(depth.size), 0.0)
    phase = np.interp(t_grid, edges, 2.0 * np.pi * np.arange(edges.size, dtype=np.float64))
    depth_grid = np.interp(t_grid, 0.5 * (edges[1:] + edges[:-1]), depth)
    return phase, depth_grid


def _vlf_shape(f_hz: NDArray[np.float64]) -> NDArray[np.float64]:
    inside = (f_hz >= VLF_BAND_HZ[0]) & (f_hz <= VLF_BAND_HZ[1])
    out: NDArray[np.float64] = np.where(
        inside, 1.0 / np.sqrt(np.maximum(f_hz, VLF_BAND_HZ[0])), 0.0
    )
    return out


def _band_noise(
    n: int,
    rng: np.random.Generator,
    amplitude_shape: Callable[[NDArray[np.float64]], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """Unit-sd noise with the given amplitude spectrum shape and random phases."""
    n_fft = int(scipy.fft.next_fast_len(n, real=True))
    f_hz = np.fft.rfftfreq(n_fft, d=1.0 / _GRID_HZ).astype(np.float64)
    amplitude = np.asarray(amplitude_shape(f_hz), dtype=np.float64)
    amplitude[0] = 0.0
    if not np.any(amplitude > 0.0):
        return np.zeros(n)
    spectrum = amplitude * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, f_hz.size))
    noise = np.fft.irfft(spectrum, n_fft)[:n]
    sd = float(np.std(noise))
    out: NDArray[np.float64] = noise / sd if sd > 0.0 else np.zeros(n)
    return out


def _artefact_positions(
    n: int, rng: np.random.Generator, requested: dict[str, int | Sequence[int]]
) -> list[tuple[int, str]]:
    """Validate explicit positions and draw random ones; return sorted (clean index, kind)."""
    taken: set[int] = set()
    chosen: list[tuple[int, str]] = []

    def footprint(i: int, kind: str) -> set[int]:
        return {i, i + 1} if kind in ("ectopic", "missed") else {i}

    for kind, spec in requested.items():
        if isinstance(spec, int):
            continue
        for raw in spec:
            i = int(raw)
            last = n - 2 if kind in ("ectopic", "missed") else n - 1
            if not 0 <= i <= last:
                raise InvalidInputError(f"{kind} position {i} outside [0, {last}]")
            cells = footprint(i, kind)
            if cells & taken:
                raise InvalidInputError(f"{kind} position {i} overlaps another artefact")
            taken |= cells
            chosen.append((i, kind))
    for kind, spec in requested.items():
        if not isinstance(spec, int):
            continue
        if spec < 0:
            raise InvalidInputError(f"{kind} count must be >= 0")
        for _ in range(spec):
            blocked = np.zeros(n + 6, dtype=bool)
            for j in taken:  # keep 3 intervals of clean rhythm around every artefact
                blocked[max(j - 3, 0) : j + 4] = True
            free = np.flatnonzero(~blocked[2 : n - 3]) + 2
            if free.size == 0:
                raise InvalidInputError(f"no room left for {spec} {kind} artefacts in {n} beats")
            i = int(free[int(rng.integers(free.size))])
            taken |= footprint(i, kind)
            chosen.append((i, kind))
    return sorted(chosen)


def _inject(
    rr_clean: NDArray[np.float64], positions: list[tuple[int, str]], rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.intp], tuple[str, ...], NDArray[np.intp]]:
    out: list[float] = []
    index: list[int] = []
    kinds: list[str] = []
    clean_index: list[int] = []
    todo = dict(positions)
    i = 0
    n = rr_clean.size
    while i < n:
        kind = todo.get(i)
        rr = float(rr_clean[i])
        if kind is None:
            out.append(rr)
            i += 1
            continue
        index.append(len(out))
        kinds.append(kind)
        clean_index.append(i)
        if kind == "ectopic":
            out += [
                rr * (1.0 - ECTOPIC_PREMATURITY),
                float(rr_clean[i + 1]) + rr * ECTOPIC_PREMATURITY,
            ]
            i += 2
        elif kind == "missed":
            out.append(rr + float(rr_clean[i + 1]))
            i += 2
        elif kind == "extra":
            split = float(rng.uniform(*EXTRA_SPLIT_RANGE))
            out += [rr * split, rr * (1.0 - split)]
            i += 1
        else:
            out.append(rr * (LONG_FACTOR if kind == "long" else SHORT_FACTOR))
            i += 1
    return (
        np.asarray(out, dtype=np.float64),
        np.asarray(index, dtype=np.intp),
        tuple(kinds),
        np.asarray(clean_index, dtype=np.intp),
    )
