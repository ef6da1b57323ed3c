"""Frequency-domain HRV: VLF/LF/HF power (absolute, log, relative, normalised), LF/HF and band
peak frequencies, by Welch on a 4 Hz tachogram or by Lomb-Scargle on the uneven series.

Bands (Task Force 1996), half-open: VLF [0.0033, 0.04), LF [0.04, 0.15), HF [0.15, 0.40) Hz.
Band power is the rectangle-rule integral ``sum(PSD[f in band]) * df`` of a one-sided PSD in
ms^2/Hz, so the three bands add up to the total power in [0.0033, 0.40) Hz.

``method="welch"``
    The beat times are ``t_i = cumsum(RR)_i`` (the end of each interval). The series (t_i, RR_i)
    is interpolated by a natural cubic spline and resampled at 4 Hz from t_0, the 4 Hz series
    is linearly detrended (least squares), and its PSD is Welch's average of periodograms over
    segments of half the record (``L = n // 2`` samples) with 50 % overlap (three segments),
    a periodic Hann window, per-segment mean removal, zero padding to ``nfft =
    next_fast_len(2 L)`` and density scaling ``2 |X|^2 / (fs sum(w^2))``.

``method="lomb"``
    The generalised (floating-mean) Lomb-Scargle periodogram of Zechmeister & Kürster (2009) -
    the same quantity as ``scipy.signal.lombscargle(t, rr - mean, 2 pi f, floating_mean=True)``
    (unit test to 1e-9) - on the frequency grid ``f_k = k df``, ``df = 1 / (4 T)`` (4x
    oversampled, T = t_N - t_1), up to 0.40 Hz, at most 4096 frequencies. SciPy evaluates four
    N x F trigonometric matrices; here the same sums come from powers of ``w = exp(2 pi i df
    t)`` arranged as complex matrix products (BLAS), tens of times faster. The
    periodogram P (ms^2, SciPy's ``normalize=False`` scaling: ``A^2 N / 4`` for a sinusoid of
    amplitude A) becomes a one-sided PSD ``S = 2 P dt`` (ms^2/Hz), dt the mean beat spacing
    (s), so that ``integral_0^{1/(2 dt)} S df`` equals the variance for white noise and a
    sinusoid's peak integrates to ``A^2 / 2``.

Normalised units: ``LF_nu = 100 LF / (LF + HF)``, ``HF_nu = 100 HF / (LF + HF)``. Relative power is
``100 band / total`` with total = power in [0.0033, 0.40) Hz. Quality gates (``hrv_quality``):
HF and the total need >= 60 s, LF (and LF/HF, nu) >= 120 s, VLF > 300 s.

Pure NumPy/SciPy on a cleaned NN series; it does no artefact correction and no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray
from scipy.linalg.lapack import dgtsv

from shuxin.signal.errors import InvalidInputError
from shuxin.signal.hrv_quality import (
    DEFAULT_MAX_CORRECTED_PCT,
    HrvQuality,
    hrv_quality,
    validate_rr_ms,
)
from shuxin.signal.version import algorithm_version

__all__ = [
    "HF_BAND_HZ",
    "LF_BAND_HZ",
    "LOMB_OVERSAMPLING",
    "VLF_BAND_HZ",
    "WELCH_FS_HZ",
    "HrvFrequency",
    "PsdMethod",
    "hrv_frequency",
    "hrv_frequency_validated",
    "rr_psd",
]

PsdMethod = Literal["welch", "lomb"]

VLF_BAND_HZ: Final = (0.0033, 0.04)
LF_BAND_HZ: Final = (0.04, 0.15)
HF_BAND_HZ: Final = (0.15, 0.40)
#: Resampling rate (Hz) of the tachogram for Welch.
WELCH_FS_HZ: Final = 4.0
#: Lomb-Scargle grid oversampling: df = 1 / (LOMB_OVERSAMPLING * T).
LOMB_OVERSAMPLING: Final = 4.0
#: Upper bound on the Lomb-Scargle grid size (long records get a coarser grid).
LOMB_MAX_FREQUENCIES: Final = 4096
#: Fewest RR intervals accepted (a cubic spline needs 4 knots).
MIN_BEATS: Final = 4
#: Complex elements per chunk of the Lomb-Scargle power tables (bounds memory at 4 MiB).
_LOMB_BLOCK_ELEMENTS: Final = 1 << 18
#: Largest m * n * k of one complex matrix product in the Lomb-Scargle sums; OpenBLAS keeps
#: products of up to 65536 * 4 / 4 (complex) multiply-adds on a single thread.
_GEMM_MAX_MNK: Final = 49_152

_VERSION: Final = algorithm_version("hrv_frequency")
_NAN: Final = float("nan")


@dataclass(frozen=True, slots=True)
class HrvFrequency:
    """Frequency-domain HRV of one NN series, by one PSD method.

    Attributes
    ----------
    method : {"welch", "lomb"}
        PSD method that produced every value of this result.
    duration_s : float
        Sum of the intervals (s).
    total_power_ms2 : float
        Power in [0.0033, 0.40) Hz (ms^2).
    vlf_ms2, lf_ms2, hf_ms2 : float
        Band powers (ms^2).
    ln_vlf, ln_lf, ln_hf : float
        Natural logs of the band powers in ms^2.
    vlf_rel_pct, lf_rel_pct, hf_rel_pct : float
        Band power as % of ``total_power_ms2``.
    lf_nu, hf_nu : float
        ``100 LF / (LF + HF)`` and ``100 HF / (LF + HF)`` (normalised units).
    lf_hf : float
        LF / HF.
    vlf_peak_hz, lf_peak_hz, hf_peak_hz : float
        Frequency of the PSD maximum inside each band (Hz).
    suppressed : tuple[str, ...]
        Why a field is NaN.
    notes : tuple[str, ...]
        Caveats that did not suppress a value.
    algorithm_version : str
        Version tag of this algorithm.
    """

    method: PsdMethod
    duration_s: float
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
    suppressed: tuple[str, ...]
    notes: tuple[str, ...]
    algorithm_version: str


def hrv_frequency(
    rr_ms: ArrayLike,
    *,
    method: PsdMethod = "welch",
    corrected_pct: float = 0.0,
    max_corrected_pct: float = DEFAULT_MAX_CORRECTED_PCT,
) -> HrvFrequency:
    """Compute frequency-domain HRV from NN intervals.

    Parameters
    ----------
    rr_ms : array_like
        NN intervals (ms), finite and > 0, at least 4. HF needs >= 60 s of data, LF >= 120 s,
        VLF > 300 s; bands that fail are NaN with a reason in ``suppressed``.
    method : {"welch", "lomb"}
        "welch": natural cubic spline, 4 Hz, linear detrend, Hann, segments of half the
        record with 50 % overlap. "lomb": generalised Lomb-Scargle on the uneven series.
    corrected_pct : float
        Percentage of beats corrected upstream (0–100, NaN if unknown).
    max_corrected_pct : float
        Above this percentage every field is NaN (default 5 %).

    Returns
    -------
    HrvFrequency
        Band powers in ms^2 and derived indices; ``method`` records the PSD method.

    Raises
    ------
    InvalidInputError
        NaN/inf, zero or negative intervals, wrong shape, unknown method.
    InsufficientDataError
        Fewer than 4 intervals.

    References
    ----------
    Task Force of the ESC and NASPE (1996). Circulation 93(5):1043-1065.
    Welch P. (1967). IEEE Trans Audio Electroacoust 15(2):70-73.
    Zechmeister M., Kürster M. (2009). The generalised Lomb-Scargle periodogram. Astron
    Astrophys 496:577-584.
    Laguna P., Moody G.B., Mark R.G. (1998). Power spectral density of unevenly sampled data by
    least-square analysis. IEEE Trans Biomed Eng 45(6):698-715.
    """
    if method not in ("welch", "lomb"):
        raise InvalidInputError(f"method must be 'welch' or 'lomb', got {method!r}")
    rr = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    quality = hrv_quality(rr, corrected_pct=corrected_pct, max_corrected_pct=max_corrected_pct)
    return hrv_frequency_validated(rr, quality, method=method)


def hrv_frequency_validated(
    rr: NDArray[np.float64], quality: HrvQuality, *, method: PsdMethod
) -> HrvFrequency:
    """``hrv_frequency`` of a series already validated (>= 4 intervals) with its gates computed.

    For ``hrv_summary`` and ``hrv_long``, which validate once for all components.
    """
    if method not in ("welch", "lomb"):
        raise InvalidInputError(f"method must be 'welch' or 'lomb', got {method!r}")
    if not quality.hf_ok:
        return _all_nan(method, quality)
    freq_hz, psd = _welch_psd(rr) if method == "welch" else _lomb_psd(rr)
    return _bands(method, freq_hz, psd, quality)


def rr_psd(
    rr_ms: ArrayLike, *, method: PsdMethod = "welch"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One-sided PSD (ms^2/Hz) of an NN series, as used by ``hrv_frequency``.

    Parameters
    ----------
    rr_ms : array_like
        NN intervals (ms), finite and > 0, at least 4.
    method : {"welch", "lomb"}
        See ``hrv_frequency``.

    Returns
    -------
    freq_hz, psd_ms2_per_hz : NDArray[np.float64]
        Uniform frequency grid (Hz; Welch from 0 to 2 Hz, Lomb from df to below 0.40 Hz) and
        the PSD on it (ms^2/Hz).

    Raises
    ------
    InvalidInputError, InsufficientDataError
        As ``hrv_frequency``.
    """
    rr = validate_rr_ms(rr_ms, min_beats=MIN_BEATS)
    if method == "welch":
        return _welch_psd(rr)
    if method == "lomb":
        return _lomb_psd(rr)
    raise InvalidInputError(f"method must be 'welch' or 'lomb', got {method!r}")


# --- Welch ---------------------------------------------------------------------------------


def _natural_cubic_spline(
    x: NDArray[np.float64], y: NDArray[np.float64], x_new: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Evaluate the natural cubic spline through (x, y) at x_new (x strictly increasing)."""
    h = np.diff(x)
    slope = np.diff(y) / h
    n = x.size
    # Tridiagonal system for the second derivatives m_1..m_{n-2} (m_0 = m_{n-1} = 0),
    # solved by LAPACK dgtsv (symmetric, diagonally dominant).
    off = h[1:-1]
    m = np.zeros(n)
    solution = dgtsv(off, 2.0 * (h[:-1] + h[1:]), off, 6.0 * np.diff(slope))
    if solution[-1] != 0:
        raise InvalidInputError("cubic spline system is singular (duplicate beat times)")
    m[1:-1] = solution[3]
    # Per-interval polynomial y_i + c1 u + c2 u^2 + c3 u^3 in u = x - x_i.
    c1 = slope - h * (2.0 * m[:-1] + m[1:]) / 6.0
    c2 = 0.5 * m[:-1]
    c3 = np.diff(m) / (6.0 * h)
    idx = np.searchsorted(x, x_new, side="right") - 1
    np.clip(idx, 0, n - 2, out=idx)
    u = x_new - x[idx]
    out: NDArray[np.float64] = ((c3[idx] * u + c2[idx]) * u + c1[idx]) * u + y[idx]
    return out


def _welch_psd(rr: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t_s = np.cumsum(rr) / 1000.0
    n = math.floor((t_s[-1] - t_s[0]) * WELCH_FS_HZ) + 1
    grid = t_s[0] + np.arange(n) / WELCH_FS_HZ
    tacho = _natural_cubic_spline(t_s, rr, grid)
    # Linear least-squares detrend.
    centred_t = np.arange(n) - (n - 1) / 2.0
    tacho = tacho - tacho.mean()
    sxx = float(np.dot(centred_t, centred_t))
    if sxx > 0.0:
        tacho -= (float(np.dot(centred_t, tacho)) / sxx) * centred_t
    seg = max(n // 2, 2)
    step = max(seg // 2, 1)
    starts = np.arange(0, n - seg + 1, step)
    nfft = int(scipy.fft.next_fast_len(2 * seg, real=True))
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(seg) / seg)  # periodic Hann
    segments = np.stack([tacho[start : start + seg] for start in starts.tolist()])
    segments -= segments.mean(axis=1, keepdims=True)
    spectra = scipy.fft.rfft(segments * window, n=nfft, axis=1)
    power = (spectra.real**2 + spectra.imag**2).mean(axis=0)
    psd = power / (WELCH_FS_HZ * float(np.dot(window, window)))
    psd[1:] *= 2.0
    if nfft % 2 == 0:
        psd[-1] /= 2.0
    freq = np.arange(psd.size) * (WELCH_FS_HZ / nfft)
    return freq, psd


# --- Lomb-Scargle --------------------------------------------------------------------------


def _lomb_psd(rr: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t_s = np.cumsum(rr) / 1000.0
    tau = t_s - t_s[0]
    span_s = float(tau[-1])
    n = rr.size
    df = max(1.0 / (LOMB_OVERSAMPLING * span_s), HF_BAND_HZ[1] / LOMB_MAX_FREQUENCIES)
    n_freq = max(math.ceil(HF_BAND_HZ[1] / df) - 1, 1)
    freq: NDArray[np.float64] = df * np.arange(1, n_freq + 1, dtype=np.float64)
    y = rr - rr.mean()
    power = _lomb_power(tau, y, df, n_freq)
    dt_s = span_s / (n - 1)
    return freq, 2.0 * dt_s * power


def _lomb_power(
    tau: NDArray[np.float64], y: NDArray[np.float64], df: float, n_freq: int
) -> NDArray[np.float64]:
    """Floating-mean Lomb-Scargle power at f_k = k df, k = 1..n_freq (y centred).

    Equal to ``scipy.signal.lombscargle(tau, y, 2 pi f, floating_mean=True)``. The sums over
    samples of cos, sin, cos^2, sin cos, y cos and y sin are the real and imaginary parts of
    ``sum_i z_ik``, ``sum_i z_ik^2`` and ``sum_i y_i z_ik`` with ``z_ik = w_i^k``,
    ``w_i = exp(2 pi i df tau_i)``. Writing k = a B + b + 1, ``z_ik = (w_i^B)^a w_i^(b+1)``, so
    each sum is a complex matrix product (rows a) x (columns b) over the samples: one complex
    exponential per sample, the powers by multiplication, and memory bounded by processing
    the samples in chunks.
    """
    n = tau.size
    w = np.exp(2j * np.pi * df * tau)
    cols = math.ceil(math.sqrt(n_freq))
    rows = math.ceil(n_freq / cols)
    sum_z = np.zeros((rows, cols), dtype=np.complex128)
    sum_z2 = np.zeros_like(sum_z)
    sum_yz = np.zeros_like(sum_z)
    # Products of at most _GEMM_MAX_MNK multiply-adds: OpenBLAS runs them on one thread (a
    # multithreaded small GEMM stalls for milliseconds on a busy machine).
    gemm_chunk = max(8, _GEMM_MAX_MNK // (rows * cols))
    table_chunk = max(gemm_chunk, _LOMB_BLOCK_ELEMENTS // (rows + cols))
    for i0 in range(0, n, table_chunk):
        w_part = w[i0 : i0 + table_chunk]
        powers_b = np.empty((cols, w_part.size), dtype=np.complex128)  # w^(b+1)
        powers_b[0] = w_part
        for b in range(1, cols):
            np.multiply(powers_b[b - 1], w_part, out=powers_b[b])
        powers_a = np.empty((rows, w_part.size), dtype=np.complex128)  # w^(a B)
        powers_a[0] = 1.0
        for a in range(1, rows):
            np.multiply(powers_a[a - 1], powers_b[-1], out=powers_a[a])
        weighted_a = powers_a * y[i0 : i0 + table_chunk]
        squared_a = powers_a * powers_a
        squared_b = powers_b * powers_b
        for j0 in range(0, w_part.size, gemm_chunk):
            part = slice(j0, j0 + gemm_chunk)
            b_t = powers_b[:, part].T
            sum_z += powers_a[:, part] @ b_t
            sum_yz += weighted_a[:, part] @ b_t
            sum_z2 += squared_a[:, part] @ squared_b[:, part].T
    z = sum_z.reshape(-1)[:n_freq] / n
    z2 = sum_z2.reshape(-1)[:n_freq] / n
    yz = sum_yz.reshape(-1)[:n_freq] / n
    c = z.real
    s = z.imag
    yc = yz.real
    ys = yz.imag
    cc = 0.5 * (1.0 + z2.real) - c * c
    ss = 0.5 * (1.0 - z2.real) - s * s
    cs = 0.5 * z2.imag - c * s
    det = cc * ss - cs * cs
    tiny = np.finfo(np.float64).eps
    det = np.where(det > tiny * tiny, det, tiny * tiny)
    quad = (ss * yc * yc + cc * ys * ys - 2.0 * cs * yc * ys) / det
    out: NDArray[np.float64] = 0.5 * n * quad
    return out


# --- band integration ----------------------------------------------------------------------


def _band(
    freq: NDArray[np.float64], psd: NDArray[np.float64], band: tuple[float, float]
) -> tuple[float, float]:
    """(power in ms^2, peak frequency in Hz) of the half-open band; (0, NaN) if it is empty."""
    df = float(freq[1] - freq[0]) if freq.size > 1 else float(freq[0])
    lo = int(np.searchsorted(freq, band[0], side="left"))
    hi = int(np.searchsorted(freq, band[1], side="left"))
    if hi <= lo:
        return 0.0, _NAN
    part = psd[lo:hi]
    return float(part.sum()) * df, float(freq[lo + int(np.argmax(part))])


def _ln(value: float) -> float:
    return math.log(value) if value > 0.0 else _NAN


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0.0 else _NAN


def _bands(
    method: PsdMethod,
    freq: NDArray[np.float64],
    psd: NDArray[np.float64],
    quality: HrvQuality,
) -> HrvFrequency:
    vlf, vlf_peak = _band(freq, psd, VLF_BAND_HZ)
    lf, lf_peak = _band(freq, psd, LF_BAND_HZ)
    hf, hf_peak = _band(freq, psd, HF_BAND_HZ)
    total = vlf + lf + hf
    suppressed = list(quality.reasons)
    notes: list[str] = []
    if not quality.vlf_ok:
        vlf = vlf_peak = _NAN
    if not quality.lf_ok:
        lf = lf_peak = _NAN
    if total <= 0.0:
        suppressed.append("all bands: zero power (constant series)")
    if hf <= 0.0 or lf <= 0.0:
        notes.append("lf or hf power is zero: logs and ratios are NaN")
    lf_plus_hf = lf + hf
    return HrvFrequency(
        method=method,
        duration_s=quality.duration_s,
        total_power_ms2=total,
        vlf_ms2=vlf,
        lf_ms2=lf,
        hf_ms2=hf,
        ln_vlf=_ln(vlf),
        ln_lf=_ln(lf),
        ln_hf=_ln(hf),
        vlf_rel_pct=100.0 * _ratio(vlf, total),
        lf_rel_pct=100.0 * _ratio(lf, total),
        hf_rel_pct=100.0 * _ratio(hf, total),
        lf_nu=100.0 * _ratio(lf, lf_plus_hf),
        hf_nu=100.0 * _ratio(hf, lf_plus_hf),
        lf_hf=_ratio(lf, hf),
        vlf_peak_hz=vlf_peak if total > 0.0 else _NAN,
        lf_peak_hz=lf_peak if total > 0.0 else _NAN,
        hf_peak_hz=hf_peak if total > 0.0 else _NAN,
        suppressed=tuple(suppressed),
        notes=tuple(notes),
        algorithm_version=_VERSION,
    )


def _all_nan(method: PsdMethod, quality: HrvQuality) -> HrvFrequency:
    return HrvFrequency(
        method=method,
        duration_s=quality.duration_s,
        total_power_ms2=_NAN,
        vlf_ms2=_NAN,
        lf_ms2=_NAN,
        hf_ms2=_NAN,
        ln_vlf=_NAN,
        ln_lf=_NAN,
        ln_hf=_NAN,
        vlf_rel_pct=_NAN,
        lf_rel_pct=_NAN,
        hf_rel_pct=_NAN,
        lf_nu=_NAN,
        hf_nu=_NAN,
        lf_hf=_NAN,
        vlf_peak_hz=_NAN,
        lf_peak_hz=_NAN,
        hf_peak_hz=_NAN,
        suppressed=quality.reasons,
        notes=(),
        algorithm_version=_VERSION,
    )
