"""Exceptions of the signal core.

Exception tree::

    SignalError                    root; catch this to handle any signal-core failure
    ├── InvalidInputError          (also ValueError) the input cannot be analysed as given:
    │                              wrong shape, NaN/inf, non-positive intervals, bad fs_hz
    └── InsufficientDataError      the input is valid but too short for the requested metric

Pure definitions; no I/O.
"""

from __future__ import annotations


class SignalError(Exception):
    """Root of every error raised by ``shuxin.signal``."""


class InvalidInputError(SignalError, ValueError):
    """The input cannot be analysed as given (shape, NaN/inf, units, sampling rate)."""


class InsufficientDataError(SignalError):
    """The input is valid but too short for the requested metric."""
