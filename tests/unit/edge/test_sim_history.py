"""Simulated history: seeded cohort and schedule, and the producer's messages (real edge code
on a virtual clock into an in-memory outbox)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shuxin.contract.codec import decode
from shuxin.contract.ids import is_subject_code
from shuxin.contract.messages import EventsMessage, LifecycleMessage
from shuxin.contract.topics import SessionTopic
from shuxin.edge.protocol import default_protocols_dir, load_protocols
from shuxin.edge.sim_history import (
    MemoryOutbox,
    OutboxMessage,
    ScheduledSession,
    StationHistory,
    VirtualClock,
    make_cohort,
    make_schedule,
    plan_history,
    shortened,
)

STATIONS = ("st-a", "st-b", "st-c")
END = datetime(2026, 11, 23, tzinfo=UTC)


def test_cohort_and_schedule_are_determined_by_the_seed() -> None:
    first = plan_history(STATIONS, weeks=3, subjects=9, seed=5, end=END)
    again = plan_history(STATIONS, weeks=3, subjects=9, seed=5, end=END)
    other = plan_history(STATIONS, weeks=3, subjects=9, seed=6, end=END)
    assert first == again
    assert first.cohort != other.cohort
    assert [s.started_at for s in first.sessions] != [s.started_at for s in other.sessions]


def test_cohort_codes_are_pseudonyms_spread_over_stations() -> None:
    cohort = make_cohort(STATIONS, 20, seed=1, declining=3)
    assert all(is_subject_code(s.code) for s in cohort)
    assert len({s.code for s in cohort}) == 20
    assert Counter(s.station for s in cohort) == {"st-a": 7, "st-b": 7, "st-c": 6}
    assert sum(s.declining for s in cohort) == 3


def test_schedule_is_past_working_days_in_order_with_declines_at_the_end() -> None:
    cohort = make_cohort(STATIONS, 20, seed=2, declining=3)
    sessions = make_schedule(cohort, weeks=8, seed=2, end=END)
    start = END - timedelta(weeks=8)
    times = [s.started_at for s in sessions]
    assert times == sorted(times)
    assert all(start.timestamp() <= t < END.timestamp() for t in times)
    local_days = {(datetime.fromtimestamp(t, UTC) + timedelta(hours=8)).weekday() for t in times}
    assert local_days <= {0, 1, 2, 3, 4}
    # About two sessions per subject per week: 20 subjects x 8 weeks, some missed.
    assert 200 <= len(sessions) <= 400
    for subject in cohort:
        mine = [s for s in sessions if s.subject == subject.code]
        assert all(s.station == subject.station for s in mine)
        if subject.declining:
            # Three days a week without fail: enough valid values for both advisory rules.
            assert len(mine) >= 20
            early = [s.traits.stress for s in mine[:10]]
            late = [s.traits.stress for s in mine[-3:]]
            assert min(late) > max(early)
        assert all(0 <= s.rating_after <= s.rating_before <= 10 for s in mine)


def _one_session(seed: int) -> ScheduledSession:
    cohort = make_cohort(("st-a",), 3, seed=seed, declining=1)
    sessions = make_schedule(
        cohort, weeks=1, seed=seed, end=END, protocol_weights={"vr-relaxation": 1.0}
    )
    return sessions[0]


def _produce(tmp_path: Path, planned: ScheduledSession) -> list[OutboxMessage]:
    clock = VirtualClock(planned.started_at - 60.0)
    outbox = MemoryOutbox(clock.now)
    producer = StationHistory(planned.station, outbox, tmp_path, clock, phase_scale=0.1)
    producer.produce(planned)
    assert producer.counters.parse_failures == 0
    assert producer.counters.invalid_messages == 0
    return outbox.drain()


def test_producer_is_deterministic(tmp_path: Path) -> None:
    planned = _one_session(3)
    first = _produce(tmp_path / "1", planned)
    again = _produce(tmp_path / "2", planned)
    assert [(m.topic, m.payload) for m in first] == [(m.topic, m.payload) for m in again]


def test_every_message_decodes_with_contiguous_seq_per_topic(tmp_path: Path) -> None:
    planned = _one_session(4)
    messages = _produce(tmp_path, planned)
    seqs: dict[str, list[int]] = defaultdict(list)
    streams: Counter[str] = Counter()
    lifecycle: list[LifecycleMessage] = []
    events: list[EventsMessage] = []
    for m in messages:
        topic, message = decode(m.topic, m.payload)
        if isinstance(topic, SessionTopic):
            assert m.seq is not None
            seqs[m.topic].append(m.seq)
            streams[topic.stream] += 1
        else:
            assert m.retain
            assert m.seq is None
            streams["status"] += 1
        if isinstance(message, LifecycleMessage):
            lifecycle.append(message)
        elif isinstance(message, EventsMessage):
            events.append(message)
    for topic, numbers in seqs.items():
        assert numbers == list(range(len(numbers))), topic
    assert {"rr", "hr", "eda", "events", "metrics", "lifecycle", "status"} <= set(streams)
    assert [m.event for m in lifecycle] == ["start", "end"]
    assert lifecycle[0].subject == planned.subject
    assert lifecycle[0].started_at.timestamp() == pytest.approx(planned.started_at)
    kinds = Counter(e.kind for message in events for e in message.events)
    # Three phases (start + end each), before/after ratings, a note and the VR scene events.
    assert kinds["phase_start"] == kinds["phase_end"] == 3
    assert kinds["rating"] == 2
    assert kinds["note"] == 1
    assert kinds["vr_event"] == 2


def test_shortened_protocol_keeps_phases_and_floor() -> None:
    protocol = load_protocols(default_protocols_dir())["rest-resonance-recovery"]
    short = shortened(protocol, 0.25)
    assert [p.id for p in short.phases] == [p.id for p in protocol.phases]
    assert [p.duration_s for p in short.phases] == [75.0, 150.0, 75.0]
    assert [p.duration_s for p in shortened(protocol, 0.01).phases] == [30.0, 30.0, 30.0]


def test_sessions_must_be_produced_in_time_order(tmp_path: Path) -> None:
    planned = _one_session(5)
    clock = VirtualClock(planned.started_at + 10.0)
    producer = StationHistory(planned.station, MemoryOutbox(clock.now), tmp_path, clock)
    with pytest.raises(ValueError, match="time order"):
        producer.produce(planned)
