"""``shuxin api run --workers 2``: two worker processes serve one port over one SQLite store.

The parent migrates the store once and supervises; each worker builds its app from the same
flags. A counselor logs in and lists sessions (a token issued by one worker is accepted by
whichever answers next: they share the token secret), every request is audited in the one
store, and SIGTERM stops the parent and its workers with exit status 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shuxin.dashboard_api.auth import hash_password
from shuxin.dashboard_api.commands import _listening_socket
from shuxin.gateway.sql_models import OrgUnitKind, Role
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import open_store

pytestmark = pytest.mark.integration

SECRET = "workers-test-secret-" + "w" * 30
PASSWORD = "workers pass 1234 horse"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_two_workers_serve_one_store_and_stop_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "api"
    data.mkdir()
    url = f"sqlite:///{data / 'shuxin.sqlite3'}"
    store = open_store(SqlSettings(url=url), data)
    try:
        root = store.create_org_unit(OrgUnitKind.DETACHMENT, "ZD", "一支队", None)
        store.create_user(
            "counselor",
            role=Role.COUNSELOR,
            org_unit_id=root.id,
            password_hash=hash_password(PASSWORD),
        )
        audited_before = len(store.audit_entries(limit=1000))
    finally:
        store.close()
    port = _free_port()
    log_path = tmp_path / "api.log"
    argv = [sys.executable, "-m", "shuxin.cli", "api", "run", "--workers", "2"]
    argv += ["--port", str(port), "--sql", url, "--data", str(data)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            env={**os.environ, "SHUXIN_API_TOKEN_SECRET": SECRET},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    workers = _children(process.pid)
                    if len(workers) >= 2:
                        break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "counselor", "password": PASSWORD},
            timeout=10,
        ).json()["access_token"]
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            for _ in range(6):  # new connections: the kernel spreads them over the workers
                response = client.get(f"{base}/api/v1/sessions", headers={"Connection": "close"})
                assert response.status_code == 200, response.text
                assert response.json()["count"] == 0
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        status: int | None
        try:
            status = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            status = None
    assert status == 0, log_path.read_text()
    assert len(workers) >= 2
    # The workers (and multiprocessing's resource tracker, also a child) end with the parent;
    # the tracker notices its parent is gone a moment later.
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    store = open_store(SqlSettings(url=url), data)
    try:
        listed = [e for e in store.audit_entries(limit=1000) if e.action == "session.list"]
        assert len(listed) == 6
        assert len(store.audit_entries(limit=1000)) > audited_before
    finally:
        store.close()


def test_the_shared_socket_gets_tcp_nodelay_connections() -> None:
    """asyncio sets TCP_NODELAY on accepted connections only when the listening socket says
    IPPROTO_TCP (uvicorn's own ``bind_socket`` does not; each small response then waited for
    the client's delayed ACK, ~40 ms)."""
    sock = _listening_socket("127.0.0.1", 0)
    nodelay: list[int] = []

    async def main() -> None:
        accepted = asyncio.Event()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                connection = transport.get_extra_info("socket")
                nodelay.append(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()
                accepted.set()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            await asyncio.wait_for(accepted.wait(), 10)
            writer.close()
            await writer.wait_closed()

    try:
        assert sock.proto == socket.IPPROTO_TCP
        asyncio.run(main())
    finally:
        sock.close()
    assert len(nodelay) == 1
    assert nodelay[0] != 0
