"""`shuxin demo` through its public entry point, as a newcomer runs it: from a clean data dir
it serves the dashboard, backfills history (sessions, trends, advisory alerts), runs live
sessions through the embedded broker, and stops cleanly on Ctrl-C leaving no process behind.

Smaller than the default (4 weeks, 8 participants, live time ×20) so it fits the suite; the
code path is the default's.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    children = [int(p) for p in out.stdout.split()]
    return children + [grand for child in children for grand in _descendants(child)]


def _pump(stream: IO[str], lines: queue.Queue[str], log: list[str]) -> None:
    for line in stream:
        log.append(line)
        lines.put(line)


def _wait_for_line(lines: queue.Queue[str], needle: str, timeout_s: float, log: list[str]) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if needle in line:
            return line
    raise AssertionError(f"no {needle!r} within {timeout_s:.0f} s:\n" + "".join(log[-60:]))


def test_demo_from_a_clean_dir_to_a_clean_stop(tmp_path: Path) -> None:
    port, console_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shuxin.cli", "demo", "--data", str(tmp_path / "demo"),
         "--port", str(port), "--console-port", str(console_port), "--weeks", "4",
         "--subjects", "8", "--time-scale", "20", "--protocol", "rest-only", "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    assert process.stdout is not None
    pump = threading.Thread(target=_pump, args=(process.stdout, lines, log), daemon=True)
    pump.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_line(lines, "demo logins", 120, log)
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        assert "<html" in httpx.get(f"{base}/", timeout=5).text.lower()
        _wait_for_line(lines, "history complete", 600, log)

        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "counselor", "password": "shuxin-demo"},
            timeout=10,
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        sessions = httpx.get(f"{base}/api/v1/sessions?limit=5", headers=auth, timeout=10).json()
        assert sessions["count"] >= 30, sessions  # ~60 planned over 4 weeks
        subject = sessions["data"][0]["subject_code"]
        trends = httpx.get(f"{base}/api/v1/subjects/{subject}/trends", headers=auth, timeout=10)
        assert trends.status_code == 200
        assert len(trends.json()["points"]) >= 3
        alerts = httpx.get(f"{base}/api/v1/alerts?limit=100", headers=auth, timeout=10).json()
        advisory = [a for a in alerts["data"] if a["kind"] in ("watch", "check_in")]
        assert advisory, alerts
        # Wrong password and the demo password for a user who does not exist: refused alike.
        refused = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "nobody", "password": "shuxin-demo"},
            timeout=10,
        )
        assert refused.status_code == 401

        # Live data: a session runs through the broker and its summary is printed.
        _wait_for_line(lines, "[summary]", 300, log)
        console = httpx.get(f"http://127.0.0.1:{console_port}/healthz", timeout=5)
        assert console.status_code == 200

        children = _descendants(process.pid)
        assert len(children) >= 3  # the three station processes
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 0, "".join(log[-60:])
        time.sleep(0.5)
        for child in children:
            with pytest.raises(ProcessLookupError):
                os.kill(child, 0)
        assert "Traceback" not in "".join(log), "".join(log[-80:])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        pump.join(10)  # EOF once the demo and its children have exited
        process.stdout.close()


def test_ctrl_c_during_the_backfill_stops_at_once_and_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while history is still being backfilled (minutes with the defaults) stops after
    the session in hand: no wait for the whole history, no store closed under the worker."""
    port, console_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shuxin.cli", "demo", "--data", str(tmp_path / "demo"),
         "--port", str(port), "--console-port", str(console_port), "--weeks", "8",
         "--subjects", "20", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    assert process.stdout is not None
    pump = threading.Thread(target=_pump, args=(process.stdout, lines, log), daemon=True)
    pump.start()
    try:
        _wait_for_line(lines, "sessions stored", 120, log)  # the backfill is under way
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, "".join(log[-40:])
        output = "".join(log)
        assert "history complete" not in output  # it stopped early, not at the end
        assert "Traceback" not in output, output[-4000:]
        assert "closed database" not in output, output[-4000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        pump.join(10)
        process.stdout.close()
