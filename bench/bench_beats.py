"""Benchmark of the beat layer against NeuroKit2 on the same inputs, in one run.

* ECG R peaks, 5 min at 1 kHz and at 130 Hz (Polar H10): ``ecg_peaks`` on the raw signal vs
  ``nk.ecg_clean`` + ``nk.ecg_peaks`` (NeuroKit2's default method, the pair NeuroKit2 runs).
* PPG pulses, 5 min at 100 Hz: ``ppg_peaks`` vs ``nk.ppg_clean`` + ``nk.ppg_findpeaks``
  (Elgendi, NeuroKit2's default).
* RR cleaning, 5 min (about 330 beats, 10 injected artefacts): ``rr_clean`` vs
  ``nk.signal_fixpeaks(method="Kubios")`` (its default, iterative) and with ``iterative=False``.
* ``rr_clean`` on 24 h (about 94 000 beats), ours only.

Prints medians in milliseconds and the ratio NeuroKit2 / shuxin. It reports; it never fails.
Run: ``.venv/bin/python bench/bench_beats.py``.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from shuxin.signal.ecg_peaks import ecg_peaks
from shuxin.signal.ecg_simulate import ecg_simulate
from shuxin.signal.ppg_peaks import ppg_peaks
from shuxin.signal.ppg_simulate import ppg_simulate
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.rr_simulate import rr_simulate


def _median_ms(func: Callable[[], object], repeats: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        func()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def _row(name: str, ours_ms: float, theirs_ms: float) -> None:
    print(f"{name:<34} {ours_ms:9.2f} {theirs_ms:11.2f} {theirs_ms / ours_ms:8.1f}x")


def main() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import neurokit2 as nk

    rr = rr_simulate(300.0, np.random.default_rng(1)).rr_ms
    ecg_1k = ecg_simulate(rr, 1000.0, np.random.default_rng(2), noise_mv=0.02).ecg_mv
    ecg_130 = ecg_simulate(rr, 130.0, np.random.default_rng(2), noise_mv=0.02).ecg_mv
    ppg_100 = ppg_simulate(rr, 100.0, np.random.default_rng(3), noise=0.02).ppg
    dirty = rr_simulate(
        300.0, np.random.default_rng(4), ectopic=2, missed=2, extra=2, long=2, short=2
    ).rr_ms
    peaks = np.concatenate(([0.0], np.cumsum(dirty))).round().astype(int)

    def nk_ecg(signal: np.ndarray, fs: int) -> object:
        cleaned = nk.ecg_clean(signal, sampling_rate=fs)
        return nk.ecg_peaks(cleaned, sampling_rate=fs)

    def nk_ppg() -> object:
        cleaned = nk.ppg_clean(ppg_100, sampling_rate=100)
        return nk.ppg_findpeaks(cleaned, sampling_rate=100)

    print(f"{'median of repeated runs':<34} {'shuxin ms':>9} {'NeuroKit2 ms':>11} {'ratio':>8}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _row(
            "ECG R peaks, 5 min @ 1 kHz",
            _median_ms(lambda: ecg_peaks(ecg_1k, 1000.0), 30),
            _median_ms(lambda: nk_ecg(ecg_1k, 1000), 10),
        )
        _row(
            "ECG R peaks, 5 min @ 130 Hz",
            _median_ms(lambda: ecg_peaks(ecg_130, 130.0), 30),
            _median_ms(lambda: nk_ecg(ecg_130, 130), 10),
        )
        _row(
            "PPG pulses, 5 min @ 100 Hz",
            _median_ms(lambda: ppg_peaks(ppg_100, 100.0), 30),
            _median_ms(nk_ppg, 10),
        )
        ours_clean = _median_ms(lambda: rr_clean(dirty), 100)
        _row(
            "L&T RR cleaning, 5 min (iterative)",
            ours_clean,
            _median_ms(lambda: nk.signal_fixpeaks(peaks, method="Kubios"), 20),
        )
        _row(
            "L&T RR cleaning, 5 min (one pass)",
            ours_clean,
            _median_ms(lambda: nk.signal_fixpeaks(peaks, method="Kubios", iterative=False), 20),
        )
    day = rr_simulate(86_400.0, np.random.default_rng(5), ectopic=200, missed=50, extra=50).rr_ms
    print(f"rr_clean on 24 h ({day.size} beats): {_median_ms(lambda: rr_clean(day), 3):.0f} ms")


if __name__ == "__main__":
    main()
