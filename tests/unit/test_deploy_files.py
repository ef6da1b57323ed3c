"""The deployment files in ``deploy/`` and the commands in ``docs/deploy.md`` are real.

- ``deploy/compose.yaml`` parses, has the central site's services, keeps secrets out of the
  file, and every shuxin container command parses with the real ``shuxin`` argument parser.
- Every systemd unit parses as INI, and its ``ExecStart``/``ExecStartPre`` names a real
  ``shuxin`` sub-command with options the parser accepts.
- Every ``shuxin …`` line in the deployment and operations docs parses the same way.
- The Grafana provisioning files point at the dashboard and the datasource the panels use, and
  (integration) every panel's InfluxQL query, and the template variable's query, run without
  error against a real InfluxDB 1.x after the gateway's InfluxDB adapter wrote points, and
  each panel returns data.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from shuxin.cli.main import build_parser
from shuxin.contract.codec import decode
from shuxin.contract.topics import session_topic
from shuxin.gateway.store_influx import InfluxMode, InfluxSettings, InfluxStore
from shuxin.gateway.timeseries import points_from_message

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "shuxin-influxdb.json"
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "IDENTITY_KEYS")


def _parses(argv: list[str]) -> bool:
    """True when the real ``shuxin`` parser accepts ``argv`` (it exits on an error)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_compose_has_the_central_site() -> None:
    services = _compose()["services"]
    for name in ("mosquitto", "influxdb", "postgres", "gateway-1", "gateway-2", "api", "proxy"):
        assert name in services, name
    assert "grafana" in services
    gateways = [services["gateway-1"], services["gateway-2"]]
    client_ids = {g["command"][g["command"].index("--client-id") + 1] for g in gateways}
    assert len(client_ids) == 2  # each replica keeps its own broker session
    groups = {g["environment"]["SHUXIN_GATEWAY_SHARED_GROUP"] for g in gateways}
    assert len(groups) == 1  # … and all share one subscription group
    for gateway in gateways:
        assert gateway["environment"]["SHUXIN_GATEWAY_BROKER_URL"].startswith("mqtts://")
        assert gateway["environment"]["SHUXIN_GATEWAY_TSDB_URL"].startswith("influxdb2://")
    influx = services["influxdb"]["environment"]
    for key in ("BUCKET", "RETENTION", "ADMIN_TOKEN", "ORG"):
        assert influx[f"DOCKER_INFLUXDB_INIT_{key}"]
    mosquitto = services["mosquitto"]["command"]
    assert mosquitto[-1] == "/etc/shuxin/broker/mosquitto.conf"


def test_compose_shuxin_commands_parse() -> None:
    commands = [
        service["command"]
        for service in _compose()["services"].values()
        if str(service.get("image", "")).startswith("shuxin:")
    ]
    assert len(commands) == 3
    for command in commands:
        assert _parses(command), command


def test_compose_holds_no_secret_values() -> None:
    def walk(node: Any) -> list[tuple[str, str]]:
        if isinstance(node, dict):
            pairs = [(str(k), v) for k, v in node.items() if isinstance(v, str)]
            return pairs + [p for v in node.values() for p in walk(v)]
        if isinstance(node, list):
            return [p for v in node for p in walk(v)]
        return []

    secrets = [(k, v) for k, v in walk(_compose()) if any(w in k for w in SECRET_WORDS)]
    assert len(secrets) >= 6
    for key, value in secrets:
        assert re.search(r"\$\{[A-Z_]+", value), f"{key} must come from deploy/.env"


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_unit_parses_and_runs_a_real_command(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(unit.read_text(encoding="utf-8"))
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = parser["Service"]
    assert service["User"] == "shuxin"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    exec_lines = [
        line.split("=", 1)[1]
        for line in unit.read_text(encoding="utf-8").splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre="))
    ]
    assert exec_lines
    for line in exec_lines:
        program, *argv = shlex.split(line.replace("%i", "1"))
        assert program.endswith("/shuxin"), line
        assert _parses(argv), line


def test_units_cover_gateway_api_and_edge() -> None:
    names = {unit.name for unit in UNITS}
    assert names == {"shuxin-gateway@.service", "shuxin-api.service", "shuxin-edge.service"}
    edge = (DEPLOY / "systemd" / "shuxin-edge.service").read_text(encoding="utf-8")
    assert "SupplementaryGroups=bluetooth" in edge
    assert "AF_BLUETOOTH" in edge


def _shell_blocks(markdown: str) -> list[str]:
    """The contents of the fenced ``sh``/``bash``/``console`` blocks (and unlabelled ones)."""
    blocks: list[str] = []
    current: list[str] | None = None
    language = ""
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if current is None:
                current, language = [], stripped[3:].strip()
            else:
                if language in ("", "sh", "bash", "console"):
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.parametrize(("doc", "minimum"), [("deploy.md", 5), ("operations.md", 0)])
def test_documented_shuxin_commands_exist(doc: str, minimum: int) -> None:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    commands: list[list[str]] = []
    for block in _shell_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for index, word in enumerate(words):
                is_program = word == "shuxin" or word.endswith("/bin/shuxin")
                # "shuxin" right after an option is its value (``-u shuxin``, ``--org shuxin``).
                if is_program and (index == 0 or not words[index - 1].startswith("-")):
                    commands.append(words[index + 1 :])
                    break
    assert len(commands) >= minimum, commands
    for argv in commands:
        assert _parses(argv), f"{doc}: shuxin {' '.join(argv)}"


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/shuxin-influxdb.yaml").read_text("utf-8")
    )["datasources"]
    providers = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/shuxin.yaml").read_text("utf-8")
    )["providers"]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {d["uid"] for d in datasources}
    assert all(d["type"] == "influxdb" for d in datasources)
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} <= uids
    mounts = _compose()["services"]["grafana"]["volumes"]
    assert any(m.endswith(":" + providers[0]["options"]["path"] + ":ro") for m in mounts)


# --- the panels' InfluxQL against a real InfluxDB 1.x --------------------------------------------

STATION = "st-a"
SESSION = "st-a-20261123-0042"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _message(stream: str, seq: int, **fields: Any) -> Any:
    payload = {
        "schema": 1,
        "station": STATION,
        "session": SESSION,
        "stream": stream,
        "seq": seq,
        "sent_at": (T0 + timedelta(seconds=seq)).isoformat(),
        "clock": {"offset_ms": 0.0, "source": "ntp"},
        **fields,
    }
    return decode(session_topic(STATION, SESSION, stream), json.dumps(payload).encode())[1]


def _points(seq: int) -> list[Any]:
    t0 = (T0 + timedelta(seconds=seq)).isoformat()
    messages = [
        _message(
            "rr",
            seq,
            device="h10-1",
            source="hrs",
            t0=t0,
            t_offset_ms=[0.0, 800.0],
            rr_ms=[800.0, 812.5],
            contact="detected",
        ),
        _message(
            "hr",
            seq,
            device="h10-1",
            t0=t0,
            t_offset_ms=[0.0],
            hr_bpm=[74.0],
            contact="detected",
        ),
        _message(
            "eda",
            seq,
            device="gsr-1",
            t0=t0,
            fs_hz=4.0,
            eda_us=[2.0, 2.1, 2.2, 2.3],
            flags=["contact_lost"],
        ),
        _message(
            "metrics",
            seq,
            t=t0,
            window_s=60.0,
            values={"rmssd_ms": 42.0, "coherence_ratio": 1.5},
            algorithm_version="live-1",
        ),
    ]
    return [p for m in messages for p in points_from_message(m)]


def _grafana_query(query: str) -> str:
    """Substitute Grafana's macros the way Grafana does for InfluxQL."""
    start = (T0 - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (T0 + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        query.replace("$timeFilter", f"time >= '{start}' AND time <= '{end}'")
        .replace("$__interval", "1m")
        .replace("$station", STATION)
    )


@pytest.mark.integration
def test_every_panel_query_runs_on_influxdb1(influxdb1: Any) -> None:
    database = f"shuxin_{uuid.uuid4().hex[:12]}"
    influxdb1.create_database(database)
    store = InfluxStore(InfluxSettings(url=influxdb1.url, mode=InfluxMode.V1, database=database))
    try:
        store.write([p for seq in range(5) for p in _points(seq)])
    finally:
        store.close()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variable = dashboard["templating"]["list"][0]["query"]
    stations = influxdb1.query(variable, db=database)["results"][0]["series"][0]["values"]
    assert [row[1] for row in stations] == [STATION]
    assert len(dashboard["panels"]) >= 6
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            result = influxdb1.query(_grafana_query(target["query"]), db=database)
            statement = result["results"][0]
            assert "error" not in statement, (panel["title"], statement)
            assert statement.get("series"), f"panel {panel['title']!r} returned no data"
