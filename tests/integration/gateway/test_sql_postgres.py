"""The SQL store's tests against a real PostgreSQL (and SQLite again), with one body each.

The test functions and fixtures come from ``tests/unit/gateway/test_sql_store.py``: every test
there that takes ``db_url`` or ``empty_db_url`` is collected here too, and this folder's
conftest parametrizes those two fixtures over ``sqlite`` and ``postgresql`` (a real server
started by the ``postgres`` fixture). SQLite-only tests (pragmas, settings) stay in the unit
module. Plus what only PostgreSQL can show: two connections racing on the same keys.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from shuxin.gateway.sql_engine import make_engine
from shuxin.gateway.sql_models import AlertKind, OrgUnitKind
from shuxin.gateway.sql_store import SqlStore

pytestmark = pytest.mark.integration

_UNIT_DIR = str(Path(__file__).resolve().parents[2] / "unit" / "gateway")
sys.path.insert(0, _UNIT_DIR)
try:
    # Imported by its plain name, as pytest's "prepend" mode imports it for the unit run, so
    # both runs share one (assertion-rewritten) module object.
    import test_sql_store as cases
finally:
    sys.path.remove(_UNIT_DIR)

_DATABASE_FIXTURES = {"db_url", "empty_db_url", "store", "grid"}
_SHARED_FIXTURES = ("key1", "cipher", "store", "grid")


def _runs_on_a_database(function: Callable[..., Any]) -> bool:
    return bool(set(inspect.signature(function).parameters) & _DATABASE_FIXTURES)


for _name, _function in vars(cases).items():
    if (
        _name.startswith("test_")
        and not _name.startswith("test_sqlite_")
        and _runs_on_a_database(_function)
    ):
        globals()[_name] = _function
for _name in _SHARED_FIXTURES:
    globals()[_name] = getattr(cases, _name)


def test_postgres_is_really_postgres(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                version = connection.execute(text("SHOW server_version")).scalar_one()
                assert int(str(version).split(".")[0]) >= 13
                # JSON columns are JSONB there.
                kind = connection.execute(
                    text(
                        "SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'session_event' AND column_name = 'payload'"
                    )
                ).scalar_one()
                assert kind == "jsonb"
            else:
                assert engine.dialect.name == "sqlite"
    finally:
        engine.dispose()


def test_concurrent_writers_create_one_row_per_key(db_url: str, cipher: Any) -> None:
    """Eight threads apply the same lifecycle and open the same alert at once: one session,
    one subject, one unresolved alert, and no thread fails."""
    stores = [SqlStore(make_engine(db_url), cipher) for _ in range(8)]
    try:
        detachment = stores[0].create_org_unit(OrgUnitKind.DETACHMENT, "D01", "支队")
        stores[0].register_station("st-1", org_unit_id=detachment.id, display_name="驿站")
        message = cases.lifecycle("start", 0)
        errors: list[BaseException] = []
        alert_ids: list[int] = []
        barrier = threading.Barrier(len(stores))

        def work(store: SqlStore) -> None:
            try:
                barrier.wait()
                store.apply_lifecycle(message)
                alert = store.open_alert(
                    AlertKind.STATION_OFFLINE, {}, created_at=cases.NOW, station_id="st-1"
                )
                alert_ids.append(alert.id)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(alert_ids)) == 1
        with stores[0].engine.connect() as connection:
            counts = [
                connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("session", "subject", "alert", "session_phase")
            ]
        assert counts == [1, 1, 1, 3]
    finally:
        for store in stores:
            store.close()
