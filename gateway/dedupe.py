"""The (topic, seq) ledger: which session messages ingest has already made durable.

Every session message carries a ``seq`` that counts the messages of its topic from 0 without
gaps, so ``(topic, seq)`` identifies a message. Per topic the ledger keeps the highest
*contiguous* seq (every seq up to it has been handled) and the set of seqs handled above it
(out of order, or beyond a gap). In memory that is a small LRU cache; on disk a SQLite file, so
the ledger survives a restart and redelivery after a crash is recognised.

What guarantees what:

- **Idempotent writes guarantee correctness.** Every sink upserts on a key derived from the
  message alone (the time-series point identity; later the SQL rows' ``(topic, seq)``), so a
  message handled twice leaves the stores as handling it once does — even when this ledger is
  lost, lags behind the stores (a crash between the store write and :meth:`SqliteSeqLedger.mark`),
  is evicted, or is per replica.
- **The ledger makes duplicates cheap and visible, and pins the first version.** A duplicate is
  counted and acknowledged without touching any store, and a message redelivered with the same
  ``(topic, seq)`` but different content cannot overwrite what was stored first.

The ledger never claims a seq it has not seen: when a topic's set above the contiguous mark
exceeds its bound, the *lowest* entries are forgotten, so at worst an old message is handled
again (harmless, see above), never wrongly dropped. ``synchronous=NORMAL`` for the same reason:
a power cut may lose the last marks, which only costs a re-write.

:class:`SeqLedger` is the port ingest uses; the SQL store may implement it later in the same
transaction as its rows. This module knows nothing of MQTT or of the stores.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from shuxin.gateway.errors import DedupeError
from shuxin.runtime.sqlite_file import open_sqlite

#: Seqs kept above a topic's contiguous mark (a 1 h session at 1 message/s is 3,600).
DEFAULT_MAX_ABOVE: Final = 4096
#: Topics whose state stays in memory (each is a few hundred bytes plus its set).
DEFAULT_CACHE_TOPICS: Final = 4096

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS topic_progress (
    topic TEXT PRIMARY KEY,
    contiguous INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seq_above (
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS topic_progress_by_age ON topic_progress(updated_at);
"""


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back an open transaction; a closed or broken connection has nothing to undo."""
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


class SeqLedger(Protocol):
    """Remembers which ``(topic, seq)`` have been made durable."""

    def seen(self, topic: str, seq: int) -> bool:
        """True only when ``(topic, seq)`` was marked before."""
        ...

    def mark(self, keys: Iterable[tuple[str, int]]) -> None:
        """Record ``keys`` as durable (idempotent); raise ``DedupeError`` on failure."""
        ...


@dataclass(frozen=True, slots=True)
class TopicProgress:
    """What the ledger knows about one topic.

    ``contiguous`` is -1 before seq 0 has been seen; ``highest`` is the largest seq seen (or
    ``contiguous``); ``missing`` counts seqs between them not seen yet (a visible gap).
    """

    contiguous: int
    highest: int
    above: int

    @property
    def missing(self) -> int:
        """Seqs below ``highest`` that have not been seen."""
        return self.highest - self.contiguous - self.above


@dataclass(slots=True)
class _TopicState:
    contiguous: int = -1
    above: set[int] = field(default_factory=set)

    def has(self, seq: int) -> bool:
        return seq <= self.contiguous or seq in self.above


class SqliteSeqLedger:
    """:class:`SeqLedger` in a SQLite file (WAL). Thread-safe."""

    def __init__(
        self,
        path: Path,
        *,
        max_above: int = DEFAULT_MAX_ABOVE,
        cache_topics: int = DEFAULT_CACHE_TOPICS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_above < 1 or cache_topics < 1:
            raise ValueError("max_above and cache_topics must be >= 1")
        self._max_above = max_above
        self._cache_topics = cache_topics
        self._clock = clock
        self._cache: OrderedDict[str, _TopicState] = OrderedDict()
        self._lock = threading.Lock()
        #: Seqs forgotten because a topic's set exceeded ``max_above``.
        self.evicted = 0
        try:
            self._db = open_sqlite(path, _SCHEMA, synchronous="NORMAL")
        except sqlite3.Error as exc:
            raise DedupeError(f"cannot open dedupe ledger {path}: {exc}") from exc
        self.path = path

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def seen(self, topic: str, seq: int) -> bool:
        """True only when ``(topic, seq)`` was marked before (this process or an earlier one)."""
        with self._lock:
            return self._state(topic).has(seq)

    def progress(self, topic: str) -> TopicProgress:
        """Return the contiguous mark, the highest seq and the count above the mark."""
        with self._lock:
            state = self._state(topic)
            highest = max(state.above, default=state.contiguous)
            return TopicProgress(state.contiguous, highest, len(state.above))

    def mark(self, keys: Iterable[tuple[str, int]]) -> None:
        """Record ``keys`` as durable, in one transaction. Marking a key twice is harmless."""
        by_topic: dict[str, list[int]] = {}
        for topic, seq in keys:
            by_topic.setdefault(topic, []).append(seq)
        if not by_topic:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                updated = {topic: self._apply(topic, seqs) for topic, seqs in by_topic.items()}
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(self._db)
                # The cache may be ahead of the file now; drop it so it reloads from disk.
                for topic in by_topic:
                    self._cache.pop(topic, None)
                raise DedupeError(f"cannot write dedupe ledger: {exc}") from exc
            for topic, state in updated.items():
                self._remember(topic, state)

    def prune(self, older_than: datetime) -> int:
        """Forget topics not marked since ``older_than``; return how many.

        Safe at any age (idempotent writes make a forgotten message harmless); pick a
        retention well beyond how long an edge outbox can hold a message.
        """
        cutoff = older_than.timestamp()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                topics = [
                    row[0]
                    for row in self._db.execute(
                        "SELECT topic FROM topic_progress WHERE updated_at < ?", (cutoff,)
                    )
                ]
                for topic in topics:
                    self._db.execute("DELETE FROM seq_above WHERE topic = ?", (topic,))
                    self._db.execute("DELETE FROM topic_progress WHERE topic = ?", (topic,))
                    self._cache.pop(topic, None)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(self._db)
                raise DedupeError(f"cannot prune dedupe ledger: {exc}") from exc
        return len(topics)

    # --- internals (called with the lock held) ---------------------------------------------------

    def _state(self, topic: str) -> _TopicState:
        state = self._cache.get(topic)
        if state is not None:
            self._cache.move_to_end(topic)
            return state
        try:
            row = self._db.execute(
                "SELECT contiguous FROM topic_progress WHERE topic = ?", (topic,)
            ).fetchone()
            above = {
                int(r[0])
                for r in self._db.execute("SELECT seq FROM seq_above WHERE topic = ?", (topic,))
            }
        except sqlite3.Error as exc:
            raise DedupeError(f"cannot read dedupe ledger: {exc}") from exc
        state = _TopicState(int(row[0]) if row else -1, above)
        self._remember(topic, state)
        return state

    def _remember(self, topic: str, state: _TopicState) -> None:
        self._cache[topic] = state
        self._cache.move_to_end(topic)
        while len(self._cache) > self._cache_topics:
            self._cache.popitem(last=False)

    def _apply(self, topic: str, seqs: list[int]) -> _TopicState:
        """Advance one topic's state in the open transaction; return the new state."""
        old = self._state(topic)
        state = _TopicState(old.contiguous, set(old.above))
        added = {seq for seq in seqs if not state.has(seq)}
        if not added:
            return state
        state.above |= added
        while state.contiguous + 1 in state.above:
            state.contiguous += 1
            state.above.discard(state.contiguous)
        evicted: list[int] = []
        if len(state.above) > self._max_above:
            evicted = sorted(state.above)[: len(state.above) - self._max_above]
            state.above.difference_update(evicted)
            self.evicted += len(evicted)
        self._db.execute(
            "INSERT INTO topic_progress(topic, contiguous, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(topic) DO UPDATE SET contiguous = excluded.contiguous, "
            "updated_at = excluded.updated_at",
            (topic, state.contiguous, self._clock()),
        )
        self._db.execute(
            "DELETE FROM seq_above WHERE topic = ? AND seq <= ?", (topic, state.contiguous)
        )
        self._db.executemany(
            "DELETE FROM seq_above WHERE topic = ? AND seq = ?", [(topic, s) for s in evicted]
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO seq_above(topic, seq) VALUES (?, ?)",
            [(topic, s) for s in added if s in state.above],
        )
        return state
