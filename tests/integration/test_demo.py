"""`shuxin demo` through its public entry point: a complete run with summaries, and a clean
stop on Ctrl-C that leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUMMARY = re.compile(r"\[summary\] (st-[abc]) (S-[0-9A-Z]+) rest-only ended: (\d+) beats · HR")


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_demo_runs_sessions_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "shuxin.cli",
            "demo",
            "--data",
            str(data),
            "--time-scale",
            "20",
            "--sessions",
            "1",
            "--protocol",
            "rest-only",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summaries = SUMMARY.findall(out.stdout)
    assert sorted(s[0] for s in summaries) == ["st-a", "st-b", "st-c"], out.stdout[-3000:]
    # A 5-min rest at 50-100 bpm has 250-500 beats; all of them made it through the broker.
    assert all(250 <= int(beats) <= 500 for _, _, beats in summaries), summaries
    assert "done: 3 session(s) summarised" in out.stdout
    assert (data / "gateway" / "timeseries.sqlite3").exists()
    assert "Traceback" not in out.stdout + out.stderr


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "shuxin.cli", "demo", "--data", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        stations_up = 0
        for line in process.stdout:
            if "connected to broker" in line:
                stations_up += 1
            if stations_up == 3 or time.monotonic() > deadline:
                break
        assert stations_up == 3
        children = _children_of(process.pid)
        assert len(children) == 3
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        for child in children:
            with pytest.raises(ProcessLookupError):
                os.kill(child, 0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
