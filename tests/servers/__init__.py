"""Real servers for tests: Mosquitto, InfluxDB 1.x and VictoriaMetrics on free loopback ports.

The pytest fixtures live in :mod:`servers.fixtures` (loaded by ``tests/conftest.py``); the handle
classes are exported here for type annotations in tests::

    from servers import MosquittoServer

``tests/`` is on ``sys.path`` because pytest's default ``prepend`` import mode puts the root
conftest's folder there. See docs/testing.md. Test support only: nothing in the product imports
this package, and it never starts, stops or reconfigures the system services.
"""

from ._process import ServerHandle, ServerStartError, ServerUnavailable, in_ci
from .influxdb1 import InfluxDB1Server
from .mosquitto import DEFAULT_STATIONS, GATEWAY_USER, MosquittoServer
from .victoriametrics import VictoriaMetricsServer

__all__ = [
    "DEFAULT_STATIONS",
    "GATEWAY_USER",
    "InfluxDB1Server",
    "MosquittoServer",
    "ServerHandle",
    "ServerStartError",
    "ServerUnavailable",
    "VictoriaMetricsServer",
    "in_ci",
]
