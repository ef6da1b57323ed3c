"""Readings → contract batches: ~1 s batches, EDA flags and splits, ECG opt-in, metrics, gaps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shuxin.contract.codec import decode
from shuxin.contract.messages import (
    ClockInfo,
    EcgMessage,
    EdaMessage,
    EventsMessage,
    HrMessage,
    MetricsMessage,
    RrMessage,
)
from shuxin.edge.batcher import Batcher, ContractWriter
from shuxin.edge.clock import ManualClock
from shuxin.edge.decode import Beat, DataGap, EcgSamples, EdaSamples, HeartRate
from shuxin.edge.outbox import Outbox
from shuxin.signal.rr_simulate import rr_simulate

STATION = "st-a"
SESSION = "st-a-20270115-080000-abcd"
T0 = 1_800_000_000.0


def _setup(tmp_path: Path, **kw: Any) -> tuple[Outbox, Batcher]:
    clock = ManualClock(T0)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    writer = ContractWriter(outbox, STATION, clock, ClockInfo(offset_ms=0.0, source="none"))
    batcher = Batcher(writer, **kw)
    batcher.open_session(SESSION, ["h10-1", "gsr-1"], T0)
    return outbox, batcher


def _messages(outbox: Outbox, kind: type) -> list[Any]:
    out = []
    for item in outbox.pending(limit=100_000):
        _, message = decode(item.topic, item.payload)
        if isinstance(message, kind):
            out.append(message)
    return out


def _seqs_contiguous(outbox: Outbox) -> bool:
    by_topic: dict[str, list[int]] = {}
    for item in outbox.pending(limit=100_000):
        assert item.seq is not None
        by_topic.setdefault(item.topic, []).append(item.seq)
    return all(s == list(range(len(s))) for s in by_topic.values())


def test_beats_become_one_second_rr_batches(tmp_path: Path) -> None:
    outbox, batcher = _setup(tmp_path)
    sim = rr_simulate(60.0, np.random.default_rng(1))
    beat_t = T0 + np.cumsum(sim.rr_ms) / 1000.0
    for t, rr in zip(beat_t, sim.rr_ms, strict=True):
        batcher.add(Beat("h10-1", float(t), float(rr), "hrs", "detected"))
        batcher.add(HeartRate("h10-1", float(t), round(60000 / rr), "detected", None))
        batcher.tick(float(t))
    batcher.close_session(SESSION)
    rr_batches = _messages(outbox, RrMessage)
    assert sum(len(m.rr_ms) for m in rr_batches) == len(sim.rr_ms)  # nothing lost
    assert np.allclose([r for m in rr_batches for r in m.rr_ms], sim.rr_ms)
    # Every batch spans less than batch_s (1 s): its last beat is < 1000 ms after t0.
    assert all(m.t_offset_ms[-1] < 1000.0 for m in rr_batches)
    # Beat times survive the round trip to within the 1 µs the contract's datetimes carry.
    times = [m.t0.timestamp() + off / 1000 for m in rr_batches for off in m.t_offset_ms]
    assert np.allclose(times, beat_t, atol=1e-5)
    hr = _messages(outbox, HrMessage)
    assert sum(len(m.hr_bpm) for m in hr) == len(sim.rr_ms)
    assert _seqs_contiguous(outbox)
    outbox.close()


def test_out_of_range_values_are_dropped_not_sent(tmp_path: Path) -> None:
    outbox, batcher = _setup(tmp_path)
    batcher.add(Beat("h10-1", T0, 0.0, "hrs", "detected"))
    batcher.add(Beat("h10-1", T0 + 0.1, 64_000.0, "hrs", "detected"))  # 0xFFFF ticks
    batcher.add(Beat("h10-1", T0 + 0.2, 800.0, "hrs", "detected"))
    batcher.add(HeartRate("h10-1", T0, 65535, "detected", None))
    batcher.close_session(SESSION)
    assert batcher.counters["rr_out_of_range"] == 2
    assert batcher.counters["hr_out_of_range"] == 1
    (rr,) = _messages(outbox, RrMessage)
    assert rr.rr_ms == [800.0]
    assert _messages(outbox, HrMessage) == []
    outbox.close()


def test_eda_batches_split_on_invalid_samples_and_flags(tmp_path: Path) -> None:
    outbox, batcher = _setup(tmp_path)
    step = 1 / 8
    t = T0
    chunks = [
        (5.0, 5.1, 5.2, 5.3),
        (5.4, None, 5.6, 5.7),  # an invalid sample: the batch closes, the next says gap_before
        (250.0, 5.9, 6.0, 6.1),  # above the contract's 200 µS: clipped
    ]
    for values in chunks:
        batcher.add(EdaSamples("gsr-1", t, 8.0, values, False, False, False))
        t += 4 * step
    batcher.add(EdaSamples("gsr-1", t, 8.0, (0.01,) * 4, True, False, False))  # electrode off
    batcher.close_session(SESSION)
    batches = _messages(outbox, EdaMessage)
    assert [(m.eda_us, m.flags) for m in batches] == [
        ([5.0, 5.1, 5.2, 5.3, 5.4], []),
        ([5.6, 5.7], ["gap_before"]),
        ([200.0], ["clipped"]),
        ([5.9, 6.0, 6.1], []),
        ([0.01] * 4, ["contact_lost"]),
    ]
    assert batches[1].t0.timestamp() == pytest.approx(T0 + 6 * step, abs=1e-6)
    assert batcher.counters["eda_invalid"] == 1
    assert batcher.counters["eda_clipped"] == 1
    outbox.close()


def test_ecg_is_uploaded_only_when_configured(tmp_path: Path) -> None:
    outbox, batcher = _setup(tmp_path)
    batcher.add(EcgSamples("h10-1", T0, 130.0, tuple(range(73))))
    batcher.close_session(SESSION)
    assert _messages(outbox, EcgMessage) == []
    assert batcher.counters["ecg_not_uploaded"] == 1
    outbox.close()

    outbox, batcher = _setup(tmp_path / "b", upload_ecg=["h10-1"])
    for k in range(4):
        batcher.add(EcgSamples("h10-1", T0 + k * 73 / 130, 130.0, tuple(range(73))))
    batcher.close_session(SESSION)
    batches = _messages(outbox, EcgMessage)
    assert sum(len(m.ecg_uv) for m in batches) == 4 * 73
    assert batches[0].fs_hz == 130
    outbox.close()


def test_metrics_every_five_seconds_from_the_signal_core(tmp_path: Path) -> None:
    outbox, batcher = _setup(tmp_path)
    sim = rr_simulate(120.0, np.random.default_rng(3), mean_hr_bpm=60.0)
    beat_t = T0 + np.cumsum(sim.rr_ms) / 1000.0
    eda_t = T0
    for t, rr in zip(beat_t, sim.rr_ms, strict=True):
        batcher.add(Beat("h10-1", float(t), float(rr), "hrs", "detected"))
        while eda_t < t:
            batcher.add(EdaSamples("gsr-1", eda_t, 8.0, (4.0, 4.0, 4.0, 4.0), False, False, False))
            eda_t += 0.5
        batcher.tick(float(t))
    live = batcher.live_values(SESSION)
    batcher.close_session(SESSION)
    metrics = _messages(outbox, MetricsMessage)
    # About 120 s / 5 s metrics; the first comes at 5 s (tick-driven, ±1 beat).
    assert 22 <= len(metrics) <= 24
    last = metrics[-1]
    assert last.values["hr_bpm"] == pytest.approx(60.0, rel=0.15)  # simulated mean HR 60
    assert math.isfinite(last.values["rmssd_ms"])
    assert "coherence_ratio" in last.values  # after 64 s of beats
    assert last.values["eda_scl_us"] == pytest.approx(4.0, abs=0.05)  # a constant 4 µS input
    assert "hrv_stream" in last.algorithm_version
    assert live["rmssd_ms"] == pytest.approx(last.values["rmssd_ms"], rel=0.5)
    outbox.close()


def test_gaps_become_events_and_unassigned_readings_are_counted(tmp_path: Path) -> None:
    outbox, batcher = _setup(tmp_path)
    batcher.add(DataGap("h10-1", T0, T0 + 12, "link_lost"))
    batcher.add(Beat("other-1", T0, 800.0, "hrs", "detected"))
    with pytest.raises(ValueError, match="already in a session"):
        batcher.open_session("st-a-20270115-080001-abcd", ["h10-1"], T0)
    batcher.close_session(SESSION)
    (events,) = _messages(outbox, EventsMessage)
    (gap,) = events.events
    assert (gap.kind, gap.device, gap.reason) == ("gap", "h10-1", "link_lost")
    assert gap.end.timestamp() - gap.start.timestamp() == 12
    assert batcher.counters["unassigned"] == 1
    # Once closed, the devices are free for the next session.
    batcher.open_session("st-a-20270115-080001-abcd", ["gsr-1", "h10-1"], T0)
    outbox.close()
