"""The (topic, seq) ledger: contiguous mark, seqs above it, restarts, bounds, pruning."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuxin.gateway.dedupe import SqliteSeqLedger
from shuxin.gateway.errors import DedupeError

TOPIC = "shuxin/v1/st-a/sessions/st-a-20261123-0001/rr"
OTHER = "shuxin/v1/st-a/sessions/st-a-20261123-0001/eda"


def test_in_order_marks_advance_the_contiguous_mark(tmp_path: Path) -> None:
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3")
    assert not ledger.seen(TOPIC, 0)
    ledger.mark([(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)])
    assert all(ledger.seen(TOPIC, s) for s in range(3))
    assert not ledger.seen(TOPIC, 3)
    progress = ledger.progress(TOPIC)
    assert (progress.contiguous, progress.highest, progress.above, progress.missing) == (
        2,
        2,
        0,
        0,
    )
    ledger.close()


def test_out_of_order_seqs_are_kept_above_a_visible_gap(tmp_path: Path) -> None:
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3")
    ledger.mark([(TOPIC, 0), (TOPIC, 1), (TOPIC, 4), (TOPIC, 5)])
    assert ledger.seen(TOPIC, 4)
    assert not ledger.seen(TOPIC, 2)
    assert not ledger.seen(TOPIC, 3)
    progress = ledger.progress(TOPIC)
    assert (progress.contiguous, progress.highest, progress.missing) == (1, 5, 2)
    ledger.mark([(TOPIC, 3), (TOPIC, 2)])  # the gap fills (redelivery, another replica)
    progress = ledger.progress(TOPIC)
    assert (progress.contiguous, progress.above, progress.missing) == (5, 0, 0)
    ledger.close()


def test_topics_are_independent(tmp_path: Path) -> None:
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3")
    ledger.mark([(TOPIC, 0)])
    assert ledger.seen(TOPIC, 0)
    assert not ledger.seen(OTHER, 0)
    ledger.close()


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "dedupe.sqlite3"
    ledger = SqliteSeqLedger(path)
    ledger.mark([(TOPIC, s) for s in (0, 1, 2, 7, 9)])
    ledger.close()
    # A new process: empty cache, everything read back from the file.
    reopened = SqliteSeqLedger(path)
    assert [reopened.seen(TOPIC, s) for s in range(11)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    reopened.close()


def test_marking_twice_is_harmless(tmp_path: Path) -> None:
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3")
    ledger.mark([(TOPIC, 0), (TOPIC, 0), (TOPIC, 3)])
    ledger.mark([(TOPIC, 3), (TOPIC, 0)])
    progress = ledger.progress(TOPIC)
    assert (progress.contiguous, progress.above) == (0, 1)
    ledger.close()


def test_the_bound_forgets_the_lowest_seqs_and_never_invents_one(tmp_path: Path) -> None:
    path = tmp_path / "dedupe.sqlite3"
    ledger = SqliteSeqLedger(path, max_above=3)
    # seq 0 never arrives (dropped by the edge's outbox cap): everything stays above the gap.
    ledger.mark([(TOPIC, s) for s in range(1, 7)])
    assert [ledger.seen(TOPIC, s) for s in range(8)] == [
        False,  # never marked
        False,  # forgotten: a redelivery would be written again, idempotently
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    assert ledger.evicted == 3
    ledger.close()
    reopened = SqliteSeqLedger(path, max_above=3)
    assert [reopened.seen(TOPIC, s) for s in range(8)] == [
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    reopened.close()


def test_a_small_cache_reloads_topics_from_disk(tmp_path: Path) -> None:
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3", cache_topics=1)
    topics = [f"shuxin/v1/st-a/sessions/st-a-2026112{n}-0001/rr" for n in range(3)]
    for topic in topics:
        ledger.mark([(topic, 0), (topic, 2)])
    for topic in topics:
        assert ledger.seen(topic, 0)
        assert ledger.seen(topic, 2)
        assert not ledger.seen(topic, 1)
    ledger.close()


def test_prune_forgets_topics_idle_since_a_cutoff(tmp_path: Path) -> None:
    now = [1_000.0]
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3", clock=lambda: now[0])
    ledger.mark([(TOPIC, 0), (TOPIC, 5)])
    now[0] = 2_000.0
    ledger.mark([(OTHER, 0)])
    assert ledger.prune(datetime.fromtimestamp(1_500.0, UTC)) == 1
    assert not ledger.seen(TOPIC, 0)
    assert not ledger.seen(TOPIC, 5)
    assert ledger.seen(OTHER, 0)
    ledger.close()


def test_a_closed_ledger_raises_its_own_error(tmp_path: Path) -> None:
    ledger = SqliteSeqLedger(tmp_path / "dedupe.sqlite3")
    ledger.close()
    with pytest.raises(DedupeError):
        ledger.mark([(TOPIC, 0)])
    with pytest.raises(DedupeError):
        ledger.seen(OTHER, 0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(st.integers(0, 40), max_size=8), max_size=12),
    max_above=st.integers(1, 50),
)
def test_seen_only_what_was_marked_and_everything_marked_when_unbounded(
    tmp_path: Path, batches: list[list[int]], max_above: int
) -> None:
    path = tmp_path / f"ledger-{max_above}-{abs(hash(str(batches)))}.sqlite3"
    bounded = SqliteSeqLedger(path, max_above=max_above)
    unbounded = SqliteSeqLedger(path.with_suffix(".big"), max_above=10_000)
    marked: set[int] = set()
    for batch in batches:
        bounded.mark([(TOPIC, s) for s in batch])
        unbounded.mark([(TOPIC, s) for s in batch])
        marked.update(batch)
    for seq in range(45):
        if bounded.seen(TOPIC, seq):
            assert seq in marked, "the ledger claimed a seq it never saw"
        assert unbounded.seen(TOPIC, seq) == (seq in marked)
    bounded.close()
    unbounded.close()
    path.unlink()
    path.with_suffix(".big").unlink()
