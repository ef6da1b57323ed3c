"""pytest fixtures for the real test servers (a plugin loaded by ``tests/conftest.py``).

Session-scoped, shared by every test that asks: ``mosquitto``, ``influxdb1``,
``victoriametrics``. Their handles refuse stop/kill/start; tests keep out of each other's way by
using their own topics, databases and metric names. Function-scoped factories for tests that
need a private instance (fault tests that kill and restart, or other stations):
``mosquitto_factory``, ``influxdb1_factory``, ``victoriametrics_factory``; every instance a
factory made is stopped when the test ends.

A missing binary or a server that cannot start skips the test with the reason (naming the
Debian package), or fails it when ``CI`` is ``true``/``1``. Fixtures never mock a server.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from ._process import ServerHandle, ServerStartError, ServerUnavailable, unavailable
from .influxdb1 import InfluxDB1Server
from .mosquitto import DEFAULT_STATIONS, GATEWAY_USER, MosquittoServer
from .postgres import PostgresServer
from .victoriametrics import VictoriaMetricsServer

H = TypeVar("H", bound=ServerHandle)


def _launch(name: str, make: Callable[[], H]) -> H:
    try:
        handle = make()
        handle.launch()
    except ServerUnavailable as exc:
        unavailable(f"{name}: {exc}")
    except ServerStartError as exc:
        unavailable(f"{name} could not start: {exc}")
    return handle


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """Shared broker with stations ``st-a``, ``st-b`` and the ``gateway`` reader."""
    root = tmp_path_factory.mktemp("mosquitto")
    server = _launch("mosquitto", lambda: MosquittoServer(root, shared=True))
    yield server
    server.close()


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1Server]:
    """Shared InfluxDB 1.x; create your own database with ``create_database``."""
    root = tmp_path_factory.mktemp("influxdb1")
    server = _launch("influxdb1", lambda: InfluxDB1Server(root, shared=True))
    yield server
    server.close()


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    """Shared VictoriaMetrics; use metric or label names unique to your test."""
    root = tmp_path_factory.mktemp("victoriametrics")
    server = _launch("victoriametrics", lambda: VictoriaMetricsServer(root, shared=True))
    yield server
    server.close()


@pytest.fixture
def mosquitto_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MosquittoServer]]:
    """``mosquitto_factory(stations=("st-a", "st-b"), gateway_user="gateway",
    per_listener_settings=False, tls=False, require_certificate=False)`` → a private, running
    broker the test may stop, kill, start. With ``tls=True`` its ``url`` is
    ``mqtts://127.0.0.1:PORT``, ``ca_file`` verifies it and ``tls.client`` is a client
    certificate it accepts (required with ``require_certificate=True``)."""
    made: list[MosquittoServer] = []

    def make(
        stations: Sequence[str] = DEFAULT_STATIONS,
        gateway_user: str = GATEWAY_USER,
        per_listener_settings: bool = False,
        tls: bool = False,
        require_certificate: bool = False,
    ) -> MosquittoServer:
        root = tmp_path_factory.mktemp("mosquitto")
        server = _launch(
            "mosquitto",
            lambda: MosquittoServer(
                root,
                stations=stations,
                gateway_user=gateway_user,
                per_listener_settings=per_listener_settings,
                tls=tls,
                require_certificate=require_certificate,
            ),
        )
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def influxdb1_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], InfluxDB1Server]]:
    """``influxdb1_factory()`` → a private, running InfluxDB 1.x (stop/kill/start allowed)."""
    made: list[InfluxDB1Server] = []

    def make() -> InfluxDB1Server:
        root = tmp_path_factory.mktemp("influxdb1")
        server = _launch("influxdb1", lambda: InfluxDB1Server(root))
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def victoriametrics_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], VictoriaMetricsServer]]:
    """``victoriametrics_factory()`` → a private, running VictoriaMetrics (stop/kill/start)."""
    made: list[VictoriaMetricsServer] = []

    def make() -> VictoriaMetricsServer:
        root = tmp_path_factory.mktemp("victoriametrics")
        server = _launch("victoriametrics", lambda: VictoriaMetricsServer(root))
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A shared PostgreSQL cluster for the run; create your own database in it."""
    # Not pytest's tmp_path: under root the server runs as the postgres user and needs a
    # directory that user owns (PostgresServer arranges that under /tmp).
    root = Path(tempfile.mkdtemp(prefix="shuxin-pg-"))
    try:
        server = PostgresServer(root, shared=True)
        server.launch()
    except ServerUnavailable as exc:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"postgresql: {exc}")
    except ServerStartError as exc:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"postgresql could not start: {exc}")
    yield server
    server.close()
    shutil.rmtree(root, ignore_errors=True)


#: Fixture plugins that live beside this one.
pytest_plugins = ["servers.seeded"]
