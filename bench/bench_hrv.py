"""Benchmark: the canonical 5-min HRV set and 24-h analysis, against NeuroKit2 on the same input.

Run: .venv/bin/python bench/bench_hrv.py
Prints medians in milliseconds (and the minimum for the full set: on a shared machine it shows
the cost without interference) and the ratios NeuroKit2 / shuxin. It reports; it never fails.

5-min records: a simulated one with 2 ectopic beats and 1 missed beat (rr_simulate, seed 7)
and, when pyHRV is installed, its bundled real 5-min NN series. Rows:

* shuxin ``hrv_summary`` = L&T correction (rr_clean) + time domain + Welch + Lomb-Scargle +
  SD1/SD2 + SampEn + DFA alpha1/alpha2 + Baevsky/PNS/SNS, and each part alone;
* NeuroKit2 "same metrics": ``signal_fixpeaks(method="Kubios")`` + ``hrv_time`` +
  ``hrv_frequency`` (Welch) + ``hrv_frequency`` (Lomb) + ``entropy_sample`` + ``fractal_dfa``
  (alpha1, 4-16) - NeuroKit2 has no stand-alone Poincaré or Baevsky call, so those are not
  charged to it;
* NeuroKit2 ``nk.hrv()`` (time + frequency + nonlinear, no artefact correction).

24 h: a simulated 24-h series (~94 000 beats, 200 ectopic + 50 missed beats) through
``hrv_long`` (segments + whole record): median wall time here, then in a fresh child process
(Linux) the RSS before the call, the RSS high-water mark during it (VmHWM, reset through
/proc/self/clear_refs after the warm-up) and the tracemalloc peak of a second call. NeuroKit2 is
not run on 24 h (``nk.hrv()`` computes FuzzyEn from an N x N pairwise distance matrix).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shuxin.signal.hrv_frequency import hrv_frequency
from shuxin.signal.hrv_long import hrv_long
from shuxin.signal.hrv_nonlinear import DFA_ALPHA1_SCALES, hrv_nonlinear
from shuxin.signal.hrv_stress import hrv_stress
from shuxin.signal.hrv_summary import hrv_summary
from shuxin.signal.hrv_time import hrv_time
from shuxin.signal.rr_clean import rr_clean
from shuxin.signal.rr_simulate import rr_simulate

CHILD = """
import sys, time, tracemalloc
import numpy as np
from shuxin.signal.hrv_long import hrv_long

def status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")

rr = np.load(sys.argv[1])
hrv_long(rr[:2000])  # warm-up: imports and first-call costs
base = status_mib("VmRSS:")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the RSS high-water mark (VmHWM) to the current RSS
    reset = True
except OSError:
    reset = False
start = time.perf_counter()
hrv_long(rr)
seconds = time.perf_counter() - start
peak = status_mib("VmHWM:")
tracemalloc.start()
hrv_long(rr)
traced = tracemalloc.get_traced_memory()[1] / 2**20
print(base, peak, seconds, traced, int(reset))
"""


def _times_ms(func: Callable[[], object], repeats: int) -> list[float]:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        func()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def _median_ms(func: Callable[[], object], repeats: int) -> float:
    return statistics.median(_times_ms(func, repeats))


def _records() -> dict[str, np.ndarray]:
    records = {
        "simulated 5 min (3 artefacts)": rr_simulate(
            300.0, np.random.default_rng(7), ectopic=2, missed=1
        ).rr_ms
    }
    spec = importlib.util.find_spec("pyhrv")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "files" / "SampleNNISeriesShort.npy"
        if path.exists():
            records["real 5 min (pyHRV sample)"] = np.load(path).astype(np.float64)
    return records


def _bench_5min(nk: Any, name: str, rr: np.ndarray) -> None:
    peaks = np.concatenate(([0], np.round(np.cumsum(rr)).astype(np.int64)))

    def nk_same() -> None:
        _, fixed = nk.signal_fixpeaks(peaks, sampling_rate=1000, method="Kubios")
        clean = np.diff(fixed).astype(np.float64)
        data = {"RRI": clean, "RRI_Time": np.cumsum(clean) / 1000.0}
        nk.hrv_time(data)
        nk.hrv_frequency(data, normalize=False)
        nk.hrv_frequency(data, normalize=False, psd_method="lomb", interpolation_rate=None)
        nk.entropy_sample(clean, dimension=2, tolerance=0.2 * np.std(clean, ddof=1))
        nk.fractal_dfa(clean, scale=np.array(DFA_ALPHA1_SCALES), overlap=False)

    clean = rr_clean(rr).rr_ms
    rri = {"RRI": clean, "RRI_Time": np.cumsum(clean) / 1000.0}
    r_ms = 0.2 * float(np.std(clean, ddof=1))
    rows = [
        (
            "L&T correction",
            lambda: rr_clean(rr),
            lambda: nk.signal_fixpeaks(peaks, sampling_rate=1000, method="Kubios"),
        ),
        ("time domain", lambda: hrv_time(clean), lambda: nk.hrv_time(rri)),
        ("Welch", lambda: hrv_frequency(clean), lambda: nk.hrv_frequency(rri, normalize=False)),
        (
            "Lomb-Scargle",
            lambda: hrv_frequency(clean, method="lomb"),
            lambda: nk.hrv_frequency(
                rri, normalize=False, psd_method="lomb", interpolation_rate=None
            ),
        ),
        (
            "SD1/SD2+SampEn+DFA a1/a2",
            lambda: hrv_nonlinear(clean),
            lambda: (
                nk.entropy_sample(clean, dimension=2, tolerance=r_ms),
                nk.fractal_dfa(clean, scale=np.array(DFA_ALPHA1_SCALES), overlap=False),
            ),
        ),
        ("Baevsky+PNS/SNS", lambda: hrv_stress(clean), None),
    ]
    print(f"\n== {name}: {rr.size} intervals, {rr.sum() / 1000:.0f} s ==")
    print(f"{'part':28s} {'shuxin ms':>10s} {'NeuroKit2 ms':>13s} {'ratio':>8s}")
    for label, ours, theirs in rows:
        ours_ms = _median_ms(ours, 200)
        if theirs is None:
            print(f"{label:28s} {ours_ms:10.3f} {'(none)':>13s} {'':>8s}")
            continue
        theirs_ms = _median_ms(theirs, 10)
        print(f"{label:28s} {ours_ms:10.3f} {theirs_ms:13.2f} {theirs_ms / ours_ms:7.1f}x")
    full = _times_ms(lambda: hrv_summary(rr), 300)
    full_ms = statistics.median(full)
    same_ms = _median_ms(nk_same, 10)
    hrv_ms = _median_ms(lambda: nk.hrv(peaks, sampling_rate=1000), 5)
    print(f"{'full set (hrv_summary)':28s} {full_ms:10.3f}   (min {min(full):.3f} ms)")
    print(f"{'NeuroKit2 same metrics':28s} {'':10s} {same_ms:13.2f} {same_ms / full_ms:7.1f}x")
    print(f"{'NeuroKit2 nk.hrv()':28s} {'':10s} {hrv_ms:13.2f} {hrv_ms / full_ms:7.1f}x")


def _bench_24h() -> None:
    sim = rr_simulate(86400.0, np.random.default_rng(8), ectopic=200, missed=50)
    rr = sim.rr_ms
    print(f"\n== 24 h: {rr.size} intervals ==")
    seconds = _median_ms(lambda: hrv_long(rr), 3) / 1000.0
    print(f"hrv_long wall time (median of 3)        {seconds:8.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rr24h.npy")
        np.save(path, rr)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=False
        )
    if out.returncode != 0:
        print("child process failed:", out.stderr.strip()[-500:])
        return
    base, peak, child_s, traced, reset = (float(v) for v in out.stdout.split())
    print(f"fresh process: wall time of one call    {child_s:8.2f} s")
    print(f"  RSS before the call (imports, data)   {base:8.1f} MiB")
    print(f"  peak RSS during the call (VmHWM)      {peak:8.1f} MiB" + ("" if reset else " *"))
    print(f"  growth caused by hrv_long             {peak - base:8.1f} MiB")
    print(f"  tracemalloc peak of the call          {traced:8.1f} MiB")
    if not reset:
        print("  * VmHWM could not be reset: it includes the warm-up")


def main() -> None:
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    import neurokit2 as nk

    print(f"NeuroKit2 {nk.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"(NeuroKit2 import took {time.perf_counter() - start:.1f} s)")
    for name, rr in _records().items():
        _bench_5min(nk, name, rr)
    _bench_24h()


if __name__ == "__main__":
    main()
