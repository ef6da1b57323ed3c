"""Prometheus metrics for every shuxin process: a registry, snapshot collectors, exposition.

Each process builds one :class:`~prometheus_client.CollectorRegistry` with :func:`new_registry`
(never the library's global default, so tests and the demo can run several components in one
process). Components do not keep a second set of counters for Prometheus: they already count
in their own dataclasses (``IngestCounters``, ``SpoolCounters``, ``MqttCounters``, the edge's
``OutboxStats``, ``PublisherCounters`` …). A :class:`SnapshotCollector` calls a function at
scrape time that reads those and returns :class:`MetricSample` values; the collector turns them
into metric families named ``shuxin_<component>_<name>`` (counters get ``_total`` appended
by the exposition format).

:func:`render_latest` produces the text exposition format; :class:`RequestMetricsMiddleware` is
a pure ASGI middleware that records a request-latency histogram by route template, method and
status (never the concrete path, so no identifier ends up in a label).

This module knows about no component; it must not read component state itself, start servers,
or put personal data (subject codes, names, payload content) into a label — label values are
station ids, device ids, error kinds and route templates only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

#: Prefix of every shuxin metric.
PREFIX: Final = "shuxin"
#: The exposition's content type (Prometheus text format 0.0.4).
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: Request-latency buckets (s): the API answers most requests in milliseconds; exports and
#: reports may take seconds.
LATENCY_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The route label of a request no route matched (404s), so scanners cannot blow up the
#: label set with made-up paths.
UNMATCHED_ROUTE: Final = "<unmatched>"

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

MetricKind = Literal["counter", "gauge"]


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One value read from a component's own counters at scrape time.

    ``name`` is without the ``shuxin_<component>_`` prefix and, for counters, without the
    ``_total`` suffix (the exposition adds it). Samples of one name must share ``kind``,
    ``help`` and label names.
    """

    name: str
    kind: MetricKind
    help: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


SampleReader = Callable[[], Iterable[MetricSample]]


def counter(
    name: str, help_text: str, value: float, labels: Mapping[str, str] | None = None
) -> MetricSample:
    """A counter sample (a lifetime count that only grows while the process lives)."""
    return MetricSample(name, "counter", help_text, float(value), dict(labels or {}))


def gauge(
    name: str, help_text: str, value: float, labels: Mapping[str, str] | None = None
) -> MetricSample:
    """A gauge sample (a level that goes up and down: a backlog, a connected flag)."""
    return MetricSample(name, "gauge", help_text, float(value), dict(labels or {}))


class SnapshotCollector(Collector):
    """Collects ``shuxin_<component>_…`` families by calling ``read()`` at every scrape.

    A ``read`` that raises (or yields an invalid sample) makes this collector report only
    ``shuxin_<component>_scrape_errors_total`` for that scrape instead of failing the whole
    exposition: one unreadable store must not hide the other components' metrics.
    """

    def __init__(self, component: str, read: SampleReader) -> None:
        if not _NAME.match(component):
            raise ValueError(f"component name must match {_NAME.pattern}: {component!r}")
        self.component = component
        self._read = read
        self._scrape_errors = 0

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families are known only at scrape time."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """Read the component's counters now and yield them as metric families."""
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        try:
            for sample in self._read():
                self._add(families, sample)
        except Exception:  # reported as a metric; the other collectors still render
            self._scrape_errors += 1
            families = {}
        self._add(
            families,
            counter(
                "scrape_errors",
                "Scrapes in which reading this component's counters raised.",
                self._scrape_errors,
            ),
        )
        yield from families.values()

    def _add(
        self, families: dict[str, CounterMetricFamily | GaugeMetricFamily], sample: MetricSample
    ) -> None:
        if not _NAME.match(sample.name):
            raise ValueError(f"metric name must match {_NAME.pattern}: {sample.name!r}")
        full = f"{PREFIX}_{self.component}_{sample.name}"
        family = families.get(full)
        if family is None:
            label_names = sorted(sample.labels)
            family = (
                CounterMetricFamily(full, sample.help, labels=label_names)
                if sample.kind == "counter"
                else GaugeMetricFamily(full, sample.help, labels=label_names)
            )
            families[full] = family
        family.add_metric([sample.labels[k] for k in sorted(sample.labels)], sample.value)


def new_registry(*, process: bool = True) -> CollectorRegistry:
    """A fresh registry for one process, with the process/platform collectors when asked."""
    registry = CollectorRegistry(auto_describe=False)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def register_snapshot(
    registry: CollectorRegistry, component: str, read: SampleReader
) -> SnapshotCollector:
    """Register a :class:`SnapshotCollector` for ``component`` on ``registry``."""
    collector = SnapshotCollector(component, read)
    registry.register(collector)
    return collector


def render_latest(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format (content type :data:`CONTENT_TYPE`)."""
    return generate_latest(registry)


# --- request latency (ASGI) ---------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_latency_histogram(registry: CollectorRegistry, component: str) -> Histogram:
    """``shuxin_<component>_http_request_duration_seconds{route,method,status}``."""
    return Histogram(
        f"{PREFIX}_{component}_http_request_duration_seconds",
        "HTTP request latency by route template, method and status code.",
        labelnames=("route", "method", "status"),
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestMetricsMiddleware:
    """Pure ASGI middleware: observe every HTTP request's latency in a histogram.

    The route label is the matched route's template (``/api/sessions/{session_id}``, read from
    ``scope["route"]`` which Starlette/FastAPI routing fills in), or :data:`UNMATCHED_ROUTE`.
    WebSocket and lifespan traffic passes through untouched. A request whose app raised is
    recorded with status 500 and the exception re-raised.

    Mount it with ``app.add_middleware(RequestMetricsMiddleware, histogram=…)``.
    """

    def __init__(
        self,
        app: AsgiApp,
        *,
        histogram: Histogram,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self._histogram = histogram
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and record how long it took."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = self._clock()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            self._histogram.labels(
                route=_route_template(scope),
                method=str(scope.get("method", "GET")),
                status=str(status),
            ).observe(max(0.0, self._clock() - start))
