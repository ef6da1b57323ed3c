"""Data lifecycle: retention purges, consent withdrawal everywhere, export of one subject's data.

- :class:`RetentionSettings` (environment ``SHUXIN_RETENTION_*``): how long raw beats and
  samples, derived metrics, quarantined messages and audit entries are kept. The audit log
  keeps at least :data:`AUDIT_FLOOR_DAYS` days; a shorter setting is a settings error (and
  the database's trigger refuses younger deletions anyway).
- :func:`purge` deletes what is older than the settings allow, per kind, or only counts it
  (``dry_run``).
- :func:`withdraw_subject` deletes (or anonymises) a subject's data in the time-series store
  and the SQL store; consent records and the audit trail stay to prove the withdrawal.
- :func:`export_subject` writes everything held about one subject into a zip (JSON, CSV,
  a manifest and a README), audited.

``docs/data-lifecycle.md`` says what each kind covers and what remains after a withdrawal.
This module decides *what* to delete and in which order; the stores do the deleting. It
never logs a subject's identity and prints nothing (the CLI reports).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shuxin.gateway.errors import GatewayError, StoreError
from shuxin.gateway.quarantine import SqliteQuarantine
from shuxin.gateway.sql_errors import SqlStoreError
from shuxin.gateway.sql_store import (
    AUDIT_FLOOR_DAYS,
    Actor,
    SqlLifecycle,
    SqlStore,
)
from shuxin.gateway.timeseries import SCHEMAS, Measurement, TimeSeriesStore

#: Raw beats and samples (retention kind ``raw``).
RAW_MEASUREMENTS: Final = (
    Measurement.RR.value,
    Measurement.HR.value,
    Measurement.EDA.value,
    Measurement.ECG.value,
    Measurement.PPG.value,
)
#: Derived metrics in the time-series store (with summaries and curves in SQL: ``derived``).
DERIVED_MEASUREMENTS: Final = (Measurement.METRICS.value,)
#: Added on both sides of a session's time range when its points are deleted: beats at the
#: edges of a session are stamped a little before its start / after its end (the same margin
#: the summaries read with). Sessions on one device never overlap, so nobody else's points
#: fall in it unless two sessions follow each other within seconds.
SESSION_MARGIN: Final = timedelta(seconds=5)
EXPORT_FORMAT: Final = "shuxin-subject-export"
EXPORT_VERSION: Final = 1


class LifecycleError(GatewayError):
    """A purge, withdrawal or export could not be completed (nothing half-done in SQL)."""


class RetentionSettings(BaseSettings):
    """How long each kind of data is kept, in days (``none``: kept until withdrawal).

    Environment: ``SHUXIN_RETENTION_RAW_DAYS``, ``_DERIVED_DAYS``, ``_QUARANTINE_DAYS``,
    ``_AUDIT_DAYS``.
    """

    model_config = SettingsConfigDict(
        env_prefix="SHUXIN_RETENTION_", extra="forbid", env_parse_none_str="none"
    )

    #: rr/hr/eda/ecg/ppg points (beats, samples).
    raw_days: int | None = Field(default=365, ge=1)
    #: The ``metrics`` measurement, session summaries and display curves.
    derived_days: int | None = Field(default=5 * 365, ge=1)
    #: Refused messages (SQL table and the gateway's quarantine file).
    quarantine_days: int | None = Field(default=30, ge=1)
    #: Audit entries; at least :data:`AUDIT_FLOOR_DAYS` (six months).
    audit_days: int = Field(default=2 * 365)

    @field_validator("audit_days")
    @classmethod
    def _audit_floor(cls, value: int) -> int:
        if value < AUDIT_FLOOR_DAYS:
            raise ValueError(
                f"the audit log must be kept at least {AUDIT_FLOOR_DAYS} days (six months); "
                f"got {value}"
            )
        return value


class DataKind(StrEnum):
    """What a purge line is about."""

    RAW = "raw"
    METRICS = "metrics"
    SUMMARIES = "summaries"
    CURVES = "curves"
    QUARANTINE = "quarantine"
    QUARANTINE_FILE = "quarantine_file"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class PurgeLine:
    """One kind's purge: data older than ``cutoff`` (None: kept forever) and how much.

    ``count`` is None when the store cannot say (InfluxDB deletes without counting).
    """

    kind: DataKind
    cutoff: datetime | None
    count: int | None


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Every kind's purge line, and whether anything was actually deleted."""

    dry_run: bool
    lines: tuple[PurgeLine, ...]


@runtime_checkable
class CountsPoints(Protocol):
    """A time-series store that can count what a purge would delete (the SQLite adapter)."""

    def count_between(
        self, measurements: Sequence[str], *, start: datetime | None, end: datetime | None
    ) -> int:
        """Points of ``measurements`` with ``start <= time < end``."""
        ...


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def purge(
    settings: RetentionSettings,
    *,
    sql: SqlStore,
    tsdb: TimeSeriesStore,
    quarantine_file: SqliteQuarantine | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Delete (or, with ``dry_run``, count) everything older than ``settings`` allow.

    Raises :class:`LifecycleError` when a store fails; kinds already purged stay purged, and
    running the purge again finishes the rest.
    """
    now = now or datetime.now(UTC)
    lifecycle = SqlLifecycle(sql)
    raw_cut = _cutoff(now, settings.raw_days)
    derived_cut = _cutoff(now, settings.derived_days)
    quarantine_cut = _cutoff(now, settings.quarantine_days)
    audit_cut = now - timedelta(days=settings.audit_days)
    lines: list[PurgeLine] = []
    try:
        for kind, measurements, cut in (
            (DataKind.RAW, RAW_MEASUREMENTS, raw_cut),
            (DataKind.METRICS, DERIVED_MEASUREMENTS, derived_cut),
        ):
            count: int | None = 0
            if cut is not None:
                if dry_run:
                    count = (
                        tsdb.count_between(measurements, start=None, end=cut)
                        if isinstance(tsdb, CountsPoints)
                        else None
                    )
                else:
                    count = tsdb.delete(measurements, station=None, start=None, end=cut)
            lines.append(PurgeLine(kind, cut, count))
        derived = (
            lifecycle.purge_derived(derived_cut, dry_run=dry_run)
            if derived_cut is not None
            else {"summaries": 0, "curves": 0}
        )
        lines.append(PurgeLine(DataKind.SUMMARIES, derived_cut, derived["summaries"]))
        lines.append(PurgeLine(DataKind.CURVES, derived_cut, derived["curves"]))
        quarantined = 0
        if quarantine_cut is not None:
            quarantined = lifecycle.purge_quarantine(quarantine_cut, dry_run=dry_run)
        lines.append(PurgeLine(DataKind.QUARANTINE, quarantine_cut, quarantined))
        if quarantine_file is not None:
            file_count: int | None = 0
            if quarantine_cut is not None:
                file_count = None if dry_run else quarantine_file.purge(quarantine_cut)
            lines.append(PurgeLine(DataKind.QUARANTINE_FILE, quarantine_cut, file_count))
        lines.append(
            PurgeLine(DataKind.AUDIT, audit_cut, lifecycle.purge_audit(audit_cut, dry_run=dry_run))
        )
    except (GatewayError, SqlStoreError) as exc:
        raise LifecycleError(f"purge stopped: {exc}") from exc
    return PurgeReport(dry_run, tuple(lines))


# --- withdrawal ----------------------------------------------------------------------------------


class WithdrawalMode(StrEnum):
    """``delete`` removes the subject's data; ``anonymise`` keeps aggregates without a link."""

    DELETE = "delete"
    ANONYMISE = "anonymise"


@dataclass(frozen=True, slots=True)
class WithdrawalReport:
    """What a withdrawal removed: SQL rows per kind, and time-series points.

    ``points`` is None when the store does not count deletions (InfluxDB);
    ``sessions_without_time`` counts sessions whose points could not be located (no time).
    """

    subject_code: str
    mode: WithdrawalMode
    sql: Mapping[str, int]
    points: int | None
    sessions_without_time: int


def withdraw_subject(
    code: str,
    mode: WithdrawalMode,
    *,
    sql: SqlStore,
    tsdb: TimeSeriesStore,
    actor: Actor,
    purpose: str,
) -> WithdrawalReport:
    """Delete or anonymise everything held about subject ``code``; idempotent.

    Order matters: the raw points are found through the sessions' stations, devices and
    times in SQL, so they are deleted first; only then does one SQL transaction delete (or
    anonymise) the rows and append the ``subject.withdraw`` audit entry. A failure in between
    leaves the SQL rows, so running the withdrawal again finishes it. Both modes delete the
    raw and derived points of every session: a beat series is personal data whatever the
    mode. Raises :class:`LifecycleError` (unknown subject, store failure).
    """
    lifecycle = SqlLifecycle(sql)
    try:
        spans = lifecycle.session_spans(code)
    except SqlStoreError as exc:
        raise LifecycleError(f"withdrawal of {code}: {exc}") from exc
    points: int | None = 0
    without_time = 0
    try:
        for span in spans:
            if span.start is None or span.end is None:
                without_time += 1
                continue
            start, end = span.start - SESSION_MARGIN, span.end + SESSION_MARGIN
            # No device list (never reported): every device of the station in that window.
            devices: Sequence[str | None] = span.devices or (None,)
            counts = [
                tsdb.delete(
                    RAW_MEASUREMENTS, station=span.station_id, start=start, end=end, device=device
                )
                for device in devices
            ]
            counts.append(
                tsdb.delete(DERIVED_MEASUREMENTS, station=span.station_id, start=start, end=end)
            )
            points = (
                None
                if points is None or None in counts
                else points + sum(c for c in counts if c is not None)
            )
        if mode is WithdrawalMode.DELETE:
            rows = lifecycle.erase_subject(code, actor=actor, purpose=purpose)
        else:
            rows = lifecycle.anonymise_subject(code, actor=actor, purpose=purpose)
    except (StoreError, SqlStoreError) as exc:
        raise LifecycleError(f"withdrawal of {code} stopped (run it again): {exc}") from exc
    return WithdrawalReport(code, mode, rows, points, without_time)


# --- export --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportReport:
    """Where the export went and what is in it (file name → rows)."""

    path: Path
    files: Mapping[str, int]
    includes_identity: bool


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(_jsonable(value), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _csv_bytes(measurement: str, points: Sequence[Any]) -> bytes:
    tag_names = sorted({k for p in points for k, _ in p.tags})
    field_names = sorted({k for p in points for k, _ in p.fields})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_utc", "time_us", "measurement", *tag_names, *field_names])
    for p in points:
        tags, fields = dict(p.tags), dict(p.fields)
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=p.time_us)
        writer.writerow(
            [
                moment.isoformat(),
                p.time_us,
                measurement,
                *(tags.get(n, "") for n in tag_names),
                *(fields.get(n, "") for n in field_names),
            ]
        )
    return out.getvalue().encode("utf-8")


_README: Final = """\
Export of the data held about one subject (shuxin 舒心驿站 gateway)
====================================================================

Subject: {code}
Created: {created} (UTC) by {actor}, purpose: {purpose}

This archive holds everything the central site stores about the subject named above,
under their pseudonymous code. manifest.json lists every file with its SHA-256 and row
count.

  subject.json      the subject record (code, unit, status, consent summary)
  consents.json     every consent record, granted and withdrawn
  identity.json     the real identity, decrypted (only when requested; the reveal is audited)
  sessions.json     sessions with their phases, events, self-ratings, summaries and
                    display curves
  alerts.json       advisory alerts about the subject and who handled them
  audit.json        every audit entry that names the subject (who accessed what, and why)
  timeseries/<session>/<measurement>.csv
                    raw beats and samples (rr, hr, eda, ecg, ppg) and live metrics of each
                    session, one row per point; time_us is microseconds since 1970 UTC on
                    the station's clock

Summaries and alerts are advisory wellbeing indicators, not diagnoses.
This file is personal data: store it encrypted and delete it when it is no longer needed.
"""


def export_subject(
    code: str,
    out: Path,
    *,
    sql: SqlStore,
    tsdb: TimeSeriesStore,
    actor: Actor,
    purpose: str,
    include_identity: bool = False,
    now: datetime | None = None,
) -> ExportReport:
    """Write everything held about subject ``code`` to the zip file ``out``.

    The export is audited (``subject.export``) before anything is read; the identity is
    included only with ``include_identity`` and then read through
    :meth:`SqlStore.reveal_identity`, which audits the reveal too. The zip is written to a
    temporary file beside ``out`` (mode 0600) and renamed into place, so ``out`` is either
    complete or absent. Raises :class:`LifecycleError`.
    """
    now = now or datetime.now(UTC)
    lifecycle = SqlLifecycle(sql)
    files: dict[str, bytes] = {}
    rows: dict[str, int] = {}
    try:
        subject = sql.get_subject(code)
        sql.append_audit(
            actor=actor,
            action="subject.export",
            resource=f"subject/{code}/export?identity={'yes' if include_identity else 'no'}",
            purpose=purpose,
            subject_code=code,
        )
        files["subject.json"], rows["subject.json"] = _json_bytes(subject), 1
        consents = sql.consents(code)
        files["consents.json"], rows["consents.json"] = _json_bytes(consents), len(consents)
        if include_identity:
            identity = sql.reveal_identity(code, actor=actor, purpose=purpose)
            files["identity.json"] = _json_bytes(
                {"name": identity.name, "employee_no": identity.employee_no}
            )
            rows["identity.json"] = 1
        sessions = sql.list_sessions(subject.org_unit_id, subject_code=code, limit=1_000_000)
        documents = []
        for record in sorted(sessions, key=lambda s: (s.started_at is None, s.started_at, s.id)):
            documents.append(
                {
                    "session": record,
                    "phases": sql.session_phases(record.id),
                    "events": sql.session_events(record.id),
                    "ratings": sql.session_ratings(record.id),
                    "summaries": sql.summaries(record.id),
                    "curves": sql.curves(record.id),
                }
            )
        files["sessions.json"], rows["sessions.json"] = _json_bytes(documents), len(documents)
        alerts = lifecycle.subject_alerts(code)
        files["alerts.json"], rows["alerts.json"] = _json_bytes(alerts), len(alerts)
        spans = {span.session_id: span for span in lifecycle.session_spans(code)}
        for session_id, span in spans.items():
            if span.start is None or span.end is None:
                continue
            start, end = span.start - SESSION_MARGIN, span.end + SESSION_MARGIN
            for measurement in (*RAW_MEASUREMENTS, *DERIVED_MEASUREMENTS):
                has_device = "device" in SCHEMAS[measurement].tags
                devices: Sequence[str | None] = (
                    span.devices if has_device and span.devices else (None,)
                )
                points = [
                    p
                    for device in devices
                    for p in tsdb.query(
                        measurement, station=span.station_id, start=start, end=end, device=device
                    )
                ]
                if points:
                    points.sort(key=lambda p: (p.time_us, p.series_key))
                    name = f"timeseries/{session_id}/{measurement}.csv"
                    files[name], rows[name] = _csv_bytes(measurement, points), len(points)
        # Read last, so the export's own audit entry (and an identity reveal) is in it.
        audit = lifecycle.subject_audit(code)
        files["audit.json"], rows["audit.json"] = _json_bytes(audit), len(audit)
    except (GatewayError, SqlStoreError) as exc:
        raise LifecycleError(f"export of {code}: {exc}") from exc
    files["README.txt"] = _README.format(
        code=code, created=now.isoformat(), actor=actor.name, purpose=purpose
    ).encode("utf-8")
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "subject_code": code,
        "created_at": now.isoformat(),
        "created_by": actor.name,
        "purpose": purpose,
        "includes_identity": include_identity,
        "time_unit": "time_us: integer microseconds since 1970-01-01T00:00:00Z",
        "files": [
            {
                "name": name,
                "bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "rows": rows.get(name),
            }
            for name, content in sorted(files.items())
        ],
    }
    files["manifest.json"] = _json_bytes(manifest)
    _write_zip(out, files)
    return ExportReport(out, rows, include_identity)


def _write_zip(out: Path, files: Mapping[str, bytes]) -> None:
    partial = out.with_name(out.name + ".partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with (
            os.fdopen(descriptor, "wb") as handle,
            zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive,
        ):
            for name in (
                "manifest.json",
                "README.txt",
                *sorted(set(files) - {"manifest.json", "README.txt"}),
            ):
                archive.writestr(name, files[name])
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise LifecycleError(f"cannot write the export {out}: {exc}") from exc
