"""The InfluxDB time-series store, through ``influxdb-client``.

Two write modes, one read path:

- ``v2`` — ``/api/v2/write`` with the client's synchronous write API, ``precision=us``, in
  batches of ``batch_size`` lines per request. For InfluxDB 2.x/3.x, InfluxDB 1.8+ (its v2
  compatibility endpoint, bucket ``database/retention_policy``) and InfluxDB-protocol stores
  such as VictoriaMetrics (which keeps millisecond resolution).
- ``v1`` — the 1.x ``/write?db=&rp=&precision=u`` endpoint (InfluxDB 1.6 from Debian has no
  ``/api/v2/write``), sent through the same client's HTTP layer; basic auth when configured.
- reads — InfluxQL on the v1-compatible ``/query`` (1.x; 2.x through its DBRP mapping, the
  bucket name as database; 3.x). VictoriaMetrics has no InfluxQL: read it with PromQL or its
  export API instead.

Why not the client's batching mode: it writes in a background thread and, after its retries,
drops the batch and only tells a callback. Here every ``write`` either returns with the points
stored or raises; the gateway's spool (:mod:`shuxin.gateway.spool`) keeps whatever could not
be written. Library errors are translated with ``raise … from`` into
:class:`StoreUnavailableError` (connection, timeout, 5xx, 401/403/404 — may succeed later) and
:class:`StoreRejectedError` (400/413/422 — the points themselves are refused).

Implements :class:`shuxin.gateway.timeseries.TimeSeriesStore`; thread-safe (urllib3 pool).
No influx type leaves this module; no error message repeats a field value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from shuxin.gateway.errors import (
    StoreError,
    StoreQueryError,
    StoreRejectedError,
    StoreUnavailableError,
)
from shuxin.gateway.timeseries import FieldValue, Point, coerce_fields, epoch_us, from_epoch_us

log = logging.getLogger(__name__)

#: HTTP statuses meaning "these points are refused", not "try again later".
_REJECTED_STATUSES: Final = frozenset({400, 413, 422})
_LINE_ESCAPES: Final = str.maketrans(
    {"\\": "\\\\", ",": "\\,", " ": "\\ ", "=": "\\=", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
)


class InfluxMode(StrEnum):
    """Which write endpoint to use."""

    V2 = "v2"
    V1 = "v1"


class DeleteApi(StrEnum):
    """How points are deleted (``InfluxSettings.delete_api``; None: by the write mode).

    - ``influxql``: ``DELETE FROM … WHERE`` tags and time on ``/query`` (1.x; the v1 default).
    - ``v2``: the ``/api/v2/delete`` API with a predicate (2.x, 1.8+; the v2 default).
    - ``victoriametrics``: ``/api/v1/admin/tsdb/delete_series``. It deletes whole series and
      takes no time range, so a bounded deletion exports the matching series, deletes them and
      imports back the samples outside the range (VictoriaMetrics' documented way to delete a
      time range). Not atomic: a sample written to those series during the few milliseconds
      between export and delete is lost, so run bounded deletions when the series are quiet
      (a session's devices after it ended; retention on data older than any live session).
    """

    INFLUXQL = "influxql"
    V2 = "v2"
    VICTORIAMETRICS = "victoriametrics"


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """Where and how to reach the store. Secrets come from the environment, never code.

    ``v2`` needs ``bucket`` (and ``org`` for 2.x); ``v1`` needs ``database`` and takes an
    optional ``retention_policy`` and basic-auth ``username``/``password``.
    """

    url: str
    mode: InfluxMode = InfluxMode.V2
    org: str = ""
    bucket: str = ""
    token: str | None = field(default=None, repr=False)
    database: str = ""
    retention_policy: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    batch_size: int = 5000
    delete_api: DeleteApi | None = None

    def __post_init__(self) -> None:
        if self.mode is InfluxMode.V2 and not self.bucket:
            raise ValueError("the v2 write mode needs a bucket")
        if self.mode is InfluxMode.V1 and not self.database:
            raise ValueError("the v1 write mode needs a database")
        if self.batch_size < 1 or self.timeout_s <= 0:
            raise ValueError("batch_size must be >= 1 and timeout_s > 0")

    @property
    def resolved_delete_api(self) -> DeleteApi:
        """The delete API in use: the configured one, else the write mode's."""
        if self.delete_api is not None:
            return self.delete_api
        return DeleteApi.INFLUXQL if self.mode is InfluxMode.V1 else DeleteApi.V2

    @property
    def query_database(self) -> str:
        """The database name InfluxQL reads from (the bucket, through DBRP, in v2)."""
        return self.database if self.mode is InfluxMode.V1 else self.bucket


def _field_text(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return repr(float(value))


def to_line(point: Point) -> str:
    """Serialise ``point`` as one line of InfluxDB line protocol, time in microseconds."""
    tags = "".join(f",{k}={v.translate(_LINE_ESCAPES)}" for k, v in point.tags)
    fields = ",".join(f"{k}={_field_text(v)}" for k, v in point.fields)
    return f"{point.measurement}{tags} {fields} {point.time_us}"


def _error_detail(exc: ApiException) -> str:
    """The server's error text, shortened (InfluxDB answers ``{"error": "…"}``)."""
    body = exc.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        decoded = json.loads(text)
        if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
            text = decoded["error"]
        elif isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
            text = decoded["message"]
    except ValueError:
        pass
    return " ".join(text.split())[:200] or str(exc.reason or "")


def _translate(exc: Exception, action: str) -> StoreError:
    if isinstance(exc, ApiException):
        detail = f"{action}: HTTP {exc.status}: {_error_detail(exc)}"
        if exc.status in _REJECTED_STATUSES:
            return StoreRejectedError(detail)
        return StoreUnavailableError(detail)
    return StoreUnavailableError(f"{action}: {type(exc).__name__}: {exc}"[:300])


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxStore:
    """Time series in InfluxDB (or an InfluxDB-protocol store)."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        timeout_ms = int(settings.timeout_s * 1000)
        kwargs: dict[str, Any] = {}
        token = settings.token
        if settings.mode is InfluxMode.V1 and settings.username:
            token = f"{settings.username}:{settings.password or ''}"
            kwargs["auth_basic"] = True
        self._client = InfluxDBClient(
            url=settings.url,
            token=token,  # type: ignore[arg-type]  # None means "no auth header"
            org=settings.org or None,  # type: ignore[arg-type]
            timeout=timeout_ms,
            **kwargs,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def close(self) -> None:
        """Close the HTTP pool."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]

    def ping(self) -> bool:
        """True when ``/ping`` answers 204 now."""
        try:
            response = self._call("GET", "/ping", query=[])
        except (ApiException, urllib3.exceptions.HTTPError, OSError):
            return False
        return bool(response.status == 204)

    def write(self, points: Sequence[Point]) -> None:
        """Write ``points`` in requests of at most ``batch_size`` lines."""
        size = self.settings.batch_size
        lines = [to_line(p) for p in points]
        for start in range(0, len(lines), size):
            body = "\n".join(lines[start : start + size])
            try:
                if self.settings.mode is InfluxMode.V1:
                    self._write_v1(body)
                else:
                    self._write_api.write(
                        bucket=self.settings.bucket,
                        org=self.settings.org,
                        record=body,
                        write_precision=WritePrecision.US,  # type: ignore[arg-type]
                    )
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise _translate(exc, "write") from exc

    def _write_v1(self, body: str) -> None:
        query = [("db", self.settings.database), ("precision", "u")]
        if self.settings.retention_policy:
            query.append(("rp", self.settings.retention_policy))
        self._call(
            "POST",
            "/write",
            query=query,
            body=body.encode("utf-8"),
            content_type="text/plain; charset=utf-8",
        )

    def query(
        self,
        measurement: str,
        *,
        station: str,
        start: datetime,
        end: datetime,
        device: str | None = None,
    ) -> list[Point]:
        """InfluxQL ``SELECT *`` of one station (and device) over ``[start, end)``."""
        source = _ident(measurement)
        if self.settings.mode is InfluxMode.V1 and self.settings.retention_policy:
            source = ".".join(
                (
                    _ident(self.settings.database),
                    _ident(self.settings.retention_policy),
                    source,
                )
            )
        where = [
            f'"station" = {_literal(station)}',
            f"time >= {epoch_us(start) * 1000}",
            f"time < {epoch_us(end) * 1000}",
        ]
        if device is not None:
            where.append(f'"device" = {_literal(device)}')
        # Identifiers and literals are quoted and escaped above; InfluxQL has no bind parameters.
        statement = f"SELECT * FROM {source} WHERE {' AND '.join(where)} GROUP BY *"  # noqa: S608
        try:
            response = self._call(
                "POST",
                "/query",
                query=[],
                form=[("q", statement), ("db", self.settings.query_database), ("epoch", "u")],
            )
            result = json.loads(response.data)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreQueryError(str(_translate(exc, "query"))) from exc
        except ValueError as exc:
            raise StoreQueryError("query: the answer is not JSON") from exc
        points = _points_from_result(measurement, result)
        points.sort(key=lambda p: (p.time_us, p.series_key))
        return points

    def delete(
        self,
        measurements: Sequence[str],
        *,
        station: str | None,
        start: datetime | None,
        end: datetime | None,
        device: str | None = None,
    ) -> int | None:
        """Delete points of ``measurements`` in ``[start, end)`` (see the port and
        :class:`DeleteApi`). Returns the count only for VictoriaMetrics (None otherwise)."""
        api = self.settings.resolved_delete_api
        try:
            if api is DeleteApi.VICTORIAMETRICS:
                return sum(
                    self._delete_victoriametrics(m, station, device, start, end)
                    for m in measurements
                )
            for measurement in measurements:
                if api is DeleteApi.INFLUXQL:
                    self._delete_influxql(measurement, station, device, start, end)
                else:
                    self._delete_v2(measurement, station, device, start, end)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc, "delete") from exc
        except ValueError as exc:
            raise StoreUnavailableError("delete: the answer is not JSON") from exc
        return None

    def _delete_influxql(
        self,
        measurement: str,
        station: str | None,
        device: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        where = _tag_conditions(station, device, quote=_literal, ident=_ident)
        if start is not None:
            where.append(f"time >= {epoch_us(start) * 1000}")
        if end is not None:
            where.append(f"time < {epoch_us(end) * 1000}")
        # Identifiers and literals are quoted and escaped; InfluxQL has no bind parameters.
        statement = f"DELETE FROM {_ident(measurement)}"  # noqa: S608
        if where:
            statement += f" WHERE {' AND '.join(where)}"
        response = self._call(
            "POST",
            "/query",
            query=[],
            form=[("q", statement), ("db", self.settings.database)],
        )
        for result in json.loads(response.data).get("results") or []:
            if "error" in result:
                raise StoreRejectedError(f"delete: {str(result['error'])[:200]}")

    def _delete_v2(
        self,
        measurement: str,
        station: str | None,
        device: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        conditions = [f"_measurement={_double_quoted(measurement)}"]
        conditions += _tag_conditions(station, device, quote=_double_quoted, ident=str)
        # The delete API needs both bounds; its stop is inclusive, so stop 1 µs before ``end``.
        stop_us = epoch_us(end) - 1 if end is not None else _V2_MAX_STOP_US
        self._client.delete_api().delete(
            start=from_epoch_us(epoch_us(start) if start is not None else 0),
            stop=from_epoch_us(stop_us),
            predicate=" AND ".join(conditions),
            bucket=self.settings.bucket,
            org=self.settings.org or "-",
        )

    def _delete_victoriametrics(
        self,
        measurement: str,
        station: str | None,
        device: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> int:
        labels = [f"__name__=~{_double_quoted(measurement + '_.+')}"]
        labels += _tag_conditions(station, device, quote=_double_quoted, ident=str)
        selector = "{" + ",".join(labels) + "}"
        export = self._call("POST", "/api/v1/export", query=[], form=[("match[]", selector)])
        series = [json.loads(line) for line in export.data.splitlines() if line.strip()]
        start_ms = -(2**63) if start is None else -(-epoch_us(start) // 1000)
        end_ms = 2**63 if end is None else -(-epoch_us(end) // 1000)
        kept: list[str] = []
        deleted = 0
        for one in series:
            pairs = list(zip(one.get("timestamps") or [], one.get("values") or [], strict=False))
            keep = [(t, v) for t, v in pairs if not start_ms <= t < end_ms]
            deleted += len(pairs) - len(keep)
            if keep:
                kept.append(
                    json.dumps(
                        {
                            "metric": one.get("metric") or {},
                            "values": [v for _, v in keep],
                            "timestamps": [t for t, _ in keep],
                        },
                        separators=(",", ":"),
                    )
                )
        if deleted == 0:
            return 0
        self._call(
            "POST", "/api/v1/admin/tsdb/delete_series", query=[], form=[("match[]", selector)]
        )
        if kept:
            self._call(
                "POST",
                "/api/v1/import",
                query=[],
                body="\n".join(kept).encode("utf-8"),
                # JSON lines; a JSON content type would make the client re-serialise the body.
                content_type="text/plain; charset=utf-8",
            )
        return deleted

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]],
        body: bytes | None = None,
        form: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> Any:
        """One HTTP request through the client's pool; returns the urllib3 response, its body
        already read (``.data``) and its connection back in the pool.

        Without the release, an unread response keeps its connection checked out and the
        next request opens a new TCP connection: at ingest rates that was a third of the
        write path's time.
        """
        headers = {}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif content_type is not None:
            headers["Content-Type"] = content_type
        response = self._client.api_client.call_api(  # type: ignore[no-untyped-call]
            path,
            method,
            query_params=query,
            header_params=headers,
            body=body,
            post_params=form,
            _preload_content=False,
            _return_http_data_only=True,
        )
        response.data  # noqa: B018  # reads and caches the body
        response.release_conn()
        return response


#: Latest stop the v2 delete API takes (its timestamps are int64 nanoseconds).
_V2_MAX_STOP_US: Final = (2**63 - 1) // 1000 - 1


def _double_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tag_conditions(
    station: str | None,
    device: str | None,
    *,
    quote: Callable[[str], str],
    ident: Callable[[str], str],
) -> list[str]:
    """``station``/``device`` equality conditions in the store's quoting."""
    conditions = []
    if station is not None:
        conditions.append(f"{ident('station')}={quote(station)}")
    if device is not None:
        conditions.append(f"{ident('device')}={quote(device)}")
    return conditions


def _points_from_result(measurement: str, result: Mapping[str, Any]) -> list[Point]:
    statements = result.get("results") or []
    points: list[Point] = []
    for statement in statements:
        if "error" in statement:
            raise StoreQueryError(f"query: {str(statement['error'])[:200]}")
        for series in statement.get("series") or []:
            if series.get("name") != measurement:
                # VictoriaMetrics answers every /query with a canned SHOW DATABASES result.
                raise StoreQueryError("query: the store did not answer InfluxQL (no InfluxQL?)")
            tags = {k: v for k, v in (series.get("tags") or {}).items() if isinstance(v, str) and v}
            columns = series.get("columns") or []
            for row in series.get("values") or []:
                values = dict(zip(columns, row, strict=False))
                time_us = values.pop("time", None)
                if not isinstance(time_us, int):
                    continue
                fields = coerce_fields(measurement, values)
                if fields:
                    points.append(Point.make(measurement, tags, fields, time_us))
    return points
