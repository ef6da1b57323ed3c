"""The canonical short-term HRV set in one call: what ``shuxin analyze`` and the gateway report.

``hrv_summary`` runs, on one RR series (typically 5 min):

1. artefact detection and correction (``rr_clean``, Lipponen & Tarvainen 2019) unless
   ``correct=False``;
2. the quality gates (``hrv_quality``): band durations, and every metric suppressed when more
   than ``max_corrected_pct`` % of the beats were corrected;
3. time domain (``hrv_time``), Welch and Lomb-Scargle spectra (``hrv_frequency``), Poincaré
   SD1/SD2, sample entropy and DFA alpha1/alpha2 (``hrv_nonlinear``), Baevsky stress index,
   its square root and the Kubios-style PNS/SNS indices (``hrv_stress``);

and returns one flat frozen dataclass. Welch values carry no suffix, Lomb-Scargle values the
suffix ``_lomb``: each spectral value names the PSD method that produced it. Field names are the
snake_case JSON keys of ``shuxin analyze --json`` (units in the names).

Pure composition of the signal-core functions: no I/O, no clocks, no state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.hrv_frequency import hrv_frequency_validated
from shuxin.signal.hrv_nonlinear import hrv_nonlinear_validated
from shuxin.signal.hrv_quality import DEFAULT_MAX_CORRECTED_PCT, hrv_quality, validate_rr_ms
from shuxin.signal.hrv_stress import hrv_stress_validated
from shuxin.signal.hrv_time import hrv_time_validated
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.version import algorithm_version

__all__ = ["MIN_BEATS", "HrvSummary", "hrv_summary", "summarize_nn"]

#: Fewest RR intervals accepted (artefact detection needs 5).
MIN_BEATS: Final = 5
#: Fewest intervals left after correction (the spectral spline needs 4).
MIN_ANALYSED_BEATS: Final = 4

_VERSION: Final = algorithm_version("hrv_summary")


@dataclass(frozen=True, slots=True)
class HrvSummary:
    """Canonical short-term HRV set of one recording (flat; units in the field names).

    Attributes
    ----------
    n_beats_input : int
        RR intervals given.
    n_beats : int
        RR intervals analysed (after correction: inserted/removed beats change the count).
    duration_s : float
        Sum of the analysed intervals (s).
    cleaned : bool
        Whether artefact correction was applied (``correct=True``).
    artifact_pct : float
        % of input intervals classified as artefacts by ``rr_clean``.
    corrected_pct : float
        % of input intervals changed by the correction (0 when ``correct=False``).
    corrections : tuple[tuple[int, str], ...]
        ``(input_index, kind)`` of every corrected interval.
    mean_rr_ms, mean_hr_bpm, sdnn_ms, rmssd_ms, ln_rmssd, sdsd_ms, nn50, pnn50_pct, hrv_ti
        Time domain, see ``HrvTime`` (mean HR = mean of 60000/RR; pNN50 over N-1 differences).
    total_power_ms2, vlf_ms2, lf_ms2, hf_ms2, ln_vlf, ln_lf, ln_hf, vlf_rel_pct, lf_rel_pct, \
hf_rel_pct, lf_nu, hf_nu, lf_hf, vlf_peak_hz, lf_peak_hz, hf_peak_hz
        Frequency domain by Welch (4 Hz cubic spline), see ``HrvFrequency``.
    total_power_ms2_lomb, ..., hf_peak_hz_lomb
        The same by Lomb-Scargle on the uneven series.
    sd1_ms, sd2_ms, sd2_sd1, sampen, dfa_alpha1, dfa_alpha2
        Nonlinear, see ``HrvNonlinear``.
    baevsky_si, stress_index, pns_index, sns_index
        See ``HrvStress`` (PNS/SNS are Kubios-style, not identical to Kubios).
    suppressed : tuple[str, ...]
        Why fields are NaN, each prefixed by its component.
    notes : tuple[str, ...]
        Caveats that did not suppress a value.
    algorithm_version : str
        Version tag of the summary; the component versions are in ``component_versions``.
    component_versions : tuple[str, ...]
        Versions of every algorithm that contributed.
    """

    n_beats_input: int
    n_beats: int
    duration_s: float
    cleaned: bool
    artifact_pct: float
    corrected_pct: float
    corrections: tuple[tuple[int, str], ...]
    mean_rr_ms: float
    mean_hr_bpm: float
    sdnn_ms: float
    rmssd_ms: float
    ln_rmssd: float
    sdsd_ms: float
    nn50: float
    pnn50_pct: float
    hrv_ti: float
    total_power_ms2: float
    vlf_ms2: float
    lf_ms2: float
    hf_ms2: float
    ln_vlf: float
    ln_lf: float
    ln_hf: float
    vlf_rel_pct: float
    lf_rel_pct: float
    hf_rel_pct: float
    lf_nu: float
    hf_nu: float
    lf_hf: float
    vlf_peak_hz: float
    lf_peak_hz: float
    hf_peak_hz: float
    total_power_ms2_lomb: float
    vlf_ms2_lomb: float
    lf_ms2_lomb: float
    hf_ms2_lomb: float
    ln_vlf_lomb: float
    ln_lf_lomb: float
    ln_hf_lomb: float
    vlf_rel_pct_lomb: float
    lf_rel_pct_lomb: float
    hf_rel_pct_lomb: float
    lf_nu_lomb: float
    hf_nu_lomb: float
    lf_hf_lomb: float
    vlf_peak_hz_lomb: float
    lf_peak_hz_lomb: float
    hf_peak_hz_lomb: float
    sd1_ms: float
    sd2_ms: float
    sd2_sd1: float
    sampen: float
    dfa_alpha1: float
    dfa_alpha2: float
    baevsky_si: float
    stress_index: float
    pns_index: float
    sns_index: float
    suppressed: tuple[str, ...]
    notes: tuple[str, ...]
    algorithm_version: str
    component_versions: tuple[str, ...]


def hrv_summary(
    rr_ms: ArrayLike,
    *,
    correct: bool = True,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
) -> HrvSummary:
    """Compute the canonical short-term HRV set (time, Welch, Lomb, nonlinear, stress).

    Parameters
    ----------
    rr_ms : array_like
        RR intervals (ms) as recorded, finite and > 0, at least 5. Typically 5 min; the band
        gates need >= 60 s (HF), >= 120 s (LF) and > 300 s (VLF).
    correct : bool
        Detect and correct artefacts first (default). ``False`` analyses the series exactly
        as given (for comparison with other tools); artefacts are still counted and reported
        in ``artifact_pct`` but nothing is changed and nothing is gated on them.
    max_corrected_pct : float
        When more than this % of the beats were corrected, every metric is NaN (default 5 %).

    Returns
    -------
    HrvSummary
        Every field, NaN where a gate suppressed it (reason in ``suppressed``).

    Raises
    ------
    InvalidInputError
        NaN/inf, zero or negative intervals, wrong shape, ``max_corrected_pct`` outside
        0–100.
    InsufficientDataError
        Fewer than 5 intervals, or too few left after correction.

    References
    ----------
    Task Force of the ESC and NASPE (1996). Circulation 93(5):1043-1065.
    Lipponen J.A., Tarvainen M.P. (2019). J Med Eng Technol 43(3):173-181.
    """
    rr_in = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    cleaning = rr_clean(rr_in, correct=correct)
    notes = [f"rr_clean: {note}" for note in cleaning.notes]
    if not correct and cleaning.artefact_pct > max_corrected_pct:
        notes.append(
            f"{cleaning.artefact_pct:.1f} % of beats look like artefacts; "
            "analysed uncorrected as asked"
        )
    return summarize_nn(
        cleaning.rr_ms if correct else rr_in,
        n_beats_input=int(rr_in.size),
        cleaned=correct,
        artifact_pct=cleaning.artefact_pct,
        corrected_pct=cleaning.corrected_pct,
        corrections=cleaning.corrections,
        max_corrected_pct=max_corrected_pct,
        notes=tuple(notes),
        cleaning_version=cleaning.algorithm_version,
    )


def summarize_nn(
    rr: NDArray[np.float64],
    *,
    n_beats_input: int,
    cleaned: bool,
    artifact_pct: float,
    corrected_pct: float,
    corrections: tuple[tuple[int, str], ...],
    max_corrected_pct: float,
    notes: tuple[str, ...],
    cleaning_version: str,
) -> HrvSummary:
    """Build the summary of an NN series that was already cleaned (or deliberately not).

    For ``hrv_summary`` and ``hrv_long`` (which cleans a whole record once, then summarises
    each segment). ``rr`` is validated once here (>= 4 intervals, else
    ``InsufficientDataError``); the percentages gate as in ``hrv_summary``.
    """
    all_notes = list(notes)
    rr = validate_rr_ms(rr, min_beats=MIN_ANALYSED_BEATS)
    quality = hrv_quality(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)
    time = hrv_time_validated(rr, quality)
    welch = hrv_frequency_validated(rr, quality, method="welch")
    lomb = hrv_frequency_validated(rr, quality, method="lomb")
    nonlinear = hrv_nonlinear_validated(rr, quality)
    stress = hrv_stress_validated(rr, quality)

    suppressed: list[str] = []
    for name, reasons in (
        ("time", time.suppressed),
        ("welch", welch.suppressed),
        ("lomb", lomb.suppressed),
        ("nonlinear", nonlinear.suppressed),
        ("stress", stress.suppressed),
    ):
        suppressed.extend(f"{name}: {reason}" for reason in reasons)
    for name, extra in (
        ("time", time.notes),
        ("welch", welch.notes),
        ("lomb", lomb.notes),
        ("stress", stress.notes),
    ):
        all_notes.extend(f"{name}: {note}" for note in extra)

    return HrvSummary(
        n_beats_input=n_beats_input,
        n_beats=time.n_beats,
        duration_s=time.duration_s,
        cleaned=cleaned,
        artifact_pct=artifact_pct,
        corrected_pct=corrected_pct,
        corrections=corrections,
        mean_rr_ms=time.mean_rr_ms,
        mean_hr_bpm=time.mean_hr_bpm,
        sdnn_ms=time.sdnn_ms,
        rmssd_ms=time.rmssd_ms,
        ln_rmssd=time.ln_rmssd,
        sdsd_ms=time.sdsd_ms,
        nn50=time.nn50,
        pnn50_pct=time.pnn50_pct,
        hrv_ti=time.hrv_ti,
        total_power_ms2=welch.total_power_ms2,
        vlf_ms2=welch.vlf_ms2,
        lf_ms2=welch.lf_ms2,
        hf_ms2=welch.hf_ms2,
        ln_vlf=welch.ln_vlf,
        ln_lf=welch.ln_lf,
        ln_hf=welch.ln_hf,
        vlf_rel_pct=welch.vlf_rel_pct,
        lf_rel_pct=welch.lf_rel_pct,
        hf_rel_pct=welch.hf_rel_pct,
        lf_nu=welch.lf_nu,
        hf_nu=welch.hf_nu,
        lf_hf=welch.lf_hf,
        vlf_peak_hz=welch.vlf_peak_hz,
        lf_peak_hz=welch.lf_peak_hz,
        hf_peak_hz=welch.hf_peak_hz,
        total_power_ms2_lomb=lomb.total_power_ms2,
        vlf_ms2_lomb=lomb.vlf_ms2,
        lf_ms2_lomb=lomb.lf_ms2,
        hf_ms2_lomb=lomb.hf_ms2,
        ln_vlf_lomb=lomb.ln_vlf,
        ln_lf_lomb=lomb.ln_lf,
        ln_hf_lomb=lomb.ln_hf,
        vlf_rel_pct_lomb=lomb.vlf_rel_pct,
        lf_rel_pct_lomb=lomb.lf_rel_pct,
        hf_rel_pct_lomb=lomb.hf_rel_pct,
        lf_nu_lomb=lomb.lf_nu,
        hf_nu_lomb=lomb.hf_nu,
        lf_hf_lomb=lomb.lf_hf,
        vlf_peak_hz_lomb=lomb.vlf_peak_hz,
        lf_peak_hz_lomb=lomb.lf_peak_hz,
        hf_peak_hz_lomb=lomb.hf_peak_hz,
        sd1_ms=nonlinear.sd1_ms,
        sd2_ms=nonlinear.sd2_ms,
        sd2_sd1=nonlinear.sd2_sd1,
        sampen=nonlinear.sampen,
        dfa_alpha1=nonlinear.dfa_alpha1,
        dfa_alpha2=nonlinear.dfa_alpha2,
        baevsky_si=stress.baevsky_si,
        stress_index=stress.stress_index,
        pns_index=stress.pns_index,
        sns_index=stress.sns_index,
        suppressed=tuple(suppressed),
        notes=tuple(all_notes),
        algorithm_version=_VERSION,
        component_versions=(
            cleaning_version,
            time.algorithm_version,
            welch.algorithm_version,
            nonlinear.algorithm_version,
            stress.algorithm_version,
        ),
    )
