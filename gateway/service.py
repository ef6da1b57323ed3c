"""The gateway's composition root: one function builds the whole ingest graph from settings.

``build_gateway(settings)`` wires the MQTT subscriber → ``Ingest`` (decode, dedupe, quarantine)
→ ``TimeSeriesSink`` → ``SpoolingWriter`` → the chosen time-series store, and ``SqlSink`` →
the SQL store (sessions, events, ratings, station and device health), and ``SummarySink``
(authoritative summaries when a session ends), plus the periodic operational-alert checker
(``OpsAlertChecker``: station offline, device lost, outbox backlog). ``shuxin gateway run``,
the demo and the end-to-end tests all build the gateway here (tests may pass their own store).
No logic of its own beyond choosing and connecting adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shuxin.gateway.dedupe import SqliteSeqLedger
from shuxin.gateway.http_ops import serve_ops
from shuxin.gateway.ingest import Ingest, MessageSink
from shuxin.gateway.mqtt_ingest import MqttIngest, MqttIngestSettings
from shuxin.gateway.ops_alerts import OpsAlertChecker, OpsThresholds
from shuxin.gateway.quarantine import SqliteQuarantine
from shuxin.gateway.settings import GatewaySettings, SqliteTsdb, broker_endpoint, parse_tsdb_url
from shuxin.gateway.spool import Spool, SpoolingWriter
from shuxin.gateway.sql_sink import SqlConsentGate, SqlSink
from shuxin.gateway.sql_store import SqlStore
from shuxin.gateway.sql_store import open_store as open_sql_store
from shuxin.gateway.store_influx import InfluxStore
from shuxin.gateway.store_sqlite import SqliteStore
from shuxin.gateway.summaries import SummarySink
from shuxin.gateway.timeseries import TimeSeriesSink, TimeSeriesStore
from shuxin.runtime.backoff import Backoff


@dataclass
class GatewayService:
    """A built gateway: run it with :meth:`run`, then :meth:`close` it."""

    settings: GatewaySettings
    store: TimeSeriesStore
    sql: SqlStore
    ledger: SqliteSeqLedger
    quarantine: SqliteQuarantine
    spool: Spool
    writer: SpoolingWriter
    ingest: Ingest
    mqtt: MqttIngest
    ops: OpsAlertChecker
    _closed: bool = field(default=False, repr=False)

    async def run(self) -> None:
        """Ingest until cancelled (the MQTT loop, the spool drain loop, the operational
        alert checks and the operations HTTP listener)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.mqtt.run())
            group.create_task(self.writer.drain_forever())
            group.create_task(self.ops.run_forever(self.settings.ops_check_interval_s))
            group.create_task(serve_ops(self, self.settings.http_host, self.settings.http_port))

    def close(self) -> None:
        """Close every store the service opened (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for closable in (self.ledger, self.quarantine, self.spool, self.store, self.sql):
            with contextlib.suppress(Exception):
                closable.close()


def open_store(settings: GatewaySettings) -> TimeSeriesStore:
    """Open the time-series store the settings choose."""
    token = settings.influx_token.get_secret_value() if settings.influx_token else None
    return open_tsdb(settings.tsdb_url, token=token, data_dir=settings.data_dir)


def open_tsdb(url: str | None, *, token: str | None, data_dir: Path) -> TimeSeriesStore:
    """Open the time-series store ``url`` names (``parse_tsdb_url``; SQLite in ``data_dir``
    when None). Shared by the gateway and the dashboard API."""
    choice = parse_tsdb_url(url, token=token, data_dir=data_dir)
    if isinstance(choice, SqliteTsdb):
        choice.path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(choice.path)
    return InfluxStore(choice)


def ops_thresholds(settings: GatewaySettings) -> OpsThresholds:
    """The operational-alert thresholds from the settings."""
    return OpsThresholds(
        station_offline_after_s=settings.ops_station_offline_after_s,
        station_silent_after_s=settings.ops_station_silent_after_s,
        device_lost_after_s=settings.ops_device_lost_after_s,
        device_silent_after_s=settings.ops_device_silent_after_s,
        backlog_open=settings.ops_backlog_open,
        backlog_clear=settings.ops_backlog_clear,
        backlog_after_s=settings.ops_backlog_after_s,
        clear_after_s=settings.ops_clear_after_s,
    )


def build_gateway(
    settings: GatewaySettings,
    *,
    store: TimeSeriesStore | None = None,
    sql: SqlStore | None = None,
    extra_sinks: Sequence[MessageSink] = (),
    backoff: Backoff | None = None,
) -> GatewayService:
    """Build the ingest graph (nothing connects until :meth:`GatewayService.run`)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    endpoint = broker_endpoint(settings.broker_url)
    store = store if store is not None else open_store(settings)
    sql = sql if sql is not None else open_sql_store(settings.sql, settings.data_dir)
    ledger = SqliteSeqLedger(settings.data_dir / "dedupe.sqlite3")
    quarantine = SqliteQuarantine(settings.data_dir / "quarantine.sqlite3")
    spool = Spool(settings.data_dir / "spool.sqlite3")
    writer = SpoolingWriter(store, spool, backoff=backoff)
    ingest = Ingest(
        sinks=[TimeSeriesSink(writer), SqlSink(sql), SummarySink(sql, store), *extra_sinks],
        ledger=ledger,
        quarantine=quarantine,
        gate=SqlConsentGate(sql),
    )
    mqtt = MqttIngest(
        MqttIngestSettings(
            host=endpoint.host,
            port=endpoint.port,
            tls=endpoint.tls,
            tls_ca_file=settings.tls_ca_file,
            tls_cert_file=settings.tls_cert_file,
            tls_key_file=settings.tls_key_file,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            client_id=settings.client_id,
            shared_group=settings.shared_group,
            protocol=settings.mqtt_protocol,
            queue_size=settings.queue_size,
        ),
        ingest,
        backoff=backoff,
    )
    ops = OpsAlertChecker(sql, ops_thresholds(settings))
    return GatewayService(
        settings, store, sql, ledger, quarantine, spool, writer, ingest, mqtt, ops
    )
