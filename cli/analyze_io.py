"""Reading recordings for ``shuxin analyze``: RR text, Kubios-style RR text, CSV, waveforms.

Turns files into NumPy arrays with units in their names and raises :class:`RecordingFileError`
naming the file, the line and the problem. Nothing here computes a metric.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RrUnit = Literal["auto", "ms", "s"]

#: Median RR below this (in the file's own unit) means the file is in seconds.
_SECONDS_IF_MEDIAN_BELOW = 10.0


class RecordingFileError(Exception):
    """A recording file cannot be read; the message names the file, line and problem."""


@dataclass(frozen=True, slots=True)
class RrRecording:
    """RR intervals read from a file, in milliseconds, and how the unit was decided."""

    rr_ms: NDArray[np.float64]
    unit: Literal["ms", "s"]
    unit_detected: bool


def _numbers_from_line(text: str) -> list[str]:
    return text.replace(",", " ").replace(";", " ").replace("\t", " ").split()


def _to_float(token: str, path: Path, line_no: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise RecordingFileError(f"{path}:{line_no}: {token[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordingFileError(f"{path}:{line_no}: {token[:40]!r} is not a finite number")
    return value


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise RecordingFileError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise RecordingFileError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise RecordingFileError(f"{path}: cannot read ({exc.strerror})") from None


def _is_header(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return True
    return False


def read_column_text(path: Path, column: str | None = None) -> NDArray[np.float64]:
    """Read one numeric column from a text or CSV file.

    Plain text: one value per line, or several whitespace/comma-separated columns (the LAST
    column is used, which covers Kubios-style ``time RR`` exports). Lines starting with ``#``
    or ``%`` and non-numeric header lines before the first number are skipped. With
    ``column`` the file is read as CSV with a header row and that column (name or 0-based
    index) is used.
    """
    if column is not None:
        return _read_csv_column(path, column)
    values: list[float] = []
    seen_number = False
    for line_no, raw in enumerate(_read_lines(path), start=1):
        text = raw.strip()
        if not text or text[0] in "#%":
            continue
        tokens = _numbers_from_line(text)
        if not seen_number and _is_header(tokens):
            continue
        seen_number = True
        values.append(_to_float(tokens[-1], path, line_no))
    if not values:
        raise RecordingFileError(f"{path}: no numeric values found")
    return np.asarray(values, dtype=np.float64)


def _read_csv_column(path: Path, column: str) -> NDArray[np.float64]:
    lines = _read_lines(path)
    reader = csv.reader(line for line in lines if line.strip() and line.lstrip()[0] not in "#%")
    try:
        header = next(reader)
    except StopIteration:
        raise RecordingFileError(f"{path}: empty CSV file") from None
    names = [h.strip() for h in header]
    if column in names:
        index = names.index(column)
    elif column.isdigit() and int(column) < len(names):
        index = int(column)
    else:
        raise RecordingFileError(
            f"{path}: no column {column!r}; columns are {', '.join(names) or '(none)'}"
        )
    values: list[float] = []
    for row_no, row in enumerate(reader, start=2):
        if index >= len(row):
            raise RecordingFileError(f"{path}:{row_no}: row has no column {column!r}")
        values.append(_to_float(row[index].strip(), path, row_no))
    if not values:
        raise RecordingFileError(f"{path}: column {column!r} has no values")
    return np.asarray(values, dtype=np.float64)


def read_rr(path: Path, unit: RrUnit = "auto", column: str | None = None) -> RrRecording:
    """Read RR intervals in ms or s (auto-detected from the median unless ``unit`` is given)."""
    values = read_column_text(path, column)
    detected = unit == "auto"
    chosen: Literal["ms", "s"]
    if unit == "auto":
        chosen = "s" if float(np.median(values)) < _SECONDS_IF_MEDIAN_BELOW else "ms"
    else:
        chosen = unit
    rr_ms = values * 1000.0 if chosen == "s" else values
    bad = np.flatnonzero(rr_ms <= 0)
    if bad.size:
        raise RecordingFileError(
            f"{path}: RR interval #{int(bad[0]) + 1} is {values[bad[0]]:g} — intervals must be > 0"
        )
    return RrRecording(rr_ms=rr_ms, unit=chosen, unit_detected=detected)


def read_waveform(path: Path, column: str | None = None) -> NDArray[np.float64]:
    """Read a regularly sampled waveform (ECG, PPG, EDA): one sample per line or a CSV column."""
    return read_column_text(path, column)
