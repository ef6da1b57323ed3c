"""Opening the small single-file SQLite databases the edge and the gateway keep on disk.

The outbox, the spool, the dedupe ledger, the quarantine and the embedded time-series store
all want the same thing: the file (and its folder) created if missing, WAL journaling so a
reader never blocks the writer, a chosen ``synchronous`` level, the schema applied, and an
autocommit connection the owner guards with its own lock. Callers translate ``sqlite3.Error``
into their own exception types.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal


def open_sqlite(
    path: Path, schema: str, *, synchronous: Literal["FULL", "NORMAL"] = "FULL"
) -> sqlite3.Connection:
    """Open ``path`` (creating it) in WAL mode with ``schema`` applied; raise ``sqlite3.Error``.

    ``FULL`` makes every commit survive power loss; ``NORMAL`` may lose the last commits on
    power loss but never corrupts the file (fine for data that can be rebuilt).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema)
    except sqlite3.Error:
        db.close()
        raise
    return db
