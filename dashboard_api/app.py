"""The dashboard API's composition root: stores, token service, routers, error handlers.

``create_app(settings)`` opens the SQL store (migrating it when the settings say so) and the
time-series store the settings name; tests pass ready-made stores instead. This is the only
place the API's parts are wired together.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from shuxin.dashboard_api import (
    routes_alerts,
    routes_audit,
    routes_auth,
    routes_exports,
    routes_org,
    routes_reports,
    routes_sessions,
    routes_subjects,
    routes_users,
)
from shuxin.dashboard_api.auth import TokenService
from shuxin.dashboard_api.deps import ApiServices
from shuxin.dashboard_api.errors import install_error_handlers
from shuxin.dashboard_api.settings import ApiSettings
from shuxin.dashboard_api.web import mount_web
from shuxin.gateway.service import open_tsdb
from shuxin.gateway.sql_engine import make_engine
from shuxin.gateway.sql_store import SqlStore, open_store
from shuxin.gateway.timeseries import TimeSeriesStore
from shuxin.runtime.metrics import (
    CONTENT_TYPE,
    RequestMetricsMiddleware,
    new_registry,
    render_latest,
    request_latency_histogram,
)

log = logging.getLogger(__name__)

API_VERSION: Final = "1"

#: Every router of the API, in the order OpenAPI lists them.
ROUTERS: Final[tuple[APIRouter, ...]] = (
    routes_auth.router,
    routes_org.router,
    routes_subjects.router,
    routes_sessions.router,
    routes_alerts.router,
    routes_audit.router,
    routes_users.router,
    routes_reports.router,
    routes_exports.router,
)


def build_services(
    settings: ApiSettings, *, sql: SqlStore | None = None, tsdb: TimeSeriesStore | None = None
) -> ApiServices:
    """Open (or adopt) the stores and build the services one process shares."""
    if sql is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        sql = open_store(settings.sql, settings.data_dir)
    if tsdb is None:
        token = settings.influx_token.get_secret_value() if settings.influx_token else None
        tsdb = open_tsdb(settings.tsdb_url, token=token, data_dir=settings.data_dir)
    read_engine = sql.engine
    if sql.engine.url.get_backend_name() == "sqlite":
        read_engine = make_engine(
            sql.engine.url,
            sqlite_busy_timeout_ms=settings.sql.sqlite_busy_timeout_ms,
            read_only=True,
        )
    return ApiServices(
        settings=settings,
        sql=sql,
        tsdb=tsdb,
        tokens=TokenService(settings.secret(), settings.token_ttl_s),
        read_engine=read_engine,
    )


def create_app(settings: ApiSettings, *, services: ApiServices | None = None) -> FastAPI:
    """The FastAPI application. Stores opened here are closed when the app shuts down;
    ``services`` passed in belong to the caller."""
    owned = services is None
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            services.close_read_engine()
            if owned:
                services.tsdb.close()
                services.sql.close()

    app = FastAPI(
        title="shuxin 舒心驿站 dashboard API",
        version=API_VERSION,
        description=(
            "Sessions, trends, alerts and reports of the relief stations, scoped to the "
            "caller's org unit. Log in at POST /api/v1/auth/token (OAuth2 password flow); "
            "every read of a person's data is audited. Errors are "
            '{"error": {"code", "message"}} with a stable code.'
        ),
        lifespan=lifespan,
    )
    app.state.services = services
    registry = new_registry()
    app.add_middleware(
        RequestMetricsMiddleware, histogram=request_latency_histogram(registry, "api")
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready to serve: the SQL store answers and the time-series store pings."""
        checks: dict[str, bool] = {}
        try:
            with services.sql.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["sql"] = True
        except Exception:
            log.warning("readiness: the SQL store does not answer")
            checks["sql"] = False
        checks["tsdb"] = services.tsdb.ping()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            200 if ready else 503,
        )

    @app.get("/metrics", tags=["health"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics: request latency by route template, method and status."""
        return Response(render_latest(registry), media_type=CONTENT_TYPE)

    mount_web(app)  # last: the UI's static files answer only what no route claimed
    return app
