"""`shuxin sim station` against a real Mosquitto: complete protocols end to end, a broker outage,
a SIGKILL of the agent, and hostile device bytes — nothing lost, every message schema-valid.

The station runs as a child process (``python -m shuxin.edge.sim_commands station …``), exactly
as an operator would start it. A gateway-user subscriber with a persistent session collects
everything; the agent's outbox file says which ``seq`` it handed out for every topic, so "lost
nothing" is checked against the edge's own record, not against what happened to arrive.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from shuxin.contract.codec import decode
from shuxin.contract.errors import ContractError
from shuxin.contract.messages import EventsMessage, LifecycleMessage
from shuxin.contract.topics import SessionTopic

pytestmark = pytest.mark.integration

STATION = "st-a"

# A short three-phase protocol (150 s) so a complete session takes ~3 s at 50x.
SHORT_PROTOCOL = """\
format: 1
id: short-resonance
version: "test-1"
names: {zh: 短时共振呼吸（测试）, en: Short resonance breathing (test)}
phases:
  - {id: baseline, names: {zh: 基线, en: Baseline}, kind: baseline, duration_s: 50}
  - {id: resonance, names: {zh: 共振呼吸, en: Resonance}, kind: training, duration_s: 50,
     pacer_bpm: 6.0, inhale_exhale_ratio: 0.667}
  - {id: recovery, names: {zh: 恢复, en: Recovery}, kind: recovery, duration_s: 50}
"""


class Collector:
    """A gateway subscriber with a persistent session that rides out broker restarts."""

    def __init__(self, host: str, port: int, user: str, password: str, client_id: str) -> None:
        self._args = (host, port, user, password, client_id)
        self.received: list[tuple[str, int, bytes]] = []  # session topics: (topic, seq, payload)
        self.messages: dict[tuple[str, int], Any] = {}
        self.invalid: list[str] = []
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None
        self.connects = 0

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as exc:  # surfaced by check(): a dead collector must not look idle
            self.failure = exc
            raise

    def check(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"the collector failed: {self.failure!r}") from self.failure

    def summary(self) -> str:
        streams: dict[str, int] = {}
        for topic, _, _ in self.received:
            stream = topic.rsplit("/", 1)[-1]
            streams[stream] = streams.get(stream, 0) + 1
        invalid = len(self.invalid)
        return f"{self.connects} connection(s), session messages {streams}, invalid {invalid}"

    async def _run(self) -> None:
        host, port, user, password, client_id = self._args
        while True:
            try:
                async with aiomqtt.Client(
                    host,
                    port,
                    username=user,
                    password=password,
                    identifier=client_id,
                    clean_session=False,
                ) as client:
                    await client.subscribe("shuxin/v1/#", qos=1)
                    self.connects += 1
                    self.ready.set()
                    async for message in client.messages:
                        self._take(str(message.topic), message.payload)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def _take(self, topic: str, payload: Any) -> None:
        assert isinstance(payload, bytes)
        try:
            parsed, decoded = decode(topic, payload)
        except ContractError as exc:
            self.invalid.append(f"{topic}: {exc}")
            return
        if isinstance(parsed, SessionTopic):
            seq = decoded.seq  # type: ignore[union-attr]
            self.received.append((topic, seq, payload))
            self.messages[(topic, seq)] = decoded

    def seqs(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for topic, seq, _ in self.received:
            out.setdefault(topic, set()).add(seq)
        return out

    def count(self, stream: str) -> int:
        return sum(1 for topic, _, _ in self.received if topic.endswith(f"/{stream}"))


def _issued_seqs(data: Path) -> dict[str, int]:
    """Every session topic the agent's outbox allocated seqs for, and how many (read-only)."""
    db = sqlite3.connect(f"file:{data / 'outbox.sqlite3'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT topic, next_seq FROM topic_seq").fetchall()
    finally:
        db.close()
    return {str(topic): int(n) for topic, n in rows}


class Station:
    """One ``shuxin sim station`` child process; stdout and stderr go to a log file.

    A file, not a pipe: nothing can block on a full pipe, nothing is left unclosed when a test
    fails, and a failure message can carry what the station said.
    """

    def __init__(self, broker: Any, data: Path, log: Path, *args: str) -> None:
        user, password = broker.credentials(STATION)
        cmd = [
            sys.executable,
            "-m",
            "shuxin.edge.sim_commands",
            "station",
            "--broker",
            broker.url,
            "--username",
            user,
            "--password",
            password,
            "--station",
            STATION,
            "--data",
            str(data),
            "--seed",
            "11",
            "--break-s",
            "5",
            "--progress-s",
            "1",
            *args,
        ]
        self.log = log
        with log.open("w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-tail:]

    def check_running(self) -> None:
        """Fail at once, with the station's own words, if it has exited."""
        code = self.proc.poll()
        if code is not None:
            raise AssertionError(f"the simulated station exited ({code}):\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


async def _wait_for(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    station: Station | None = None,
    collector: Collector | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if collector is not None:
            collector.check()
        if station is not None:
            station.check_running()
        if time.monotonic() > deadline:
            said = f"\nthe station said:\n{station.output()}" if station is not None else ""
            seen = f"\nthe collector has {collector.summary()}" if collector is not None else ""
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}{seen}{said}"
            )
        await asyncio.sleep(0.05)


async def _finish(station: Station, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while station.proc.poll() is None:
        if time.monotonic() > deadline:
            station.kill()
            raise AssertionError(
                f"the simulated station did not finish in time:\n{station.output()}"
            )
        await asyncio.sleep(0.1)
    out = station.output(tail=1_000_000)
    assert station.proc.returncode == 0, out[-4000:]
    done = [line for line in out.splitlines() if line.startswith("[sim] done ")]
    assert done, out[-4000:]
    result: dict[str, int] = json.loads(done[-1].removeprefix("[sim] done "))
    return result


def _assert_nothing_lost(collector: Collector, data: Path) -> None:
    issued = {t: n for t, n in _issued_seqs(data).items() if "/sessions/" in t}
    assert issued, "the station issued no session messages"
    seen = collector.seqs()
    for topic, count in issued.items():
        assert seen.get(topic, set()) == set(range(count)), f"{topic}: a seq is missing"
    assert set(seen) == set(issued)
    assert collector.invalid == []
    # A redelivery carries the same seq and the very same bytes.
    first: dict[tuple[str, int], bytes] = {}
    for topic, seq, payload in collector.received:
        assert first.setdefault((topic, seq), payload) == payload


def _lifecycles(collector: Collector) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (_topic, seq), message in sorted(collector.messages.items()):
        if isinstance(message, LifecycleMessage):
            out.setdefault(message.session, []).append(message.event)
            assert seq == len(out[message.session]) - 1
    return out


def test_complete_protocols_through_a_broker_outage_with_hostile_devices(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    data = tmp_path / "station"

    async def scenario() -> dict[str, int]:
        gw_user, gw_password = broker.credentials(broker.gateway_user)
        collector = Collector(broker.host, broker.port, gw_user, gw_password, "gw-outage")
        collect = asyncio.create_task(collector.run())
        await asyncio.wait_for(collector.ready.wait(), 60)
        # Two participants, one 150-s protocol each, at 2x: ~75 s. Heavy faults: link and
        # contact losses, ectopic beats, duplicates, bursts of garbage frames. The broker is
        # down for 60 s of it (the outage), longer than the publisher's 30-s backoff cap.
        protocols = tmp_path / "protocols"
        protocols.mkdir()
        (protocols / "short-resonance.yaml").write_text(SHORT_PROTOCOL, encoding="utf-8")
        options = "--subjects 2 --protocol short-resonance --time-scale 2 --sessions 2"
        station = Station(
            broker,
            data,
            tmp_path / "station.log",
            *options.split(),
            "--protocol-dir",
            str(protocols),
            "--faults",
            "heavy",
        )
        try:
            await _wait_for(
                lambda: collector.count("rr") >= 10,
                90,
                "rr batches",
                station=station,
                collector=collector,
            )
            broker.stop()  # mid-session: the agent keeps recording into its outbox
            await asyncio.sleep(60.0)
            station.check_running()  # the sessions are still running after the outage
            broker.start()
            result = await _finish(station, 150)
        finally:
            station.kill()
        issued = _issued_seqs(data)
        await _wait_for(
            lambda: all(
                len(collector.seqs().get(t, ())) >= n
                for t, n in issued.items()
                if "/sessions/" in t
            ),
            60,
            "every issued message",
            collector=collector,
        )
        collect.cancel()
        _assert_nothing_lost(collector, data)
        lifecycles = _lifecycles(collector)
        assert len(lifecycles) == 2
        assert all(events == ["start", "end"] for events in lifecycles.values())
        events = [
            e for m in collector.messages.values() if isinstance(m, EventsMessage) for e in m.events
        ]
        assert sum(e.kind == "phase_start" for e in events) == 6  # 3 phases x 2 sessions
        assert sum(e.kind == "phase_end" for e in events) == 6
        assert sum(e.kind == "rating" for e in events) == 4  # before and after, each session
        return result

    result = asyncio.run(scenario())
    assert result["sessions_ended"] == 2
    assert result["broker_connects"] >= 2  # the outage happened while the station ran
    assert result["outbox_backlog"] == 0
    assert result["garbage_injected"] > 0
    # Every garbage frame was counted: as a parse failure, or — when two bursts overlapped and
    # repeated the same bytes within 0.25 s — as a duplicate beyond the injected ones.
    extra_duplicates = result["duplicates_dropped"] - result["duplicates_injected"]
    assert result["parse_failures"] + extra_duplicates == result["garbage_injected"]


def test_sigkill_mid_session_then_restart_loses_nothing(
    mosquitto_factory: Callable[..., Any], tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    data = tmp_path / "station"
    args = (
        "--subjects",
        "1",
        "--protocol",
        "rest-only",
        "--time-scale",
        "40",
        "--sessions",
        "1",
        "--faults",
        "light",
    )

    async def scenario() -> None:
        gw_user, gw_password = broker.credentials(broker.gateway_user)
        collector = Collector(broker.host, broker.port, gw_user, gw_password, "gw-sigkill")
        collect = asyncio.create_task(collector.run())
        await asyncio.wait_for(collector.ready.wait(), 60)
        station = Station(broker, data, tmp_path / "station-1.log", *args)
        try:
            await _wait_for(
                lambda: collector.count("rr") >= 30,
                90,
                "rr batches",
                station=station,
                collector=collector,
            )
            station.proc.send_signal(signal.SIGKILL)  # a power cut: no shutdown code runs
        finally:
            station.kill()
        killed_at = _issued_seqs(data)

        restarted = Station(broker, data, tmp_path / "station-2.log", *args)
        try:
            result = await _finish(restarted, 90)
        finally:
            restarted.kill()
        assert result["sessions_started"] == 1  # the restart resumed, it did not start anew
        assert result["outbox_backlog"] == 0
        issued = _issued_seqs(data)
        # Seqs continue where the killed process stopped: nothing reused, nothing skipped.
        assert all(issued[t] >= n for t, n in killed_at.items())
        await _wait_for(
            lambda: all(
                len(collector.seqs().get(t, ())) >= n
                for t, n in issued.items()
                if "/sessions/" in t
            ),
            60,
            "every issued message",
            collector=collector,
        )
        collect.cancel()
        _assert_nothing_lost(collector, data)
        (events,) = _lifecycles(collector).values()
        assert events == ["start", "end"]
        gaps = [
            e
            for m in collector.messages.values()
            if isinstance(m, EventsMessage)
            for e in m.events
            if e.kind == "gap"
        ]
        # The agent's downtime is marked as a gap for each of the session's devices.
        assert {g.device for g in gaps} >= {"sim-h10-1", "sim-gsr-1"}

    asyncio.run(scenario())
