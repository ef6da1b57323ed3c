"""Simulated sensors: real notification bytes, physiology that follows the protocol, faults."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from shuxin.edge.clock import ManualClock
from shuxin.edge.decode import Beat, ContactChange, DataGap, EcgSamples, EventDecoder
from shuxin.edge.decoders import eda_calibration
from shuxin.edge.device_profile import load_profiles
from shuxin.edge.parse_eda import parse_eda_frame
from shuxin.edge.parse_hrs import SensorContact, parse_heart_rate_measurement
from shuxin.edge.protocol import load_protocol
from shuxin.edge.source_sim import (
    ScheduledFault,
    SimFaults,
    SimulatedGsr,
    SimulatedHeartRateStrap,
    SimulatedSubject,
    SubjectTraits,
    signal_ecg_synth,
)
from shuxin.edge.sources import DeviceConnected, DeviceDisconnected, Notification, SourceEvent
from shuxin.signal.hrv_coherence import hrv_coherence

ROOT = Path(__file__).resolve().parents[3]
PROFILES = load_profiles(ROOT / "firmware_configs" / "devices")
T0 = 1_800_000_000.0
TRAITS = SubjectTraits(
    mean_hr_bpm=65.0, spontaneous_breathing_bpm=14.0, resonance_bpm=5.5, stress=0.4, scl_us=6.0
)


def _run(sources: Sequence[object], clock: ManualClock, seconds: float) -> list[SourceEvent]:
    """Run sources on virtual time for ``seconds`` (50 ms steps) and return what they sent."""
    events: list[SourceEvent] = []

    async def main() -> None:
        tasks = [asyncio.create_task(s.run(events.append)) for s in sources]  # type: ignore[attr-defined]
        end = clock.now() + seconds
        while clock.now() < end:
            clock.advance(0.05)
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    return events


def _subject(seed: int = 1, **kw: float) -> SimulatedSubject:
    return SimulatedSubject(TRAITS, np.random.default_rng(seed), **kw)


def _strap(
    clock: ManualClock,
    subject: SimulatedSubject,
    faults: SimFaults | None = None,
    profile: str = "hrs_strap",
    seed: int = 2,
) -> SimulatedHeartRateStrap:
    return SimulatedHeartRateStrap(
        "hrs-1",
        PROFILES[profile],
        subject,
        clock,
        np.random.default_rng(seed),
        faults=faults,
        ecg_synth=signal_ecg_synth() if profile == "polar_h10" else None,
    )


def _notes(events: list[SourceEvent], role: str) -> list[Notification]:
    return [e for e in events if isinstance(e, Notification) and e.role == role]


def test_one_heart_rate_notification_per_beat_with_the_subjects_rr() -> None:
    clock = ManualClock(T0, auto_advance=False)
    subject = _subject()
    events = _run([_strap(clock, subject)], clock, 60.0)
    assert isinstance(events[0], DeviceConnected)
    notes = _notes(events, "heart_rate")
    decoded = [parse_heart_rate_measurement(n.data) for n in notes]
    times, rr = subject.beats_between(T0, notes[-1].received_at)
    assert len(notes) == len(rr)  # one notification per beat
    assert [n.received_at for n in notes] == pytest.approx(list(times), abs=1e-9)
    # RR travels in 1/1024 s ticks: within half a tick (0.49 ms) of the simulated value.
    sent = [m.rr_ms[0] for m in decoded]
    assert np.max(np.abs(np.asarray(sent) - rr)) <= 0.5
    assert {m.sensor_contact for m in decoded} == {SensorContact.DETECTED}
    assert 55 <= np.mean([m.heart_rate_bpm for m in decoded]) <= 80  # HR 65 at stress 0.4


def test_same_seed_same_bytes() -> None:
    def run() -> list[bytes]:
        clock = ManualClock(T0, auto_advance=False)
        events = _run([_strap(clock, _subject(seed=5))], clock, 30.0)
        return [e.data for e in events if isinstance(e, Notification)]

    assert run() == run()


def test_the_subject_breathes_with_the_pacer() -> None:
    """Paced 6/min breathing concentrates HRV near 0.1 Hz: coherence far above baseline."""
    subject = _subject(seed=3)
    protocol = load_protocol(
        ROOT / "firmware_configs" / "protocols" / "rest-resonance-recovery.yaml"
    )
    subject.follow(protocol, T0, T0)
    _, rr_base = subject.beats_between(T0 + 200, T0 + 300)  # spontaneous at 14/min
    _, rr_paced = subject.beats_between(T0 + 800, T0 + 900)  # paced at 6/min
    base = hrv_coherence(rr_base).coherence_ratio
    paced = hrv_coherence(rr_paced).coherence_ratio
    # Resonance breathing makes one dominant peak: the ratio rises several-fold (simulated
    # subjects typically go from < 1 to > 3; a factor of 2 leaves room for randomness).
    assert paced > 2 * base
    assert subject.stress_at(T0 + 850) < subject.stress_at(T0 + 250)


def test_h10_sends_130_hz_ecg_frames_with_r_peaks_at_the_beats() -> None:
    clock = ManualClock(T0, auto_advance=False)
    subject = _subject(seed=4)
    h10 = SimulatedHeartRateStrap(
        "h10-1",
        PROFILES["polar_h10"],
        subject,
        clock,
        np.random.default_rng(1),
        ecg_synth=signal_ecg_synth(),
    )
    events = _run([h10], clock, 20.0)
    dec = EventDecoder({"h10-1": PROFILES["polar_h10"]})
    chunks = [r for e in events for r in dec.handle(e) if isinstance(r, EcgSamples)]
    assert dec.failures() == 0
    assert {len(c.samples_uv) for c in chunks} == {73}
    ecg = np.concatenate([c.samples_uv for c in chunks]).astype(float)
    t = chunks[0].t0 + np.arange(ecg.size) / 130.0
    # Consecutive frames are contiguous on the sensor clock (to 1 µs of rounding).
    assert np.allclose(np.diff([c.t0 for c in chunks]), 73 / 130.0, atol=1e-6)
    # The largest sample of each beat lies within 2 samples (15 ms) of the subject's beat.
    beats, _ = subject.beats_between(t[0] + 0.5, t[-1] - 0.5)
    for beat in beats:
        window = (t > beat - 0.2) & (t < beat + 0.2)
        assert abs(t[window][np.argmax(ecg[window])] - beat) <= 2 / 130.0


def test_gsr_frames_decode_to_the_simulated_conductance() -> None:
    clock = ManualClock(T0, auto_advance=False)
    profile = PROFILES["shuxin_gsr"]
    gsr = SimulatedGsr("gsr-1", profile, _subject(), clock, np.random.default_rng(2))
    events = _run([gsr], clock, 30.0)
    assert profile.calibration is not None
    calibration = eda_calibration(profile.calibration)
    frames = [parse_eda_frame(n.data, calibration) for n in _notes(events, "eda")]
    assert [f.sequence for f in frames] == list(range(len(frames)))
    assert {f.sample_rate_hz for f in frames} == {8}
    assert len(frames) == pytest.approx(30 * 8 / 4, abs=1)  # 4 samples per frame at 8 Hz
    values = [v for f in frames for v in f.eda_us]
    assert all(v is not None for v in values)
    # Tonic level 6 µS plus SCRs up to 1 µS; 0.1 mV steps resolve 0.005 µS near 6 µS.
    assert 5.0 <= float(np.median([v for v in values if v is not None])) <= 8.0


def test_faults_link_loss_contact_loss_duplicates_and_battery() -> None:
    clock = ManualClock(T0, auto_advance=False)
    faults = SimFaults(
        scheduled=(
            ScheduledFault(kind="link_loss", at_s=20, duration_s=10),
            ScheduledFault(kind="contact_loss", at_s=50, duration_s=8),
            ScheduledFault(kind="battery_low", at_s=70),
        )
    )
    strap = _strap(clock, _subject(), faults)
    events = _run([strap], clock, 125.0)
    down = [e for e in events if isinstance(e, DeviceDisconnected)]
    up = [e for e in events if isinstance(e, DeviceConnected)]
    assert [d.at for d in down] == pytest.approx([T0 + 0.05 + 20])
    assert [u.at for u in up][1:] == pytest.approx([T0 + 0.05 + 30])
    hr = _notes(events, "heart_rate")
    assert not [n for n in hr if down[0].at <= n.received_at < up[1].at]  # nothing while down
    assert strap.injected["duplicate"] == 3
    dec = EventDecoder({"hrs-1": PROFILES["hrs_strap"]})
    readings = [r for e in events for r in dec.handle(e)]
    assert dec.counters[("hrs-1", "duplicate")] == 3
    gaps = [r for r in readings if isinstance(r, DataGap)]
    assert [g.reason for g in gaps] == ["link_lost", "contact_lost"]
    lost = [r for r in readings if isinstance(r, ContactChange)]
    assert [c.contact for c in lost] == ["detected", "not_detected", "detected"]
    battery = [n.data[0] for n in _notes(events, "battery")]
    assert battery[-1] == 9  # low after 70 s
    assert battery[0] >= 60


def test_garbage_is_always_malformed_and_all_of_it_is_counted() -> None:
    clock = ManualClock(T0, auto_advance=False)
    faults = SimFaults(scheduled=(ScheduledFault(kind="garbage", at_s=5, count=40),))
    subject = _subject()
    h10 = _strap(clock, subject, faults, profile="polar_h10", seed=3)
    gsr = SimulatedGsr(
        "gsr-1", PROFILES["shuxin_gsr"], subject, clock, np.random.default_rng(4), faults=faults
    )
    events = _run([h10, gsr], clock, 30.0)
    dec = EventDecoder({"hrs-1": PROFILES["polar_h10"], "gsr-1": PROFILES["shuxin_gsr"]})
    beats = [r for e in events for r in dec.handle(e) if isinstance(r, Beat)]
    assert h10.injected["garbage"] == gsr.injected["garbage"] == 40
    assert dec.failures() == 80
    assert beats  # the good data kept flowing around the garbage


def test_ectopic_beats_come_from_rr_simulate() -> None:
    subject = _subject(seed=8, ectopic_per_min=2.0)
    subject.beats_between(T0, T0 + 600)
    # Poisson with mean 20 over 10 min (capped at 1 per 20 beats); 5 is far below the mean.
    assert subject.artefacts["ectopic"] >= 5


@pytest.mark.parametrize("kind", ["link_loss", "contact_loss"])
def test_random_faults_follow_their_rate(kind: str) -> None:
    clock = ManualClock(T0, auto_advance=False)
    faults = SimFaults(**{f"{kind}_per_h": 360.0})  # one every 10 s on average
    strap = _strap(clock, _subject(), faults)
    events = _run([strap], clock, 120.0)
    if kind == "link_loss":
        # About 12 starts in 120 s (some overlap a running loss and are dropped); ≥ 3 is
        # far below the Poisson mean even after overlaps.
        assert sum(isinstance(e, DeviceDisconnected) for e in events) >= 3
    else:
        contact = [
            parse_heart_rate_measurement(n.data).sensor_contact
            for n in _notes(events, "heart_rate")
        ]
        assert SensorContact.NOT_DETECTED in contact
