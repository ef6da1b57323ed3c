"""Child-process plumbing shared by the test servers: binaries, free ports, start/stop/kill.

A :class:`ServerProcess` runs one server binary with its output in a log file, waits for a
readiness probe with a deadline (raising :class:`ServerStartError` with the log tail on failure),
stops with SIGTERM then SIGKILL after a grace period, and can SIGKILL on demand. Every child gets
``PR_SET_PDEATHSIG`` on Linux and is registered for an ``atexit`` kill, so a crashed pytest leaves
no server behind. The skip/fail policy (:func:`unavailable`) lives here too.

This module knows nothing about any particular server and never touches the system services or
their default ports and directories.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

LOOPBACK = "127.0.0.1"
#: Seconds a server gets to become ready before the start counts as failed.
STARTUP_TIMEOUT_S = 30.0
#: Seconds between SIGTERM and SIGKILL on stop.
STOP_GRACE_S = 10.0
#: Phrase every server here logs when its port is taken (the free-port race).
ADDRESS_IN_USE = "address already in use"

_PR_SET_PDEATHSIG = 1
_live: set[ServerProcess] = set()


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- log tail ---\n{log_tail}")
        self.log_tail = log_tail

    @property
    def port_taken(self) -> bool:
        """True when the server failed because its port was already bound."""
        return ADDRESS_IN_USE in self.log_tail.lower()


class ServerUnavailable(RuntimeError):
    """The server cannot run on this machine (binary missing or unusable)."""


def in_ci() -> bool:
    """True when ``CI`` is ``true`` or ``1`` (any case): missing servers fail instead of skip."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def unavailable(reason: str) -> NoReturn:
    """Skip the requesting test with ``reason``; under CI fail it loudly instead."""
    if in_ci():
        pytest.fail(f"[CI] required server unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def find_binary(name: str, debian_package: str, env_var: str) -> str:
    """Return the path of ``name``: ``$env_var`` if set, else PATH, /usr/sbin, /usr/bin.

    Raises
    ------
    ServerUnavailable
        Not found (the message names the Debian package), or ``$env_var`` is not executable.
    """
    override = os.environ.get(env_var)
    if override:
        if Path(override).is_file() and os.access(override, os.X_OK):
            return override
        raise ServerUnavailable(f"{env_var}={override} is not an executable file")
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServerUnavailable(
        f"{name} not found: install the Debian package '{debian_package}' "
        f"(apt-get install {debian_package}; scripts/test.sh does it as root) "
        f"or point {env_var} at the binary"
    )


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback ports that were free a moment ago.

    All sockets stay open until every port is chosen, so the ports differ; another process can
    still take one before the server binds it, which callers handle by retrying on new ports.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL me when my parent thread ends."""
    assert _LIBC is not None
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerProcess:
    """One server child process: its command line, log file and readiness probe."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        ready: Callable[[], bool],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._ready = ready
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._starts = 0
        #: Exit status of the last run that ended (negative: killed by that signal).
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running child, or None."""
        return self._popen.pid if self.running and self._popen is not None else None

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._popen is not None and self._popen.poll() is None

    def start(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Start the child and wait until the readiness probe passes.

        Raises
        ------
        ServerStartError
            The child exited or the probe did not pass before ``timeout_s``; the child is
            killed and the message carries the log tail.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        if self._popen is not None:  # exited on its own since the last call
            self._reap()
        self._starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== shuxin test fixture: start #{self._starts}: {self.argv}\n".encode())
            log.flush()
            # PDEATHSIG follows the thread that forks; only use it from the main thread, whose
            # end is the end of pytest.
            on_main = threading.current_thread() is threading.main_thread()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, not servers
                preexec_fn=_die_with_parent if on_main and _LIBC is not None else None,  # noqa: PLW1509
            )
        _live.add(self)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._popen is not None
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            code = self._popen.poll()
            if code is not None:
                self._reap()
                raise ServerStartError(f"{self.name} exited with code {code}", self.log_tail())
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self._ready():
                    return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} not ready within {timeout_s:.0f} s", self.log_tail()
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL. Safe to call when not running."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._popen.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the child (a crash: no shutdown work) and reap it."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.kill()
        self._reap()

    def _reap(self) -> None:
        assert self._popen is not None
        self.exit_code = self._popen.wait()
        self._popen = None
        _live.discard(self)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log file."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_live):
        process.kill()


class ServerHandle:
    """Base of the server handles: one data directory, fixed ports after the first start.

    Subclasses pick their ports in :meth:`_assign_ports` and write their config and build the
    :class:`ServerProcess` in :meth:`_make_process`. A *shared* handle (a session fixture used by
    many tests) refuses :meth:`start`, :meth:`stop` and :meth:`kill`: fault tests take their own
    instance from the ``*_factory`` fixtures.
    """

    name = "server"

    def __init__(self, root: Path, *, shared: bool) -> None:
        self.root = root
        self.shared = shared
        self._process: ServerProcess | None = None

    def _assign_ports(self) -> None:
        raise NotImplementedError

    def _make_process(self) -> ServerProcess:
        raise NotImplementedError

    def launch(self, attempts: int = 3) -> None:
        """First start: fresh free ports, retried on new ports if one was taken meanwhile."""
        for attempt in range(1, attempts + 1):
            self._assign_ports()
            self._process = self._make_process()
            try:
                self._process.start()
            except ServerStartError as exc:
                if exc.port_taken and attempt < attempts:
                    continue
                raise
            return

    @property
    def process(self) -> ServerProcess:
        """The managed child process (after :meth:`launch`)."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was never launched")
        return self._process

    def _check_not_shared(self, action: str) -> None:
        if self.shared:
            raise RuntimeError(
                f"{action} on the shared session {self.name} would disturb other tests; "
                f"take a private instance from the {self.name}_factory fixture"
            )

    def start(self) -> None:
        """Start again on the same port(s) and data directory, and wait until ready."""
        self._check_not_shared("start()")
        self.process.start()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Clean shutdown: SIGTERM, then SIGKILL after ``grace_s``."""
        self._check_not_shared("stop()")
        self.process.stop(grace_s)

    def kill(self) -> None:
        """Crash: SIGKILL, no shutdown work."""
        self._check_not_shared("kill()")
        self.process.kill()

    def close(self) -> None:
        """Final cleanup by the fixture (allowed on shared handles)."""
        if self._process is not None:
            self._process.stop()

    @property
    def pid(self) -> int | None:
        """PID of the running server, or None."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.running

    @property
    def exit_code(self) -> int | None:
        """Exit status of the last run that ended (``-9`` after :meth:`kill`)."""
        return self._process.exit_code if self._process is not None else None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (for assertion messages)."""
        return self.process.log_tail(lines)
