"""The embedded time-series store (the default): points in one SQLite file.

Two tables: ``series`` (one row per measurement and tag set, with ``station`` and ``device``
pulled out for lookups) and ``point`` (``series_id``, ``time_us``, fields as a JSON object),
keyed by ``(series_id, time_us)``. A write is an upsert on that key that merges the new fields
into the old ones (``json_patch``), which is InfluxDB's rule for a point written twice — so a
redelivered message leaves the file as it was. WAL with ``synchronous=FULL``: a write that
returned survives power loss, which matters because the MQTT message is acknowledged after it.

Implements :class:`shuxin.gateway.timeseries.TimeSeriesStore`. Thread-safe (one connection
behind a lock). It must not be used for several gateway replicas at once: that is what
InfluxDB is for.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from shuxin.gateway.errors import StoreQueryError, StoreUnavailableError
from shuxin.gateway.timeseries import Point, coerce_fields, epoch_us
from shuxin.runtime.sqlite_file import open_sqlite

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    series_key TEXT NOT NULL,
    station TEXT,
    device TEXT,
    tags TEXT NOT NULL,
    UNIQUE (measurement, series_key)
);
CREATE INDEX IF NOT EXISTS series_by_station ON series(measurement, station, device);
CREATE TABLE IF NOT EXISTS point (
    series_id INTEGER NOT NULL REFERENCES series(id),
    time_us INTEGER NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (series_id, time_us)
) WITHOUT ROWID;
"""


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back an open transaction; a closed or broken connection has nothing to undo."""
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


_UPSERT: Final = (
    "INSERT INTO point(series_id, time_us, fields) VALUES (?, ?, ?) "
    "ON CONFLICT(series_id, time_us) DO UPDATE SET fields = json_patch(fields, excluded.fields)"
)


class SqliteStore:
    """Time series in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._series_ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        try:
            self._db = open_sqlite(path, _SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open time-series file {path}: {exc}") from exc
        self.path = path

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def ping(self) -> bool:
        """True when the file answers a trivial query."""
        with self._lock:
            try:
                self._db.execute("SELECT 1").fetchone()
            except sqlite3.Error:
                return False
        return True

    def write(self, points: Sequence[Point]) -> None:
        """Upsert ``points`` in one transaction."""
        if not points:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                rows = [
                    (
                        self._series_id(p),
                        p.time_us,
                        json.dumps(dict(p.fields), separators=(",", ":"), allow_nan=False),
                    )
                    for p in points
                ]
                self._db.executemany(_UPSERT, rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(self._db)
                # Ids cached during the failed transaction may not exist: forget them all.
                self._series_ids.clear()
                raise StoreUnavailableError(f"time-series write failed: {exc}") from exc

    def query(
        self,
        measurement: str,
        *,
        station: str,
        start: datetime,
        end: datetime,
        device: str | None = None,
    ) -> list[Point]:
        """Points of ``measurement`` at ``station`` (and ``device``), ``start <= t < end``."""
        sql = (
            "SELECT s.tags, p.time_us, p.fields FROM point p JOIN series s ON s.id = p.series_id "
            "WHERE s.measurement = ? AND s.station = ? AND p.time_us >= ? AND p.time_us < ?"
        )
        params: list[object] = [measurement, station, epoch_us(start), epoch_us(end)]
        if device is not None:
            sql += " AND s.device = ?"
            params.append(device)
        sql += " ORDER BY p.time_us, s.series_key"
        with self._lock:
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreQueryError(f"time-series query failed: {exc}") from exc
        return [
            Point.make(measurement, json.loads(tags), coerce_fields(measurement, json.loads(f)), t)
            for tags, t, f in rows
        ]

    def delete(
        self,
        measurements: Sequence[str],
        *,
        station: str | None,
        start: datetime | None,
        end: datetime | None,
        device: str | None = None,
    ) -> int:
        """Delete points of ``measurements`` in ``[start, end)`` (see the port); return how
        many. Series rows stay (they hold no values); the file shrinks on the next VACUUM."""
        if not measurements:
            return 0
        marks = ",".join("?" * len(measurements))
        series_sql = f"SELECT id FROM series WHERE measurement IN ({marks})"  # noqa: S608
        params: list[object] = list(measurements)
        if station is not None:
            series_sql += " AND station = ?"
            params.append(station)
        if device is not None:
            series_sql += " AND device = ?"
            params.append(device)
        # Only placeholders are formatted in; every value is a bound parameter.
        sql = f"DELETE FROM point WHERE series_id IN ({series_sql})"  # noqa: S608
        if start is not None:
            sql += " AND time_us >= ?"
            params.append(epoch_us(start))
        if end is not None:
            sql += " AND time_us < ?"
            params.append(epoch_us(end))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(self._db)
                raise StoreUnavailableError(f"time-series delete failed: {exc}") from exc
        return int(deleted)

    def count_between(
        self,
        measurements: Sequence[str],
        *,
        start: datetime | None,
        end: datetime | None,
    ) -> int:
        """Points of ``measurements`` with ``start <= time < end`` (what a purge would take)."""
        if not measurements:
            return 0
        marks = ",".join("?" * len(measurements))
        # Only placeholders are formatted in; every value is a bound parameter.
        sql = (
            "SELECT COUNT(*) FROM point JOIN series ON series.id = point.series_id "  # noqa: S608
            f"WHERE series.measurement IN ({marks})"
        )
        params: list[object] = list(measurements)
        if start is not None:
            sql += " AND point.time_us >= ?"
            params.append(epoch_us(start))
        if end is not None:
            sql += " AND point.time_us < ?"
            params.append(epoch_us(end))
        with self._lock:
            try:
                return int(self._db.execute(sql, params).fetchone()[0])
            except sqlite3.Error as exc:
                raise StoreQueryError(f"time-series count failed: {exc}") from exc

    def count(self, measurement: str | None = None) -> int:
        """Number of stored points (of one measurement, or all)."""
        sql = "SELECT COUNT(*) FROM point"
        params: tuple[str, ...] = ()
        if measurement is not None:
            sql += " JOIN series ON series.id = point.series_id WHERE series.measurement = ?"
            params = (measurement,)
        with self._lock:
            return int(self._db.execute(sql, params).fetchone()[0])

    def _series_id(self, point: Point) -> int:
        key = (point.measurement, point.tags)
        cached = self._series_ids.get(key)
        if cached is not None:
            return cached
        row = self._db.execute(
            "SELECT id FROM series WHERE measurement = ? AND series_key = ?",
            (point.measurement, point.series_key),
        ).fetchone()
        if row is None:
            cursor = self._db.execute(
                "INSERT INTO series(measurement, series_key, station, device, tags) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    point.measurement,
                    point.series_key,
                    point.tag("station"),
                    point.tag("device"),
                    json.dumps(dict(point.tags), separators=(",", ":"), sort_keys=True),
                ),
            )
            series_id = int(cursor.lastrowid or 0)
        else:
            series_id = int(row[0])
        self._series_ids[key] = series_id
        return series_id
