"""The gateway's operations listener: ``/healthz``, ``/readyz`` and ``/metrics`` over HTTP.

A small Starlette app served by uvicorn on the gateway's own event loop (no thread, no signal
handlers of its own: ``run_service`` owns SIGINT/SIGTERM). Bind it to loopback or an internal
network only — it has no authentication. Port 0 in the settings disables it.

- ``GET /healthz``: 200 while the process and its event loop answer.
- ``GET /readyz``: 200 when the broker connection is up and subscribed, the SQL database
  answers ``SELECT 1`` and the time-series store answers its ping; otherwise 503. The body
  lists each check (``{"ready": bool, "checks": {"broker": bool, "sql": bool, "tsdb": bool}}``).
- ``GET /metrics``: Prometheus text format, read at scrape time from the counters the
  pipeline already keeps (:func:`gateway_samples`), plus process metrics.

Metric names (``shuxin_gateway_…``; counters end in ``_total``): ``ingest_received``,
``ingest_valid``, ``ingest_duplicates``, ``ingest_written``, ``ingest_failed``,
``ingest_quarantined{code}``, ``ingest_discarded{reason}``, ``ingest_ledger_errors``;
``mqtt_connects``, ``mqtt_disconnects``, ``mqtt_received``, ``mqtt_acknowledged``,
``mqtt_not_acknowledged``, ``mqtt_batches``,
``mqtt_errors{kind}``, gauge ``mqtt_connected``; ``tsdb_points_stored``, ``spool_points_spooled``,
``spool_points_drained``, ``spool_points_parked``, ``tsdb_store_failures``, gauges
``tsdb_store_down``, ``spool_backlog_batches``, ``spool_backlog_points``,
``spool_parked_points``, ``spool_oldest_age_seconds``; ``ops_checks``, ``ops_check_failures``,
``ops_alerts_opened``, ``ops_alerts_resolved``.

This module reads state; it must not change the pipeline, and it must not expose payloads,
subject codes or anything else from a message — only counts, quarantine codes and error kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shuxin.runtime.metrics import (
    CONTENT_TYPE,
    MetricSample,
    counter,
    gauge,
    new_registry,
    register_snapshot,
    render_latest,
)

if TYPE_CHECKING:
    from shuxin.gateway.service import GatewayService

log = logging.getLogger(__name__)

#: Default listener (``SHUXIN_GATEWAY_HTTP_HOST`` / ``SHUXIN_GATEWAY_HTTP_PORT``).
DEFAULT_HTTP_HOST: Final = "127.0.0.1"
DEFAULT_HTTP_PORT: Final = 9102


def gateway_samples(service: GatewayService) -> Iterator[MetricSample]:
    """Every gateway metric, read now from the counters the pipeline keeps."""
    ingest = service.ingest.counters
    yield counter("ingest_received", "Messages handed to the ingest pipeline.", ingest.received)
    yield counter("ingest_valid", "Messages that passed the contract.", ingest.valid)
    yield counter(
        "ingest_duplicates", "Messages dropped as (topic, seq) duplicates.", ingest.duplicates
    )
    yield counter("ingest_written", "Messages made durable by every sink.", ingest.written)
    yield counter(
        "ingest_failed", "Messages not made durable (left unacknowledged).", ingest.failed
    )
    yield counter(
        "ingest_ledger_errors", "Dedupe ledger reads/writes that failed.", ingest.ledger_errors
    )
    for code, count in sorted(ingest.quarantined.items()):
        yield counter(
            "ingest_quarantined", "Messages quarantined, by reason code.", count, {"code": code}
        )
    for reason, count in sorted(ingest.discarded.items()):
        yield counter(
            "ingest_discarded",
            "Messages discarded unstored (consent withdrawn), by reason.",
            count,
            {"reason": reason},
        )

    mqtt = service.mqtt.counters
    yield counter("mqtt_connects", "Broker connections made.", mqtt.connects)
    yield counter("mqtt_disconnects", "Broker connections lost or closed.", mqtt.disconnects)
    yield counter("mqtt_received", "Messages received from the broker.", mqtt.received)
    yield counter("mqtt_acknowledged", "Messages acknowledged to the broker.", mqtt.acknowledged)
    yield counter("mqtt_not_acknowledged", "Messages left for redelivery.", mqtt.not_acknowledged)
    yield counter("mqtt_batches", "Batches handed to the pipeline.", mqtt.batches)
    for kind, count in sorted(mqtt.errors.items()):
        yield counter(
            "mqtt_errors",
            "Connection errors by kind (TlsVerifyError, TlsError or the exception type).",
            count,
            {"kind": kind},
        )
    yield gauge(
        "mqtt_connected",
        "1 while connected and subscribed to the broker.",
        1.0 if service.mqtt.ready.is_set() else 0.0,
    )

    writer = service.writer.counters
    yield counter("tsdb_points_stored", "Points written straight to the store.", writer.stored)
    yield counter("tsdb_store_failures", "Store writes that found it down.", writer.store_failures)
    yield gauge(
        "tsdb_store_down",
        "1 while the time-series store is unavailable.",
        1.0 if service.writer.store_down else 0.0,
    )
    yield counter(
        "spool_points_spooled", "Points spooled while the store was down.", writer.spooled
    )
    yield counter("spool_points_drained", "Spooled points moved to the store.", writer.drained)
    yield counter(
        "spool_points_parked", "Spooled points the store refused (parked).", writer.parked
    )
    stats = service.spool.stats()
    yield gauge("spool_backlog_batches", "Batches waiting in the spool.", stats.batches)
    yield gauge("spool_backlog_points", "Points waiting in the spool.", stats.points)
    yield gauge("spool_parked_points", "Points parked in the spool.", stats.parked_points)
    yield gauge("spool_oldest_age_seconds", "Age of the oldest spooled batch.", stats.oldest_age_s)

    ops = service.ops.counters
    yield counter("ops_checks", "Operational-alert checks run.", ops.checks)
    yield counter("ops_check_failures", "Operational-alert checks that failed.", ops.failed)
    yield counter("ops_alerts_opened", "Operational alerts opened.", ops.opened)
    yield counter("ops_alerts_resolved", "Operational alerts resolved.", ops.resolved)


def gateway_registry(service: GatewayService) -> CollectorRegistry:
    """A registry with the gateway's metrics and the process metrics."""
    registry = new_registry()
    register_snapshot(registry, "gateway", lambda: list(gateway_samples(service)))
    return registry


@dataclass(frozen=True, slots=True)
class Readiness:
    """The outcome of the readiness checks."""

    broker: bool
    sql: bool
    tsdb: bool

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return self.broker and self.sql and self.tsdb

    def as_dict(self) -> dict[str, object]:
        """The ``/readyz`` body."""
        return {
            "ready": self.ready,
            "checks": {"broker": self.broker, "sql": self.sql, "tsdb": self.tsdb},
        }


def _sql_reachable(service: GatewayService) -> bool:
    try:
        with service.sql.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any driver error means "not reachable"; the reason is logged
        log.warning("readiness: SQL database not reachable", exc_info=True)
        return False
    return True


def _tsdb_reachable(service: GatewayService) -> bool:
    try:
        return bool(service.store.ping())
    except Exception:  # ping promises a bool; contain a broken promise
        log.warning("readiness: time-series store ping raised", exc_info=True)
        return False


async def check_readiness(service: GatewayService) -> Readiness:
    """Run the three checks (the blocking ones in worker threads)."""
    sql, tsdb = await asyncio.gather(
        asyncio.to_thread(_sql_reachable, service), asyncio.to_thread(_tsdb_reachable, service)
    )
    return Readiness(broker=service.mqtt.ready.is_set(), sql=sql, tsdb=tsdb)


def create_ops_app(service: GatewayService, registry: CollectorRegistry | None = None) -> Starlette:
    """The operations app for ``service`` (served by :class:`OpsServer`, or by tests)."""
    metrics_registry = registry if registry is not None else gateway_registry(service)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        readiness = await check_readiness(service)
        return JSONResponse(readiness.as_dict(), status_code=200 if readiness.ready else 503)

    async def metrics(_request: Request) -> Response:
        body = await asyncio.to_thread(render_latest, metrics_registry)
        return Response(body, media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class OpsServer:
    """The operations app served on the running loop; :attr:`port` is the bound port once
    :attr:`started` (so port 0 in tests — not in settings — picks a free one)."""

    def __init__(self, service: GatewayService, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_ops_app(service),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            log_config=None,  # uvicorn logs through the process's handlers (plain or JSON)
        )
        self._server = _QuietServer(config)
        self.host = host
        self.port = port
        self.started = False

    async def serve(self) -> None:
        """Serve until cancelled, then close the socket.

        The socket is bound here, before uvicorn starts: a port already in use is logged and
        the listener stays off (uvicorn would exit the process instead, taking ingest down).
        """
        try:
            sock = _bind(self.host, self.port)
        except OSError as exc:
            log.error(
                "gateway operations endpoints not served on %s:%d: %s", self.host, self.port, exc
            )
            return
        task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        try:
            while not self._server.started and not task.done():
                await asyncio.sleep(0.02)
            if self._server.started:
                self.port = int(sock.getsockname()[1])
                self.started = True
                log.info("gateway operations endpoints on http://%s:%d/", self.host, self.port)
            await asyncio.shield(task)
        finally:
            if not task.done():
                self._server.should_exit = True
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=3.0)
            sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=64)


async def serve_ops(service: GatewayService, host: str, port: int) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` until cancelled; port 0 disables it."""
    if port == 0:
        log.info("gateway operations endpoints disabled (HTTP port 0)")
        return
    await OpsServer(service, host, port).serve()
