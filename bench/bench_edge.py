"""Edge agent footprint: CPU and memory of one agent serving 4 simulated sensors at real time.

Two participants, each wearing a Polar H10 (HRS RR notifications plus the 130 Hz PMD ECG
stream, decoded on the edge) and a GSR module (8 Hz), run the 20-min rest → resonance →
recovery protocol at real time through the real agent (`shuxin sim station`), publishing to a
Mosquitto started here on a free loopback port. After a warm-up, the agent process's CPU time
and resident memory are sampled from /proc for the measurement window.

    .venv/bin/python bench/bench_edge.py [--seconds 60] [--upload-ecg]

Goal (issue 4): under 5 % of one core and under 150 MB. Reports; never fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--upload-ecg", action="store_true", help="also publish the raw ECG")
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        sys.exit("needs Debian's mosquitto (apt-get install mosquitto)")
    work = Path(tempfile.mkdtemp(prefix="shuxin-bench-edge-"))
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
    broker = subprocess.Popen(
        [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    command = [
        sys.executable, "-m", "shuxin.cli", "sim", "station",
        "--broker", f"mqtt://127.0.0.1:{port}", "--station", "st-bench",
        "--data", str(work / "station"), "--subjects", "2",
        "--devices", "polar_h10,shuxin_gsr", "--time-scale", "1", "--seed", "1",
        "--progress-s", "3600",
    ]  # fmt: skip
    if args.upload_ecg:
        command.append("--upload-ecg")
    agent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(args.warmup)
        cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
        rss: list[float] = []
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1.0)
            rss.append(rss_mb(agent.pid))
        cpu1, t1 = cpu_seconds(agent.pid), time.monotonic()
    finally:
        agent.terminate()
        agent.wait(20)
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    print(
        f"edge agent, 4 sensors (2 x H10 with 130 Hz ECG + 2 x GSR 8 Hz), real time, "
        f"{args.seconds:.0f} s window, ECG upload {'on' if args.upload_ecg else 'off'}:"
    )
    print(f"  CPU  {cpu_pct:.2f} % of one core   (goal < 5 %)")
    print(f"  RSS  median {statistics.median(rss):.0f} MB, max {max(rss):.0f} MB   (goal < 150 MB)")


if __name__ == "__main__":
    main()
