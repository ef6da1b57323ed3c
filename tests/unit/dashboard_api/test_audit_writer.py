"""``AuditWriter``: concurrent requests' audit records share a transaction; each request
returns only once its record is committed and gets its own record's error."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shuxin.dashboard_api.audit_writer import AuditWriter
from shuxin.gateway.sql_errors import SqlDataError
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import Actor, SqlStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(SqlSettings(url=f"sqlite:///{tmp_path / 'audit.sqlite3'}"), tmp_path)
    yield opened
    opened.close()


def _record(i: int, action: str = "session.read") -> dict[str, Any]:
    return {
        "actor": Actor("counselor-1", 1),
        "action": action,
        "resource": f"/api/v1/sessions/s-{i}",
        "purpose": "counselling follow-up",
        "subject_code": "S-7F3K2",
        "ip": "127.0.0.1",
    }


def _committed(path: Path) -> list[str]:
    """Resources of the committed audit records, seen from another connection."""
    with sqlite3.connect(path) as connection:
        return [r[0] for r in connection.execute("SELECT resource FROM audit_log ORDER BY id")]


def _appending(
    writer: AuditWriter, records: list[dict[str, Any]]
) -> tuple[list[threading.Thread], dict[int, BaseException | None]]:
    """Start one thread per record appending it; their outcomes land in the dict."""
    outcomes: dict[int, BaseException | None] = {}

    def one(i: int, record: dict[str, Any]) -> None:
        try:
            writer.append(**record)
            outcomes[i] = None
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=one, args=(i, record)) for i, record in enumerate(records)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def _locked_while_queueing(
    path: Path, writer: AuditWriter, records: list[dict[str, Any]]
) -> dict[int, BaseException | None]:
    """Hold the database's write lock while every record is handed to the writer, so they
    queue up behind its first transaction; then release it and wait for every append."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        threads, outcomes = _appending(writer, records)
        deadline = time.monotonic() + 10
        while writer.waiting < len(records):
            assert time.monotonic() < deadline, "the appends did not queue"
            time.sleep(0.01)
        assert outcomes == {}  # nothing returns before its record is committed
        blocker.execute("COMMIT")
    finally:
        blocker.close()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_records_share_transactions_and_all_commit(
    store: SqlStore, tmp_path: Path
) -> None:
    writer = AuditWriter(store)
    try:
        records = [_record(i) for i in range(20)]
        outcomes = _locked_while_queueing(tmp_path / "audit.sqlite3", writer, records)
        assert outcomes == dict.fromkeys(range(20))
        assert sorted(_committed(tmp_path / "audit.sqlite3")) == sorted(
            r["resource"] for r in records
        )
        assert writer.records == 20
        assert writer.batches <= 2  # what was queued when the lock was taken, then the rest
    finally:
        writer.close()


def test_a_bad_record_fails_alone(store: SqlStore, tmp_path: Path) -> None:
    writer = AuditWriter(store)
    try:
        records = [_record(i) for i in range(6)]
        records[3] = _record(3, action="not a label!")
        outcomes = _locked_while_queueing(tmp_path / "audit.sqlite3", writer, records)
        assert isinstance(outcomes.pop(3), SqlDataError)
        assert outcomes == dict.fromkeys([0, 1, 2, 4, 5])
        assert sorted(_committed(tmp_path / "audit.sqlite3")) == sorted(
            r["resource"] for i, r in enumerate(records) if i != 3
        )
    finally:
        writer.close()


def test_one_record_at_a_time_is_committed_on_return(store: SqlStore, tmp_path: Path) -> None:
    writer = AuditWriter(store)
    try:
        for i in range(3):
            writer.append(**_record(i))
            assert _committed(tmp_path / "audit.sqlite3")[-1] == f"/api/v1/sessions/s-{i}"
        assert (writer.batches, writer.records) == (3, 3)
    finally:
        writer.close()
    writer.append(**_record(9))  # after close: written directly, still committed on return
    assert _committed(tmp_path / "audit.sqlite3")[-1] == "/api/v1/sessions/s-9"
    assert writer.records == 3
    with pytest.raises(SqlDataError):
        writer.append(**_record(10, action="not a label!"))
