"""EDA cleaning: a Butterworth low-pass on skin conductance in µS (Boucsein et al. 2012).

Offline analyses filter forward and backward (zero phase, no time shift of SCR onsets and
peaks); live analyses filter forward only (causal), with exactly the arithmetic that
``shuxin.signal.eda_stream.EdaStream`` repeats sample by sample. This module also holds the
input checks shared by the ``eda_*`` modules.

Pure NumPy/SciPy: no I/O, no clocks, no state between calls. It must not resample, detrend,
fill gaps or judge quality (that is ``eda_quality``); NaN/inf input is rejected, never patched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import scipy.signal
from numpy.typing import ArrayLike, NDArray

from shuxin.signal.errors import InsufficientDataError, InvalidInputError
from shuxin.signal.version import algorithm_version

#: Default low-pass cutoff (Hz). SCRs rise over 0.5-5 s, so nearly all of their energy lies
#: below 1 Hz; a 1 Hz cutoff keeps SCR amplitudes (within about 1-2 % for 1-3 s rises) while
#: removing most sensor noise (NeuroKit2 uses 3 Hz, which leaves more noise at 32-1000 Hz).
DEFAULT_CUTOFF_HZ: Final = 1.0
#: Default Butterworth order per pass (forward-backward doubles the effective order). Order 2:
#: order 4 rings before fast, large SCRs by about 2 % of their amplitude, enough to pass the
#: 0.01 µS floor as a false SCR 1 s before the true onset; order 1 never rings but smears
#: onsets and peaks (rise times +0.7 s instead of +0.3 s on 1 s rises); order 2 keeps about 1 %
#: ringing, which gave 6 false SCRs in 1920 simulated ones (measured, see docs/signal/eda.md).
DEFAULT_ORDER: Final = 2
#: Accepted sampling rates (Hz): consumer GSR modules send 4-32 Hz, lab amplifiers up to kHz.
MIN_FS_HZ: Final = 1.0
MAX_FS_HZ: Final = 10_000.0
#: The filter is skipped (and a note says so) when the cutoff reaches this fraction of Nyquist.
MAX_CUTOFF_FRACTION_OF_NYQUIST: Final = 0.9

_COMPONENT: Final = "eda_clean"


@dataclass(frozen=True, slots=True)
class EdaClean:
    """Low-pass filtered skin conductance.

    Attributes
    ----------
    eda_us : NDArray[np.float64]
        Filtered skin conductance (µS), same length as the input.
    fs_hz : float
        Sampling rate (Hz).
    cutoff_hz : float
        Low-pass cutoff (Hz) of the Butterworth design (-3 dB per pass).
    order : int
        Butterworth order per pass.
    zero_phase : bool
        True: forward-backward (offline); False: forward only (causal, live).
    filtered : bool
        False when filtering was skipped (cutoff too close to Nyquist); see ``notes``.
    notes : tuple[str, ...]
        Why something was skipped, in plain words.
    algorithm_version : str
        Version tag of this algorithm.
    """

    eda_us: NDArray[np.float64]
    fs_hz: float
    cutoff_hz: float
    order: int
    zero_phase: bool
    filtered: bool
    notes: tuple[str, ...]
    algorithm_version: str


def eda_clean(
    eda_us: ArrayLike,
    fs_hz: float,
    *,
    cutoff_hz: float = DEFAULT_CUTOFF_HZ,
    order: int = DEFAULT_ORDER,
    zero_phase: bool = True,
) -> EdaClean:
    """Low-pass filter skin conductance with a Butterworth filter.

    Parameters
    ----------
    eda_us : array_like of float, shape (n,)
        Skin conductance (µS), n >= 2, all finite.
    fs_hz : float
        Sampling rate (Hz), 1 to 10000.
    cutoff_hz : float, default 1.0
        Cutoff (Hz), > 0. When it is >= 0.9 x Nyquist the signal is returned unfiltered and
        ``notes`` says so (e.g. 1 Hz cutoff at fs < 2.2 Hz).
    order : int, default 2
        Butterworth order, 1 to 8.
    zero_phase : bool, default True
        True: ``scipy.signal.sosfiltfilt`` (offline, no delay, odd extension of
        ``max(default, 3 x fs/cutoff)`` samples at each end). False: ``sosfilt`` started in
        steady state at the first sample (causal, what the live stream computes).

    Returns
    -------
    EdaClean

    Raises
    ------
    InvalidInputError
        NaN/inf, not 1-D, bad ``fs_hz``/``cutoff_hz``/``order``.
    InsufficientDataError
        Fewer than 2 samples.

    References
    ----------
    Boucsein W. et al. (2012) Publication recommendations for electrodermal measurements.
    Psychophysiology 49(8):1017-1034 (low-pass filtering of SC before scoring).
    """
    x = checked_eda(eda_us, fs_hz)
    sos, notes = lowpass_sos(fs_hz, cutoff_hz, order)
    if sos is None:
        y = x.copy()
    elif zero_phase:
        default_pad = 3 * (2 * sos.shape[0] + 1)
        padlen = min(x.size - 1, max(default_pad, round(3.0 * fs_hz / cutoff_hz)))
        y = np.asarray(scipy.signal.sosfiltfilt(sos, x, padlen=padlen), dtype=np.float64)
    else:
        zi = scipy.signal.sosfilt_zi(sos) * x[0]
        y = np.asarray(scipy.signal.sosfilt(sos, x, zi=zi)[0], dtype=np.float64)
    return EdaClean(
        eda_us=y,
        fs_hz=float(fs_hz),
        cutoff_hz=float(cutoff_hz),
        order=int(order),
        zero_phase=zero_phase,
        filtered=sos is not None,
        notes=notes,
        algorithm_version=algorithm_version(_COMPONENT),
    )


def lowpass_sos(
    fs_hz: float, cutoff_hz: float, order: int
) -> tuple[NDArray[np.float64] | None, tuple[str, ...]]:
    """Design the Butterworth low-pass used by ``eda_clean`` and ``EdaStream``.

    Returns the second-order sections, or ``None`` with a note when the cutoff is too close
    to Nyquist to filter meaningfully.
    """
    check_fs(fs_hz)
    if not (np.isfinite(cutoff_hz) and cutoff_hz > 0.0):
        raise InvalidInputError(f"cutoff_hz must be finite and > 0, got {cutoff_hz!r}")
    if not (isinstance(order, int | np.integer) and 1 <= order <= 8):
        raise InvalidInputError(f"order must be an integer 1..8, got {order!r}")
    nyquist = fs_hz / 2.0
    if cutoff_hz >= MAX_CUTOFF_FRACTION_OF_NYQUIST * nyquist:
        return None, (
            f"low-pass skipped: cutoff {cutoff_hz:g} Hz is >= "
            f"{MAX_CUTOFF_FRACTION_OF_NYQUIST:g} x Nyquist ({nyquist:g} Hz)",
        )
    return np.array(_butter_lowpass(float(fs_hz), float(cutoff_hz), int(order))), ()


@lru_cache(maxsize=64)
def _butter_lowpass(fs_hz: float, cutoff_hz: float, order: int) -> tuple[tuple[float, ...], ...]:
    """Second-order sections of the design, cached (designing costs ~1 ms, filtering less)."""
    sos = scipy.signal.butter(order, cutoff_hz, btype="lowpass", output="sos", fs=fs_hz)
    return tuple(tuple(float(c) for c in row) for row in sos)


def check_fs(fs_hz: float) -> None:
    """Raise ``InvalidInputError`` unless ``fs_hz`` is a finite rate in 1..10000 Hz."""
    if not (isinstance(fs_hz, int | float | np.integer | np.floating) and np.isfinite(fs_hz)):
        raise InvalidInputError(f"fs_hz must be a finite number, got {fs_hz!r}")
    if not MIN_FS_HZ <= float(fs_hz) <= MAX_FS_HZ:
        raise InvalidInputError(f"fs_hz must be in {MIN_FS_HZ:g}..{MAX_FS_HZ:g} Hz, got {fs_hz!r}")


def checked_eda(eda_us: ArrayLike, fs_hz: float, *, min_samples: int = 2) -> NDArray[np.float64]:
    """Validate an EDA array (1-D, finite, >= ``min_samples``) and ``fs_hz``; return float64.

    Raises ``InvalidInputError`` for NaN/inf, wrong shape or a bad rate, and
    ``InsufficientDataError`` when there are fewer than ``min_samples`` samples.
    """
    check_fs(fs_hz)
    try:
        x = np.asarray(eda_us, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"eda_us is not numeric: {exc}") from exc
    if x.ndim != 1:
        raise InvalidInputError(f"eda_us must be 1-D, got shape {x.shape}")
    if x.size < min_samples:
        raise InsufficientDataError(f"need >= {min_samples} EDA samples, got {x.size}")
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"eda_us has {int(bad.sum())} NaN/inf samples (first at index {first}); "
            "mark gaps before analysis instead of sending NaN"
        )
    return x
