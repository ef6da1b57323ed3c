"""Data lifecycle on SQLite and a real PostgreSQL: the audit log's retention trigger (migration
r0002) and consent withdrawal's scan of every table.

``db_url`` / ``empty_db_url`` come from this folder's conftest, parametrized over ``sqlite``
and ``postgresql``. The withdrawal bodies are shared with ``tests/unit/gateway/
test_lifecycle.py`` (imported by its plain name, as ``test_sql_postgres`` does).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shuxin.gateway.identity_crypto import IdentityCipher
from shuxin.gateway.sql_engine import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)
from shuxin.gateway.sql_errors import SqlDataError
from shuxin.gateway.sql_store import AUDIT_FLOOR_DAYS, Actor, SqlLifecycle, SqlStore
from shuxin.gateway.store_sqlite import SqliteStore

pytestmark = pytest.mark.integration

_UNIT_DIR = str(Path(__file__).resolve().parents[2] / "unit" / "gateway")
sys.path.insert(0, _UNIT_DIR)
try:
    import test_lifecycle as cases
finally:
    sys.path.remove(_UNIT_DIR)

AUDITOR = Actor("auditor-1")


def _entry(store: SqlStore, age_days: float, action: str) -> int:
    at = datetime.now(UTC) - timedelta(days=age_days)
    return store.append_audit(actor=AUDITOR, action=action, resource="r", purpose="p", at=at).id


def _delete(store: SqlStore, where: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM audit_log WHERE {where}"))


@pytest.fixture
def real_clock_store(db_url: str) -> Iterator[SqlStore]:
    """A store on the real clock: the trigger's floor is measured by the database's clock."""
    store = SqlStore(make_engine(db_url))
    yield store
    store.close()


def test_audit_entries_older_than_the_floor_can_go_and_younger_ones_cannot(
    real_clock_store: SqlStore,
) -> None:
    store = real_clock_store
    lifecycle = SqlLifecycle(store)
    old = _entry(store, AUDIT_FLOOR_DAYS + 17, "old.entry")
    young = _entry(store, AUDIT_FLOOR_DAYS - 3, "young.entry")
    fresh = _entry(store, 0, "fresh.entry")

    # Below the application's check, the database refuses on its own clock.
    for statement in (f"id = {young}", f"id = {fresh}", "1 = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            _delete(store, statement)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text(f"UPDATE audit_log SET purpose = 'changed' WHERE id = {old}"))
    # The application refuses a cut-off younger than the floor before asking the database.
    with pytest.raises(SqlDataError, match="at least 183 days"):
        lifecycle.purge_audit(datetime.now(UTC) - timedelta(days=AUDIT_FLOOR_DAYS - 1))

    cutoff = datetime.now(UTC) - timedelta(days=AUDIT_FLOOR_DAYS + 1)
    assert lifecycle.purge_audit(cutoff, dry_run=True) == 1
    assert lifecycle.purge_audit(cutoff) == 1
    assert sorted(e.id for e in store.audit_entries()) == [young, fresh]
    older = _entry(store, AUDIT_FLOOR_DAYS + 30, "old.entry")
    _delete(store, f"id = {older}")  # a direct delete of an old enough entry is allowed
    assert sorted(e.id for e in store.audit_entries()) == [young, fresh]


def test_r0002_downgrades_to_strictly_append_only_and_back(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        store = SqlStore(engine)
        downgrade(engine, "0001")  # through every later revision's downgrade
        old = _entry(store, 400, "old.entry")
        with pytest.raises(DBAPIError, match="append-only"):
            _delete(store, f"id = {old}")
        upgrade(engine)
        _delete(store, f"id = {old}")
        assert store.audit_entries() == []
        _entry(store, 0, "fresh.entry")  # SQLite's row triggers need a row to fire on
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET purpose = 'changed'"))
    finally:
        engine.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    cipher = IdentityCipher({"k1": AESGCM.generate_key(bit_length=256)}, "k1")
    sql_store = SqlStore(make_engine(db_url), cipher, clock=lambda: cases.NOW)
    yield sql_store
    sql_store.close()


@pytest.fixture
def tsdb(tmp_path: Path) -> Iterator[SqliteStore]:
    ts_store = SqliteStore(tmp_path / "timeseries.sqlite3")
    yield ts_store
    ts_store.close()


def test_withdraw_delete_scans_clean_on_both_databases(store: SqlStore, tsdb: SqliteStore) -> None:
    cases.check_delete_leaves_only_the_proof(store, tsdb)


def test_withdraw_anonymise_on_both_databases(store: SqlStore, tsdb: SqliteStore) -> None:
    cases.check_anonymise_keeps_aggregates_without_the_link(store, tsdb)


def test_late_messages_of_a_withdrawn_subject_are_discarded_on_both_databases(
    store: SqlStore, tsdb: SqliteStore, tmp_path: Path
) -> None:
    cases.check_late_messages_are_discarded(store, tsdb, tmp_path)
