"""The gateway's settings: URL parsing for broker and time-series store, env and file sources."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from servers.tls_certs import make_broker_tls

from shuxin.gateway import commands as gateway_commands
from shuxin.gateway.settings import (
    GatewaySettings,
    SqliteTsdb,
    broker_endpoint,
    parse_tsdb_url,
)
from shuxin.gateway.store_influx import DeleteApi, InfluxMode, InfluxSettings


def test_broker_urls() -> None:
    assert broker_endpoint("mqtt://broker.example") == broker_endpoint("mqtt://broker.example:1883")
    assert broker_endpoint("mqtt://broker.example").port == 1883
    assert broker_endpoint("mqtts://broker.example:8884").tls
    assert broker_endpoint("mqtts://broker.example").port == 8883
    for bad, why in [
        ("http://x:1883", "must start with mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://x:99999", "invalid port"),
    ]:
        with pytest.raises(ValueError, match=why):
            broker_endpoint(bad)


def test_tsdb_urls(tmp_path: Path) -> None:
    assert parse_tsdb_url(None, token=None, data_dir=tmp_path) == SqliteTsdb(
        tmp_path / "timeseries.sqlite3"
    )
    assert parse_tsdb_url("sqlite:///ts.db", token=None, data_dir=tmp_path) == SqliteTsdb(
        Path("ts.db")
    )
    assert parse_tsdb_url("sqlite:////var/lib/ts.db", token=None, data_dir=tmp_path) == (
        SqliteTsdb(Path("/var/lib/ts.db"))
    )
    v1 = parse_tsdb_url(
        "influxdb1://u:p%40ss@db:8087/shuxin?rp=week", token=None, data_dir=tmp_path
    )
    assert isinstance(v1, InfluxSettings)
    assert (v1.mode, v1.url, v1.database, v1.retention_policy) == (
        InfluxMode.V1,
        "http://db:8087",
        "shuxin",
        "week",
    )
    assert (v1.username, v1.password) == ("u", "p@ss")
    v2 = parse_tsdb_url("influxdb2://db?org=fire&bucket=hrv&tls=1", token="t", data_dir=tmp_path)
    assert isinstance(v2, InfluxSettings)
    assert (v2.mode, v2.url, v2.org, v2.bucket, v2.token) == (
        InfluxMode.V2,
        "https://db:8086",
        "fire",
        "hrv",
        "t",
    )
    assert v2.resolved_delete_api is DeleteApi.V2
    vm = parse_tsdb_url(
        "influxdb2://vm:8428?bucket=hrv&delete=victoriametrics", token="t", data_dir=tmp_path
    )
    assert isinstance(vm, InfluxSettings)
    assert vm.resolved_delete_api is DeleteApi.VICTORIAMETRICS


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgres://x/y", "unknown time-series URL scheme"),
        ("sqlite://", "needs a path"),
        ("influxdb1://db:8086", "needs a database"),
        ("influxdb2://db:8086?org=o", "needs \\?bucket"),
        ("influxdb2://db:8086?bucket=b", "needs a token"),
        ("influxdb2://db:8086?bucket=b&delete=drop", "unknown \\?delete="),
    ],
)
def test_bad_tsdb_urls_say_why(tmp_path: Path, url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_tsdb_url(url, token=None, data_dir=tmp_path)


def test_settings_from_environment_and_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHUXIN_GATEWAY_BROKER_URL", "mqtt://broker:1884")
    monkeypatch.setenv("SHUXIN_GATEWAY_PASSWORD", "from-env")
    env_file = tmp_path / "gateway.env"
    env_file.write_text("SHUXIN_GATEWAY_CLIENT_ID=gw-7\nSHUXIN_GATEWAY_SHARED_GROUP=\n", "utf-8")
    settings = GatewaySettings(_env_file=env_file)
    assert settings.broker_url == "mqtt://broker:1884"
    assert settings.password is not None
    assert settings.password.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)
    assert settings.client_id == "gw-7"
    assert settings.shared_group is None
    with pytest.raises(ValidationError, match="unknown time-series URL scheme"):
        GatewaySettings(tsdb_url="ftp://x")


def test_tls_files_from_the_environment_and_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pki = make_broker_tls(tmp_path / "pki")
    monkeypatch.setenv("SHUXIN_GATEWAY_BROKER_URL", "mqtts://broker.example:8883")
    monkeypatch.setenv("SHUXIN_GATEWAY_TLS_CA_FILE", str(pki.ca_file))
    settings = GatewaySettings()
    assert (settings.tls_ca_file, settings.tls_cert_file) == (pki.ca_file, None)
    # `gateway run` flags win over the environment.
    parser = argparse.ArgumentParser(prog="shuxin")
    gateway_commands.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "gateway",
            "run",
            "--tls-cert-file",
            str(pki.client.cert_file),
            "--tls-key-file",
            str(pki.client.key_file),
        ]
    )
    from_flags = gateway_commands._settings(args)
    assert (from_flags.tls_ca_file, from_flags.tls_cert_file, from_flags.tls_key_file) == (
        pki.ca_file,
        pki.client.cert_file,
        pki.client.key_file,
    )


def test_inconsistent_or_missing_tls_files_are_refused(tmp_path: Path) -> None:
    pki = make_broker_tls(tmp_path / "pki")
    missing = tmp_path / "missing.pem"
    tls = "mqtts://broker.example:8883"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"broker_url": "mqtt://b:1883", "tls_ca_file": pki.ca_file}, "need an mqtts://"),
        ({"broker_url": tls, "tls_cert_file": pki.client.cert_file}, "go together"),
        ({"broker_url": tls, "tls_ca_file": missing}, f"tls_ca_file {missing}: No such file"),
        ({"broker_url": tls, "tls_ca_file": pki.client.key_file}, "not a PEM certificate"),
        (
            {
                "broker_url": tls,
                "tls_cert_file": pki.client.cert_file,
                "tls_key_file": pki.server.key_file,
            },
            "tls_cert_file/tls_key_file: cannot load",
        ),
    ]
    for values, why in cases:
        with pytest.raises(ValidationError, match=why):
            GatewaySettings(**values)
    assert GatewaySettings(broker_url=tls, tls_ca_file=pki.ca_file).tls_ca_file == pki.ca_file
