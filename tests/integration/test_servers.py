"""The real test servers work as the later issues need them, proven with real clients.

Mosquitto: paho-mqtt 2.x publish/subscribe with per-station credentials and ACL, refused logins
and refused publishes, retained messages across a SIGKILL. InfluxDB 1.x: line protocol on v1
``/write`` and InfluxQL on ``/query``, data across a SIGKILL (WAL). VictoriaMetrics: an
``influxdb-client`` v2 write read back through ``/api/v1/export``, data across a SIGKILL once
persisted. Shared session servers for the ordinary tests; private ones for kill/restart.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import servers.mosquitto as mosquitto_module
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from servers import InfluxDB1Server, MosquittoServer, ServerUnavailable, VictoriaMetricsServer
from servers._process import find_binary, in_ci, unavailable

pytestmark = pytest.mark.integration

#: Seconds to wait for a broker round trip. Generous: 2 shared cores; it never paces a pass.
WAIT_S = 10.0
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code 135; paho maps a 3.1.1 CONNACK refusal 5 onto it


@dataclass
class MqttSession:
    """A connected paho client with its CONNACK and everything it received."""

    client: mqtt.Client
    client_id: str
    connack: ReasonCode
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: queue.Queue[list[ReasonCode]] = field(default_factory=queue.Queue)

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        """Subscribe with QoS 1 and wait for the SUBACK."""
        self.client.subscribe(topic_filter, qos=1)
        return self.subacks.get(timeout=WAIT_S)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """Publish with QoS 1, wait for the PUBACK and return its reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"
        return self.pubacks[info.mid]

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT_S)


@contextmanager
def mqtt_session(
    broker: MosquittoServer,
    user: str | None,
    *,
    password: str | None = None,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTProtocolVersion.MQTTv311,
) -> Iterator[MqttSession]:
    """Connect ``user`` (its real password unless ``password`` is given; ``None``: anonymous)
    and yield the session once the CONNACK is in."""
    connected = threading.Event()
    holder: dict[str, ReasonCode] = {}
    pubacks: dict[int, ReasonCode] = {}
    messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subacks: queue.Queue[list[ReasonCode]] = queue.Queue()

    client_id = f"test-{user}-{uuid.uuid4().hex[:8]}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        reconnect_on_failure=False,
    )
    if user is not None:
        client.username_pw_set(user, broker.users[user] if password is None else password)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        holder["connack"] = rc
        connected.set()

    def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        pubacks[mid] = rc

    def on_subscribe(
        _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        subacks.put(codes)

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, message: messages.put(message)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    try:
        assert connected.wait(WAIT_S), f"no CONNACK for {user}\n{broker.log_tail()}"
        yield MqttSession(client, client_id, holder["connack"], messages, pubacks, subacks)
    finally:
        client.disconnect()
        client.loop_stop()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- Mosquitto -------------------------------------------------------------------------------


def test_mosquitto_is_a_private_instance_not_the_system_service(mosquitto: MosquittoServer) -> None:
    assert mosquitto.host == "127.0.0.1"
    assert mosquitto.port != 1883
    assert mosquitto.pid is not None
    cmdline = Path(f"/proc/{mosquitto.pid}/cmdline").read_bytes().split(b"\0")
    assert str(mosquitto.config_path).encode() in cmdline
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"


def test_station_publish_within_its_acl_reaches_the_gateway(mosquitto: MosquittoServer) -> None:
    session_id = _unique("sess")
    topic = f"shuxin/v1/st-a/sessions/{session_id}/hr"
    with (
        mqtt_session(mosquitto, "gateway") as gateway,
        mqtt_session(mosquitto, "st-a") as station,
    ):
        assert gateway.connack == 0
        assert station.connack == 0
        assert [
            code.value for code in gateway.subscribe(f"shuxin/v1/st-a/sessions/{session_id}/#")
        ] == [1]
        assert station.publish(topic, b'{"seq": 1}') == 0
        message = gateway.next_message()
    assert (message.topic, message.payload, message.qos) == (topic, b'{"seq": 1}', 1)


def test_gateway_shared_subscription_is_allowed(mosquitto: MosquittoServer) -> None:
    session_id = _unique("sess")
    topic = f"shuxin/v1/st-b/sessions/{session_id}/rr"
    with (
        mqtt_session(mosquitto, "gateway", protocol=mqtt.MQTTProtocolVersion.MQTTv5) as gateway,
        mqtt_session(mosquitto, "st-b") as station,
    ):
        codes = gateway.subscribe(f"$share/{_unique('grp')}/shuxin/v1/st-b/sessions/{session_id}/#")
        assert [code.value for code in codes] == [1]
        station.publish(topic, b"rr")
        assert gateway.next_message().topic == topic


@pytest.mark.parametrize("user", ["gateway", "st-a"])
def test_wrong_password_is_refused(mosquitto: MosquittoServer, user: str) -> None:
    with mqtt_session(mosquitto, user, password="not-the-password") as session:
        assert session.connack.is_failure
        assert session.connack.value == NOT_AUTHORIZED


def test_unknown_user_and_anonymous_are_refused(mosquitto: MosquittoServer) -> None:
    with mqtt_session(mosquitto, "st-zz", password="whatever") as session:
        assert session.connack.value == NOT_AUTHORIZED
    with mqtt_session(mosquitto, None) as session:
        assert session.connack.value == NOT_AUTHORIZED


def test_mqtt311_publish_outside_acl_is_dropped(mosquitto: MosquittoServer) -> None:
    """3.1.1 has no PUBACK reason: Mosquitto acknowledges and drops. The station's next,
    allowed message is a sentinel: delivery from one publisher is in order, so once the
    sentinel arrives the forbidden message would already have arrived."""
    session_id = _unique("sess")
    forbidden = f"shuxin/v1/st-b/sessions/{session_id}/hr"
    allowed = f"shuxin/v1/st-a/sessions/{session_id}/hr"
    with (
        mqtt_session(mosquitto, "gateway") as gateway,
        mqtt_session(mosquitto, "st-a") as station,
    ):
        gateway.subscribe("shuxin/v1/+/sessions/" + session_id + "/#")
        station.publish(forbidden, b"forged")
        station.publish(allowed, b"sentinel")
        first = gateway.next_message()
        assert (first.topic, first.payload) == (allowed, b"sentinel")
        assert gateway.messages.empty()
    assert f"Denied PUBLISH from {station.client_id}" in mosquitto.log_tail(200)


def test_mqtt5_publish_outside_acl_gets_not_authorized_puback(mosquitto: MosquittoServer) -> None:
    session_id = _unique("sess")
    with (
        mqtt_session(mosquitto, "gateway") as gateway,
        mqtt_session(mosquitto, "st-a", protocol=mqtt.MQTTProtocolVersion.MQTTv5) as station,
    ):
        gateway.subscribe(f"shuxin/v1/+/sessions/{session_id}/#")
        refused = station.publish(f"shuxin/v1/st-b/sessions/{session_id}/hr", b"forged")
        accepted = station.publish(f"shuxin/v1/st-a/sessions/{session_id}/hr", b"sentinel")
        assert refused.value == NOT_AUTHORIZED
        assert accepted.value == 0
        assert gateway.next_message().payload == b"sentinel"
        assert gateway.messages.empty()


def test_station_cannot_read_another_station(mosquitto: MosquittoServer) -> None:
    """Mosquitto grants the SUBACK but filters delivery by the read ACL. st-b's own message,
    published after st-a's was acknowledged, is the sentinel."""
    session_id = _unique("sess")
    with (
        mqtt_session(mosquitto, "st-a") as station_a,
        mqtt_session(mosquitto, "st-b") as station_b,
    ):
        station_b.subscribe(f"shuxin/v1/+/sessions/{session_id}/#")
        station_a.publish(f"shuxin/v1/st-a/sessions/{session_id}/hr", b"private")
        station_b.publish(f"shuxin/v1/st-b/sessions/{session_id}/hr", b"own")
        assert station_b.next_message().payload == b"own"
        assert station_b.messages.empty()


def test_first_start_retries_on_a_new_port_when_its_port_was_taken(
    mosquitto_factory: Callable[..., MosquittoServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_ports = mosquitto_module.free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        offered = iter([[taken]])
        monkeypatch.setattr(
            mosquitto_module, "free_ports", lambda n: next(offered, None) or real_free_ports(n)
        )
        broker = mosquitto_factory()
        assert broker.port != taken
        assert "Address already in use" in broker.log_path.read_text(encoding="utf-8")
    with mqtt_session(broker, "gateway") as gateway:
        assert gateway.connack == 0


def test_shared_handle_refuses_fault_injection(mosquitto: MosquittoServer) -> None:
    for action in (mosquitto.kill, mosquitto.stop, mosquitto.start):
        with pytest.raises(RuntimeError, match="mosquitto_factory"):
            action()
    assert mosquitto.running


def test_per_listener_settings_config_enforces_the_same_rules(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    broker = mosquitto_factory(per_listener_settings=True)
    assert "per_listener_settings true" in broker.config_path.read_text(encoding="utf-8")
    with mqtt_session(broker, "st-a", password="wrong") as refused:
        assert refused.connack.value == NOT_AUTHORIZED
    with mqtt_session(broker, "st-a", protocol=mqtt.MQTTProtocolVersion.MQTTv5) as station:
        assert station.connack == 0
        assert station.publish("shuxin/v1/st-b/status", b"forged").value == NOT_AUTHORIZED
        # 0x10 "No matching subscribers" is a success code: nobody listens here.
        assert not station.publish("shuxin/v1/st-a/status", b"online").is_failure


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_retained_message_survives_sigkill_and_restart_on_same_port(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    broker = mosquitto_factory()
    port, pid = broker.port, broker.pid
    topic, payload = (
        "shuxin/v1/st-a/status",
        b'{"state": "online-' + uuid.uuid4().hex.encode() + b'"}',
    )
    with mqtt_session(broker, "st-a") as station:
        station.publish(topic, payload, retain=True)
    # autosave_on_changes writes the database after the change; wait until it holds the payload.
    _wait_for(lambda: broker.db_path.is_file() and payload in broker.db_path.read_bytes(), "db")
    broker.kill()
    assert (broker.running, broker.exit_code) == (False, -9)
    broker.start()
    assert (broker.port, broker.running) == (port, True)
    assert broker.pid != pid
    with mqtt_session(broker, "gateway") as gateway:
        gateway.subscribe("shuxin/v1/+/status")
        message = gateway.next_message()
    assert (message.topic, message.payload, message.retain) == (topic, payload, True)


def test_stop_is_clean_and_start_reuses_the_data_dir(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    broker = mosquitto_factory(stations=["st-c"])
    with mqtt_session(broker, "st-c") as station:
        station.publish("shuxin/v1/st-c/status", b"online", retain=True)
    broker.stop()  # SIGTERM: Mosquitto saves its database on the way out
    assert broker.exit_code == 0
    broker.start()
    with mqtt_session(broker, "gateway") as gateway:
        gateway.subscribe("shuxin/v1/st-c/status")
        assert gateway.next_message().payload == b"online"


# --- InfluxDB 1.x ----------------------------------------------------------------------------


def test_influxdb1_line_protocol_write_and_influxql_read(influxdb1: InfluxDB1Server) -> None:
    db = _unique("t").replace("-", "_")
    influxdb1.create_database(db)
    influxdb1.write_lines(
        db,
        "hr,station=st-a,session=sess-0001 bpm=61.5,contact=true 1700000000000000000\n"
        "hr,station=st-a,session=sess-0001 bpm=63.25,contact=true 1700000001000000000\n",
    )
    result = influxdb1.query(
        "SELECT bpm, contact, station FROM hr WHERE session = 'sess-0001'", db=db, epoch="ns"
    )
    series = result["results"][0]["series"][0]
    assert series["columns"] == ["time", "bpm", "contact", "station"]
    assert series["values"] == [
        [1700000000000000000, 61.5, True, "st-a"],
        [1700000001000000000, 63.25, True, "st-a"],
    ]


def test_influxdb1_ports_are_private(influxdb1: InfluxDB1Server) -> None:
    config = influxdb1.config_path.read_text(encoding="utf-8")
    assert f'bind-address = "127.0.0.1:{influxdb1.rpc_port}"' in config
    assert f'bind-address = "127.0.0.1:{influxdb1.http_port}"' in config
    assert {influxdb1.http_port, influxdb1.rpc_port}.isdisjoint({8086, 8088})
    assert str(influxdb1.data_dir / "meta") in config


def test_influxdb1_data_survives_sigkill(
    influxdb1_factory: Callable[[], InfluxDB1Server],
) -> None:
    server = influxdb1_factory()
    port = server.http_port
    server.create_database("crash")
    server.write_lines("crash", "eda,station=st-a scl=2.5 1700000000000000000\n")
    server.kill()
    server.start()
    assert server.http_port == port
    result = server.query("SELECT scl FROM eda", db="crash", epoch="ns")
    assert result["results"][0]["series"][0]["values"] == [[1700000000000000000, 2.5]]


# --- VictoriaMetrics -------------------------------------------------------------------------


def _write_with_influxdb_client(url: str, measurement: str, start_ms: int) -> None:
    with InfluxDBClient(url=url, token="unused", org="shuxin") as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        write_api.write(
            bucket="shuxin",
            record=[
                Point(measurement)
                .tag("station", "st-a")
                .field("bpm", 60.0 + i)
                .field("rr_ms", 1000 - 10 * i)
                .time(start_ms + 1000 * i, WritePrecision.MS)
                for i in range(3)
            ],
        )
        write_api.close()


def test_victoriametrics_influxdb_client_write_read_back_by_export(
    victoriametrics: VictoriaMetricsServer,
) -> None:
    measurement = _unique("hr").replace("-", "_")
    start_ms = int(time.time() * 1000) - 120_000
    _write_with_influxdb_client(victoriametrics.url, measurement, start_ms)
    victoriametrics.force_flush()
    exported = {
        row["metric"]["__name__"]: row
        for row in victoriametrics.export(f'{{__name__=~"{measurement}_.*"}}')
    }
    # VictoriaMetrics names a field `<measurement>_<field>` and keeps the tags as labels.
    assert set(exported) == {f"{measurement}_bpm", f"{measurement}_rr_ms"}
    bpm = exported[f"{measurement}_bpm"]
    assert bpm["metric"] == {"__name__": f"{measurement}_bpm", "station": "st-a"}
    assert bpm["values"] == [60.0, 61.0, 62.0]
    assert bpm["timestamps"] == [start_ms, start_ms + 1000, start_ms + 2000]
    assert exported[f"{measurement}_rr_ms"]["values"] == [1000, 990, 980]


def test_victoriametrics_data_survives_sigkill_once_persisted(
    victoriametrics_factory: Callable[[], VictoriaMetricsServer],
) -> None:
    server = victoriametrics_factory()
    port = server.port
    start_ms = int(time.time() * 1000) - 120_000
    _write_with_influxdb_client(server.url, "crash", start_ms)
    server.persist(rows=6)  # 3 points × 2 fields
    server.kill()
    server.start()
    assert server.port == port
    exported = server.export('{__name__="crash_bpm"}')
    assert [row["values"] for row in exported] == [[60.0, 61.0, 62.0]]


# --- skip/fail policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False), ("0", False)],
)
def test_ci_detection(monkeypatch: pytest.MonkeyPatch, ci: str, expected: bool) -> None:
    monkeypatch.setenv("CI", ci)
    assert in_ci() is expected


def test_unavailable_skips_outside_ci_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such server"):
        unavailable("no such server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\[CI\] required server unavailable"):
        unavailable("no such server")


def test_missing_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHUXIN_NO_SUCH_BIN", raising=False)
    with pytest.raises(ServerUnavailable, match="Debian package 'no-such-package'"):
        find_binary("shuxin-no-such-binary", "no-such-package", "SHUXIN_NO_SUCH_BIN")
    monkeypatch.setenv("SHUXIN_NO_SUCH_BIN", "/nonexistent/mosquitto")
    with pytest.raises(ServerUnavailable, match="not an executable"):
        find_binary("mosquitto", "mosquitto", "SHUXIN_NO_SUCH_BIN")


def test_missing_server_fails_a_ci_run(tmp_path: Path) -> None:
    """A real pytest run under CI=true whose mosquitto binary is missing errors out loudly
    (the skip path outside CI is the same code, covered above)."""
    tests_dir = Path(__file__).resolve().parents[1]
    conftest = f"import sys\nsys.path.insert(0, {str(tests_dir)!r})\n"
    conftest += "pytest_plugins = ['servers.fixtures']\n"
    (tmp_path / "conftest.py").write_text(conftest, encoding="utf-8")
    (tmp_path / "test_needs_broker.py").write_text(
        textwrap.dedent("""
            def test_broker(mosquitto):
                assert mosquitto.port
        """),
        encoding="utf-8",
    )
    env = {**os.environ, "CI": "true", "SHUXIN_MOSQUITTO_BIN": str(tmp_path / "no-mosquitto")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "1 error" in result.stdout, result.stdout + result.stderr
    assert "[CI] required server unavailable" in result.stdout
    assert "SHUXIN_MOSQUITTO_BIN" in result.stdout
    assert result.returncode != 0
