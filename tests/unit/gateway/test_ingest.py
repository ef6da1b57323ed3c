"""The ingest pipeline on real SQLite ports: decode, dedupe, route, quarantine, contain failures."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuxin.contract.topics import session_topic, station_status_topic
from shuxin.gateway.dedupe import SqliteSeqLedger
from shuxin.gateway.errors import QuarantineError, SpoolError, StoreRejectedError
from shuxin.gateway.ingest import Accepted, Ingest, Outcome, Received
from shuxin.gateway.quarantine import QuarantineRecord, SqliteQuarantine
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.timeseries import TimeSeriesSink

STATION = "st-a"
SESSION = "st-a-20261123-0001"
RR_TOPIC = session_topic(STATION, SESSION, "rr")
LIFECYCLE_TOPIC = session_topic(STATION, SESSION, "lifecycle")
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RECEIVED_AT = datetime(2026, 11, 23, 8, 0, 2, tzinfo=UTC)


def _envelope(stream: str, seq: int, **fields: Any) -> dict[str, Any]:
    return {
        "schema": 1,
        "station": STATION,
        "session": SESSION,
        "stream": stream,
        "seq": seq,
        "sent_at": (T0 + timedelta(seconds=seq)).isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        **fields,
    }


def rr_payload(seq: int, rr_ms: float = 800.0, beats: int = 2) -> bytes:
    body = _envelope(
        "rr",
        seq,
        device="hrs-1",
        t0=(T0 + timedelta(seconds=seq)).isoformat(),
        source="sim",
        t_offset_ms=[i * 400.0 for i in range(beats)],
        rr_ms=[rr_ms + i for i in range(beats)],
    )
    return json.dumps(body).encode()


def lifecycle_payload(seq: int, subject: str) -> bytes:
    body = _envelope(
        "lifecycle",
        seq,
        event="start",
        subject=subject,
        protocol={"id": "resonance", "version": "1"},
        phases=[{"name": "baseline", "kind": "baseline", "duration_s": 300}],
        started_at=T0.isoformat(),
    )
    return json.dumps(body, ensure_ascii=False).encode()


def rx(topic: str, payload: bytes) -> Received:
    return Received(topic, payload, RECEIVED_AT)


class Ports:
    """Real SQLite adapters in a temp dir, wired the way the gateway wires them."""

    def __init__(self, root: Path, extra_sinks: Sequence[Any] = ()) -> None:
        self.store = SqliteStore(root / "ts.sqlite3")
        self.ledger = SqliteSeqLedger(root / "dedupe.sqlite3")
        self.quarantine = SqliteQuarantine(root / "quarantine.sqlite3")
        self.sink = TimeSeriesSink(self.store)
        self.ingest = Ingest(
            sinks=[self.sink, *extra_sinks], ledger=self.ledger, quarantine=self.quarantine
        )

    def rr_values(self) -> list[float]:
        points = self.store.query(
            "rr", station=STATION, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1)
        )
        return [float(p.field("rr_ms") or 0.0) for p in points]


@pytest.fixture
def ports(tmp_path: Path) -> Ports:
    return Ports(tmp_path)


def test_valid_messages_are_written_and_counted(ports: Ports) -> None:
    outcomes = ports.ingest.handle_batch([rx(RR_TOPIC, rr_payload(s)) for s in range(5)])
    assert outcomes == [Outcome.WRITTEN] * 5
    assert ports.store.count("rr") == 10
    assert ports.ledger.progress(RR_TOPIC).contiguous == 4
    counters = ports.ingest.counters
    assert (counters.received, counters.valid, counters.written) == (5, 5, 5)
    assert ports.sink.counters.points == {"rr": 10}


def test_redelivery_changes_nothing_even_with_other_content(ports: Ports) -> None:
    ports.ingest.handle_batch([rx(RR_TOPIC, rr_payload(s)) for s in range(3)])
    before = ports.rr_values()
    again = ports.ingest.handle_batch(
        [
            rx(RR_TOPIC, rr_payload(1)),  # identical redelivery
            rx(RR_TOPIC, rr_payload(2, rr_ms=555.0)),  # same (topic, seq), different content
        ]
    )
    assert again == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert ports.rr_values() == before
    assert ports.ingest.counters.duplicates == 2


def test_duplicates_within_one_batch_are_caught(ports: Ports) -> None:
    outcomes = ports.ingest.handle_batch(
        [rx(RR_TOPIC, rr_payload(0)), rx(RR_TOPIC, rr_payload(0, rr_ms=999.0))]
    )
    assert outcomes == [Outcome.WRITTEN, Outcome.DUPLICATE]
    assert ports.rr_values() == [800.0, 801.0]


def test_dedupe_survives_a_restart_of_the_pipeline(tmp_path: Path) -> None:
    first = Ports(tmp_path)
    first.ingest.handle_batch([rx(RR_TOPIC, rr_payload(s)) for s in range(3)])
    first.ledger.close()
    second = Ports(tmp_path)
    assert second.ingest.handle(rx(RR_TOPIC, rr_payload(2))) is Outcome.DUPLICATE
    assert second.ingest.handle(rx(RR_TOPIC, rr_payload(3))) is Outcome.WRITTEN
    assert second.store.count("rr") == 8


HOSTILE: list[tuple[str, str, bytes, str]] = [
    ("garbage bytes", RR_TOPIC, b"\xff\xfe\x00garbage\x80", "malformed_json"),
    ("NaN", RR_TOPIC, rr_payload(50).replace(b"800.0", b"NaN"), "malformed_json"),
    (
        "wrong version",
        RR_TOPIC,
        rr_payload(51).replace(b'"schema": 1', b'"schema": 2'),
        "unsupported_version",
    ),
    ("a name as subject", LIFECYCLE_TOPIC, lifecycle_payload(0, "张伟"), "invalid_payload"),
    (
        "topic/payload mismatch",
        session_topic("st-b", SESSION, "rr"),
        rr_payload(52),
        "invalid_payload",
    ),
    ("not a shuxin topic", "shuxin/v1/st-a/secrets", rr_payload(53), "invalid_topic"),
    ("too large", RR_TOPIC, b"{" + b" " * (256 * 1024) + b"}", "payload_too_large"),
]


def test_hostile_payloads_are_quarantined_and_ingest_continues(ports: Ports) -> None:
    batch = [rx(RR_TOPIC, rr_payload(0))]
    batch += [rx(topic, payload) for _, topic, payload, _ in HOSTILE]
    batch += [rx(RR_TOPIC, rr_payload(1))]
    outcomes = ports.ingest.handle_batch(batch)
    assert outcomes[0] is Outcome.WRITTEN
    assert outcomes[-1] is Outcome.WRITTEN
    assert outcomes[1:-1] == [Outcome.QUARANTINED] * len(HOSTILE)
    assert ports.store.count("rr") == 4

    expected: dict[str, int] = {}
    for _, _, _, code in HOSTILE:
        expected[code] = expected.get(code, 0) + 1
    assert ports.ingest.counters.quarantined == expected
    assert ports.quarantine.counts() == expected
    rows = list(reversed(ports.quarantine.recent()))
    for (label, topic, payload, code), row in zip(HOSTILE, rows, strict=True):
        assert row.code == code, label
        assert row.topic == topic, label
        assert row.reason, label
        assert row.received_at == RECEIVED_AT
        assert row.payload_size == len(payload)
        assert row.payload_bytes() == payload[:4096], label
    name_row = rows[3]
    assert name_row.errors
    assert name_row.errors[0]["loc"] == ["lifecycle", "subject"]
    assert "张伟" not in name_row.reason, "a reason must not repeat the input"
    assert rows[0].payload_encoding == "base64"
    assert rows[1].payload_encoding == "text"
    assert rows[4].station == "st-b"
    assert rows[5].station == STATION


def test_payload_copy_is_bounded_and_cut_at_a_character(ports: Ports) -> None:
    payload = ("舒" * 3000).encode()  # 9000 bytes; 4096 is not a character boundary
    ports.ingest.handle(rx(RR_TOPIC, payload))
    (row,) = ports.quarantine.recent()
    assert row.payload_encoding == "text"
    assert row.payload_truncated
    assert row.payload_size == 9000
    assert row.payload == "舒" * (4096 // 3)


def test_status_messages_are_written_without_points(ports: Ports) -> None:
    payload = b'{"schema":1,"station":"st-a","state":"online","sent_at":"2026-11-23T08:00:00Z"}'
    assert ports.ingest.handle(rx(station_status_topic(STATION), payload)) is Outcome.WRITTEN
    assert ports.store.count() == 0


class FailingSink:
    """A test double for a later sink: fails on chosen seqs or on every call."""

    def __init__(self, error: Exception, seqs: set[int] | None = None) -> None:
        self.error = error
        self.seqs = seqs
        self.calls = 0

    def accept(self, messages: Sequence[Accepted]) -> None:
        self.calls += 1
        if self.seqs is None or any(m.seq in self.seqs for m in messages):
            raise self.error


def test_sinks_unavailable_fail_the_batch_and_redelivery_then_succeeds(tmp_path: Path) -> None:
    flaky = FailingSink(SpoolError("test: disk full"))
    ports = Ports(tmp_path, extra_sinks=[flaky])
    batch = [rx(RR_TOPIC, rr_payload(s)) for s in range(3)]
    assert ports.ingest.handle_batch(batch) == [Outcome.FAILED] * 3
    assert not Outcome.FAILED.acknowledge
    assert not ports.ledger.seen(RR_TOPIC, 0), "a failed message must not count as seen"
    assert ports.ingest.counters.failed == 3
    flaky.seqs = set()  # the disk has room again; the broker redelivers
    assert ports.ingest.handle_batch(batch) == [Outcome.WRITTEN] * 3
    # The time-series sink wrote the first time too; the upsert made the retry harmless.
    assert ports.store.count("rr") == 6


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StoreRejectedError("HTTP 400: field type conflict"), "store_rejected"),
        (KeyError("a bug in a sink"), "internal_error"),
    ],
)
def test_a_message_a_sink_cannot_take_is_isolated_and_quarantined_whole(
    tmp_path: Path, error: Exception, code: str
) -> None:
    ports = Ports(tmp_path, extra_sinks=[FailingSink(error, seqs={1})])
    big = rr_payload(1, beats=400)
    assert len(big) > 4096
    outcomes = ports.ingest.handle_batch(
        [rx(RR_TOPIC, rr_payload(0)), rx(RR_TOPIC, big), rx(RR_TOPIC, rr_payload(2))]
    )
    assert outcomes == [Outcome.WRITTEN, Outcome.QUARANTINED, Outcome.WRITTEN]
    (row,) = ports.quarantine.recent()
    assert row.code == code
    assert row.payload_bytes() == big, "a valid message is kept whole so it can be replayed"
    assert ports.ledger.seen(RR_TOPIC, 2)
    assert not ports.ledger.seen(RR_TOPIC, 1)


class BrokenQuarantine:
    def add(self, records: Sequence[QuarantineRecord]) -> None:
        raise QuarantineError("test: quarantine unwritable")


def test_an_unwritable_quarantine_leaves_the_bad_message_unacknowledged(tmp_path: Path) -> None:
    ports = Ports(tmp_path)
    ingest = Ingest(sinks=[ports.sink], ledger=ports.ledger, quarantine=BrokenQuarantine())
    outcomes = ingest.handle_batch([rx(RR_TOPIC, b"nope"), rx(RR_TOPIC, rr_payload(0))])
    assert outcomes == [Outcome.FAILED, Outcome.WRITTEN]


def test_a_broken_ledger_does_not_stop_writes(tmp_path: Path) -> None:
    ports = Ports(tmp_path)
    ports.ledger.close()
    assert ports.ingest.handle(rx(RR_TOPIC, rr_payload(0))) is Outcome.WRITTEN
    assert ports.ingest.counters.ledger_errors == 2  # the lookup and the mark
    assert ports.store.count("rr") == 2


class RefusingGate:
    """A consent gate that refuses the messages of the sessions it is given (pure logic)."""

    def __init__(self, sessions: set[str], *, broken: Exception | None = None) -> None:
        self.sessions = sessions
        self.broken = broken
        self.seen: list[int] = []

    def refused(self, messages: Sequence[Accepted]) -> dict[int, str]:
        self.seen.append(len(messages))
        if self.broken is not None:
            raise self.broken
        return {
            i: "consent_withdrawn"
            for i, m in enumerate(messages)
            if getattr(m.topic, "session", None) in self.sessions
        }


def test_the_consent_gate_discards_without_a_trace_and_the_rest_is_written(
    tmp_path: Path,
) -> None:
    ports = Ports(tmp_path)
    other = "st-a-20261123-0002"
    other_topic = session_topic(STATION, other, "rr")
    other_payload = rr_payload(0).replace(SESSION.encode(), other.encode())
    gate = RefusingGate({SESSION})
    ingest = Ingest(sinks=[ports.sink], ledger=ports.ledger, quarantine=ports.quarantine, gate=gate)
    batch = [rx(RR_TOPIC, rr_payload(0)), rx(other_topic, other_payload), rx(RR_TOPIC, b"junk")]
    outcomes = ingest.handle_batch(batch)
    assert outcomes == [Outcome.DISCARDED, Outcome.WRITTEN, Outcome.QUARANTINED]
    assert all(o.acknowledge for o in outcomes)
    assert gate.seen == [2]  # only valid, fresh messages reach the gate
    assert ports.store.count("rr") == 2  # the other session's two beats only
    assert ingest.counters.discarded == {"consent_withdrawn": 1}
    assert ingest.counters.written == 1
    # Nothing of the discarded message is kept: the quarantine holds only the junk.
    assert [r.code for r in ports.quarantine.recent(10)] == ["malformed_json"]
    # Marked in the ledger: a redelivery is a duplicate and never asks the gate again.
    assert ingest.handle(rx(RR_TOPIC, rr_payload(0))) is Outcome.DUPLICATE
    assert gate.seen == [2]


@pytest.mark.parametrize(
    "failure", [SpoolError("database is locked"), RuntimeError("bug")], ids=["unavailable", "bug"]
)
def test_a_gate_that_cannot_decide_stores_nothing_and_acknowledges_nothing(
    tmp_path: Path, failure: Exception
) -> None:
    ports = Ports(tmp_path)
    gate = RefusingGate(set(), broken=failure)
    ingest = Ingest(sinks=[ports.sink], ledger=ports.ledger, quarantine=ports.quarantine, gate=gate)
    outcomes = ingest.handle_batch([rx(RR_TOPIC, rr_payload(s)) for s in range(3)])
    assert outcomes == [Outcome.FAILED] * 3
    assert ports.store.count("rr") == 0
    gate.broken = None  # the redelivery, once the gate can decide, is written
    assert (
        ingest.handle_batch([rx(RR_TOPIC, rr_payload(s)) for s in range(3)])
        == [Outcome.WRITTEN] * 3
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(
        st.tuples(
            st.one_of(st.just(RR_TOPIC), st.text(max_size=40)),
            st.one_of(
                st.binary(max_size=300),
                st.builds(rr_payload, st.integers(0, 20)),
                st.builds(lambda s: base64.b64encode(rr_payload(s)), st.integers(0, 5)),
            ),
        ),
        max_size=8,
    )
)
def test_nothing_received_makes_the_pipeline_raise(ports: Ports, items: list[Any]) -> None:
    outcomes = ports.ingest.handle_batch([rx(topic, payload) for topic, payload in items])
    assert len(outcomes) == len(items)
    assert Outcome.FAILED not in outcomes
