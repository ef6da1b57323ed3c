"""The durable spool and the writer in front of the store: nothing lost while the store is down."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from shuxin.gateway.errors import SpoolError, StoreRejectedError, StoreUnavailableError
from shuxin.gateway.spool import DrainResult, Spool, SpoolingWriter, WriteResult
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.timeseries import Point
from shuxin.runtime.backoff import Backoff


class SwitchableStore:
    """The real SQLite store behind a switch: test double for a store that goes down.

    ``down`` makes every call raise ``StoreUnavailableError``; ``reject`` makes writes that
    contain a point of that measurement raise ``StoreRejectedError``.
    """

    def __init__(self, path: Path) -> None:
        self.inner = SqliteStore(path)
        self.down = False
        self.reject: str | None = None
        self.write_calls = 0

    def write(self, points: Sequence[Point]) -> None:
        self.write_calls += 1
        if self.down:
            raise StoreUnavailableError("test: store is down")
        if self.reject and any(p.measurement == self.reject for p in points):
            raise StoreRejectedError("test: HTTP 400: field type conflict")
        self.inner.write(points)

    def query(
        self,
        measurement: str,
        *,
        station: str,
        start: datetime,
        end: datetime,
        device: str | None = None,
    ) -> list[Point]:
        return self.inner.query(measurement, station=station, start=start, end=end, device=device)

    def ping(self) -> bool:
        return not self.down

    def close(self) -> None:
        self.inner.close()


def _points(first: int, count: int, measurement: str = "rr") -> list[Point]:
    return [
        Point.make(
            measurement,
            {"station": "st-a", "device": "hrs-1"},
            {"rr_ms": 800.0 + i, "contact": 1, "flag": i % 2 == 0},
            1_795_420_800_000_000 + i * 1000,
        )
        for i in range(first, first + count)
    ]


def test_spool_is_a_fifo_that_keeps_field_types(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.put(_points(0, 3))
    spool.put(_points(3, 2))
    spool.put([])  # nothing to keep: no empty batch
    first = spool.oldest()
    assert first is not None
    assert first.points == _points(0, 3)
    assert [type(v) for _, v in first.points[0].fields] == [int, bool, float]
    spool.remove(first.id)
    second = spool.oldest()
    assert second is not None
    assert second.points == _points(3, 2)
    spool.remove(second.id)
    assert spool.oldest() is None
    spool.close()


def test_spooled_batches_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    spool.put(_points(0, 4))
    spool.close()
    reopened = Spool(path)
    stats = reopened.stats()
    assert (stats.batches, stats.points) == (1, 4)
    batch = reopened.oldest()
    assert batch is not None
    assert batch.points == _points(0, 4)
    reopened.close()


def test_a_closed_spool_raises_its_own_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.close()
    with pytest.raises(SpoolError):
        spool.put(_points(0, 1))


def test_writes_go_to_the_store_while_it_is_up(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    writer = SpoolingWriter(store, Spool(tmp_path / "spool.sqlite3"))
    assert writer.write(_points(0, 5)) is WriteResult.STORED
    assert store.inner.count() == 5
    assert writer.counters.stored == 5
    assert writer.drain_once() is DrainResult.EMPTY


def test_store_down_spools_then_drains_everything_exactly_once(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    spool = Spool(tmp_path / "spool.sqlite3")
    writer = SpoolingWriter(store, spool)
    writer.write(_points(0, 10))
    store.down = True
    assert writer.write(_points(10, 10)) is WriteResult.SPOOLED
    assert writer.store_down
    calls = store.write_calls
    # While the store is known down, writes go straight to disk (no timeout per write).
    assert writer.write(_points(20, 10)) is WriteResult.SPOOLED
    assert store.write_calls == calls
    assert spool.stats().points == 20
    assert writer.drain_once() is DrainResult.STORE_DOWN
    assert spool.stats().points == 20

    store.down = False
    # A live write after recovery overlaps points already spooled: upserts make that harmless.
    assert writer.drain_once() is DrainResult.DRAINED
    assert not writer.store_down
    writer.write(_points(25, 10))
    assert writer.drain_once() is DrainResult.DRAINED
    assert writer.drain_once() is DrainResult.EMPTY
    assert store.inner.count() == 35
    assert writer.counters.spooled == 20
    assert writer.counters.drained == 20
    assert spool.stats().points == 0


def test_a_rejected_spooled_batch_is_parked_not_lost(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    spool = Spool(tmp_path / "spool.sqlite3")
    writer = SpoolingWriter(store, spool)
    store.down = True
    writer.write(_points(0, 3, measurement="bad"))
    writer.write(_points(3, 3))
    store.down = False
    store.reject = "bad"
    assert writer.drain_once() is DrainResult.PARKED
    assert writer.drain_once() is DrainResult.DRAINED
    stats = spool.stats()
    assert (stats.batches, stats.parked_batches, stats.parked_points) == (0, 1, 3)
    assert writer.counters.parked == 3
    assert store.inner.count() == 3


def test_only_the_refused_points_of_a_spooled_batch_are_parked(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    spool = Spool(tmp_path / "spool.sqlite3")
    writer = SpoolingWriter(store, spool)
    store.down = True
    mixed = _points(0, 3) + _points(3, 1, measurement="bad") + _points(4, 3)
    writer.write(mixed)
    store.down = False
    store.reject = "bad"
    assert writer.drain_once() is DrainResult.PARKED
    assert store.inner.count() == 6, "the good points of the batch reach the store"
    stats = spool.stats()
    assert (stats.batches, stats.parked_points) == (0, 1)
    assert (writer.counters.drained, writer.counters.parked) == (6, 1)


def test_a_live_write_the_store_rejects_raises_and_spools_nothing(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    spool = Spool(tmp_path / "spool.sqlite3")
    writer = SpoolingWriter(store, spool)
    store.reject = "bad"
    with pytest.raises(StoreRejectedError):
        writer.write(_points(0, 2, measurement="bad"))
    assert spool.stats().batches == 0
    assert not writer.store_down


def test_store_down_and_spool_broken_raises_spool_error(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    spool = Spool(tmp_path / "spool.sqlite3")
    writer = SpoolingWriter(store, spool)
    store.down = True
    spool.close()
    with pytest.raises(SpoolError):
        writer.write(_points(0, 1))


async def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_drain_loop_backs_off_while_down_and_empties_the_spool_when_back(tmp_path: Path) -> None:
    store = SwitchableStore(tmp_path / "ts.sqlite3")
    spool = Spool(tmp_path / "spool.sqlite3")
    writer = SpoolingWriter(
        store,
        spool,
        backoff=Backoff(initial_s=0.01, cap_s=0.05),
        idle_poll_s=0.05,
        rng=random.Random(7),
    )

    async def scenario() -> None:
        drain = asyncio.create_task(writer.drain_forever())
        store.down = True
        for start in range(0, 50, 10):
            await asyncio.to_thread(writer.write, _points(start, 10))
        await _wait_for(lambda: writer.counters.store_failures >= 3, 5)
        assert spool.stats().points == 50
        store.down = False
        await _wait_for(lambda: spool.stats().batches == 0, 5)
        drain.cancel()
        with pytest.raises(asyncio.CancelledError):
            await drain

    asyncio.run(scenario())
    assert store.inner.count() == 50
    assert writer.counters.drained == 50


def test_backoff_grows_to_its_cap_and_jitters_below_it() -> None:
    backoff = Backoff(initial_s=0.5, cap_s=4.0, factor=2.0)
    assert [backoff.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.ceiling(10_000) == 4.0
    rng = random.Random(1)
    delays = [backoff.delay(3, rng) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100, "full jitter spreads retries"
    with pytest.raises(ValueError, match="cap_s"):
        Backoff(initial_s=2.0, cap_s=1.0)
