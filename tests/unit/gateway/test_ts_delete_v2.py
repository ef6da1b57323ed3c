"""The InfluxDB 2.x delete request the adapter sends (``/api/v2/delete``), captured by a local
HTTP stand-in: no InfluxDB 2.x server is available to the test suite, so this checks the
request's shape (bucket, org, bounds, predicate), not a server's behaviour."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shuxin.gateway.errors import StoreUnavailableError
from shuxin.gateway.store_influx import DeleteApi, InfluxMode, InfluxSettings, InfluxStore

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class _Capture(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        self.requests.append(
            {"path": parts.path, "query": parse_qs(parts.query), "body": json.loads(body)}
        )
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]], type[_Capture]]]:
    handler = type("Handler", (_Capture,), {"requests": [], "status": 204})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.requests, handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_v2_delete_sends_one_predicate_per_measurement_with_both_bounds(
    server: tuple[str, list[dict[str, Any]], type[_Capture]],
) -> None:
    url, requests, _handler = server
    store = InfluxStore(
        InfluxSettings(url=url, mode=InfluxMode.V2, org="fire", bucket="shuxin", token="t")
    )
    try:
        assert store.settings.resolved_delete_api is DeleteApi.V2
        result = store.delete(
            ["rr", "hr"],
            station="st-1",
            device="hrs-1",
            start=T0,
            end=T0 + timedelta(minutes=20),
        )
        store.delete(["metrics"], station=None, start=None, end=T0)
    finally:
        store.close()
    assert result is None
    assert [r["path"] for r in requests] == ["/api/v2/delete"] * 3
    assert all(r["query"] == {"org": ["fire"], "bucket": ["shuxin"]} for r in requests)
    rr, hr, metrics = (r["body"] for r in requests)
    assert rr["predicate"] == '_measurement="rr" AND station="st-1" AND device="hrs-1"'
    assert hr["predicate"] == '_measurement="hr" AND station="st-1" AND device="hrs-1"'
    # The API's stop is inclusive: 1 µs before the exclusive end.
    assert datetime.fromisoformat(rr["start"]) == T0
    assert datetime.fromisoformat(rr["stop"]) == T0 + timedelta(minutes=20, microseconds=-1)
    assert metrics["predicate"] == '_measurement="metrics"'
    assert datetime.fromisoformat(metrics["start"]) == datetime(1970, 1, 1, tzinfo=UTC)


def test_v2_delete_failure_is_translated(
    server: tuple[str, list[dict[str, Any]], type[_Capture]],
) -> None:
    url, _requests, handler = server
    handler.status = 503
    store = InfluxStore(InfluxSettings(url=url, mode=InfluxMode.V2, bucket="shuxin", token="t"))
    try:
        with pytest.raises(StoreUnavailableError, match="delete: HTTP 503"):
            store.delete(["rr"], station="st-1", start=None, end=T0)
    finally:
        store.close()
