"""The time-series store port, its point type, and the mapping from contract messages to points.

The schema is written down in ``docs/gateway-timeseries.md``; :data:`SCHEMAS` is its code form
and a test keeps the two in step. In short (tags; fields; point time):

- ``rr``: station, device, source; ``rr_ms`` float, ``contact`` int (1/0); t0 + t_offset_ms[i]
- ``hr``: station, device; ``hr_bpm`` float, ``contact`` int, ``energy_kj`` int (first point
  of a batch); t0 + t_offset_ms[i]
- ``eda``: station, device; ``eda_us`` float, ``contact_lost``/``clipped`` int (1 on every
  sample of a flagged batch), ``gap_before`` int (first sample); t0 + i / fs_hz
- ``ecg``: station, device; ``ecg_uv`` int; t0 + i / fs_hz
- ``ppg``: station, device; ``ppg`` float; t0 + i / fs_hz
- ``metrics``: station, algorithm; ``window_s`` float and one float per metric name; t

Times are integers in microseconds since the Unix epoch (:data:`PRECISION`), on the edge's
clock as the contract carries them. A session id is never a tag (sessions are time ranges
looked up in SQL), and every tag value comes from the message itself, so the same message
always maps to the same points: that is what makes a write idempotent. Within one message,
point times are made strictly increasing (a repeated time moves 1 µs later) so that no two
points of one message overwrite each other.

Lifecycle, events and the two status messages map to no points (they belong to the SQL store).

:class:`TimeSeriesStore` is the port; adapters are ``store_sqlite`` (embedded default) and
``store_influx`` (InfluxDB 1.x/2.x/3.x and InfluxDB-protocol stores). :class:`TimeSeriesSink`
is the ingest sink that writes a batch of accepted messages as points. This module does no
I/O itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

from shuxin.contract.codec import Message
from shuxin.contract.messages import (
    EcgMessage,
    EdaMessage,
    HrMessage,
    MetricsMessage,
    PpgMessage,
    RrMessage,
)

if TYPE_CHECKING:
    from shuxin.gateway.ingest import Accepted

#: Time resolution of every point: integer microseconds since 1970-01-01T00:00:00Z.
PRECISION: Final = "us"

FieldValue = float | int | bool

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


class Measurement(StrEnum):
    """The measurements the gateway writes."""

    RR = "rr"
    HR = "hr"
    EDA = "eda"
    ECG = "ecg"
    PPG = "ppg"
    METRICS = "metrics"


def epoch_us(moment: datetime) -> int:
    """Return ``moment`` (timezone-aware) as integer microseconds since the Unix epoch."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant")
    return (moment - _EPOCH) // _ONE_US


def from_epoch_us(time_us: int) -> datetime:
    """Return the UTC datetime of ``time_us`` microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=time_us)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


#: Shapes (measurement, tags, field names) already checked; bounded like the series count.
_checked: set[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]] = set()
_MAX_CHECKED: Final = 100_000


def _check_shape(
    measurement: str, tags: tuple[tuple[str, str], ...], field_keys: tuple[str, ...]
) -> None:
    """Validate names and ordering of a point's shape; remember shapes that passed."""
    shape = (measurement, tags, field_keys)
    if shape in _checked:
        return
    if not _NAME_RE.fullmatch(measurement):
        raise ValueError("measurement name must match [a-z][a-z0-9_]*")
    tag_keys = [k for k, _ in tags]
    if tag_keys != sorted(set(tag_keys)) or list(field_keys) != sorted(set(field_keys)):
        raise ValueError("tags and fields must be sorted with unique keys (use Point.make)")
    if not field_keys:
        raise ValueError("a point needs at least one field")
    for key, value in tags:
        if not _NAME_RE.fullmatch(key):
            raise ValueError("tag key must match [a-z][a-z0-9_]*")
        if not value or any(ord(ch) < 0x20 for ch in value):
            raise ValueError(f"tag {key!r} must be non-empty without control characters")
    for key in field_keys:
        if not _NAME_RE.fullmatch(key):
            raise ValueError("field key must match [a-z][a-z0-9_]*")
    if len(_checked) >= _MAX_CHECKED:
        _checked.clear()
    _checked.add(shape)


@dataclass(frozen=True, slots=True)
class Point:
    """One point: a measurement, sorted tags, sorted fields, and a time in µs since the epoch.

    Build with :meth:`Point.make`. ``(measurement, tags, time_us)`` identifies a point in every
    store; writing a point with the same identity again replaces its fields.
    """

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    time_us: int

    def __post_init__(self) -> None:
        # Series and field-name sets repeat endlessly; check each shape once (see _checked).
        _check_shape(self.measurement, self.tags, tuple(k for k, _ in self.fields))
        for key, field_value in self.fields:
            if isinstance(field_value, float) and not math.isfinite(field_value):
                raise ValueError(f"field {key!r} is not finite")
        if type(self.time_us) is not int:
            raise TypeError("time_us must be an int")

    @classmethod
    def make(
        cls,
        measurement: str,
        tags: Mapping[str, str],
        fields: Mapping[str, FieldValue],
        time_us: int,
    ) -> Point:
        """Build a point from unordered mappings."""
        return cls(
            str(measurement), tuple(sorted(tags.items())), tuple(sorted(fields.items())), time_us
        )

    @property
    def series_key(self) -> str:
        """The canonical tag set, ``k=v`` pairs joined by commas, line-protocol escaped."""
        return ",".join(f"{_escape(k)}={_escape(v)}" for k, v in self.tags)

    @property
    def identity(self) -> tuple[str, str, int]:
        """``(measurement, series_key, time_us)``: what a store upserts on."""
        return (self.measurement, self.series_key, self.time_us)

    def tag(self, key: str) -> str | None:
        """Return one tag value, or None."""
        return dict(self.tags).get(key)

    def field(self, key: str) -> FieldValue | None:
        """Return one field value, or None."""
        return dict(self.fields).get(key)


@dataclass(frozen=True, slots=True)
class MeasurementSchema:
    """Tags and field types of one measurement (the code form of the documented schema)."""

    measurement: Measurement
    tags: tuple[str, ...]
    fields: Mapping[str, type[float] | type[int]]
    #: True when any further field name is a float (metrics: one field per metric name).
    open_float_fields: bool = False

    def field_type(self, name: str) -> type[float] | type[int] | None:
        """Return the declared type of field ``name``, or None when it is not part of it."""
        declared = self.fields.get(name)
        if declared is None and self.open_float_fields and _NAME_RE.fullmatch(name):
            return float
        return declared


SCHEMAS: Final[Mapping[str, MeasurementSchema]] = {
    s.measurement.value: s
    for s in (
        MeasurementSchema(
            Measurement.RR, ("station", "device", "source"), {"rr_ms": float, "contact": int}
        ),
        MeasurementSchema(
            Measurement.HR,
            ("station", "device"),
            {"hr_bpm": float, "contact": int, "energy_kj": int},
        ),
        MeasurementSchema(
            Measurement.EDA,
            ("station", "device"),
            {"eda_us": float, "contact_lost": int, "clipped": int, "gap_before": int},
        ),
        MeasurementSchema(Measurement.ECG, ("station", "device"), {"ecg_uv": int}),
        MeasurementSchema(Measurement.PPG, ("station", "device"), {"ppg": float}),
        MeasurementSchema(
            Measurement.METRICS,
            ("station", "algorithm"),
            {"window_s": float},
            open_float_fields=True,
        ),
    )
}


def coerce_fields(measurement: str, raw: Mapping[str, object]) -> dict[str, FieldValue]:
    """Give fields read back from a store their schema types; drop nulls and unknown fields.

    Stores that speak JSON return ``800.0`` as ``800``; this restores ``float`` where the
    schema says float, so a round trip returns equal points.
    """
    schema = SCHEMAS.get(measurement)
    result: dict[str, FieldValue] = {}
    for name, value in raw.items():
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, int | float):
            continue
        declared = schema.field_type(name) if schema is not None else None
        if declared is float:
            result[name] = float(value)
        elif declared is int:
            result[name] = int(value)
        elif schema is None:
            result[name] = value
    return result


# --- mapping from contract messages -------------------------------------------------------------

_CONTACT: Final[Mapping[str | None, int]] = {"detected": 1, "not_detected": 0}


def _strictly_increasing(times_us: Iterable[int]) -> list[int]:
    """Move a time that does not increase to 1 µs after its predecessor (deterministic)."""
    result: list[int] = []
    for time_us in times_us:
        result.append(time_us if not result or time_us > result[-1] else result[-1] + 1)
    return result


def _offset_times(t0: datetime, t_offset_ms: Sequence[float]) -> list[int]:
    start = epoch_us(t0)
    return _strictly_increasing(start + round(offset * 1000.0) for offset in t_offset_ms)


def _regular_times(t0: datetime, fs_hz: float, count: int) -> list[int]:
    start = epoch_us(t0)
    return _strictly_increasing(start + round(i * 1_000_000.0 / fs_hz) for i in range(count))


def _rr_points(message: RrMessage) -> list[Point]:
    tags = {"station": message.station, "device": message.device, "source": message.source}
    contact = _CONTACT.get(message.contact)
    points = []
    for time_us, rr_ms in zip(
        _offset_times(message.t0, message.t_offset_ms), message.rr_ms, strict=True
    ):
        fields: dict[str, FieldValue] = {"rr_ms": float(rr_ms)}
        if contact is not None:
            fields["contact"] = contact
        points.append(Point.make(Measurement.RR, tags, fields, time_us))
    return points


def _hr_points(message: HrMessage) -> list[Point]:
    tags = {"station": message.station, "device": message.device}
    contact = _CONTACT.get(message.contact)
    points = []
    times = _offset_times(message.t0, message.t_offset_ms)
    for index, (time_us, hr_bpm) in enumerate(zip(times, message.hr_bpm, strict=True)):
        fields: dict[str, FieldValue] = {"hr_bpm": float(hr_bpm)}
        if contact is not None:
            fields["contact"] = contact
        if index == 0 and message.energy_kj is not None:
            fields["energy_kj"] = int(message.energy_kj)
        points.append(Point.make(Measurement.HR, tags, fields, time_us))
    return points


def _eda_points(message: EdaMessage) -> list[Point]:
    tags = {"station": message.station, "device": message.device}
    batch_flags: dict[str, FieldValue] = {
        flag: 1 for flag in message.flags if flag in {"contact_lost", "clipped"}
    }
    points = []
    times = _regular_times(message.t0, message.fs_hz, len(message.eda_us))
    for index, (time_us, eda_us) in enumerate(zip(times, message.eda_us, strict=True)):
        fields: dict[str, FieldValue] = {"eda_us": float(eda_us), **batch_flags}
        if index == 0 and "gap_before" in message.flags:
            fields["gap_before"] = 1
        points.append(Point.make(Measurement.EDA, tags, fields, time_us))
    return points


def _ecg_points(message: EcgMessage) -> list[Point]:
    tags = {"station": message.station, "device": message.device}
    times = _regular_times(message.t0, message.fs_hz, len(message.ecg_uv))
    return [
        Point.make(Measurement.ECG, tags, {"ecg_uv": int(value)}, time_us)
        for time_us, value in zip(times, message.ecg_uv, strict=True)
    ]


def _ppg_points(message: PpgMessage) -> list[Point]:
    tags = {"station": message.station, "device": message.device}
    times = _regular_times(message.t0, message.fs_hz, len(message.ppg))
    return [
        Point.make(Measurement.PPG, tags, {"ppg": float(value)}, time_us)
        for time_us, value in zip(times, message.ppg, strict=True)
    ]


def _metrics_points(message: MetricsMessage) -> list[Point]:
    tags = {"station": message.station, "algorithm": message.algorithm_version}
    fields: dict[str, FieldValue] = {"window_s": float(message.window_s)}
    # A metric literally named "window_s" wins over the window length (documented).
    fields.update({name: float(value) for name, value in message.values.items()})
    return [Point.make(Measurement.METRICS, tags, fields, epoch_us(message.t))]


def points_from_message(message: Message) -> list[Point]:
    """Map one validated contract message to its points (an empty list for non-series data).

    Deterministic: the same message always gives the same points, so a redelivered message
    overwrites itself instead of adding points.
    """
    if isinstance(message, RrMessage):
        return _rr_points(message)
    if isinstance(message, HrMessage):
        return _hr_points(message)
    if isinstance(message, EdaMessage):
        return _eda_points(message)
    if isinstance(message, EcgMessage):
        return _ecg_points(message)
    if isinstance(message, PpgMessage):
        return _ppg_points(message)
    if isinstance(message, MetricsMessage):
        return _metrics_points(message)
    return []


# --- the port ------------------------------------------------------------------------------------


class TimeSeriesStore(Protocol):
    """Where points go. Adapters: ``store_sqlite.SqliteStore``, ``store_influx.InfluxStore``.

    ``write`` is an upsert keyed by ``(measurement, tags, time_us)``: writing the same points
    twice leaves the store as one write does. It raises
    :class:`~shuxin.gateway.errors.StoreUnavailableError` when the store cannot take the
    points now (spool and retry) and :class:`~shuxin.gateway.errors.StoreRejectedError` when
    it refuses the points themselves. Implementations are safe to call from several threads.
    """

    def write(self, points: Sequence[Point]) -> None:
        """Store ``points`` (upsert); raise a ``StoreError`` subclass on failure."""
        ...

    def query(
        self,
        measurement: str,
        *,
        station: str,
        start: datetime,
        end: datetime,
        device: str | None = None,
    ) -> list[Point]:
        """Return the points of ``measurement`` at ``station`` (and ``device``) with
        ``start <= time < end``, ordered by time then series; raise ``StoreQueryError``.

        A subject's data is read by first looking up the subject's sessions in SQL (station,
        devices, start and end), because beats and samples carry no subject.
        """
        ...

    def delete(
        self,
        measurements: Sequence[str],
        *,
        station: str | None,
        start: datetime | None,
        end: datetime | None,
        device: str | None = None,
    ) -> int | None:
        """Delete the points of ``measurements`` with ``start <= time < end`` (None: unbounded)
        at ``station`` (None: every station) and ``device`` (None: every device, and the
        series without one, such as ``metrics``); other points stay.

        Return how many points went, or None when the store does not say. Deleting nothing is
        not an error, so a retried deletion is harmless. Raise ``StoreUnavailableError`` /
        ``StoreRejectedError`` as ``write`` does. Beats and samples carry no subject: a
        subject's points are deleted by the station, devices and time range of each of the
        subject's sessions (see :mod:`shuxin.gateway.lifecycle`).
        """
        ...

    def ping(self) -> bool:
        """Return True when the store answers now; never raises."""
        ...

    def close(self) -> None:
        """Release connections; the store's data is unaffected."""
        ...


class PointWriter(Protocol):
    """Anything that takes points: a store, or ``spool.SpoolingWriter`` in front of one."""

    def write(self, points: Sequence[Point]) -> object:
        """Make ``points`` durable or raise a ``GatewayError`` subclass."""
        ...


@dataclass(slots=True)
class SinkCounters:
    """Points the sink handed on, by measurement."""

    points: dict[str, int] = field(default_factory=dict)


class TimeSeriesSink:
    """The ingest sink that turns accepted messages into points and writes them in one call.

    Messages that carry no series (lifecycle, events, status) are ignored here; the SQL sink
    takes them.
    """

    def __init__(self, writer: PointWriter) -> None:
        self._writer = writer
        self.counters = SinkCounters()

    def accept(self, messages: Sequence[Accepted]) -> None:
        """Write the points of ``messages``; raise what the writer raises."""
        points = [p for accepted in messages for p in points_from_message(accepted.message)]
        if not points:
            return
        self._writer.write(points)
        for point in points:
            self.counters.points[point.measurement] = (
                self.counters.points.get(point.measurement, 0) + 1
            )
