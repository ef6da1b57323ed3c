"""Benchmark: per-beat streaming update (HR, RMSSD 60 s, coherence every 5 s) and the biofeedback
batch functions, against NeuroKit2 computing the nearest equivalent on the same windows.

Run: .venv/bin/python bench/bench_stream.py
Prints medians (and p99/max for the stream) in microseconds or milliseconds. It reports; it
never fails. NeuroKit2 has no streaming API: its per-beat equivalent is recomputing the window
metrics from scratch at every beat, which is what the "NeuroKit2" rows time.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from shuxin.signal.hrv_coherence import coherence_from_beats, coherence_params, hrv_coherence
from shuxin.signal.hrv_stream import HrvStream
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.resonance import PROTOCOL_RATES_BPM, resonance_assess
from shuxin.signal.rr_simulate import rr_simulate
from shuxin.signal.rsp_rate import rsp_rate_from_rr

STREAM_REPEATS = 20


def _median_us(func: Callable[[], object], repeats: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        func()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000.0


def _stream_timings(rr_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-push times (µs) over STREAM_REPEATS fresh streams, and whether coherence ran."""
    times: list[int] = []
    with_coherence: list[bool] = []
    values = [float(x) for x in rr_ms]
    for _ in range(STREAM_REPEATS):
        stream = HrvStream()
        for rr in values:
            start = time.perf_counter_ns()
            live = stream.push(rr)
            times.append(time.perf_counter_ns() - start)
            with_coherence.append(live.coherence is not None)
    return np.asarray(times) / 1000.0, np.asarray(with_coherence)


def _window(rr_ms: np.ndarray, end: int, seconds: float) -> np.ndarray:
    total = np.cumsum(rr_ms[end::-1])
    n = int(np.searchsorted(total, seconds * 1000.0, side="right"))
    return rr_ms[end - n + 1 : end + 1]


def main() -> None:
    rng = np.random.default_rng(20240601)
    sim = rr_simulate(600, rng, breathing_rate_bpm=6.0, resonance_bpm=6.0)
    rr = sim.rr_clean_ms
    print(f"10-min simulated series: {rr.size} beats (6/min paced breathing)\n")

    push_us, coherent = _stream_timings(rr)
    plain = push_us[~coherent]
    coh = push_us[coherent]
    print("HrvStream.push (µs per beat)")
    print(
        f"  all pushes      n={push_us.size:6d}  median {np.median(push_us):7.1f}  "
        f"p99 {np.percentile(push_us, 99):7.1f}  max {push_us.max():7.1f}  "
        f"mean (amortised) {push_us.mean():7.1f}"
    )
    print(
        f"  no coherence    n={plain.size:6d}  median {np.median(plain):7.1f}  "
        f"p99 {np.percentile(plain, 99):7.1f}  max {plain.max():7.1f}"
    )
    print(
        f"  with coherence  n={coh.size:6d}  median {np.median(coh):7.1f}  "
        f"p99 {np.percentile(coh, 99):7.1f}  max {coh.max():7.1f}   (worst case)"
    )

    end = rr.size - 1
    w64 = _window(rr, end, 66.0)  # 64 s plus the beat before the first grid point
    w60 = _window(rr, end, 60.0)
    params = coherence_params()
    t64 = np.cumsum(w64) / 1000.0
    ours = {
        "hrv_coherence, 64 s window": _median_us(lambda: hrv_coherence(w64), 300),
        "coherence core (stream path)": _median_us(
            lambda: coherence_from_beats(t64, w64, params), 300
        ),
        "hrv_time, 60 s window": _median_us(lambda: hrv_time(w60), 300),
        "rsp_rate_from_rr, 5 min": _median_us(lambda: rsp_rate_from_rr(rr[: rr.size // 2]), 50),
    }
    schedule = [(120.0 * k, r) for k, r in enumerate(PROTOCOL_RATES_BPM)]
    protocol = rr_simulate(600, rng, breathing_schedule=schedule, resonance_bpm=5.5).rr_clean_ms
    ours["resonance_assess, 10 min protocol"] = _median_us(lambda: resonance_assess(protocol), 30)
    ours["rr_simulate, 10 min"] = _median_us(lambda: rr_simulate(600, np.random.default_rng(1)), 30)

    print("\nBatch functions (median µs)")
    for name, value in ours.items():
        print(f"  {name:36s} {value:9.1f}")

    try:
        import neurokit2 as nk
    except ImportError:
        print("\nneurokit2 not installed: no peer comparison")
        return

    def peaks(window: np.ndarray) -> np.ndarray:
        return np.concatenate(([0], np.round(np.cumsum(window)).astype(int)))

    p64 = peaks(w64)
    p60 = peaks(w60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nk_freq = _median_us(
            lambda: nk.hrv_frequency(p64, sampling_rate=1000, psd_method="welch"), 30
        )
        nk_time = _median_us(lambda: nk.hrv_time(p60, sampling_rate=1000), 30)
    stream_median = float(np.median(push_us))
    stream_mean = float(push_us.mean())
    print("\nNeuroKit2 peers on the same windows (median µs)")
    rows = [
        (
            "nk.hrv_frequency (Welch), 64 s",
            nk_freq,
            "hrv_coherence, 64 s",
            ours["hrv_coherence, 64 s window"],
        ),
        ("nk.hrv_time, 60 s", nk_time, "hrv_time, 60 s", ours["hrv_time, 60 s window"]),
        ("nk.hrv_time per beat (RMSSD live)", nk_time, "HrvStream.push median", stream_median),
        (
            "nk.hrv_time + hrv_frequency / 5 s",
            nk_time + nk_freq / 5.4,
            "HrvStream.push mean",
            stream_mean,
        ),
    ]
    for nk_name, nk_us, our_name, our_us in rows:
        print(
            f"  {nk_name:36s} {nk_us:9.1f}   vs {our_name:24s} {our_us:8.1f}   "
            f"ratio {nk_us / our_us:7.1f}x"
        )
    print("\n(nk.hrv_rsa needs ECG/RSP signals, not RR alone: no peer for rsp_rate_from_rr.)")


if __name__ == "__main__":
    main()
