"""An in-process MQTT broker for the demo: amqtt bound to loopback, with passwords and ACLs.

The demo runs with nothing but Python, so instead of Mosquitto it embeds amqtt (MQTT 3.1.1
only; no shared subscriptions — the gateway subscribes plainly). Users log in with passwords
hashed with Argon2 in a generated password file; each station may publish and subscribe only
under ``shuxin/v1/<its id>/#`` and the gateway user may subscribe to ``shuxin/v1/#`` — the same
rules as the Mosquitto ACL rendered by :mod:`shuxin.gateway.broker_config`. Production uses
Mosquitto; this adapter must never listen beyond 127.0.0.1 unless told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shuxin.contract.topics import ALL_STATIONS_FILTER, station_filter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbeddedBroker:
    """Where the running embedded broker listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT``."""
        return f"mqtt://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _password_file(path: Path, users: Mapping[str, str]) -> None:
    from pwdlib.hashers.argon2 import Argon2Hasher

    hasher = Argon2Hasher()
    lines = [f"{user}:{hasher.hash(password)}" for user, password in users.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


@contextlib.asynccontextmanager
async def embedded_broker(
    workdir: Path,
    *,
    stations: Sequence[str],
    users: Mapping[str, str],
    gateway_user: str = "gateway",
    host: str = "127.0.0.1",
    port: int | None = None,
) -> AsyncIterator[EmbeddedBroker]:
    """Run an amqtt broker for the duration of the ``async with`` block.

    ``users`` maps every user name (each station id, and ``gateway_user``) to its password.
    """
    from amqtt.broker import Broker

    missing = [u for u in (*stations, gateway_user) if u not in users]
    if missing:
        raise ValueError(f"no password for broker users: {', '.join(missing)}")
    workdir.mkdir(parents=True, exist_ok=True)
    password_path = workdir / "broker-passwd"
    _password_file(password_path, users)
    port = port or free_port(host)
    own = {station: [station_filter(station)] for station in stations}
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 64}},
        "plugins": {
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_path)},
            "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                "publish_acl": own,
                "acl": {**own, gateway_user: [ALL_STATIONS_FILTER]},
            },
        },
    }
    with warnings.catch_warnings():
        # amqtt 0.12 deprecates "acl" for "subscribe-acl" but its config class rejects the new
        # key; "acl" is the one that works, so silence only that warning during start-up.
        warnings.filterwarnings("ignore", message="The 'acl' option is deprecated")
        broker = Broker(config, loop=asyncio.get_running_loop())
        await broker.start()
    log.info("embedded MQTT broker listening on %s:%d", host, port)
    try:
        yield EmbeddedBroker(host, port)
    finally:
        await broker.shutdown()
