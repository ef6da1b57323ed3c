"""The session list's order, paging and count on SQLite and PostgreSQL (``queries.list_sessions``).

The list orders newest first with sessions that have no start last, then by id; migration
r0003 adds an index in that order, and the list takes two shortcuts: no scope condition when
the caller's subtree holds every org unit, and no ``COUNT(*)`` on a short last page. Each test
compares every page against the same order and count computed here in Python from the rows
inserted (ties on the start time, several sessions without a start, sessions without a
subject), for a root whose subtree is everything, a brigade, and the root again once a second
root exists (the scoped path).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.postgres import PostgresServer
from sqlalchemy import Engine, event, text

from shuxin.dashboard_api import queries
from shuxin.gateway.sql_engine import make_engine, make_session_factory, upgrade
from shuxin.gateway.sql_models import OrgUnitKind, SessionRow, SessionStatus
from shuxin.gateway.sql_store import SqlStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Inserted:
    id: str
    station: str
    subject_unit: int | None  # the subject's unit; None: no subject yet
    station_unit: int
    started_at: datetime | None
    status: SessionStatus


@dataclass
class World:
    engine: Engine
    store: SqlStore
    root: int
    brigades: list[int]
    stations: list[tuple[str, int, int]]  # (station id, its unit, its brigade)
    sessions: list[Inserted]
    subtree: dict[int, set[int]]  # unit -> every unit in its subtree


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'list.sqlite3'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"list_{uuid.uuid4().hex[:16]}")
    created = make_engine(url)
    upgrade(created)
    yield created
    created.dispose()


def _world(engine: Engine) -> World:
    store = SqlStore(engine)
    root = store.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "一支队", None).id
    brigades, stations, subjects = [], [], []
    for b in range(2):
        brigade = store.create_org_unit(OrgUnitKind.BRIGADE, f"D{b}", f"第{b + 1}大队", root).id
        brigades.append(brigade)
        for s in range(2):
            code = f"D{b}-Z{s}"
            unit = store.create_org_unit(OrgUnitKind.STATION, code, f"{code}站", brigade).id
            station = f"st-d{b}-z{s}"
            store.register_station(station, org_unit_id=unit, display_name=code)
            stations.append((station, unit, brigade))
            for k in range(2):
                subject = store.register_subject(f"S-{b}{s}{k}AB", unit)
                subjects.append((subject.id, unit))
    statuses = list(SessionStatus)
    inserted: list[Inserted] = []
    rows = []
    for i in range(41):
        station, station_unit, _brigade = stations[i % len(stations)]
        # Subjects at another station than the session's now and then (scope follows the
        # subject), no subject every seventh session (scope follows the station).
        subject_id, subject_unit = subjects[(i * 3) % len(subjects)]
        if i % 7 == 3:
            subject_id, subject_unit = None, None  # type: ignore[assignment]
        # Ties: pairs of sessions share a start; every fifth has no start at all.
        started = None if i % 5 == 2 else T0 + timedelta(hours=(i // 2) * 3)
        status = statuses[i % len(statuses)]
        sid = f"sess-{(i * 17) % 41:02d}-{i}"
        inserted.append(Inserted(sid, station, subject_unit, station_unit, started, status))
        rows.append(
            SessionRow(
                id=sid,
                station_id=station,
                subject_id=subject_id,
                status=status,
                started_at=started,
                devices=[],
                created_at=T0,
            )
        )
    with make_session_factory(engine).begin() as db:
        db.add_all(rows)
    subtree = {unit.id: {u.id for u in store.subtree(unit.id)} for unit in store.subtree(root)}
    return World(engine, store, root, brigades, stations, inserted, subtree)


def _expected(world: World, under: int, **filters: object) -> list[str]:
    units = world.subtree[under]
    chosen = [
        s
        for s in world.sessions
        if (s.subject_unit in units if s.subject_unit is not None else s.station_unit in units)
        and (filters.get("station") in (None, s.station))
        and (filters.get("status") in (None, s.status))
        and (
            filters.get("date_from") is None
            or (s.started_at is not None and s.started_at >= filters["date_from"])  # type: ignore[operator]
        )
    ]
    # Newest first, no start last, then by id.
    chosen.sort(key=lambda s: (s.started_at is None, -(s.started_at or T0).timestamp(), s.id))
    return [s.id for s in chosen]


def _pages(
    world: World, under: int, limit: int, filters: queries.SessionFilters
) -> tuple[list[str], set[int]]:
    """Every page's ids concatenated, and the set of counts the pages reported."""
    ids: list[str] = []
    counts: set[int] = set()
    offset = 0
    with make_session_factory(world.engine)() as db:
        while True:
            items, total = queries.list_sessions(db, under, filters, queries.Page(limit, offset))
            counts.add(total)
            ids.extend(item.session.id for item in items)
            if len(items) < limit:
                break
            offset += limit
    return ids, counts


@pytest.mark.parametrize("limit", [1, 4, 7, 41, 50])
def test_every_page_in_order_with_the_exact_count(engine: Engine, limit: int) -> None:
    world = _world(engine)
    with make_session_factory(engine)() as db:
        assert queries.subtree_is_everything(db, world.root)
        assert not queries.subtree_is_everything(db, world.brigades[0])
    for under in (world.root, *world.brigades):
        expected = _expected(world, under)
        assert 0 < len(expected) <= 41
        ids, counts = _pages(world, under, limit, queries.SessionFilters())
        assert ids == expected
        assert counts == {len(expected)}


def test_filters_and_the_scoped_path_give_the_same_rows(engine: Engine) -> None:
    world = _world(engine)
    station = world.stations[1][0]
    cases: list[tuple[queries.SessionFilters, dict[str, object]]] = [
        (queries.SessionFilters(station=station), {"station": station}),
        (
            queries.SessionFilters(status=SessionStatus.ENDED),
            {"status": SessionStatus.ENDED},
        ),
        (
            queries.SessionFilters(date_from=T0 + timedelta(hours=20)),
            {"date_from": T0 + timedelta(hours=20)},
        ),
    ]
    before = {}
    for filters, expect in cases:
        for under in (world.root, world.brigades[1]):
            expected = _expected(world, under, **expect)
            ids, counts = _pages(world, under, 3, filters)
            assert ids == expected, (filters, under)
            assert counts == {len(expected)}, (filters, under)
            before[(filters, under)] = ids
    # A second root (with its own station and session) makes the first root's subtree no
    # longer everything: the scoped query must return exactly the same rows.
    other = world.store.create_org_unit(OrgUnitKind.DETACHMENT, "ZE", "二支队", None).id
    brigade = world.store.create_org_unit(OrgUnitKind.BRIGADE, "E0", "二支队一大队", other).id
    unit = world.store.create_org_unit(OrgUnitKind.STATION, "E-Z0", "E-Z0站", brigade).id
    world.store.register_station("st-e-z0", org_unit_id=unit, display_name="E-Z0")
    with make_session_factory(engine).begin() as db:
        db.add(
            SessionRow(
                id="sess-other-root",
                station_id="st-e-z0",
                subject_id=None,
                status=SessionStatus.ENDED,
                started_at=T0 + timedelta(days=30),
                devices=[],
                created_at=T0,
            )
        )
    with make_session_factory(engine)() as db:
        assert not queries.subtree_is_everything(db, world.root)
    for (filters, under), ids in before.items():
        assert _pages(world, under, 3, filters)[0] == ids, (filters, under)
    ids, counts = _pages(world, world.root, 5, queries.SessionFilters())
    assert ids == _expected(world, world.root)
    assert "sess-other-root" not in ids
    assert counts == {len(ids)}


def test_an_empty_page_past_the_end_still_counts(engine: Engine) -> None:
    world = _world(engine)
    with make_session_factory(engine)() as db:
        items, total = queries.list_sessions(
            db, world.root, queries.SessionFilters(), queries.Page(10, 100)
        )
        assert items == []
        assert total == len(world.sessions)
        items, total = queries.list_sessions(
            db, world.root, queries.SessionFilters(station="st-none"), queries.Page(10, 0)
        )
        assert (items, total) == ([], 0)


def test_sqlite_reads_the_newest_page_from_the_index(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, parameters))

    try:
        upgrade(engine)
        world = _world(engine)
        event.listen(engine, "before_cursor_execute", capture)
        for under in (world.root, world.brigades[0]):  # without and with the scope condition
            statements.clear()
            with make_session_factory(engine)() as db:
                queries.list_sessions(db, under, queries.SessionFilters(), queries.Page(5, 0))
            page, parameters = next(
                (sql, p) for sql, p in statements if "ORDER BY session.started_at DESC" in sql
            )
            with engine.connect() as connection:
                plan = " | ".join(
                    str(row[-1])
                    for row in connection.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + page, tuple(parameters)
                    )
                )
            scan = r"SCAN session USING (COVERING )?INDEX ix_session_started_at_id"
            assert re.search(scan, plan), plan
            assert "TEMP B-TREE" not in plan, plan
        event.remove(engine, "before_cursor_execute", capture)
        with engine.connect() as connection:
            sql = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_session_started_at_id'")
            ).scalar_one()
        assert "started_at DESC" in sql
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # SQLite: the test above
def test_postgresql_reads_the_newest_page_from_the_index(engine: Engine) -> None:
    """With sequential scans and sorts priced out (the tables are tiny), the page query of a
    root counselor is an index scan of ix_session_started_at_id with no Sort node: the index
    is in the list's order, NULLs last included."""
    assert engine.dialect.name == "postgresql"
    world = _world(engine)
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with make_session_factory(engine)() as db:
            queries.list_sessions(db, world.root, queries.SessionFilters(), queries.Page(5, 0))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    page, parameters = next(
        (sql, p) for sql, p in statements if "ORDER BY session.started_at DESC" in sql
    )
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        connection.exec_driver_sql("SET enable_sort = off")
        plan = " | ".join(
            str(row[0]) for row in connection.exec_driver_sql("EXPLAIN " + page, parameters)
        )
    assert "ix_session_started_at_id" in plan, plan
    assert "Sort" not in plan, plan
