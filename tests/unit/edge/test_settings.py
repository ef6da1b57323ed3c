"""Agent settings: every station config loads; secrets stay out of files; clear start-up errors;
the `edge run` and `sim station` commands' argument handling."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from servers.tls_certs import BrokerTls, make_broker_tls

from shuxin.edge import commands as edge_commands
from shuxin.edge import sim_commands
from shuxin.edge.settings import (
    SettingsError,
    build_settings,
    check_settings,
    load_settings,
)

STATIONS = Path(__file__).resolve().parents[3] / "firmware_configs" / "stations"


def test_every_station_config_loads() -> None:
    files = sorted(STATIONS.glob("*.yaml"))
    assert {f.name for f in files} >= {"sim-demo.yaml", "station-template.yaml"}
    for file in files:
        settings = load_settings(file)
        assert settings.broker.password is None  # never in a file
        assert settings.devices


def test_sim_demo_passes_the_startup_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUXIN_EDGE_BROKER__PASSWORD", "pw")
    settings = load_settings(STATIONS / "sim-demo.yaml").model_copy(update={"data_dir": tmp_path})
    resolved = check_settings(settings)
    assert resolved.password == "pw"
    assert {"polar_h10", "shuxin_gsr"} <= set(resolved.profiles)
    assert "rest-resonance-recovery" in resolved.protocols


def test_ble_devices_without_ble_support_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shuxin.edge.settings as settings_module

    # Pretend the `ble` extra is absent, whatever this machine has installed.
    monkeypatch.setattr(settings_module, "ble_available", lambda: False)
    settings = load_settings(STATIONS / "station-template.yaml").model_copy(
        update={"data_dir": tmp_path}
    )
    with pytest.raises(SettingsError, match="BLE support is not installed") as info:
        check_settings(settings)
    assert "h10-1, gsr-1" in str(info.value)
    # The missing password and CA files are reported in the same message: every problem at once.
    assert "password_file" in str(info.value)
    assert "broker.ca_file /etc/shuxin/site-ca.pem" in str(info.value)


def test_password_is_refused_in_a_file_and_taken_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        "station: st-a\nbroker: {url: 'mqtt://127.0.0.1:1883', username: st-a, password: x}\n"
        "data_dir: data\n",
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match="must not be in a config file"):
        load_settings(config)
    config.write_text(
        "station: st-a\nbroker: {url: 'mqtt://127.0.0.1:1883', username: st-a}\ndata_dir: data\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SHUXIN_EDGE_BROKER__PASSWORD", "from-env")
    settings = load_settings(config)
    assert settings.data_dir == tmp_path / "data"  # relative to the config file
    assert check_settings(settings).password == "from-env"
    assert "from-env" not in repr(settings)  # a SecretStr never prints


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    settings = build_settings(
        station="st-a",
        broker={"url": "mqtts://broker.example:8883", "username": "st-a", "password_file": secret},
        data_dir=tmp_path / "d",
    )
    assert (settings.broker.host, settings.broker.port, settings.broker.tls) == (
        "broker.example",
        8883,
        True,
    )
    # mqtts:// without ca_file: the system trust store verifies the broker.
    assert settings.broker.ca_file is None
    assert check_settings(settings).password == "s3cret"


def _pki(tmp_path: Path) -> BrokerTls:
    return make_broker_tls(tmp_path / "pki")


def test_tls_files_are_accepted_with_mqtts(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    settings = build_settings(
        station="st-a",
        broker={
            "url": "mqtts://127.0.0.1:8883",
            "ca_file": pki.ca_file,
            "client_cert_file": pki.client.cert_file,
            "client_key_file": pki.client.key_file,
        },
        data_dir=tmp_path / "d",
    )
    check_settings(settings)
    assert settings.broker.ca_file == pki.ca_file


def test_tls_files_from_a_config_file_are_relative_to_it(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    config = tmp_path / "edge.yaml"
    config.write_text(
        "station: st-a\nbroker: {url: 'mqtts://127.0.0.1:8883', ca_file: pki/shuxin-test-CA.crt}\n"
        "data_dir: data\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.broker.ca_file == pki.ca_file
    check_settings(settings)


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ({"url": "mqtt://h:1883", "ca_file": "/x/ca.pem"}, "ca_file need an mqtts:// url"),
        (
            {"url": "mqtt://h:1883", "client_cert_file": "/c", "client_key_file": "/k"},
            "client_cert_file, client_key_file need an mqtts:// url",
        ),
        ({"url": "mqtts://h:8883", "client_cert_file": "/c"}, "go together"),
        ({"url": "mqtts://h:8883", "client_key_file": "/k"}, "go together"),
    ],
)
def test_inconsistent_tls_settings_are_refused(
    tmp_path: Path, broker: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        build_settings(station="st-a", broker=broker, data_dir=tmp_path)


def test_missing_or_unusable_tls_files_are_named_at_startup(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    not_pem = tmp_path / "not-a-cert.pem"
    not_pem.write_text("hello\n", encoding="utf-8")
    other = make_broker_tls(tmp_path / "other")

    def check(**broker: Any) -> str:
        settings = build_settings(
            station="st-a", broker={"url": "mqtts://h:8883", **broker}, data_dir=tmp_path / "d"
        )
        with pytest.raises(SettingsError) as info:
            check_settings(settings)
        return str(info.value)

    missing = tmp_path / "missing.pem"
    assert f"broker.ca_file {missing}: No such file or directory" in check(ca_file=missing)
    assert "broker.ca_file" in check(ca_file=not_pem)
    assert "not a PEM certificate bundle" in check(ca_file=not_pem)
    message = check(client_cert_file=pki.client.cert_file, client_key_file=missing)
    assert f"broker.client_key_file {missing}" in message
    # A key that belongs to another certificate.
    message = check(client_cert_file=pki.client.cert_file, client_key_file=other.client.key_file)
    assert "broker.client_cert_file/broker.client_key_file" in message


def test_username_without_a_password_is_a_startup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHUXIN_EDGE_BROKER__PASSWORD", raising=False)
    settings = build_settings(
        station="st-a", broker={"url": "mqtt://h:1", "username": "st-a"}, data_dir=tmp_path
    )
    with pytest.raises(SettingsError, match="no password"):
        check_settings(settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"broker": {"url": "http://x"}}, "mqtt://HOST:PORT"),
        ({"broker": {"url": "mqtt://u:p@x:1"}}, "not in the url"),
        ({"station": "ST A"}, "station"),
        ({"time_scale": 0}, "time_scale"),
        ({"devices": [{"id": "d1", "profile": "hrs_strap"}]}, "exactly one of address"),
        (
            {"devices": [{"id": "d1", "profile": "hrs_strap", "sim": {}}] * 2},
            "listed twice",
        ),
        ({"devices": [{"id": "d1", "profile": "x", "sim": {"faults": "mild"}}]}, "preset"),
    ],
)
def test_invalid_settings_name_the_field(tmp_path: Path, values: dict, message: str) -> None:  # type: ignore[type-arg]
    base = {"station": "st-a", "broker": {"url": "mqtt://h:1"}, "data_dir": tmp_path}
    with pytest.raises(SettingsError, match=message):
        build_settings(**{**base, **values})


def test_unknown_profile_is_named(tmp_path: Path) -> None:
    settings = build_settings(
        station="st-a",
        broker={"url": "mqtt://h:1"},
        data_dir=tmp_path,
        devices=[{"id": "d1", "profile": "no_such_sensor", "sim": {}}],
    )
    with pytest.raises(SettingsError, match="unknown profile 'no_such_sensor'"):
        check_settings(settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shuxin")
    sub = parser.add_subparsers()
    edge_commands.register(sub)
    sim_commands.register(sub)
    return parser


def test_edge_run_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        "station: st-a\nbroker: {url: 'mqtt://127.0.0.1:1883'}\ndata_dir: data\n"
        "devices:\n  - {id: sim-h10-1, profile: polar_h10, sim: {}}\n",
        encoding="utf-8",
    )
    args = _parser().parse_args(["edge", "run", "--config", str(config), "--check"])
    assert args.handler(args) == 0
    err = capsys.readouterr().err
    assert "station st-a" in err
    assert "sim-h10-1: polar_h10 (simulated)" in err
    bad = _parser().parse_args(["edge", "run", "--config", str(tmp_path / "missing.yaml")])
    assert bad.handler(bad) == 2
    assert "cannot read" in capsys.readouterr().err


def test_sim_station_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "sim",
        "station",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--station",
        "st-a",
        "--data",
        str(tmp_path),
    ]
    args = _parser().parse_args([*base, "--subjects", "0"])
    assert args.handler(args) == 2
    args = _parser().parse_args([*base, "--protocol", "no-such-protocol", "--sessions", "1"])
    assert args.handler(args) == 2
    assert "unknown protocol no-such-protocol" in capsys.readouterr().err
    args = _parser().parse_args([*base, "--devices", "polar_verity_sense"])
    assert args.handler(args) == 2
    assert "no simulator for polar_verity_sense" in capsys.readouterr().err
    # TLS files on a plain url are refused before anything starts.
    args = _parser().parse_args([*base, "--ca-file", str(tmp_path / "ca.pem")])
    assert args.handler(args) == 2
    assert "need an mqtts:// url" in capsys.readouterr().err


def test_sim_station_passes_tls_files_to_the_agent_settings(tmp_path: Path) -> None:
    from shuxin.edge.sim_station import SimStationOptions, sim_station_settings

    pki = _pki(tmp_path)
    args = _parser().parse_args(
        [
            "sim",
            "station",
            "--broker",
            "mqtts://127.0.0.1:8883",
            "--station",
            "st-a",
            "--data",
            str(tmp_path / "d"),
            "--ca-file",
            str(pki.ca_file),
            "--client-cert-file",
            str(pki.client.cert_file),
            "--client-key-file",
            str(pki.client.key_file),
        ]
    )
    settings = sim_station_settings(
        SimStationOptions(
            station=args.station,
            broker_url=args.broker,
            username=None,
            password=None,
            data_dir=args.data,
            ca_file=args.ca_file,
            client_cert_file=args.client_cert_file,
            client_key_file=args.client_key_file,
        )
    )
    assert settings.broker.tls
    assert (
        settings.broker.ca_file,
        settings.broker.client_cert_file,
        settings.broker.client_key_file,
    ) == (pki.ca_file, pki.client.cert_file, pki.client.key_file)
