"""Simulated history through the real gateway: in-process seeding (summaries, advisory alerts)
and the demo's path (station outbox → publisher → embedded amqtt broker → gateway)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from servers.seeded import SeededGatewayDb

from shuxin.contract.topics import SessionTopic
from shuxin.edge.outbox import Outbox
from shuxin.edge.outbox_publisher import BrokerSettings, OutboxPublisher
from shuxin.edge.sim_history import backfill_outboxes, plan_history, seed_org_tree
from shuxin.gateway.ingest import Accepted
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import open_store
from shuxin.gateway.summaries import resting_history
from shuxin.runtime.backoff import Backoff

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_seeded_store_has_summaries_and_alerts_for_declining_subjects(
    seeded_gateway_db: SeededGatewayDb,
) -> None:
    db = seeded_gateway_db
    sql = open_store(SqlSettings(url=SecretStr(db.sql_url)), db.data_dir)
    try:
        sessions = sql.list_sessions(db.detachment_id, limit=10_000)
        assert len(sessions) == len(db.session_ids) > 0
        for record in sessions:
            assert record.status.value == "ended"
            summaries = sql.summaries(record.id)
            assert summaries, record.id
            assert any(s.metrics.get("ln_rmssd") is not None for s in summaries)
        assert {s.station_id for s in sessions} == set(db.station_ids)
        assert db.declining_subjects
        for code in db.declining_subjects:
            assert set(db.alerts_by_subject.get(code, ())) >= {"watch", "check_in"}, code
        # Stable subjects whose history is long enough to be judged at all get no alert.
        judged = [c for c in db.stable_subjects if len(resting_history(sql, c)) >= 8]
        assert db.stable_subjects
        for code in db.stable_subjects:
            assert code not in db.alerts_by_subject, code
        for code in (*db.declining_subjects, *judged):
            history = resting_history(sql, code)
            assert all(v.quality_passed for v in history), code
    finally:
        sql.close()


class _Recorder:
    """An extra gateway sink: (topic, seq) of every session message the ingest accepted."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, int]] = Counter()

    def accept(self, messages: Sequence[Accepted]) -> None:
        for accepted in messages:
            if isinstance(accepted.topic, SessionTopic) and accepted.seq is not None:
                self.seen[(accepted.received.topic, accepted.seq)] += 1


@pytest.mark.slow
def test_outbox_history_reaches_the_gateway_exactly_once_over_amqtt(tmp_path: Path) -> None:
    from shuxin.gateway.broker_amqtt import embedded_broker
    from shuxin.gateway.service import build_gateway
    from shuxin.gateway.settings import GatewaySettings

    station = "st-a"
    plan = plan_history(
        (station,), weeks=1, subjects=2, seed=9, end=datetime(2026, 11, 23, tzinfo=UTC)
    )
    sessions = plan.sessions[:3]
    station_dir = tmp_path / station
    station_dir.mkdir()
    backfill_outboxes(sessions, {station: station_dir}, phase_scale=0.2)
    with Outbox(station_dir / "outbox.sqlite3") as outbox:
        expected = {(i.topic, i.seq) for i in outbox.pending(100_000) if i.seq is not None}
    assert len(expected) > 100
    users = {station: "pw-station", "gateway": "pw-gateway"}
    recorder = _Recorder()

    async def scenario() -> tuple[dict[str, object], int]:
        async with embedded_broker(tmp_path / "broker", stations=[station], users=users) as broker:
            settings = GatewaySettings(
                broker_url=broker.url,
                username="gateway",
                password=SecretStr("pw-gateway"),
                client_id="history-test-gateway",
                shared_group=None,
                mqtt_protocol="3.1.1",
                queue_size=64,
                data_dir=tmp_path / "gateway",
            )
            gateway = build_gateway(settings, extra_sinks=[recorder])
            try:
                seed_org_tree(gateway.sql, {station: ("DD01", "一大队", "甲站")})
                gateway_task = asyncio.get_running_loop().create_task(gateway.run())
                await asyncio.sleep(0.5)
                with Outbox(station_dir / "outbox.sqlite3") as outbox:
                    publisher = OutboxPublisher(
                        station,
                        outbox,
                        BrokerSettings(broker.host, broker.port, station, "pw-station"),
                        backoff=Backoff(initial_s=0.2, cap_s=2.0),
                    )
                    publisher_task = asyncio.get_running_loop().create_task(publisher.run())
                    deadline = time.monotonic() + 120
                    while time.monotonic() < deadline and (
                        len(recorder.seen) < len(expected) or outbox.stats().backlog
                    ):
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(1.0)  # would-be redeliveries have time to show
                    publisher_task.cancel()
                    await asyncio.gather(publisher_task, return_exceptions=True)
                gateway_task.cancel()
                await asyncio.gather(gateway_task, return_exceptions=True)
                summarised = sum(
                    1
                    for record in gateway.sql.list_sessions(
                        gateway.sql.get_org_unit_by_code("ZD-SIM").id
                    )
                    if gateway.sql.summaries(record.id)
                )
                return gateway.ingest.counters.as_dict(), summarised
            finally:
                gateway.close()

    counters, summarised = asyncio.run(scenario())
    assert set(recorder.seen) == expected
    assert all(n == 1 for n in recorder.seen.values())
    assert counters["duplicates"] == 0
    assert counters["quarantined"] == {}
    assert summarised == len(sessions)
