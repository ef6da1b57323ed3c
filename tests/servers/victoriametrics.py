"""A VictoriaMetrics single-node server (Debian's victoria-metrics) for tests.

Listens on a free loopback port with its own ``-storageDataPath``. It accepts InfluxDB line
protocol on ``/write`` and ``/api/v2/write`` (so ``influxdb-client`` can write to it) and exports
raw samples on ``/api/v1/export``. Freshly written rows sit in memory:
:meth:`VictoriaMetricsServer.force_flush` makes them searchable (call it before an export), but
in 1.79 they reach the disk only on the next in-memory flush, about 5 s later;
:meth:`VictoriaMetricsServer.persist` waits for that, so call it before a SIGKILL that the data
must survive. Never uses the system service, its port 8428 or /var/lib.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ._process import LOOPBACK, ServerHandle, ServerProcess, find_binary, free_ports

HTTP_TIMEOUT_S = 10.0
#: VictoriaMetrics 1.79 writes in-memory parts to disk every ~5 s (not configurable before 1.85).
PERSIST_TIMEOUT_S = 30.0
_PART_DIR_RE = re.compile(r"^(\d+)_\d+_")


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2.0) as response:
        body: bytes = response.read()
        return response.status == 200 and body.strip() == b"OK"


class VictoriaMetricsServer(ServerHandle):
    """Handle on one test VictoriaMetrics.

    Attributes
    ----------
    host, port : str, int
        The loopback HTTP listener.
    data_dir : Path
        ``-storageDataPath``, kept across restarts.
    log_path : Path
        The server's log.
    """

    name = "victoriametrics"

    def __init__(self, root: Path, *, shared: bool = False) -> None:
        super().__init__(root, shared=shared)
        self.binary = find_binary(
            "victoria-metrics", "victoria-metrics", "SHUXIN_VICTORIA_METRICS_BIN"
        )
        self.host = LOOPBACK
        self.port = 0
        self.data_dir = root / "storage"
        self.log_path = root / "victoria-metrics.log"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def _assign_ports(self) -> None:
        (self.port,) = free_ports(1)

    def _make_process(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y",  # test timestamps may be anywhere in the past
            "-loggerLevel=WARN",
            "-selfScrapeInterval=0",
        ]
        return ServerProcess(
            self.name, argv, self.log_path, lambda: _healthy(self.url), cwd=self.root
        )

    def force_flush(self) -> None:
        """``/internal/force_flush``: make recent writes searchable (not yet crash-safe)."""
        with urllib.request.urlopen(
            f"{self.url}/internal/force_flush", timeout=HTTP_TIMEOUT_S
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"force_flush answered {response.status}")

    def rows_on_disk(self) -> int:
        """Rows held in on-disk data parts (in-memory parts not counted).

        Reads each part's ``metadata.json`` (newer releases) or its directory name
        ``<rows>_<blocks>_…`` (1.79).
        """
        total = 0
        for size in ("small", "big"):
            for part in self.data_dir.glob(f"data/{size}/*/*"):
                metadata = part / "metadata.json"
                if metadata.is_file():
                    total += int(json.loads(metadata.read_text(encoding="utf-8"))["RowsCount"])
                elif (match := _PART_DIR_RE.match(part.name)) and part.is_dir():
                    total += int(match.group(1))
        return total

    def persist(self, rows: int, timeout_s: float = PERSIST_TIMEOUT_S) -> None:
        """Force a flush, then wait until at least ``rows`` rows are in on-disk parts.

        Afterwards a SIGKILL no longer loses them. Pass the total number of samples the
        instance has received (one per field per line of line protocol).
        """
        self.force_flush()
        deadline = time.monotonic() + timeout_s
        while (on_disk := self.rows_on_disk()) < rows:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {on_disk} of {rows} rows on disk after {timeout_s:.0f} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of the series matching ``match`` from ``/api/v1/export``.

        One dict per series: ``{"metric": {"__name__": …, labels…}, "values": […],
        "timestamps": [… ms]}``. Call :meth:`force_flush` first to see the latest writes.
        """
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(
            f"{self.url}/api/v1/export?{query}", timeout=HTTP_TIMEOUT_S
        ) as response:
            body = response.read().decode("utf-8")
        return [json.loads(line) for line in body.splitlines() if line.strip()]
