"""Resonance-frequency assessment from RR intervals recorded over stepped paced breathing.

The subject breathes with a pacer at 6.5, 6.0, 5.5, 5.0 and 4.5 breaths/min, about 2 min each
(Lehrer, Vaschillo & Vaschillo 2000; Shaffer & Meehan 2020). Per step this module measures the
mean peak-to-trough heart-rate swing per breath cycle and the low-frequency (LF) spectral peak
power, and picks the rate that maximises both together, by the rule written in
``resonance_assess``. It analyses a finished recording; it does no I/O and drives no pacer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.hrv_quality import validate_rr_ms
from shuxin.signal.version import algorithm_version

__all__ = ["PROTOCOL_RATES_BPM", "ResonanceAssessment", "ResonanceStep", "resonance_assess"]

#: The standard stepped protocol (breaths/min), in the order breathed.
PROTOCOL_RATES_BPM: Final = (6.5, 6.0, 5.5, 5.0, 4.5)
LF_BAND_HZ: Final = (0.04, 0.15)
PEAK_WINDOW_HZ: Final = 0.030
FREQ_STEP_HZ: Final = 0.002
_MIN_STEP_DATA_S = 60.0

_VERSION = algorithm_version("resonance")


@dataclass(frozen=True, slots=True)
class ResonanceStep:
    """Measurements for one paced-breathing step.

    Attributes
    ----------
    rate_bpm : float
        Paced breathing rate (breaths/min).
    start_s, end_s : float
        Analysed part of the step (s from the recording start), after ``settle_s``.
    n_beats : int
        Beats in the analysed part.
    n_cycles : int
        Complete breath cycles used for the peak-to-trough measure.
    peak_trough_hr_bpm : float
        Mean over breath cycles of (max − min) instantaneous heart rate (60000/RR, beats/min).
    peak_trough_hr_sd_bpm : float
        Sample sd (ddof 1) of the per-cycle swings (NaN for one cycle).
    lf_peak_hz : float
        Frequency of the highest local spectral maximum in the LF band (Hz).
    lf_peak_power_ms2 : float
        Power (ms²) in the 0.030 Hz window centred on ``lf_peak_hz``.
    lf_power_ms2 : float
        Power (ms²) in the whole LF band (0.04–0.15 Hz).
    mean_hr_bpm : float
        Mean of 60000/RR over the analysed part.
    score : float
        0.5 x swing / best swing + 0.5 x LF peak power / best LF peak power (0–1); NaN when
        the step could not be measured.
    notes : tuple[str, ...]
        Why values are NaN, or warnings (e.g. the HR rhythm does not follow the pacer).
    """

    rate_bpm: float
    start_s: float
    end_s: float
    n_beats: int
    n_cycles: int
    peak_trough_hr_bpm: float
    peak_trough_hr_sd_bpm: float
    lf_peak_hz: float
    lf_peak_power_ms2: float
    lf_power_ms2: float
    mean_hr_bpm: float
    score: float
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResonanceAssessment:
    """Result of a resonance-frequency assessment.

    Attributes
    ----------
    steps : tuple[ResonanceStep, ...]
        Per-step table, in protocol order.
    resonance_rate_bpm : float
        Chosen resonance breathing rate (breaths/min).
    resonance_hz : float
        The same in Hz.
    runner_up_bpm : float
        Second-best rate by score (NaN with fewer than two measured steps).
    ambiguous : bool
        True when the runner-up's score is within ``ambiguity_margin`` of the best: repeat the
        assessment or compare the two rates in a session (Shaffer & Meehan 2020).
    reason : str
        Plain-language reason for the choice.
    algorithm_version : str
        Version tag of this algorithm.
    """

    steps: tuple[ResonanceStep, ...]
    resonance_rate_bpm: float
    resonance_hz: float
    runner_up_bpm: float
    ambiguous: bool
    reason: str
    algorithm_version: str


def resonance_assess(
    rr_ms: ArrayLike,
    *,
    rates_bpm: Sequence[float] = PROTOCOL_RATES_BPM,
    step_s: float = 120.0,
    settle_s: float = 15.0,
    fs_hz: float = 4.0,
    ambiguity_margin: float = 0.05,
) -> ResonanceAssessment:
    """Choose the resonance breathing rate from a stepped paced-breathing recording.

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms), cleaned, 1-D, finite, > 0, starting when the first step starts.
    rates_bpm : sequence of float
        Paced rates in the order breathed (breaths/min, 2–15), each held ``step_s``.
    step_s : float
        Duration of each step (s), 60–600.
    settle_s : float
        Seconds dropped at the start of each step while the rhythm adapts, 0–``step_s``/2.
    fs_hz : float
        Tachogram resampling rate for the spectrum (Hz), 2–10.
    ambiguity_margin : float
        Score margin (0–1) under which the choice is flagged ambiguous.

    Returns
    -------
    ResonanceAssessment

    Raises
    ------
    InvalidInputError
        Bad input or parameters.
    InsufficientDataError
        Fewer than two steps have at least 60 s of analysable data, or the series is flat.

    Notes
    -----
    Per step (after ``settle_s``):

    * peak-to-trough HR: the analysed part is cut into consecutive whole breath cycles of
      60 / rate seconds; in each, max − min of the beat-by-beat heart rate 60000/RR; the mean
      over cycles. Any one-period window of a sinusoid contains its maximum and minimum, so the
      cycle phase relative to the pacer does not matter.
    * LF peak power: linear-interpolated tachogram at ``fs_hz``, linear detrend, Hann window,
      periodogram zero-padded to a 0.002 Hz grid; the highest local maximum in 0.04–0.15 Hz and
      the power in a 0.030 Hz window around it (the window of the coherence ratio).

    Rule: each criterion is divided by its best value over the steps and the two are averaged
    with equal weight; the highest average wins. Lehrer et al. (2000) choose by LF amplitude and
    peak-to-trough HR together; Shaffer & Meehan (2020) list both among their criteria and
    advise weighing them when they disagree. Their phase-synchrony criterion (HR vs breathing)
    needs a respiration signal and is not used here.

    References
    ----------
    Lehrer PM, Vaschillo E, Vaschillo B (2000). Resonant frequency biofeedback training to
    increase cardiac variability. Appl Psychophysiol Biofeedback 25(3):177-191.
    Shaffer F, Meehan ZM (2020). A practical guide to resonance frequency assessment for heart
    rate variability biofeedback. Front Neurosci 14:570400.
    """
    rr = validate_rr_ms(rr_ms, min_beats=2)
    rates = [float(r) for r in rates_bpm]
    if not rates or not all(2.0 <= r <= 15.0 for r in rates):
        raise InvalidInputError(f"rates_bpm={rates_bpm!r}: need 1+ rates within 2–15 breaths/min")
    if not (math.isfinite(step_s) and 60.0 <= step_s <= 600.0):
        raise InvalidInputError(f"step_s={step_s!r} outside [60, 600]")
    if not (math.isfinite(settle_s) and 0.0 <= settle_s <= step_s / 2.0):
        raise InvalidInputError(f"settle_s={settle_s!r} outside [0, step_s / 2]")
    if not (math.isfinite(fs_hz) and 2.0 <= fs_hz <= 10.0):
        raise InvalidInputError(f"fs_hz={fs_hz!r} outside [2, 10]")
    if not (0.0 <= ambiguity_margin <= 1.0):
        raise InvalidInputError(f"ambiguity_margin={ambiguity_margin!r} outside [0, 1]")

    beat_t_s = np.cumsum(rr) / 1000.0
    raw = [
        _measure_step(
            beat_t_s=beat_t_s,
            rr=rr,
            rate_bpm=rate,
            start_s=k * step_s + settle_s,
            end_s=(k + 1) * step_s,
            fs_hz=fs_hz,
        )
        for k, rate in enumerate(rates)
    ]
    valid = [i for i, step in enumerate(raw) if math.isfinite(step[0]) and math.isfinite(step[1])]
    if len(valid) < 2:
        raise InsufficientDataError(
            f"resonance assessment needs >= 2 steps with {_MIN_STEP_DATA_S:g} s of data; "
            f"got {len(valid)}"
        )
    best_swing = max(raw[i][0] for i in valid)
    best_power = max(raw[i][1] for i in valid)
    if not (best_swing > 0.0 and best_power > 0.0):
        raise InsufficientDataError("no heart-rate oscillation in any step (flat RR series)")
    scores = [
        0.5 * swing / best_swing + 0.5 * power / best_power if i in valid else math.nan
        for i, (swing, power, *_rest) in enumerate(raw)
    ]
    steps = tuple(
        _step_record(rate, k * step_s + settle_s, (k + 1) * step_s, raw[k], scores[k])
        for k, rate in enumerate(rates)
    )
    order = sorted(valid, key=lambda i: (scores[i], raw[i][0]), reverse=True)
    best, second = order[0], order[1]
    ambiguous = scores[best] - scores[second] < ambiguity_margin
    return ResonanceAssessment(
        steps=steps,
        resonance_rate_bpm=rates[best],
        resonance_hz=rates[best] / 60.0,
        runner_up_bpm=rates[second],
        ambiguous=ambiguous,
        reason=_reason(steps, valid, best, second, ambiguous),
        algorithm_version=_VERSION,
    )


_StepRaw = tuple[float, float, float, float, float, float, int, int, tuple[str, ...]]


def _measure_step(
    *,
    beat_t_s: NDArray[np.float64],
    rr: NDArray[np.float64],
    rate_bpm: float,
    start_s: float,
    end_s: float,
    fs_hz: float,
) -> _StepRaw:
    """(swing, lf_peak_power, swing_sd, lf_peak_hz, lf_power, mean_hr, n_beats, n_cycles, notes)."""
    nan = math.nan
    inside = (beat_t_s >= start_s) & (beat_t_s < end_s)
    n_beats = int(inside.sum())
    covered = min(end_s, float(beat_t_s[-1])) - start_s
    if covered < _MIN_STEP_DATA_S or n_beats < 10:
        note = f"step has {max(covered, 0.0):.0f} s of data (< {_MIN_STEP_DATA_S:g} s)"
        return (nan, nan, nan, nan, nan, nan, n_beats, 0, (note,))
    end_s = start_s + covered
    notes: list[str] = []
    t_in = beat_t_s[inside]
    hr = 60000.0 / rr[inside]

    period_s = 60.0 / rate_bpm
    n_cycles = int(covered // period_s)
    swings = []
    for c in range(n_cycles):
        lo, hi = np.searchsorted(t_in, [start_s + c * period_s, start_s + (c + 1) * period_s])
        if hi - lo >= 3:
            swings.append(float(hr[lo:hi].max() - hr[lo:hi].min()))
    if not swings:
        return (
            nan,
            nan,
            nan,
            nan,
            nan,
            float(hr.mean()),
            n_beats,
            0,
            ("no complete breath cycle",),
        )
    swing = float(np.mean(swings))
    swing_sd = float(np.std(swings, ddof=1)) if len(swings) > 1 else nan

    # Tachogram over [start, end], interpolated from the beats around it.
    first = max(int(np.searchsorted(beat_t_s, start_s, side="right")) - 1, 0)
    last = min(int(np.searchsorted(beat_t_s, end_s)) + 1, beat_t_s.size)
    grid = np.arange(start_s, end_s, 1.0 / fs_hz)
    x = np.interp(grid, beat_t_s[first:last], rr[first:last])
    t_rel = grid - grid.mean()
    slope = float(np.dot(t_rel, x - x.mean()) / np.dot(t_rel, t_rel))
    x = x - x.mean() - slope * t_rel
    taper = np.hanning(x.size + 1)[:-1] if x.size > 1 else np.ones(1)
    n_fft = max(round(fs_hz / FREQ_STEP_HZ), x.size)
    spectrum = np.fft.rfft(x * taper, n_fft)
    psd = (spectrum.real**2 + spectrum.imag**2) / (fs_hz * float(np.sum(taper * taper)))
    psd[1:] *= 2.0
    df = fs_hz / n_fft
    freq = np.arange(psd.size) * df
    k_lo = int(np.searchsorted(freq, LF_BAND_HZ[0] - 1e-9))
    k_hi = int(np.searchsorted(freq, LF_BAND_HZ[1] + 1e-9, side="right"))
    band = psd[k_lo:k_hi]
    lf_power = float(band.sum()) * df
    interior = np.flatnonzero((band[1:-1] >= band[:-2]) & (band[1:-1] > band[2:])) + 1
    k = int(interior[np.argmax(band[interior])]) if interior.size else int(np.argmax(band))
    half = round(PEAK_WINDOW_HZ / df / 2.0 - 0.5)
    peak_power = float(band[max(k - half, 0) : k + half + 1].sum()) * df
    peak_hz = float(freq[k_lo + k])
    if abs(peak_hz - rate_bpm / 60.0) > PEAK_WINDOW_HZ / 2.0:
        notes.append(
            f"LF peak at {60.0 * peak_hz:.1f}/min, not at the paced {rate_bpm:g}/min: "
            "the subject may not have followed the pacer"
        )
    return (
        swing,
        peak_power,
        swing_sd,
        peak_hz,
        lf_power,
        float(hr.mean()),
        n_beats,
        len(swings),
        tuple(notes),
    )


def _step_record(
    rate: float, start_s: float, end_s: float, raw: _StepRaw, score: float
) -> ResonanceStep:
    swing, peak_power, swing_sd, peak_hz, lf_power, mean_hr, n_beats, n_cycles, notes = raw
    return ResonanceStep(
        rate_bpm=rate,
        start_s=start_s,
        end_s=end_s,
        n_beats=n_beats,
        n_cycles=n_cycles,
        peak_trough_hr_bpm=swing,
        peak_trough_hr_sd_bpm=swing_sd,
        lf_peak_hz=peak_hz,
        lf_peak_power_ms2=peak_power,
        lf_power_ms2=lf_power,
        mean_hr_bpm=mean_hr,
        score=score,
        notes=notes,
    )


def _reason(
    steps: tuple[ResonanceStep, ...], valid: list[int], best: int, second: int, ambiguous: bool
) -> str:
    by_swing = max(valid, key=lambda i: steps[i].peak_trough_hr_bpm)
    by_power = max(valid, key=lambda i: steps[i].lf_peak_power_ms2)
    chosen = steps[best]
    head = (
        f"{chosen.rate_bpm:g} breaths/min: peak-to-trough HR {chosen.peak_trough_hr_bpm:.1f} bpm, "
        f"LF peak power {chosen.lf_peak_power_ms2:.0f} ms²"
    )
    if by_swing == by_power == best:
        why = "highest on both criteria"
    else:
        why = (
            f"criteria disagree (peak-to-trough HR favours {steps[by_swing].rate_bpm:g}/min, "
            f"LF peak power favours {steps[by_power].rate_bpm:g}/min); the equal-weight "
            f"normalised score decides ({chosen.score:.3f})"
        )
    tail = (
        f"; ambiguous: {steps[second].rate_bpm:g}/min scores {steps[second].score:.3f}, "
        "repeat the assessment or compare both rates"
        if ambiguous
        else ""
    )
    return f"{head}; {why}{tail}"
