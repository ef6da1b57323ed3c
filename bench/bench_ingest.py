"""Benchmark: what one `shuxin gateway run` sustains from Mosquitto into SQLite, InfluxDB 1.x and
VictoriaMetrics, against what Mosquitto delivers to the C client `mosquitto_sub` for the same
load.

Run: .venv/bin/python bench/bench_ingest.py [--messages 2000] [--beats 4] [--sinks ...]

Starts its own Mosquitto, InfluxDB 1.x and VictoriaMetrics (the test fixtures in tests/servers)
in a temporary directory. Load: N QoS 1 ``rr`` messages (``--beats`` beats each, ~400 bytes)
from one paho publisher as station ``st-a``.
- Throughput: from the first publish until the last message reached the sink (``mosquitto_sub``
  exited after N messages; every beat counted in the store, polled every ``--poll-ms``), then
  the stored count is checked for zero loss. The poll is an HTTP query for the servers, so it
  is kept coarse: polling InfluxDB every 10 ms costs it a good part of a core.
- VictoriaMetrics makes new rows searchable only when it flushes its in-memory buffers (about
  once a second) and updates its own counters as lazily, so "stored" there is what its write
  endpoint accepted (answered success for, which is when the gateway acknowledges), read from
  the gateway's ``shuxin_gateway_tsdb_points_stored_total``. The zero-loss check afterwards
  forces a flush and counts through VictoriaMetrics' query API.
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

from servers._process import free_ports
from servers.influxdb1 import InfluxDB1Server
from servers.mosquitto import MosquittoServer
from servers.victoriametrics import VictoriaMetricsServer

from shuxin.contract.topics import session_topic

STATION = "st-a"
#: Days before today: every sample of a long burst (4 s of beats per message) lies in the past,
#: where a query at "now" (VictoriaMetrics) finds it.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
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


def _wait(predicate: Callable[[], bool], timeout_s: float, poll_s: float = POLL_S) -> float | None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)
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
        data.mkdir(parents=True, exist_ok=True)
        self.log = data.with_suffix(".log")
        argv = [sys.executable, "-m", "shuxin.cli", "gateway", "run", "--broker", broker.url]
        argv += ["--username", user, "--data", str(data), "--client-id", f"bench-{data.name}"]
        # A group of its own: a stopped gateway's persistent session would otherwise stay in
        # the shared group and Mosquitto would keep queueing its share for it.
        argv += ["--tsdb", tsdb, "--shared-group", f"bench-{data.name}"]
        # VictoriaMetrics takes any token on its InfluxDB v2 write path.
        env = {**os.environ, "SHUXIN_GATEWAY_PASSWORD": password}
        env["SHUXIN_GATEWAY_INFLUX_TOKEN"] = "bench"
        (self.ops_port,) = free_ports(1)
        env["SHUXIN_GATEWAY_HTTP_PORT"] = str(self.ops_port)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        ok = _wait(lambda: "subscription" in self.log.read_text(encoding="utf-8"), 30)
        if ok is None:
            raise RuntimeError(f"gateway did not start: {self.log.read_text(encoding='utf-8')}")

    def points_stored(self) -> int:
        """Points the store accepted (its write answered success), from the gateway's /metrics."""
        url = f"http://127.0.0.1:{self.ops_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode("utf-8").splitlines():
                if line.startswith("shuxin_gateway_tsdb_points_stored_total"):
                    return int(float(line.split()[-1]))
        return 0

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


def victoriametrics_counter(server: VictoriaMetricsServer) -> Callable[[], int]:
    """Beats VictoriaMetrics answers a query with, after forcing a flush (zero-loss check)."""

    def searchable() -> int:
        server.force_flush()
        query = urllib.parse.urlencode(
            {"query": "sum(count_over_time(rr_rr_ms[3650d]))", "nocache": "1"}
        )
        with urllib.request.urlopen(f"{server.url}/api/v1/query?{query}", timeout=5) as response:
            result = json.load(response)["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    return searchable


def run_sink(
    name: str,
    broker: MosquittoServer,
    tsdb: str,
    data: Path,
    count: Callable[[], int] | None,
    args: Any,
    final_count: Callable[[], int] | None = None,
) -> dict[str, float | str]:
    """``count`` polls the store; None: poll what the gateway says the store accepted."""
    gateway = Gateway(broker, tsdb, data)
    if count is None:
        count = gateway.points_stored
    try:
        n, beats = args.messages, args.beats
        start = _publish_burst(broker, "st-a-20261123-0002", n, beats)
        done = _wait(lambda: count() >= n * beats, 120, args.poll_ms / 1000)
        elapsed = (done or time.monotonic()) - start
        time.sleep(1.0)  # a duplicate or late write would land now
        stored = (final_count or count)()
        latencies = _latency(broker, count, count(), args)
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


def _target(
    name: str, data: Path, influx: InfluxDB1Server, vm: VictoriaMetricsServer
) -> tuple[str, Callable[[], int] | None, Callable[[], int] | None]:
    """(the gateway's --tsdb URL, the polled counter, the final zero-loss counter) of a sink."""
    if name == "sqlite":
        path = data / "timeseries.sqlite3"
        return f"sqlite:///{path}", sqlite_counter(path), None
    if name == "influxdb1":
        return (
            f"influxdb1://{influx.host}:{influx.http_port}/{DATABASE}",
            influx_counter(influx),
            None,
        )
    url = f"influxdb2://{vm.host}:{vm.port}?org=shuxin&bucket=shuxin&delete=victoriametrics"
    return url, None, victoriametrics_counter(vm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--beats", type=int, default=4)
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="paced phase, messages/s")
    parser.add_argument(
        "--poll-ms", type=float, default=50.0, help="throughput phase: store poll interval"
    )
    parser.add_argument(
        "--sinks",
        default="sqlite,influxdb1,victoriametrics",
        help="comma-separated: sqlite, influxdb1, victoriametrics",
    )
    args = parser.parse_args()
    sinks = [s.strip() for s in args.sinks.split(",") if s.strip()]
    unknown = set(sinks) - {"sqlite", "influxdb1", "victoriametrics"}
    if unknown:
        parser.error(f"unknown sinks: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="shuxin-bench-ingest-") as tmp:
        root = Path(tmp)
        for name in ("influxdb1", "victoriametrics"):
            (root / name).mkdir()
        influx = InfluxDB1Server(root / "influxdb1")
        vm = VictoriaMetricsServer(root / "victoriametrics")
        rows: list[dict[str, float | str]] = []
        try:
            if "influxdb1" in sinks:
                influx.launch()
                influx.create_database(DATABASE)
            if "victoriametrics" in sinks:
                vm.launch()
            print(f"load: {args.messages} QoS1 rr messages x {args.beats} beats, one publisher")
            for name in sinks:
                # A fresh broker per sink, deployed persistence and logging: no session of an
                # earlier phase left queueing in it, the baseline measured right before.
                broker = MosquittoServer(
                    root / f"mosquitto-{name}", stations=(STATION,), deployed_defaults=True
                )
                (root / f"mosquitto-{name}").mkdir()
                broker.launch()
                try:
                    base = baseline(broker, args.messages, args.beats)
                    data = root / f"gw-{name}"
                    data.mkdir()
                    url, count, final = _target(name, data, influx, vm)
                    row = run_sink(name, broker, url, data, count, args, final)
                    row["baseline"] = base
                    rows.append(row)
                finally:
                    broker.close()
        finally:
            influx.close()
            vm.close()
        print(f"{'sink':<16} {'baseline':>8} {'msg/s':>8} {'samples/s':>10} {'ratio':>6} "
              f"{'loss':>5} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
        for row in rows:
            print(
                f"{row['sink']:<16} {row['baseline']:>8,.0f} {row['msg_s']:>8,.0f} "
                f"{row['samples_s']:>10,.0f} {float(row['msg_s']) / float(row['baseline']):>6.2f} "
                f"{row['loss']:>5} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f}"
            )


if __name__ == "__main__":
    main()
