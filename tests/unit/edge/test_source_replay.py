"""Recording and replay: a recorded session plays back through the same port and decodes to the
same readings; a damaged file is counted, never fatal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from shuxin.edge.clock import ManualClock
from shuxin.edge.decode import Beat, DataGap, EdaSamples, EventDecoder, Reading
from shuxin.edge.device_profile import load_profiles
from shuxin.edge.source_replay import RecordingError, RecordingWriter, ReplaySource
from shuxin.edge.source_sim import (
    ScheduledFault,
    SimFaults,
    SimulatedGsr,
    SimulatedHeartRateStrap,
    SimulatedSubject,
    draw_traits,
)
from shuxin.edge.sources import DeviceRef, SourceEvent

PROFILES = load_profiles(Path(__file__).resolve().parents[3] / "firmware_configs" / "devices")
DEVICES = {"hrs-1": PROFILES["hrs_strap"], "gsr-1": PROFILES["shuxin_gsr"]}
T0 = 1_800_000_000.0


def _simulate(seconds: float) -> list[SourceEvent]:
    clock = ManualClock(T0, auto_advance=False)
    rng = np.random.default_rng(9)
    subject = SimulatedSubject(draw_traits(rng), rng)
    faults = SimFaults(scheduled=(ScheduledFault(kind="link_loss", at_s=10, duration_s=5),))
    sources = [
        SimulatedHeartRateStrap("hrs-1", DEVICES["hrs-1"], subject, clock, rng, faults=faults),
        SimulatedGsr("gsr-1", DEVICES["gsr-1"], subject, clock, rng),
    ]
    events: list[SourceEvent] = []

    async def main() -> None:
        tasks = [asyncio.create_task(s.run(events.append)) for s in sources]
        while clock.now() < T0 + seconds:
            clock.advance(0.05)
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    return events


def _decode(events: list[SourceEvent]) -> list[Reading]:
    decoder = EventDecoder(DEVICES)
    return [r for e in events for r in decoder.handle(e)]


def _record(path: Path, events: list[SourceEvent]) -> None:
    refs = (DeviceRef("hrs-1", "hrs_strap"), DeviceRef("gsr-1", "shuxin_gsr"))
    with RecordingWriter(path, "st-a", refs, T0) as writer:
        for event in events:
            writer.write(event)


def _replay(path: Path, start: float, *, pace: bool) -> tuple[list[SourceEvent], ReplaySource]:
    replay = ReplaySource(path, ManualClock(start), pace=pace)
    out: list[SourceEvent] = []
    asyncio.run(replay.run(out.append))
    return out, replay


def test_replay_decodes_to_the_same_readings_shifted_in_time(tmp_path: Path) -> None:
    events = _simulate(30.0)
    path = tmp_path / "rec.jsonl"
    _record(path, events)
    start = T0 + 86_400.0
    replayed, replay = _replay(path, start, pace=True)
    assert replay.counters["events"] == len(events)
    original = _decode(events)
    again = _decode(replayed)
    assert len(again) == len(original)
    shift = start - (T0 + 0.05)  # the first event (a connect) happened one 50 ms step in
    beats = [(r.t, r.rr_ms) for r in original if isinstance(r, Beat)]
    beats_again = [(r.t - shift, r.rr_ms) for r in again if isinstance(r, Beat)]
    # Times survive the JSON round trip to float precision at 1.8e9 s (≈ 0.5 µs).
    assert np.allclose(beats_again, beats, atol=1e-5)
    assert [r.eda_us for r in again if isinstance(r, EdaSamples)] == [
        r.eda_us for r in original if isinstance(r, EdaSamples)
    ]
    assert [r.reason for r in again if isinstance(r, DataGap)] == ["link_lost"]


def test_unpaced_replay_keeps_the_recorded_spacing(tmp_path: Path) -> None:
    events = _simulate(10.0)
    path = tmp_path / "rec.jsonl"
    _record(path, events)
    replayed, _ = _replay(path, T0, pace=False)
    first = [getattr(e, "received_at", getattr(e, "at", 0.0)) for e in events]
    again = [getattr(e, "received_at", getattr(e, "at", 0.0)) for e in replayed]
    assert np.allclose(np.diff(again), np.diff(first), atol=1e-5)


def test_damaged_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    _record(path, _simulate(5.0))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3:3] = [
        "not json",
        "[1, 2]",
        json.dumps({"t": T0, "device": "intruder-1", "role": "heart_rate", "hex": "0040"}),
        json.dumps({"t": T0, "device": "hrs-1", "role": "heart_rate", "hex": "zz"}),
        json.dumps({"t": "soon", "device": "hrs-1", "role": "heart_rate", "hex": "0040"}),
        json.dumps({"t": T0, "device": "hrs-1", "event": "exploded"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    replayed, replay = _replay(path, T0, pace=False)
    assert replay.counters["invalid_line"] == 6
    assert len(replayed) == len(lines) - 1 - 6  # header and bad lines left out


@pytest.mark.parametrize("first_line", ["", "{}", '{"format": "shuxin-recording", "version": 2}'])
def test_a_file_without_a_header_is_refused(tmp_path: Path, first_line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(first_line + "\n", encoding="utf-8")
    with pytest.raises(RecordingError, match="not a shuxin-recording v1 file"):
        ReplaySource(path, ManualClock())
    with pytest.raises(RecordingError, match="cannot read"):
        ReplaySource(tmp_path / "missing.jsonl", ManualClock())
