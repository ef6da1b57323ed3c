"""Serves the dashboard's static web UI (``dashboard_api/web/``) from the API's own app.

``mount_web(app)`` mounts the single-page app at ``/`` after the API routes, so ``/api/v1/…``,
``/healthz``, ``/docs`` keep their handlers and everything else is a static file. Every file
carries a Content-Security-Policy that names no external origin (the UI works offline and
loads nothing from a CDN) and cache headers: the vendored chart library may be cached, the
app's own files are revalidated on every load.

This module only serves files: it reads no store and adds no API route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

#: The folder of the static files (index.html, app.js, i18n.js, app.css, vendor/).
WEB_ROOT: Final = Path(__file__).resolve().with_name("web")

#: Same origin only. ECharts sets inline styles (tooltips), hence 'unsafe-inline' for styles
#: only; chart images are data:/blob: URLs. No script may be inline or from elsewhere.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

#: The vendored library changes only with a release: a day of caching is safe.
VENDOR_CACHE: Final = "public, max-age=86400"
#: The app's own files: always revalidate (ETag / Last-Modified), so an upgrade shows at once.
APP_CACHE: Final = "no-cache"


class WebFiles(StaticFiles):
    """StaticFiles with the UI's security and cache headers on every response."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file (or ``index.html`` for a folder), with CSP and cache headers."""
        response = await super().get_response(path, scope)
        headers = response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cache-Control"] = VENDOR_CACHE if path.startswith("vendor/") else APP_CACHE
        return response


def mount_web(app: FastAPI, root: Path = WEB_ROOT) -> None:
    """Mount the web UI at ``/``; call after every API route is included."""
    app.mount("/", WebFiles(directory=root, html=True), name="web")
