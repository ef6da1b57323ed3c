"""The gateway's one settings object, from flags, environment (``SHUXIN_GATEWAY_*``) or a file.

Validated at start-up: a bad URL or a missing secret stops the gateway with a message naming
the setting, before anything connects. Secrets (broker password, InfluxDB token) come from the
environment or a secrets file, never from the repository. Parsing only; nothing connects here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.store_influx import DeleteApi, InfluxMode, InfluxSettings
from shuxin.runtime.tls_files import tls_file_problems


class GatewaySettings(BaseSettings):
    """Everything ``shuxin gateway run`` needs.

    Environment variables: ``SHUXIN_GATEWAY_BROKER_URL``, ``SHUXIN_GATEWAY_USERNAME``,
    ``SHUXIN_GATEWAY_PASSWORD``, ``SHUXIN_GATEWAY_TSDB_URL``, ``SHUXIN_GATEWAY_INFLUX_TOKEN``,
    ``SHUXIN_GATEWAY_DATA_DIR``, ``SHUXIN_GATEWAY_TLS_CA_FILE``, … (one per field). A
    ``.env``-style file can be given with ``--env-file``.
    """

    model_config = SettingsConfigDict(env_prefix="SHUXIN_GATEWAY_", extra="forbid")

    broker_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="mqtt://HOST:PORT or mqtts://HOST:PORT"
    )
    username: str | None = Field(default="gateway", description="broker user name")
    password: SecretStr | None = Field(default=None, description="broker password")
    client_id: str = Field(default="shuxin-gateway-1", description="fixed per replica")
    shared_group: str | None = Field(
        default="shuxin-gateway", description="MQTT 5 shared-subscription group; empty: plain"
    )
    mqtt_protocol: Literal["auto", "5", "3.1.1"] = "auto"
    tls_ca_file: Path | None = Field(
        default=None,
        description="PEM bundle to verify an mqtts:// broker (the site CA); empty: system CAs",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="client certificate (PEM) for a broker that requires one"
    )
    tls_key_file: Path | None = Field(
        default=None, description="the client certificate's key (PEM, unencrypted)"
    )
    queue_size: int = Field(
        default=1024,
        ge=1,
        le=100_000,
        description=(
            "messages held between receiving and storing; each waits unacknowledged, so keep "
            "it small for brokers that time out slow acknowledgements (amqtt: 5 s)"
        ),
    )
    tsdb_url: str | None = Field(
        default=None,
        description=(
            "sqlite:///PATH (default: DATA_DIR/timeseries.sqlite3), "
            "influxdb1://[USER:PASS@]HOST:PORT/DATABASE[?rp=RP], "
            "influxdb2://HOST:PORT?org=ORG&bucket=BUCKET[&tls=1][&delete=victoriametrics] "
            "(token from INFLUX_TOKEN; delete=victoriametrics for VictoriaMetrics)"
        ),
    )
    influx_token: SecretStr | None = Field(default=None, description="InfluxDB 2.x/3.x token")
    data_dir: Path = Field(default=Path("gateway-data"), description="spool, dedupe, quarantine")
    sql: SqlSettings = Field(
        default_factory=SqlSettings,
        description="the SQL store (SHUXIN_SQL_* variables; default SQLite in DATA_DIR)",
    )

    http_host: str = Field(
        default="127.0.0.1", description="operations listener (/healthz, /readyz, /metrics)"
    )
    http_port: int = Field(
        default=9102, ge=0, le=65535, description="operations listener port; 0 disables it"
    )
    ops_check_interval_s: float = Field(
        default=15.0, gt=0, le=3600, description="how often operational alerts are checked"
    )
    ops_station_offline_after_s: float = Field(
        default=60.0, ge=0, description="a station offline this long raises station_offline"
    )
    ops_station_silent_after_s: float | None = Field(
        default=None,
        gt=0,
        description="an online station not seen this long counts as offline (empty: off)",
    )
    ops_device_lost_after_s: float = Field(
        default=30.0,
        ge=0,
        description="a device of a running session disconnected this long raises device_lost",
    )
    ops_device_silent_after_s: float | None = Field(
        default=None,
        gt=0,
        description="a running session's device without status this long counts as lost",
    )
    ops_backlog_open: int = Field(
        default=500, ge=1, description="outbox backlog (messages) that raises outbox_backlog"
    )
    ops_backlog_clear: int = Field(
        default=50, ge=0, description="outbox backlog at or below which the alert clears"
    )
    ops_backlog_after_s: float = Field(
        default=60.0, ge=0, description="the backlog must stay high this long"
    )
    ops_clear_after_s: float = Field(
        default=30.0,
        ge=0,
        description="an operational condition must stay clear this long before auto-resolve",
    )

    @model_validator(mode="after")
    def _check_backlog_band(self) -> GatewaySettings:
        if self.ops_backlog_clear >= self.ops_backlog_open:
            raise ValueError("ops_backlog_clear must be below ops_backlog_open")
        return self

    @model_validator(mode="after")
    def _check_tls_files(self) -> GatewaySettings:
        given = [
            name
            for name in ("tls_ca_file", "tls_cert_file", "tls_key_file")
            if getattr(self, name) is not None
        ]
        if given and not broker_endpoint(self.broker_url).tls:
            raise ValueError(f"{', '.join(given)} need an mqtts:// broker_url (TLS)")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        problems = tls_file_problems(
            self.tls_ca_file,
            self.tls_cert_file,
            self.tls_key_file,
            names=("tls_ca_file", "tls_cert_file", "tls_key_file"),
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("broker_url")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        broker_endpoint(value)
        return value

    @field_validator("tsdb_url")
    @classmethod
    def _check_tsdb(cls, value: str | None) -> str | None:
        if value is not None:
            parse_tsdb_url(value, token=None, data_dir=Path("."), check_secrets=False)
        return value

    @field_validator("shared_group")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """A parsed ``mqtt://`` URL."""

    host: str
    port: int
    tls: bool


def broker_endpoint(url: str) -> BrokerEndpoint:
    """Parse ``mqtt://HOST:PORT`` / ``mqtts://HOST:PORT``; raise ValueError with the reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"broker URL has no host: {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"broker URL has an invalid port: {url!r}") from None
    return BrokerEndpoint(parts.hostname, port, tls)


@dataclass(frozen=True, slots=True)
class SqliteTsdb:
    """The embedded default time-series store."""

    path: Path


TsdbChoice = SqliteTsdb | InfluxSettings


def parse_tsdb_url(
    url: str | None, *, token: str | None, data_dir: Path, check_secrets: bool = True
) -> TsdbChoice:
    """Choose the time-series adapter from a URL (see ``GatewaySettings.tsdb_url``)."""
    if url is None:
        return SqliteTsdb(data_dir / "timeseries.sqlite3")
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "sqlite":
        raw = unquote(parts.path)
        if not raw or raw == "/":
            raise ValueError(f"sqlite URL needs a path: {url!r} (e.g. sqlite:///ts.sqlite3)")
        return SqliteTsdb(Path(raw[1:]) if raw.startswith("/") else Path(raw))
    if parts.scheme not in ("influxdb1", "influxdb2"):
        raise ValueError(
            f"unknown time-series URL scheme {parts.scheme!r}: use sqlite, influxdb1 or influxdb2"
        )
    if not parts.hostname:
        raise ValueError(f"time-series URL has no host: {url!r}")
    http = "https" if query.get("tls") in ("1", "true") else "http"
    try:
        port = parts.port or 8086
    except ValueError:
        raise ValueError(f"time-series URL has an invalid port: {url!r}") from None
    base = f"{http}://{parts.hostname}:{port}"
    if parts.scheme == "influxdb1":
        database = parts.path.strip("/")
        if not database:
            raise ValueError(f"influxdb1 URL needs a database: {url!r} (influxdb1://HOST:PORT/DB)")
        return InfluxSettings(
            url=base,
            mode=InfluxMode.V1,
            database=database,
            retention_policy=query.get("rp"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
    delete_api: DeleteApi | None = None
    if "delete" in query:
        try:
            delete_api = DeleteApi(query["delete"])
        except ValueError:
            choices = ", ".join(d.value for d in DeleteApi)
            raise ValueError(f"unknown ?delete= in {url!r}: use one of {choices}") from None
    bucket = query.get("bucket", "")
    if not bucket:
        raise ValueError(f"influxdb2 URL needs ?bucket=…: {url!r}")
    if check_secrets and not token:
        raise ValueError("influxdb2 needs a token: set SHUXIN_GATEWAY_INFLUX_TOKEN")
    return InfluxSettings(
        url=base,
        mode=InfluxMode.V2,
        org=query.get("org", ""),
        bucket=bucket,
        token=token,
        delete_api=delete_api,
    )
