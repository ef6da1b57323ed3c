"""The durable outbox: gap-free seq that survives restarts, FIFO replay, ack, caps, counters."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from shuxin.edge.outbox import Outbox, OutboxLimits

TOPIC_RR = "shuxin/v1/st-a/sessions/st-a-20261123-0001/rr"
TOPIC_HR = "shuxin/v1/st-a/sessions/st-a-20261123-0001/hr"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _payload(seq: int) -> bytes:
    return f'{{"seq": {seq}}}'.encode()


def test_seq_counts_per_topic_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        assert [box.enqueue(TOPIC_RR, _payload) for _ in range(3)] == [0, 1, 2]
        assert box.enqueue(TOPIC_HR, _payload) == 0
    with Outbox(path) as box:
        assert box.next_seq(TOPIC_RR) == 3
        assert box.enqueue(TOPIC_RR, _payload) == 3
        items = box.pending()
    assert [(i.topic, i.seq) for i in items] == [
        (TOPIC_RR, 0),
        (TOPIC_RR, 1),
        (TOPIC_RR, 2),
        (TOPIC_HR, 0),
        (TOPIC_RR, 3),
    ]
    assert items[0].payload == b'{"seq": 0}'


def test_ack_removes_only_that_message_and_is_idempotent(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        for _ in range(3):
            box.enqueue(TOPIC_RR, _payload)
        first, second, _ = box.pending()
        box.ack(second.id)
        box.ack(second.id)
        assert [i.seq for i in box.pending()] == [0, 2]
        assert [i.seq for i in box.pending(after_id=first.id)] == [2]
        stats = box.stats()
        assert (stats.backlog, stats.enqueued, stats.acked) == (2, 3, 1)


def test_failed_builder_uses_no_seq(tmp_path: Path) -> None:
    def broken(seq: int) -> bytes:
        raise ValueError("cannot encode")

    with Outbox(tmp_path / "o.db") as box:
        box.enqueue(TOPIC_RR, _payload)
        with pytest.raises(ValueError, match="cannot encode"):
            box.enqueue(TOPIC_RR, broken)
        assert box.enqueue(TOPIC_RR, _payload) == 1
        assert box.stats().backlog == 2


def test_state_messages_supersede_and_carry_no_seq(tmp_path: Path) -> None:
    status = "shuxin/v1/st-a/status"
    with Outbox(tmp_path / "o.db") as box:
        box.enqueue_state(status, b"online-1")
        box.enqueue(TOPIC_RR, _payload)
        box.enqueue_state(status, b"online-2")
        items = box.pending()
    assert [(i.topic, i.seq, i.payload, i.retain) for i in items] == [
        (TOPIC_RR, 0, b'{"seq": 0}', False),
        (status, None, b"online-2", True),
    ]


def test_count_cap_drops_oldest_and_counts(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", OutboxLimits(max_messages=5)) as box:
        for _ in range(8):
            box.enqueue(TOPIC_RR, _payload)
        assert [i.seq for i in box.pending()] == [3, 4, 5, 6, 7]
        stats = box.stats()
    assert stats.dropped_count_cap == 3
    assert stats.dropped == 3


def test_byte_cap_drops_oldest_until_it_fits(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", OutboxLimits(max_bytes=100)) as box:
        for _ in range(10):
            box.enqueue(TOPIC_RR, lambda seq: bytes(30))
        stats = box.stats()
        assert stats.backlog_bytes <= 100
        assert stats.backlog == 3
        assert stats.dropped_bytes_cap == 7
        assert [i.seq for i in box.pending()] == [7, 8, 9]


def test_age_cap_drops_old_messages(tmp_path: Path) -> None:
    clock = FakeClock()
    with Outbox(tmp_path / "o.db", OutboxLimits(max_age_s=60), clock=clock) as box:
        box.enqueue(TOPIC_RR, _payload)
        clock.now += 30
        box.enqueue(TOPIC_RR, _payload)
        assert box.stats().oldest_age_s == 30
        clock.now += 45
        box.enqueue(TOPIC_RR, _payload)
        assert [i.seq for i in box.pending()] == [1, 2]
        assert box.stats().dropped_age_cap == 1


def _enqueue_forever(path: str, ready: multiprocessing.synchronize.Event) -> None:
    box = Outbox(Path(path))
    ready.set()
    while True:
        box.enqueue(TOPIC_RR, _payload)


def test_sigkill_mid_write_loses_no_committed_seq(tmp_path: Path) -> None:
    """A power-cut stand-in: kill -9 while enqueueing; the file stays consistent and gap-free."""
    path = tmp_path / "o.db"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_enqueue_forever, args=(str(path), ready))
    proc.start()
    assert ready.wait(30)
    # Let it write for a moment, then kill it without warning.
    proc.join(0.5)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    with Outbox(path) as box:
        seqs = [i.seq for i in box.pending(limit=1_000_000)]
        assert seqs, "the writer committed nothing before it was killed"
        assert seqs == list(range(len(seqs)))
        assert box.next_seq(TOPIC_RR) == len(seqs)
        assert box.enqueue(TOPIC_RR, _payload) == len(seqs)
