"""A Mosquitto 2.x broker for tests: generated config, password file and per-station ACL.

The config comes from :mod:`shuxin.gateway.broker_config`, the same renderer the gateway's
deployment uses. Every station id is also a user; ``gateway`` is a reader of ``shuxin/v1/#``.
Passwords are random per instance. Persistence writes the database after every change
(``autosave_on_changes``, interval 1) so a retained message survives a SIGKILL once the broker
has handled it (``deployed_defaults=True``, for benchmarks: the deployed config's persistence
and logging instead). Never uses the system service, its config or its port 1883.

With ``tls=True`` the listener speaks MQTT over TLS (``mqtts://``) with a throw-away CA and a
server certificate for ``127.0.0.1`` made by :mod:`servers.tls_certs`; ``require_certificate``
also makes it refuse clients without a certificate signed by that CA.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import secrets
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shuxin.gateway.broker_config import (
    MosquittoConfig,
    TlsFiles,
    render_acl,
    render_mosquitto_conf,
    render_password_file,
)

from ._process import LOOPBACK, ServerHandle, ServerProcess, find_binary, free_ports
from .tls_certs import BrokerTls, make_broker_tls

DEFAULT_STATIONS: tuple[str, ...] = ("st-a", "st-b")
GATEWAY_USER = "gateway"


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _utf8_field(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def mqtt_login_ok(
    host: str,
    port: int,
    username: str,
    password: str,
    *,
    tls_context: ssl.SSLContext | None = None,
) -> bool:
    """Connect with MQTT 3.1.1 and return True when the CONNACK accepts ``username``.

    A raw-socket probe (no client library, no thread): readiness means the broker is ours,
    read its password file and answers on the port, not merely that something listens there.
    With ``tls_context`` the socket is wrapped in TLS first (host name checked against
    ``host``), so a TLS listener is only ready once its certificate verifies.
    """
    variable = _utf8_field("MQTT") + bytes([4, 0xC2]) + (5).to_bytes(2, "big")
    payload = _utf8_field("shuxin-ready-probe") + _utf8_field(username) + _utf8_field(password)
    body = variable + payload
    packet = bytes([0x10]) + _remaining_length(len(body)) + body
    with socket.create_connection((host, port), timeout=1.0) as raw:
        if tls_context is None:
            return _connect_accepted(raw, packet)
        with tls_context.wrap_socket(raw, server_hostname=host) as sock:
            return _connect_accepted(sock, packet)


def _connect_accepted(sock: socket.socket, packet: bytes) -> bool:
    sock.sendall(packet)
    connack = b""
    while len(connack) < 4:
        chunk = sock.recv(4 - len(connack))
        if not chunk:
            return False
        connack += chunk
    accepted = connack[0] == 0x20 and connack[3] == 0
    if accepted:
        sock.sendall(b"\xe0\x00")  # DISCONNECT: no last will, clean log line
    return accepted


class MosquittoServer(ServerHandle):
    """Handle on one test broker.

    Attributes
    ----------
    host, port : str, int
        The loopback listener.
    users : dict[str, str]
        User name → password for every station and the gateway.
    stations : tuple[str, ...]
        Station ids (each is also a user name, confined to ``shuxin/v1/<id>/#``).
    gateway_user : str
        The reader user (``shuxin/v1/#``).
    data_dir : Path
        Persistence directory (``mosquitto.db``), kept across restarts.
    tls : BrokerTls or None
        The CA, server and client certificates when the listener speaks TLS.
    require_certificate : bool
        The TLS listener refuses clients without a certificate from ``tls.ca``.
    config_path, acl_path, password_path, log_path : Path
        The generated files and the broker's log.
    """

    name = "mosquitto"

    def __init__(
        self,
        root: Path,
        *,
        stations: Sequence[str] = DEFAULT_STATIONS,
        gateway_user: str = GATEWAY_USER,
        per_listener_settings: bool = False,
        shared: bool = False,
        tls: bool = False,
        require_certificate: bool = False,
        deployed_defaults: bool = False,
    ) -> None:
        if require_certificate and not tls:
            raise ValueError("require_certificate needs tls=True")
        super().__init__(root, shared=shared)
        self.per_listener_settings = per_listener_settings
        self.binary = find_binary("mosquitto", "mosquitto", "SHUXIN_MOSQUITTO_BIN")
        self.host = LOOPBACK
        self.port = 0
        self.stations = tuple(stations)
        self.gateway_user = gateway_user
        self.users = {user: secrets.token_urlsafe(16) for user in (*self.stations, gateway_user)}
        self.data_dir = root / "data"
        self.config_path = root / "mosquitto.conf"
        self.acl_path = root / "acl"
        self.password_path = root / "passwd"
        self.log_path = root / "mosquitto.log"
        self.require_certificate = require_certificate
        #: Persistence and logging as ``shuxin broker config`` deploys them (benchmarks), not
        #: the tests' save-after-every-change and log-everything.
        self.deployed_defaults = deployed_defaults
        self.tls: BrokerTls | None = make_broker_tls(root / "tls") if tls else None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``, or ``mqtts://…`` for a TLS listener."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that verifies this TLS broker."""
        if self.tls is None:
            raise AttributeError("ca_file: this broker has no TLS listener")
        return self.tls.ca_file

    def client_tls_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        """A verifying client context for this TLS broker, optionally with the client cert."""
        if self.tls is None:
            raise ValueError("this broker has no TLS listener")
        context = ssl.create_default_context(cafile=str(self.tls.ca_file))
        if client_cert:
            context.load_cert_chain(self.tls.client.cert_file, self.tls.client.key_file)
        return context

    @property
    def db_path(self) -> Path:
        """The persistence file Mosquitto writes (retained messages, sessions)."""
        return self.data_dir / "mosquitto.db"

    def credentials(self, user: str) -> tuple[str, str]:
        """``(username, password)`` for a station id or the gateway user."""
        return user, self.users[user]

    def _assign_ports(self) -> None:
        (self.port,) = free_ports(1)

    def _persistence_and_logging(self, option: str, for_tests: Any) -> Any:
        """``for_tests`` (save after every change; log everything, "Denied PUBLISH …" lines
        included), or with ``deployed_defaults`` the renderer's own default."""
        if not self.deployed_defaults:
            return for_tests
        return {f.name: f.default for f in dataclasses.fields(MosquittoConfig)}[option]

    def _make_process(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.password_path.write_text(render_password_file(self.users), encoding="utf-8")
        self.password_path.chmod(0o600)
        self.acl_path.write_text(render_acl(self.stations, [self.gateway_user]), encoding="utf-8")
        config = MosquittoConfig(
            host=self.host,
            port=self.port,
            password_file=self.password_path,
            acl_file=self.acl_path,
            data_dir=self.data_dir,
            per_listener_settings=self.per_listener_settings,
            log_types=self._persistence_and_logging("log_types", ("all",)),
            autosave_interval=self._persistence_and_logging("autosave_interval", 1),
            autosave_on_changes=self._persistence_and_logging("autosave_on_changes", True),
            # As root, Mosquitto would drop to the `mosquitto` user, which cannot read the
            # private pytest temp dir: stay the current user.
            run_as_user=getpass.getuser() if os.geteuid() == 0 else None,
            tls=None
            if self.tls is None
            else TlsFiles(
                certfile=self.tls.server.cert_file,
                keyfile=self.tls.server.key_file,
                cafile=self.tls.ca_file,
                require_certificate=self.require_certificate,
            ),
        )
        self.config_path.write_text(render_mosquitto_conf(config), encoding="utf-8")
        user, password = self.credentials(self.gateway_user)
        context = (
            None
            if self.tls is None
            else self.client_tls_context(client_cert=self.require_certificate)
        )
        return ServerProcess(
            self.name,
            [self.binary, "-c", str(self.config_path)],
            self.log_path,
            lambda: mqtt_login_ok(self.host, self.port, user, password, tls_context=context),
            cwd=self.root,
        )
