"""``shuxin.runtime.metrics`` and the JSON log format of ``shuxin.runtime.entry``.

Snapshot collectors render component counters under ``shuxin_<component>_…`` and survive a
failing reader; the request-latency middleware labels by route template (never the concrete
path, which may hold an identifier); JSON logs are one object per line with the documented
keys and ``extra`` fields.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shuxin.runtime.entry import (
    JsonFormatter,
    add_logging_arguments,
    configure_logging,
    resolve_log_format,
)
from shuxin.runtime.metrics import (
    UNMATCHED_ROUTE,
    MetricSample,
    RequestMetricsMiddleware,
    counter,
    gauge,
    new_registry,
    register_snapshot,
    render_latest,
    request_latency_histogram,
)


def _value(registry_text: str, sample: str) -> float:
    for line in registry_text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in exposition")


def test_snapshot_collector_reads_counters_at_scrape_time() -> None:
    state = {"received": 3, "backlog": 7}

    def read() -> Iterator[MetricSample]:
        yield counter("ingest_received", "received", state["received"])
        yield gauge("spool_backlog_points", "backlog", state["backlog"])
        yield counter("ingest_quarantined", "by code", 2, {"code": "schema"})
        yield counter("ingest_quarantined", "by code", 1, {"code": "json"})

    registry = new_registry(process=False)
    register_snapshot(registry, "gateway", read)
    first = render_latest(registry).decode()
    state["received"] = 10  # no second bookkeeping: the next scrape sees the change
    second = render_latest(registry).decode()

    assert _value(first, "shuxin_gateway_ingest_received_total") == 3
    assert _value(second, "shuxin_gateway_ingest_received_total") == 10
    assert _value(second, "shuxin_gateway_spool_backlog_points") == 7
    assert _value(second, 'shuxin_gateway_ingest_quarantined_total{code="schema"}') == 2
    assert _value(second, 'shuxin_gateway_ingest_quarantined_total{code="json"}') == 1
    assert "# TYPE shuxin_gateway_spool_backlog_points gauge" in second
    assert _value(second, "shuxin_gateway_scrape_errors_total") == 0


def test_a_failing_reader_is_counted_not_fatal() -> None:
    def broken() -> list[MetricSample]:
        raise OSError("store gone")

    registry = new_registry(process=False)
    register_snapshot(registry, "edge", broken)
    register_snapshot(registry, "gateway", lambda: [counter("ingest_written", "w", 5)])
    text = render_latest(registry).decode()
    assert _value(text, "shuxin_edge_scrape_errors_total") == 1
    assert _value(text, "shuxin_gateway_ingest_written_total") == 5


def test_metric_names_are_checked() -> None:
    with pytest.raises(ValueError, match="component"):
        register_snapshot(new_registry(process=False), "Bad-Name", list)
    registry = new_registry(process=False)
    register_snapshot(registry, "edge", lambda: [counter("bad name", "x", 1)])
    # A bad sample name is a bug in the reader: counted like any reader failure.
    assert _value(render_latest(registry).decode(), "shuxin_edge_scrape_errors_total") == 1


def test_request_latency_is_labelled_by_route_template() -> None:
    registry = new_registry(process=False)
    app = FastAPI()

    @app.get("/api/v1/subjects/{code}")
    async def subject(code: str) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_middleware(
        RequestMetricsMiddleware, histogram=request_latency_histogram(registry, "api")
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/subjects/S-7F3K2").status_code == 200
        assert client.get("/api/v1/subjects/S-4QX9T").status_code == 200
        assert client.get("/no/such/S-7F3K2").status_code == 404
        assert client.get("/boom").status_code == 500
    text = render_latest(registry).decode()

    name = "shuxin_api_http_request_duration_seconds_count"
    labels = 'method="GET",route="/api/v1/subjects/{code}",status="200"'
    assert _value(text, f"{name}{{{labels}}}") == 2
    assert _value(text, f'{name}{{method="GET",route="{UNMATCHED_ROUTE}",status="404"}}') == 1
    assert _value(text, f'{name}{{method="GET",route="/boom",status="500"}}') == 1
    assert "S-7F3K2" not in text  # the concrete path never becomes a label


def test_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord(
        "shuxin.gateway.ingest", logging.WARNING, __file__, 1, "quarantined (%s)", ("schema",), None
    )
    record.station = "st-a"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "shuxin.gateway.ingest"
    assert doc["msg"] == "quarantined (schema)"
    assert doc["component"] == "gateway"
    assert doc["station"] == "st-a"
    assert doc["ts"].endswith("+00:00")
    assert "args" not in doc  # record internals are not extra fields


def test_json_formatter_adds_the_exception() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord(
            "mqtt", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    doc = json.loads(JsonFormatter("edge").format(record))
    assert doc["component"] == "edge"
    assert "ValueError: bad" in doc["exc"]


def test_log_format_comes_from_flag_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHUXIN_LOG_FORMAT", raising=False)
    assert resolve_log_format(None) == "plain"
    monkeypatch.setenv("SHUXIN_LOG_FORMAT", "JSON")
    assert resolve_log_format(None) == "json"
    assert resolve_log_format("plain") == "plain"
    with pytest.raises(ValueError, match="plain or json"):
        resolve_log_format("xml")


def test_log_format_flag() -> None:
    parser = argparse.ArgumentParser()
    add_logging_arguments(parser)
    assert parser.parse_args([]).log_format is None  # then the environment decides
    assert parser.parse_args(["--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-format", "xml"])


def test_configure_logging_json_on_a_fresh_root(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()  # as in a freshly started process
    stream = io.StringIO()
    try:
        monkeypatch.setenv("SHUXIN_LOG_FORMAT", "json")
        configure_logging(stream=stream, component="gateway")
        logging.getLogger("shuxin.gateway.service").info("started", extra={"replica": 2})
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    doc = json.loads(stream.getvalue().strip())
    assert doc["msg"] == "started"
    assert doc["replica"] == 2
    assert doc["component"] == "gateway"
