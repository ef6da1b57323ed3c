"""Group commit of the audit records of concurrent requests.

Every read of a person's data is audited, and a read is not answered before its audit record
is committed (DESIGN §4). Committed one transaction each, concurrent requests queue for
SQLite's single write lock (its busy handler sleeps with back-off while waiting) and pay one
WAL fsync each. :class:`AuditWriter` keeps the guarantee and shares the cost: a request hands
its record to one writer thread and waits until the transaction holding it has committed;
the writer commits whatever records are waiting together, in one transaction (one lock, one
fsync), then the next batch. With one request at a time a batch is one record, as before.

A batch that fails on one bad record is retried record by record, so each request gets its
own record's error and the others are still written; when the database is unavailable every
request of the batch gets that error (their records were not written). After :meth:`close`
(the app's shutdown) records are written directly, one transaction each.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Final

from shuxin.gateway.sql_errors import SqlUnavailableError
from shuxin.gateway.sql_store import SqlStore

#: The most records one transaction takes (the rest wait for the next).
MAX_BATCH: Final = 256


@dataclass
class _Pending:
    record: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class AuditWriter:
    """Appends audit records through ``store``, many requests per commit (see the module)."""

    def __init__(self, store: SqlStore, *, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Transactions committed and records written by the writer thread, and the appends
        #: waiting for their commit now (for tests and the bench).
        self.batches = 0
        self.records = 0
        self.waiting = 0

    def append(self, **record: Any) -> None:
        """Append one record (``SqlStore.append_audit``'s keyword arguments); return once it
        is committed, or raise that record's error."""
        pending = _Pending(record)
        with self._wake:
            if self._closed:
                direct = True
            else:
                direct = False
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="audit-writer", daemon=True
                    )
                    self._thread.start()
                self._queue.append(pending)
                self.waiting += 1
                self._wake.notify()
        if direct:
            self._store.append_audit(**record)
            return
        pending.done.wait()
        with self._wake:
            self.waiting -= 1
        if pending.error is not None:
            raise pending.error

    def close(self) -> None:
        """Write what is queued, stop the thread; later records are written directly."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        for pending in batch:  # until shown otherwise (whatever escapes below)
            pending.error = SqlUnavailableError("append audit: the record was not written")
        try:
            self._store.append_audits([pending.record for pending in batch])
            for pending in batch:
                pending.error = None
            self.batches += 1
            self.records += len(batch)
        except SqlUnavailableError as exc:
            for pending in batch:
                pending.error = exc
        except Exception:
            for pending in batch:  # one bad record: each alone, with its own error
                try:
                    self._store.append_audit(**pending.record)
                    pending.error = None
                except Exception as exc:
                    pending.error = exc
        finally:
            for pending in batch:
                pending.done.set()
