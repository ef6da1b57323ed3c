"""Session exports as files: a CSV bundle (zip), Kubios-style RR text, and EDF+ (via edfio).

Pure: :class:`ExportData` (read by the route from the SQL and time-series stores) in, bytes
out. No I/O beyond building the file in memory, no audit, no permission checks (the route does
those). What goes in is the pseudonym; a real name only when the caller passes ``real_name``
(an identifiable export the route has authorised and audited). File names never carry a name.

Formats (``docs/api-reports-exports.md``):

- ``csv``: a zip of ``session.csv`` (key,value), ``beats.csv`` (RR ms with the signal core's
  ``rr_clean`` beat class and an artifact flag), ``eda.csv`` (samples with flags),
  ``events.csv`` (markers, phases, ratings, notes, gaps) and ``metrics.csv`` (per-phase and
  whole-session metrics and deltas with their algorithm and protocol versions).
- ``kubios``: RR intervals in seconds, one per line, after header lines starting with ``#``
  (tell Kubios' text import to skip that many header lines; the count is in the first line).
- ``edf``: EDF+ with a 4 Hz RR tachogram (ms) and EDA (µS) resampled to 4 Hz, annotations for
  phases and events; the patient field carries the pseudonym (and, identifiable, the name when
  EDF's ASCII header can hold it — otherwise the name is a UTF-8 annotation at 0 s).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import numpy as np
from edfio import Edf, EdfAnnotation, EdfSignal, Patient, Recording
from numpy.typing import NDArray

from shuxin.gateway.sql_store import Phase, Rating, SessionEvent, SessionRecord, Summary
from shuxin.gateway.timeseries import epoch_us, from_epoch_us
from shuxin.signal.errors import SignalError
from shuxin.signal.rr_clean import MIN_BEATS, rr_clean

EXPORT_VERSION: Final = "1"
#: Sampling rate of the resampled EDF signals (RR tachogram and EDA), Hz.
EDF_FS_HZ: Final = 4.0
#: Zip member names of the CSV export.
CSV_MEMBERS: Final = ("session.csv", "beats.csv", "eda.csv", "events.csv", "metrics.csv")


class ExportFormat(StrEnum):
    """The export formats."""

    CSV = "csv"
    KUBIOS = "kubios"
    EDF = "edf"


MEDIA_TYPES: Final[Mapping[ExportFormat, str]] = {
    ExportFormat.CSV: "application/zip",
    ExportFormat.KUBIOS: "text/plain; charset=utf-8",
    ExportFormat.EDF: "application/octet-stream",
}
_SUFFIX: Final[Mapping[ExportFormat, str]] = {
    ExportFormat.CSV: "csv.zip",
    ExportFormat.KUBIOS: "rr.txt",
    ExportFormat.EDF: "edf",
}


@dataclass(frozen=True, slots=True)
class Beat:
    """One stored RR interval: its time (µs since the epoch), device, value and contact."""

    time_us: int
    device: str
    rr_ms: float
    contact: int | None = None


@dataclass(frozen=True, slots=True)
class EdaSample:
    """One stored skin-conductance sample with its flags."""

    time_us: int
    device: str
    eda_us: float
    contact_lost: int = 0
    clipped: int = 0
    gap_before: int = 0


@dataclass(frozen=True, slots=True)
class ExportData:
    """Everything an export of one session holds."""

    session: SessionRecord
    subject_code: str
    phases: Sequence[Phase] = ()
    events: Sequence[SessionEvent] = ()
    ratings: Sequence[Rating] = ()
    summaries: Sequence[Summary] = ()
    beats: Sequence[Beat] = ()
    eda: Sequence[EdaSample] = ()
    real_name: str | None = field(default=None, repr=False)

    @property
    def t0(self) -> datetime:
        """The session's start (the time origin of offsets)."""
        if self.session.started_at is not None:
            return self.session.started_at
        times = [b.time_us for b in self.beats] + [s.time_us for s in self.eda]
        return from_epoch_us(min(times)) if times else self.session.ended_at or _EPOCH_FALLBACK


_EPOCH_FALLBACK: Final = from_epoch_us(0)


def export_filename(session_id: str, fmt: ExportFormat) -> str:
    """The download's file name: session id and format only (never a person's name)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in session_id)
    return f"{safe}.{_SUFFIX[fmt]}"


def primary_device(beats: Sequence[Beat]) -> str | None:
    """The device with the most beats (the one Kubios and EDF exports use)."""
    counts: dict[str, int] = {}
    for beat in beats:
        counts[beat.device] = counts.get(beat.device, 0) + 1
    return max(sorted(counts), key=lambda d: counts[d]) if counts else None


def primary_beats(beats: Sequence[Beat]) -> list[Beat]:
    """The primary device's beats in time order."""
    device = primary_device(beats)
    return sorted((b for b in beats if b.device == device), key=lambda b: b.time_us)


def beat_classes(rr_ms: Sequence[float]) -> tuple[list[str], str | None]:
    """``rr_clean`` class per beat (``""`` when too few beats to classify) and its version."""
    if len(rr_ms) < MIN_BEATS:
        return [""] * len(rr_ms), None
    try:
        cleaning = rr_clean(np.asarray(rr_ms, dtype=np.float64), correct=False)
    except SignalError:
        return [""] * len(rr_ms), None
    return list(cleaning.beat_class), cleaning.algorithm_version


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _offset_s(data: ExportData, time_us: int) -> float:
    return round((time_us - epoch_us(data.t0)) / 1e6, 6)


def _csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _session_rows(data: ExportData, extra: Mapping[str, str | None]) -> list[tuple[str, str]]:
    s = data.session
    rows: list[tuple[str, str | None]] = [
        ("session_id", s.id),
        ("subject_code", data.subject_code),
        ("station_id", s.station_id),
        ("protocol_id", s.protocol_id),
        ("protocol_version", s.protocol_version),
        ("status", s.status.value),
        ("started_at", _iso(s.started_at) if s.started_at else None),
        ("ended_at", _iso(s.ended_at) if s.ended_at else None),
        ("end_reason", s.end_reason),
        ("devices", " ".join(s.devices)),
        ("export_version", EXPORT_VERSION),
        *extra.items(),
    ]
    if data.real_name is not None:
        rows.append(("real_name", data.real_name))
    return [(key, "" if value is None else value) for key, value in rows]


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Nested metric documents (``deltas``, ``personal_baseline``…) as dotted names; lists
    as JSON."""
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for key, inner in sorted(value.items()):
            out.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(list(value), ensure_ascii=False))]
    return [(prefix, value)]


def _metric_rows(data: ExportData) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for summary in sorted(data.summaries, key=lambda s: s.phase_index):
        versions = json.dumps(dict(summary.algorithm_versions), sort_keys=True)
        scope = "session" if summary.phase_index < 0 else "phase"
        for key, value in sorted(summary.metrics.items()):
            # Whole-session deltas read "training_minus_baseline.ln_rmssd" (no "deltas." prefix).
            for name, leaf in _flatten("" if key == "deltas" else key, value):
                rows.append(
                    [scope, summary.phase_index, summary.phase_name or "", name, leaf, versions,
                     summary.protocol_version or ""]
                )  # fmt: skip
    return rows


def export_csv(data: ExportData) -> bytes:
    """The CSV bundle (a zip of :data:`CSV_MEMBERS`)."""
    by_device: dict[str, list[Beat]] = {}
    for beat in sorted(data.beats, key=lambda b: (b.device, b.time_us)):
        by_device.setdefault(beat.device, []).append(beat)
    beat_rows: list[list[Any]] = []
    versions: set[str] = set()
    for device, beats in by_device.items():
        classes, version = beat_classes([b.rr_ms for b in beats])
        if version:
            versions.add(version)
        for beat, cls in zip(beats, classes, strict=True):
            beat_rows.append(
                [_iso(from_epoch_us(beat.time_us)), _offset_s(data, beat.time_us), device,
                 beat.rr_ms, "" if beat.contact is None else beat.contact, cls,
                 "" if not cls else int(cls != "normal")]
            )  # fmt: skip
    beat_rows.sort(key=lambda row: (row[1], row[2]))
    eda_rows = [
        [_iso(from_epoch_us(s.time_us)), _offset_s(data, s.time_us), s.device, s.eda_us,
         s.contact_lost, s.clipped, s.gap_before]
        for s in sorted(data.eda, key=lambda s: (s.time_us, s.device))
    ]  # fmt: skip
    event_rows = [
        [_iso(e.t), _offset_s(data, epoch_us(e.t)), e.kind,
         json.dumps(dict(e.payload), ensure_ascii=False, sort_keys=True)]
        for e in sorted(data.events, key=lambda e: (e.t, e.seq, e.index))
    ]  # fmt: skip
    event_rows += [
        [_iso(r.t), _offset_s(data, epoch_us(r.t)), "rating",
         json.dumps({"when": r.when.value, "scale": r.scale, "value": r.value, "current": True})]
        for r in data.ratings
    ]  # fmt: skip
    extra = {"beat_classifier_version": ",".join(sorted(versions)) or None}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("session.csv", _csv_bytes(("key", "value"), _session_rows(data, extra)))
        bundle.writestr(
            "beats.csv",
            _csv_bytes(
                ("t_utc", "t_offset_s", "device", "rr_ms", "contact", "beat_class", "artifact"),
                beat_rows,
            ),
        )
        bundle.writestr(
            "eda.csv",
            _csv_bytes(
                ("t_utc", "t_offset_s", "device", "eda_us", "contact_lost", "clipped",
                 "gap_before"),
                eda_rows,
            ),
        )  # fmt: skip
        bundle.writestr(
            "events.csv", _csv_bytes(("t_utc", "t_offset_s", "kind", "detail"), event_rows)
        )
        bundle.writestr(
            "metrics.csv",
            _csv_bytes(
                ("scope", "phase_index", "phase_name", "metric", "value", "algorithm_versions",
                 "protocol_version"),
                _metric_rows(data),
            ),
        )  # fmt: skip
    return buffer.getvalue()


def export_kubios(data: ExportData) -> bytes:
    """Kubios-style RR text: ``#`` header lines, then RR in seconds, one per line."""
    beats = primary_beats(data.beats)
    who = data.subject_code if data.real_name is None else f"{data.subject_code} {data.real_name}"
    body = [
        f"# subject: {who}",
        f"# session: {data.session.id}",
        f"# station: {data.session.station_id}",
        f"# device: {primary_device(data.beats) or ''}",
        f"# started_at: {_iso(data.t0)}",
        f"# protocol: {data.session.protocol_id or ''} {data.session.protocol_version or ''}",
        "# unit: s (RR interval in seconds, one per line, as recorded, uncorrected)",
    ]
    first = f"# shuxin RR export v{EXPORT_VERSION}; header lines: {len(body) + 1}"
    lines = [first, *body, *(f"{beat.rr_ms / 1000.0:.6f}" for beat in beats)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _resample(
    times_s: NDArray[np.float64], values: NDArray[np.float64], grid_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Linear interpolation onto ``grid_s``; the edge values are held outside the data."""
    if values.size == 0:
        return np.zeros(grid_s.size, dtype=np.float64)
    return np.asarray(np.interp(grid_s, times_s, values), dtype=np.float64)


def _range(values: NDArray[np.float64]) -> tuple[float, float]:
    lo, hi = float(np.floor(values.min())), float(np.ceil(values.max()))
    return (lo - 1.0, hi + 1.0)


def _ascii_field(text: str) -> str | None:
    """``text`` as an EDF header subfield (printable ASCII, spaces as ``_``) or None."""
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        return None
    clean = "_".join(text.split())
    return clean if clean and clean.isprintable() else None


def export_edf(data: ExportData) -> bytes:
    """EDF+ with the RR tachogram and EDA at :data:`EDF_FS_HZ` and annotations."""
    t0_us = epoch_us(data.t0)
    beats = primary_beats(data.beats)
    beat_t = np.array([(b.time_us - t0_us) / 1e6 for b in beats], dtype=np.float64)
    rr = np.array([b.rr_ms for b in beats], dtype=np.float64)
    eda_sorted = sorted(
        (s for s in data.eda if s.device == _primary_eda_device(data.eda)),
        key=lambda s: s.time_us,
    )
    eda_t = np.array([(s.time_us - t0_us) / 1e6 for s in eda_sorted], dtype=np.float64)
    eda = np.array([s.eda_us for s in eda_sorted], dtype=np.float64)
    end_s = 0.0
    if data.session.ended_at is not None:
        end_s = (epoch_us(data.session.ended_at) - t0_us) / 1e6
    end_s = max(end_s, float(beat_t.max()) if beat_t.size else 0.0)
    end_s = max(end_s, float(eda_t.max()) if eda_t.size else 0.0, 1.0)
    records = int(np.ceil(end_s))
    grid = np.arange(records * int(EDF_FS_HZ), dtype=np.float64) / EDF_FS_HZ
    rr_grid = _resample(beat_t, rr, grid)
    eda_grid = _resample(eda_t, eda, grid)
    signals = [
        EdfSignal(rr_grid, EDF_FS_HZ, label="RR tachogram", physical_dimension="ms",
                  physical_range=_range(rr_grid), transducer_type="chest strap RR"),
        EdfSignal(eda_grid, EDF_FS_HZ, label="EDA", physical_dimension="uS",
                  physical_range=_range(eda_grid), transducer_type="skin conductance"),
    ]  # fmt: skip
    annotations = _edf_annotations(data, t0_us, end_s)
    name_field = "X"
    if data.real_name is not None:
        ascii_name = _ascii_field(data.real_name)
        if ascii_name is None:
            annotations.insert(0, EdfAnnotation(0.0, None, f"subject name: {data.real_name}"))
        else:
            name_field = ascii_name
    code = _ascii_field(data.subject_code) or "X"
    start = data.t0
    edf = Edf(
        signals,
        patient=Patient(code=code, name=name_field),
        recording=Recording(
            startdate=start.date(),
            equipment_code="shuxin",
            additional=(_ascii_field(f"session {data.session.id} UTC") or "X",),
        ),
        starttime=start.time().replace(microsecond=0, tzinfo=None),
        data_record_duration=1.0,
        annotations=annotations,
    )
    buffer = io.BytesIO()
    edf.write(buffer)
    return buffer.getvalue()


def _primary_eda_device(samples: Sequence[EdaSample]) -> str | None:
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.device] = counts.get(s.device, 0) + 1
    return max(sorted(counts), key=lambda d: counts[d]) if counts else None


def _edf_annotations(data: ExportData, t0_us: int, end_s: float) -> list[EdfAnnotation]:
    out: list[EdfAnnotation] = []

    def onset(moment: datetime) -> float:
        return min(max((epoch_us(moment) - t0_us) / 1e6, 0.0), end_s)

    cursor = data.t0
    for phase in sorted(data.phases, key=lambda p: p.index):
        start = phase.started_at or cursor
        stop = phase.ended_at or start + timedelta(seconds=phase.planned_duration_s or 0.0)
        out.append(
            EdfAnnotation(
                onset(start), max(onset(stop) - onset(start), 0.0),
                f"phase {phase.index} {phase.name} ({phase.kind or '-'})",
            )
        )  # fmt: skip
        cursor = stop
    for event in sorted(data.events, key=lambda e: (e.t, e.seq, e.index)):
        if event.kind in ("phase_start", "phase_end"):
            continue  # the phases above carry these
        payload = dict(event.payload)
        detail = payload.get("label") or payload.get("reason") or payload.get("when") or ""
        text = f"{event.kind} {detail}".strip()
        if event.kind == "rating":
            text = f"rating {payload.get('when', '')} {payload.get('value', '')}"
        out.append(EdfAnnotation(onset(event.t), None, text))
    return out


def render(data: ExportData, fmt: ExportFormat) -> bytes:
    """The export file of ``data`` in ``fmt``."""
    if fmt is ExportFormat.CSV:
        return export_csv(data)
    if fmt is ExportFormat.KUBIOS:
        return export_kubios(data)
    return export_edf(data)
