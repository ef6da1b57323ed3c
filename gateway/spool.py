"""The durable spool: points the time-series store could not take wait on disk, then drain.

``influxdb-client`` drops a batch after its retries, and a store can be down for minutes, so
the gateway keeps its own queue. :class:`SpoolingWriter` sits in front of a
:class:`~shuxin.gateway.timeseries.TimeSeriesStore`:

- ``write(points)`` tries the store; on :class:`StoreUnavailableError` it appends the batch to
  the :class:`Spool` (SQLite, WAL, ``synchronous=FULL``: a committed batch survives power loss)
  and remembers that the store is down, so later writes go straight to the spool instead of
  waiting for a timeout each. Either way the points are durable when ``write`` returns.
- :meth:`SpoolingWriter.drain_forever` moves spooled batches to the store oldest first, with
  capped exponential backoff and full jitter while the store stays down; the first success
  marks the store up again. Live writes and the drain may interleave: writes are upserts on
  ``(measurement, tags, time)``, so order does not matter.
- A spooled batch the store *rejects* (HTTP 400) cannot succeed by waiting: it is bisected
  until the refused points are found, the others are stored, and the refused ones are parked in
  a separate table with the reason — kept and counted, never silently dropped.

Nothing is capped: the spool grows until the store returns (watch ``SpoolStats.points``).
This module never talks to a store except through the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from shuxin.gateway.errors import SpoolError, StoreRejectedError, StoreUnavailableError
from shuxin.gateway.timeseries import FieldValue, Point, TimeSeriesStore
from shuxin.runtime.backoff import Backoff
from shuxin.runtime.sqlite_file import open_sqlite
from shuxin.runtime.threads import to_thread_settled

log = logging.getLogger(__name__)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    points INTEGER NOT NULL,
    body TEXT NOT NULL,
    spooled_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    points INTEGER NOT NULL,
    body TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    parked_at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back an open transaction; a closed or broken connection has nothing to undo."""
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


def _encode(points: Sequence[Point]) -> str:
    return json.dumps(
        [
            [p.measurement, [list(t) for t in p.tags], [list(f) for f in p.fields], p.time_us]
            for p in points
        ],
        separators=(",", ":"),
        allow_nan=False,
    )


def _field_value(value: object) -> FieldValue:
    if isinstance(value, bool | int | float):
        return value
    raise SpoolError(f"spooled field of type {type(value).__name__} is not a number")


def _decode(body: str) -> list[Point]:
    try:
        return [
            Point(
                str(m),
                tuple((str(k), str(v)) for k, v in tags),
                tuple((str(k), _field_value(v)) for k, v in fields),
                int(t),
            )
            for m, tags, fields, t in json.loads(body)
        ]
    except (ValueError, TypeError) as exc:
        raise SpoolError(f"spooled batch is unreadable ({type(exc).__name__})") from exc


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """One batch waiting in the spool."""

    id: int
    points: list[Point]
    spooled_at: float


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """What waits in the spool, and what was parked."""

    batches: int
    points: int
    parked_batches: int
    parked_points: int
    oldest_age_s: float


class Spool:
    """A FIFO of point batches in a SQLite file. Thread-safe."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(path, _SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open spool {path}: {exc}") from exc
        self.path = path

    def close(self) -> None:
        """Close the database; spooled batches stay on disk."""
        with self._lock:
            self._db.close()

    def put(self, points: Sequence[Point]) -> None:
        """Append one batch (committed and synced when this returns)."""
        if not points:
            return
        body = _encode(points)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO batch(points, body, spooled_at) VALUES (?, ?, ?)",
                    (len(points), body, self._clock()),
                )
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot write to the spool: {exc}") from exc

    def oldest(self) -> SpooledBatch | None:
        """Return the oldest batch, or None when the spool is empty."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT id, body, spooled_at FROM batch ORDER BY id LIMIT 1"
                ).fetchone()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the spool: {exc}") from exc
        if row is None:
            return None
        return SpooledBatch(int(row[0]), _decode(row[1]), float(row[2]))

    def remove(self, batch_id: int) -> None:
        """Delete a batch the store has taken (unknown ids are ignored)."""
        with self._lock:
            try:
                self._db.execute("DELETE FROM batch WHERE id = ?", (batch_id,))
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot update the spool: {exc}") from exc

    def park(self, batch_id: int, reason: str, points: Sequence[Point]) -> None:
        """Replace a batch by the ``points`` of it the store refuses, in the ``parked`` table.

        The rest of the batch was stored; the batch leaves the queue in the same transaction.
        """
        body = _encode(points)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO parked(points, body, spooled_at, parked_at, reason) "
                    "SELECT ?, ?, spooled_at, ?, ? FROM batch WHERE id = ?",
                    (len(points), body, self._clock(), reason[:300], batch_id),
                )
                self._db.execute("DELETE FROM batch WHERE id = ?", (batch_id,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(self._db)
                raise SpoolError(f"cannot park a spooled batch: {exc}") from exc

    def stats(self) -> SpoolStats:
        """Return the backlog and the parked totals."""
        with self._lock:
            try:
                batches, points, oldest = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(points), 0), MIN(spooled_at) FROM batch"
                ).fetchone()
                parked_batches, parked_points = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(points), 0) FROM parked"
                ).fetchone()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the spool: {exc}") from exc
        return SpoolStats(
            batches=int(batches),
            points=int(points),
            parked_batches=int(parked_batches),
            parked_points=int(parked_points),
            oldest_age_s=0.0 if oldest is None else max(0.0, self._clock() - float(oldest)),
        )


class WriteResult(StrEnum):
    """Where a batch of points went."""

    STORED = "stored"
    SPOOLED = "spooled"


class DrainResult(StrEnum):
    """What one drain step did."""

    EMPTY = "empty"
    DRAINED = "drained"
    PARKED = "parked"
    STORE_DOWN = "store_down"


@dataclass(slots=True)
class SpoolCounters:
    """Lifetime point counters of a :class:`SpoolingWriter`."""

    stored: int = 0
    spooled: int = 0
    drained: int = 0
    parked: int = 0
    store_failures: int = 0


class SpoolingWriter:
    """Writes points to the store, or to the spool while the store is unavailable."""

    def __init__(
        self,
        store: TimeSeriesStore,
        spool: Spool,
        *,
        backoff: Backoff | None = None,
        idle_poll_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._spool = spool
        self._backoff = backoff or Backoff(initial_s=0.5, cap_s=30.0)
        self._idle_poll_s = idle_poll_s
        self._rng = rng or random.Random()
        self._store_down = False
        self._wake = threading.Event()
        self.counters = SpoolCounters()

    @property
    def store_down(self) -> bool:
        """True from a failed write until the next successful drain."""
        return self._store_down

    def write(self, points: Sequence[Point]) -> WriteResult:
        """Store ``points`` or spool them; durable either way when this returns.

        Raises
        ------
        StoreRejectedError
            The store refused these points (nothing spooled: they would never drain).
        SpoolError
            The store was unavailable and the spool could not take the points either.
        """
        if not points:
            return WriteResult.STORED
        if not self._store_down:
            try:
                self._store.write(points)
            except StoreUnavailableError as exc:
                self._store_down = True
                self.counters.store_failures += 1
                log.warning("time-series store unavailable (%s); spooling", exc)
            else:
                self.counters.stored += len(points)
                return WriteResult.STORED
        self._spool.put(points)
        self.counters.spooled += len(points)
        self._wake.set()
        return WriteResult.SPOOLED

    def drain_once(self) -> DrainResult:
        """Try to move the oldest spooled batch to the store (blocking)."""
        batch = self._spool.oldest()
        if batch is None:
            return DrainResult.EMPTY
        try:
            refused = self._store_isolating(batch.points)
        except StoreUnavailableError:
            self._store_down = True
            self.counters.store_failures += 1
            return DrainResult.STORE_DOWN
        if refused:
            points, reason = refused
            self._spool.park(batch.id, reason, points)
            self.counters.parked += len(points)
            self.counters.drained += len(batch.points) - len(points)
            log.error("store refused %d spooled point(s); parked in the spool", len(points))
            return DrainResult.PARKED
        self._spool.remove(batch.id)
        self.counters.drained += len(batch.points)
        if self._store_down:
            log.info("time-series store is back; draining the spool")
        self._store_down = False
        return DrainResult.DRAINED

    def _store_isolating(self, points: Sequence[Point]) -> tuple[list[Point], str] | None:
        """Write ``points``; when the store refuses them, bisect to find the refused ones.

        Returns None when everything was stored, else the refused points and the store's
        reason. The good halves are written (again, harmlessly: writes are upserts).
        """
        try:
            self._store.write(points)
        except StoreRejectedError as exc:
            if len(points) == 1:
                return list(points), str(exc)
            middle = len(points) // 2
            halves = (points[:middle], points[middle:])
            found = [r for r in map(self._store_isolating, halves) if r is not None]
            if not found:  # refused together, taken apart (e.g. a request too large)
                return None
            return [p for refused, _ in found for p in refused], found[0][1]
        return None

    async def drain_forever(self) -> None:
        """Drain whenever the spool holds batches, until cancelled.

        Blocking steps run in a worker thread. While the store stays down, waits follow the
        capped exponential backoff with full jitter; a spool error is logged and retried the
        same way (the spool is on local disk; it may come back).
        """
        attempt = 0
        while True:
            self._wake.clear()  # a write after this point wakes the wait below
            try:
                result = await to_thread_settled(self.drain_once)
            except SpoolError:
                log.exception("spool unreadable; retrying")
                result = DrainResult.STORE_DOWN
            if result is DrainResult.EMPTY:
                attempt = 0
                await asyncio.to_thread(self._wake.wait, self._idle_poll_s)
            elif result is DrainResult.STORE_DOWN:
                await asyncio.sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
            else:
                attempt = 0
