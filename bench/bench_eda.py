"""Benchmark: EDA decomposition + SCRs on 5 min, against NeuroKit2 on the same input.

Run: .venv/bin/python bench/bench_eda.py
Prints medians in milliseconds and the ratios NeuroKit2 / shuxin. It reports; it never fails.

Input: 5 min of simulated EDA (eda_simulate, seed 3: 4 SCRs/min, 0.2 µS/min drift, 0.003 µS
noise) at 4, 32 and 1000 Hz. Rows:

* shuxin "decomposition + SCRs" = ``eda_clean`` (zero-phase) + ``eda_peaks`` +
  ``eda_phasic(method="interpolation")``: the work ``nk.eda_process`` does;
* shuxin ``eda_summary`` = the above + quality flags, bridging and the metrics;
* NeuroKit2 ``nk.eda_process`` (clean 3 Hz + high-pass split + peaks + features);
* live: ``EdaStream.push`` per sample (median of per-push times over the 5 min at 32 Hz).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from shuxin.signal.eda_clean import eda_clean
from shuxin.signal.eda_peaks import eda_peaks
from shuxin.signal.eda_phasic import eda_phasic
from shuxin.signal.eda_simulate import eda_simulate
from shuxin.signal.eda_stream import EdaStream
from shuxin.signal.eda_summary import eda_summary

DURATION_S = 300.0


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def decomposition_and_scrs(x: np.ndarray, fs: float) -> None:
    y = eda_clean(x, fs).eda_us
    peaks = eda_peaks(y, fs)
    eda_phasic(y, fs, method="interpolation", peaks=peaks)


def main() -> None:
    warnings.simplefilter("ignore")
    import neurokit2 as nk

    print(f"EDA, {DURATION_S:.0f} s simulated (medians, ms)")
    header = f"{'fs':>6} {'shuxin decomp+SCR':>18} {'shuxin summary':>15} {'nk.eda_process':>15}"
    print(header + f" {'ratio nk/decomp':>16} {'ratio nk/summary':>17}")
    for fs, repeats, nk_repeats in ((4.0, 50, 20), (32.0, 50, 20), (1000.0, 10, 5)):
        sim = eda_simulate(
            DURATION_S,
            fs,
            np.random.default_rng(3),
            scr_rate_per_min=4.0,
            drift_us_per_min=0.2,
            noise_us=0.003,
        )
        x = sim.eda_us
        ours = median_ms(lambda x=x, fs=fs: decomposition_and_scrs(x, fs), repeats)
        summary = median_ms(lambda x=x, fs=fs: eda_summary(x, fs), repeats)
        theirs = median_ms(lambda x=x, fs=fs: nk.eda_process(x, sampling_rate=int(fs)), nk_repeats)
        print(
            f"{fs:>6.0f} {ours:>18.2f} {summary:>15.2f} {theirs:>15.2f}"
            f" {theirs / ours:>16.1f} {theirs / summary:>17.1f}"
        )

    fs = 32.0
    x = eda_simulate(DURATION_S, fs, np.random.default_rng(3), scr_rate_per_min=4.0).eda_us
    stream = EdaStream(fs)
    per_push = []
    for value in x.tolist():
        start = time.perf_counter()
        stream.push(value)
        per_push.append(time.perf_counter() - start)
    print(
        f"live EdaStream.push at {fs:.0f} Hz: median {statistics.median(per_push) * 1e6:.1f} µs"
        f" per sample, p99 {np.percentile(per_push, 99) * 1e6:.1f} µs"
    )


if __name__ == "__main__":
    main()
