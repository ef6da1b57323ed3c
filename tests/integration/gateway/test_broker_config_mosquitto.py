"""`shuxin broker config` from a SQL station registry, started by a real Mosquitto: stations log
in with the generated passwords, the hashes are recorded in SQL, and the ACL confines a station
to ``shuxin/v1/<its id>/#``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import uuid
from pathlib import Path

import aiomqtt
import pytest
from servers._process import LOOPBACK, ServerProcess, find_binary, free_ports
from servers.mosquitto import mqtt_login_ok

from shuxin.gateway.broker_commands import read_credentials, register
from shuxin.gateway.broker_config import verify_password
from shuxin.gateway.sql_engine import make_engine, upgrade
from shuxin.gateway.sql_models import OrgUnitKind
from shuxin.gateway.sql_store import SqlStore

pytestmark = pytest.mark.integration


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shuxin")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


@pytest.fixture
def registry(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    store = SqlStore(make_engine(url))
    detachment = store.create_org_unit(OrgUnitKind.DETACHMENT, "D01", "支队")
    brigade = store.create_org_unit(OrgUnitKind.BRIGADE, "B01", "大队", detachment.id)
    for number, station in enumerate(("st-a", "st-b"), start=1):
        unit = store.create_org_unit(OrgUnitKind.STATION, f"Z0{number}", "站", brigade.id)
        store.register_station(station, org_unit_id=unit.id, display_name=f"relief {station}")
    store.close()
    return url


async def _acl_scenario(port: int, creds: dict[str, str]) -> list[str]:
    """Gateway reads everything; st-a publishes into st-b's tree, then into its own."""
    received: list[str] = []
    async with aiomqtt.Client(
        LOOPBACK, port, username="gateway", password=creds["gateway"], identifier="gw-acl"
    ) as reader:
        await reader.subscribe("shuxin/v1/#", qos=1)
        async with aiomqtt.Client(
            LOOPBACK,
            port,
            username="st-a",
            password=creds["st-a"],
            identifier=f"st-a-{uuid.uuid4()}",
        ) as station:
            await station.publish("shuxin/v1/st-b/status", b"forged", qos=1)
            await station.publish("shuxin/v1/st-a/status", b"own", qos=1)
        async with asyncio.timeout(10):
            async for message in reader.messages:
                received.append(str(message.topic))
                if message.payload == b"own":
                    break
    return received


def test_generated_config_runs_in_mosquitto_and_enforces_acl(
    tmp_path: Path, registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = find_binary("mosquitto", "mosquitto", "SHUXIN_MOSQUITTO_BIN")
    (port,) = free_ports(1)
    out = tmp_path / "broker"
    argv = ["broker", "config", "--out", str(out), "--sql", registry]
    argv += ["--listen", f"{LOOPBACK}:{port}"]
    if os.geteuid() == 0:  # as root Mosquitto would drop to `mosquitto`, who cannot read tmp
        argv += ["--run-as", getpass.getuser()]
    assert _run(argv) == 0
    creds = read_credentials(out / "credentials")
    assert not any(password in capsys.readouterr().out for password in creds.values())

    store = SqlStore(make_engine(registry))
    try:
        for station in ("st-a", "st-b"):
            recorded = store.get_station(station)
            assert recorded.credential_hash is not None
            assert verify_password(creds[station], recorded.credential_hash)
            assert recorded.credential_rotated_at is not None
    finally:
        store.close()

    broker = ServerProcess(
        "mosquitto",
        [binary, "-c", str(out / "mosquitto.conf")],
        tmp_path / "mosquitto.log",
        lambda: mqtt_login_ok(LOOPBACK, port, "gateway", creds["gateway"]),
        cwd=out,
    )
    broker.start()
    try:
        assert mqtt_login_ok(LOOPBACK, port, "st-a", creds["st-a"])
        assert not mqtt_login_ok(LOOPBACK, port, "st-a", creds["st-b"])
        assert not mqtt_login_ok(LOOPBACK, port, "nobody", creds["st-a"])
        received = asyncio.run(_acl_scenario(port, creds))
        # The forged message was published first on the same connection: had the broker let it
        # through, the reader would have got it before "own".
        assert received == ["shuxin/v1/st-a/status"]
    finally:
        broker.stop()
