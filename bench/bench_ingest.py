"""Benchmark: what one `shuxin gateway run` sustains from Mosquitto into SQLite and InfluxDB 1.x,
against what Mosquitto delivers to the C client `mosquitto_sub` for the same load.

Run: .venv/bin/python bench/bench_ingest.py [--messages 2000] [--beats 4]

Starts its own Mosquitto and InfluxDB 1.x (the test fixtures in tests/servers) in a temporary
directory. Load: N QoS 1 ``rr`` messages (``--beats`` beats each, ~400 bytes) from one paho
publisher as station ``st-a``.
- Throughput: from the first publish until the last message reached the sink (``mosquitto_sub``
  exited after N messages; every beat counted in the store), then the stored count is checked
  for zero loss.
- Latency: a paced phase (``--rate`` messages/s) while a poller counts stored points every
  ``POLL_S``; a message is visible at the first poll whose count includes its beats (the
  gateway stores in arrival order). p50/p99 from publish (monotonic) to that poll; the poll
  interval bounds the error.
It reports; it never fails. Never uses port 1883 or the system services.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.influxdb1 import InfluxDB1Server
from servers.mosquitto import MosquittoServer

from shuxin.contract.topics import session_topic

STATION = "st-a"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLL_S = 0.01
DATABASE = "shuxin_bench"


def _rr(session: str, seq: int, beats: int, day: int = 0) -> bytes:
    start = T0 + timedelta(days=day, seconds=beats * seq)
    return json.dumps(
        {
            "schema": 1,
            "station": STATION,
            "session": session,
            "stream": "rr",
            "seq": seq,
            "sent_at": datetime.now(UTC).isoformat(),
            "clock": {"offset_ms": 0.0, "source": "ntp"},
            "device": "hrs-1",
            "t0": start.isoformat(),
            "source": "sim",
            "t_offset_ms": [800.0 * i for i in range(beats)],
            "rr_ms": [800.0 + (seq + i) % 13 for i in range(beats)],
        }
    ).encode()


def _publisher(broker: MosquittoServer) -> mqtt.Client:
    user, password = broker.credentials(STATION)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _publish_burst(broker: MosquittoServer, session: str, n: int, beats: int) -> float:
    """Publish n messages as fast as the publisher goes; return the start (monotonic)."""
    payloads = [_rr(session, seq, beats) for seq in range(n)]
    topic = session_topic(STATION, session, "rr")
    client = _publisher(broker)
    start = time.monotonic()
    infos = [client.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()
    return start


def _wait(predicate: Callable[[], bool], timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_S)
    return time.monotonic()


def baseline(broker: MosquittoServer, n: int, beats: int) -> float:
    """Messages/s delivered to mosquitto_sub."""
    user, password = broker.credentials(broker.gateway_user)
    sub = subprocess.Popen(
        [
            *("mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-u", user, "-P"),
            *(password, "-q", "1", "-t", "shuxin/v1/#", "-C", str(n), "-V", "mqttv5"),
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let it subscribe
    start = _publish_burst(broker, "st-a-20261123-0001", n, beats)
    sub.wait(120)
    return n / (time.monotonic() - start)


class Gateway:
    """One `shuxin gateway run` child process."""

    def __init__(self, broker: MosquittoServer, tsdb: str, data: Path) -> None:
        user, password = broker.credentials(broker.gateway_user)
        self.log = data.with_suffix(".log")
        argv = [sys.executable, "-m", "shuxin.cli", "gateway", "run", "--broker", broker.url]
        argv += ["--username", user, "--data", str(data), "--client-id", f"bench-{data.name}"]
        # A group of its own: a stopped gateway's persistent session would otherwise stay in
        # the shared group and Mosquitto would keep queueing its share for it.
        argv += ["--tsdb", tsdb, "--shared-group", f"bench-{data.name}"]
        env = {**os.environ, "SHUXIN_GATEWAY_PASSWORD": password}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        ok = _wait(lambda: "subscription" in self.log.read_text(encoding="utf-8"), 30)
        if ok is None:
            raise RuntimeError(f"gateway did not start: {self.log.read_text(encoding='utf-8')}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def sqlite_counter(path: Path) -> Callable[[], int]:
    def count() -> int:
        if not path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
                return int(db.execute("SELECT COUNT(*) FROM point").fetchone()[0])
        except sqlite3.Error:
            return 0

    return count


def influx_counter(server: InfluxDB1Server) -> Callable[[], int]:
    def count() -> int:
        query = urllib.parse.urlencode(
            {"db": DATABASE, "q": 'SELECT COUNT("rr_ms") FROM "rr"'}
        ).encode()
        with urllib.request.urlopen(f"{server.url}/query", data=query, timeout=5) as response:
            series = json.load(response)["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0

    return count


def run_sink(
    name: str, broker: MosquittoServer, tsdb: str, data: Path, count: Callable[[], int], args: Any
) -> dict[str, float | str]:
    gateway = Gateway(broker, tsdb, data)
    try:
        n, beats = args.messages, args.beats
        start = _publish_burst(broker, "st-a-20261123-0002", n, beats)
        done = _wait(lambda: count() >= n * beats, 120)
        elapsed = (done or time.monotonic()) - start
        time.sleep(1.0)  # a duplicate or late write would land now
        stored = count()
        latencies = _latency(broker, count, stored, args)
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
        return {
            "sink": name,
            "msg_s": n / elapsed,
            "samples_s": n * beats / elapsed,
            "loss": n * beats - stored,
            "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "p99_ms": q[98] * 1000,
        }
    finally:
        gateway.stop()


def _latency(
    broker: MosquittoServer, count: Callable[[], int], base: int, args: Any
) -> list[float]:
    n, beats = args.latency_messages, args.beats
    polls: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            value = count()
            polls.append((time.monotonic(), value))
            time.sleep(POLL_S)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    topic = session_topic(STATION, "st-a-20261123-0003", "rr")
    client = _publisher(broker)
    sent: list[float] = []
    for seq in range(n):
        sent.append(time.monotonic())
        client.publish(topic, _rr("st-a-20261123-0003", seq, beats, day=1), qos=1)
        time.sleep(max(0.0, sent[0] + (seq + 1) / args.rate - time.monotonic()))
    _wait(lambda: bool(polls) and polls[-1][1] >= base + n * beats, 30)
    stop.set()
    poller.join()
    client.loop_stop()
    client.disconnect()
    latencies = []
    for seq, t_sent in enumerate(sent):
        need = base + (seq + 1) * beats
        seen = next((t for t, value in polls if value >= need and t >= t_sent), None)
        if seen is not None:
            latencies.append(seen - t_sent)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--beats", type=int, default=4)
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="paced phase, messages/s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shuxin-bench-ingest-") as tmp:
        root = Path(tmp)
        (root / "mosquitto").mkdir()
        (root / "influxdb1").mkdir()
        broker = MosquittoServer(root / "mosquitto", stations=(STATION,))
        influx = InfluxDB1Server(root / "influxdb1")
        rows: list[dict[str, float | str]] = []
        try:
            broker.launch()
            influx.launch()
            influx.create_database(DATABASE)
            base = baseline(broker, args.messages, args.beats)
            print(f"load: {args.messages} QoS1 rr messages x {args.beats} beats, one publisher")
            print(f"mosquitto_sub baseline: {base:,.0f} msg/s")
            sqlite_path = root / "gw-sqlite" / "timeseries.sqlite3"
            rows.append(
                run_sink(
                    "sqlite", broker, f"sqlite:///{sqlite_path}", root / "gw-sqlite",
                    sqlite_counter(sqlite_path), args,
                )
            )  # fmt: skip
            rows.append(
                run_sink(
                    "influxdb1", broker,
                    f"influxdb1://{influx.host}:{influx.http_port}/{DATABASE}",
                    root / "gw-influxdb1", influx_counter(influx), args,
                )
            )  # fmt: skip
        finally:
            broker.close()
            influx.close()
        print(f"{'sink':<10} {'msg/s':>8} {'samples/s':>10} {'ratio':>6} {'loss':>5} "
              f"{'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
        for row in rows:
            print(
                f"{row['sink']:<10} {row['msg_s']:>8,.0f} {row['samples_s']:>10,.0f} "
                f"{float(row['msg_s']) / base:>6.2f} {row['loss']:>5} "
                f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f}"
            )


if __name__ == "__main__":
    main()
