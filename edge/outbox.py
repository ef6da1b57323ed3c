"""The edge agent's durable outbox: every message is on disk before it is published.

A message enters with :meth:`Outbox.enqueue`, which allocates the next ``seq`` of its topic and
stores the payload in one SQLite transaction, so sequence numbers count without gaps and
survive restarts (a power cut cannot make a ``seq`` be used twice or skipped). The publisher
reads the oldest messages with :meth:`Outbox.pending`, publishes them with QoS 1 and calls
:meth:`Outbox.ack` only after the broker's acknowledgement; after a crash the same messages are
replayed with the same ``seq``, and the gateway deduplicates by ``(topic, seq)``.

Caps on message count, bytes and age drop the OLDEST messages first and count every drop by
reason; a drop leaves a visible ``seq`` gap at the gateway rather than a silent hole.

SQLite in WAL mode with ``synchronous=FULL``: a committed enqueue survives power loss. This
module owns the file and nothing else; it knows nothing of MQTT.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shuxin.edge.errors import OutboxError
from shuxin.runtime.sqlite_file import open_sqlite

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    seq INTEGER,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS topic_seq (
    topic TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Caps on what the outbox keeps while the broker is unreachable.

    The defaults hold about a day of one station's normal traffic (≈ 5 streams × 1 msg/s ×
    ~600 bytes) and stay far below a small SD card.
    """

    max_messages: int = 500_000
    max_bytes: int = 512 * 1024 * 1024
    max_age_s: float = 14 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored message, as handed to the publisher."""

    id: int
    topic: str
    seq: int | None
    payload: bytes
    retain: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Backlog and lifetime counters, for station status and /metrics."""

    backlog: int
    backlog_bytes: int
    oldest_age_s: float
    enqueued: int
    acked: int
    dropped_count_cap: int
    dropped_bytes_cap: int
    dropped_age_cap: int

    @property
    def dropped(self) -> int:
        """All messages dropped by any cap."""
        return self.dropped_count_cap + self.dropped_bytes_cap + self.dropped_age_cap


PayloadBuilder = Callable[[int], bytes]


class Outbox:
    """A durable FIFO of MQTT messages with per-topic sequence numbers.

    Thread-safe: the agent's event loop may call it directly (calls are short, local-disk
    transactions) or from a worker thread.
    """

    def __init__(
        self,
        path: Path,
        limits: OutboxLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits or OutboxLimits()
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(path, _SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        self.path = path

    def close(self) -> None:
        """Close the database; the file keeps everything not yet acknowledged."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------------

    def enqueue(self, topic: str, build: PayloadBuilder) -> int:
        """Store a sequenced message for ``topic``; return the ``seq`` it was given.

        ``build(seq)`` makes the payload bytes for that sequence number; it runs inside the
        transaction, so if it raises, no sequence number is used.
        """
        with self._lock, self._transaction():
            row = self._db.execute(
                "SELECT next_seq FROM topic_seq WHERE topic = ?", (topic,)
            ).fetchone()
            seq = int(row[0]) if row else 0
            payload = build(seq)
            self._db.execute(
                "INSERT INTO topic_seq(topic, next_seq) VALUES (?, ?) "
                "ON CONFLICT(topic) DO UPDATE SET next_seq = excluded.next_seq",
                (topic, seq + 1),
            )
            self._insert(topic, seq, payload, retain=False)
            self._enforce_caps()
        return seq

    def enqueue_state(self, topic: str, payload: bytes) -> None:
        """Store a retained state message (station/device status): no ``seq``.

        An older unpublished state of the same topic is superseded and removed.
        """
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM message WHERE topic = ? AND seq IS NULL", (topic,))
            self._insert(topic, None, payload, retain=True)
            self._enforce_caps()

    def next_seq(self, topic: str) -> int:
        """Return the ``seq`` the next message of ``topic`` will get."""
        with self._lock:
            row = self._db.execute(
                "SELECT next_seq FROM topic_seq WHERE topic = ?", (topic,)
            ).fetchone()
        return int(row[0]) if row else 0

    # --- reading and acknowledging -------------------------------------------------------------

    def pending(self, limit: int = 100, after_id: int = 0) -> list[OutboxItem]:
        """Return up to ``limit`` stored messages, oldest first, with ``id > after_id``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, seq, payload, retain, created_at FROM message "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [
            OutboxItem(int(r[0]), str(r[1]), r[2], bytes(r[3]), bool(r[4]), float(r[5]))
            for r in rows
        ]

    def ack(self, message_id: int) -> None:
        """Remove a message the broker has acknowledged. Unknown ids are ignored (idempotent)."""
        with self._lock, self._transaction():
            cur = self._db.execute("DELETE FROM message WHERE id = ?", (message_id,))
            if cur.rowcount:
                self._bump("acked", cur.rowcount)

    def stats(self) -> OutboxStats:
        """Return the backlog and the lifetime counters."""
        with self._lock:
            count, size, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), MIN(created_at) FROM message"
            ).fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM counter").fetchall())
        return OutboxStats(
            backlog=int(count),
            backlog_bytes=int(size),
            oldest_age_s=0.0 if oldest is None else max(0.0, self._clock() - float(oldest)),
            enqueued=int(counters.get("enqueued", 0)),
            acked=int(counters.get("acked", 0)),
            dropped_count_cap=int(counters.get("dropped_count_cap", 0)),
            dropped_bytes_cap=int(counters.get("dropped_bytes_cap", 0)),
            dropped_age_cap=int(counters.get("dropped_age_cap", 0)),
        )

    # --- internals -----------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _insert(self, topic: str, seq: int | None, payload: bytes, *, retain: bool) -> None:
        self._db.execute(
            "INSERT INTO message(topic, seq, payload, retain, created_at) VALUES (?, ?, ?, ?, ?)",
            (topic, seq, payload, int(retain), self._clock()),
        )
        self._bump("enqueued", 1)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counter(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _drop_oldest(self, reason: str, where: str, params: tuple[float | int, ...]) -> None:
        cur = self._db.execute(
            f"DELETE FROM message WHERE id IN (SELECT id FROM message WHERE {where})",  # noqa: S608
            params,
        )
        if cur.rowcount:
            self._bump(reason, cur.rowcount)

    def _enforce_caps(self) -> None:
        limits = self._limits
        self._drop_oldest("dropped_age_cap", "created_at < ?", (self._clock() - limits.max_age_s,))
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM message"
        ).fetchone()
        if count > limits.max_messages:
            self._drop_oldest(
                "dropped_count_cap", "1 ORDER BY id LIMIT ?", (int(count) - limits.max_messages,)
            )
        if size > limits.max_bytes:
            # Drop oldest messages until the running total fits under the byte cap.
            self._drop_oldest(
                "dropped_bytes_cap",
                "id <= (SELECT id FROM (SELECT id, SUM(LENGTH(payload)) OVER (ORDER BY id) "
                "AS running FROM message) WHERE running >= ? ORDER BY id LIMIT 1)",
                (int(size) - limits.max_bytes,),
            )


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox transaction failed: {exc}") from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox commit failed: {err}") from err
        else:
            self._db.execute("ROLLBACK")
