"""Quarantine: where every message ingest refuses is kept, with the reason, for a person to see.

A :class:`QuarantineRecord` holds the topic, a stable ``code`` (a contract error code such as
``malformed_json``, or ``store_rejected`` / ``internal_error`` from the gateway), a one-line
reason, the structured field errors, a bounded copy of the payload (UTF-8 text when it is text,
base64 otherwise) with its full size, and the receive time.

:class:`QuarantineStore` is the port; :class:`SqliteQuarantine` is the embedded adapter (the
SQL store may replace it later). A quarantined payload may itself contain personal data (a
hostile payload may carry a name): rows are for administrators, and :meth:`SqliteQuarantine
.purge` enforces retention. Nothing here logs a payload or a topic.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal, Protocol

from shuxin.contract.ids import STATION_ID_PATTERN
from shuxin.contract.topics import PREFIX
from shuxin.gateway.errors import QuarantineError
from shuxin.runtime.sqlite_file import open_sqlite

#: Bytes of a refused payload kept in its quarantine row.
DEFAULT_PAYLOAD_COPY_BYTES: Final = 4096
#: Characters of a topic kept (the contract refuses longer topics anyway).
MAX_TOPIC_CHARS: Final = 256
_MAX_REASON_CHARS: Final = 300
_STATION_RE: Final = re.compile(STATION_ID_PATTERN)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

PayloadEncoding = Literal["text", "base64"]


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """One refused message."""

    received_at: datetime
    topic: str
    station: str | None
    code: str
    reason: str
    errors: tuple[Mapping[str, object], ...]
    payload: str
    payload_encoding: PayloadEncoding
    payload_size: int
    payload_truncated: bool

    def payload_bytes(self) -> bytes:
        """Return the kept copy of the payload as bytes (possibly truncated)."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")


def _station_of(topic: str) -> str | None:
    """The station id from a ``shuxin/v1/<station>/…`` topic, if it is a valid id."""
    parts = topic.split("/", 3)
    if len(parts) >= 3 and "/".join(parts[:2]) == PREFIX and _STATION_RE.fullmatch(parts[2]):
        return parts[2]
    return None


def _utf8_text(head: bytes, truncated: bool) -> str | None:
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut in half by the limit is not a reason to fall back to base64.
        if truncated and exc.reason == "unexpected end of data":
            return head[: exc.start].decode("utf-8")
        return None


def payload_copy(payload: bytes, limit: int) -> tuple[str, PayloadEncoding, bool]:
    """Return ``(copy, encoding, truncated)`` for the first ``limit`` bytes of ``payload``.

    Text when those bytes are UTF-8 without NUL (a multi-byte character cut by the limit is
    dropped), base64 otherwise.
    """
    head = payload[:limit]
    truncated = len(payload) > limit
    text = _utf8_text(head, truncated)
    if text is None or "\x00" in text:
        return base64.b64encode(head).decode("ascii"), "base64", truncated
    return text, "text", truncated


def make_record(
    topic: str,
    payload: bytes,
    received_at: datetime,
    *,
    code: str,
    reason: str,
    errors: Sequence[Mapping[str, object]] = (),
    payload_limit: int = DEFAULT_PAYLOAD_COPY_BYTES,
) -> QuarantineRecord:
    """Build a record with a bounded copy of ``payload``."""
    copy, encoding, truncated = payload_copy(payload, payload_limit)
    return QuarantineRecord(
        received_at=received_at.astimezone(UTC),
        topic=topic[:MAX_TOPIC_CHARS],
        station=_station_of(topic),
        code=code,
        reason=reason[:_MAX_REASON_CHARS],
        errors=tuple(errors),
        payload=copy,
        payload_encoding=encoding,
        payload_size=len(payload),
        payload_truncated=truncated,
    )


class QuarantineStore(Protocol):
    """Keeps refused messages."""

    def add(self, records: Sequence[QuarantineRecord]) -> None:
        """Store ``records`` durably or raise :class:`~shuxin.gateway.errors.QuarantineError`."""
        ...


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_us INTEGER NOT NULL,
    topic TEXT NOT NULL,
    station TEXT,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    errors TEXT NOT NULL,
    payload TEXT NOT NULL,
    payload_encoding TEXT NOT NULL,
    payload_size INTEGER NOT NULL,
    payload_truncated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_by_time ON quarantine(received_at_us);
"""


class SqliteQuarantine:
    """Quarantine rows in a SQLite file (WAL, ``synchronous=FULL``). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(path, _SCHEMA)
        except sqlite3.Error as exc:
            raise QuarantineError(f"cannot open quarantine {path}: {exc}") from exc
        self.path = path

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add(self, records: Sequence[QuarantineRecord]) -> None:
        """Store ``records`` in one transaction."""
        rows = [
            (
                _to_us(r.received_at),
                r.topic,
                r.station,
                r.code,
                r.reason,
                json.dumps([dict(e) for e in r.errors], ensure_ascii=False),
                r.payload,
                r.payload_encoding,
                r.payload_size,
                int(r.payload_truncated),
            )
            for r in records
        ]
        if not rows:
            return
        with self._lock:
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.executemany(
                        "INSERT INTO quarantine(received_at_us, topic, station, code, reason, "
                        "errors, payload, payload_encoding, payload_size, payload_truncated) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.Error as exc:
                raise QuarantineError(f"cannot write quarantine rows: {exc}") from exc

    def recent(self, limit: int = 100) -> list[QuarantineRecord]:
        """Return up to ``limit`` records, newest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT received_at_us, topic, station, code, reason, errors, payload, "
                    "payload_encoding, payload_size, payload_truncated FROM quarantine "
                    "ORDER BY id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise QuarantineError(f"cannot read quarantine rows: {exc}") from exc
        return [
            QuarantineRecord(
                received_at=_EPOCH + timedelta(microseconds=int(row[0])),
                topic=row[1],
                station=row[2],
                code=row[3],
                reason=row[4],
                errors=tuple(json.loads(row[5])),
                payload=row[6],
                payload_encoding="base64" if row[7] == "base64" else "text",
                payload_size=int(row[8]),
                payload_truncated=bool(row[9]),
            )
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Return the number of stored rows per code."""
        with self._lock:
            rows = self._db.execute("SELECT code, COUNT(*) FROM quarantine GROUP BY code")
            return {str(code): int(count) for code, count in rows.fetchall()}

    def purge(self, older_than: datetime) -> int:
        """Delete rows received before ``older_than`` (retention); return how many."""
        with self._lock:
            try:
                with self._db:
                    cursor = self._db.execute(
                        "DELETE FROM quarantine WHERE received_at_us < ?",
                        (_to_us(older_than),),
                    )
            except sqlite3.Error as exc:
                raise QuarantineError(f"cannot purge quarantine rows: {exc}") from exc
        return cursor.rowcount
