"""A uvicorn server that treats SIGINT/SIGTERM as a normal, graceful stop.

uvicorn (≥ 0.29) re-raises a captured SIGTERM after its graceful shutdown, so the process ends
"killed by signal 15" even though it shut down cleanly. Services here exit 0 after a requested
stop (supervisors and tests tell a clean stop from a crash by that), so this subclass installs
uvicorn's own ``handle_exit`` for both signals and restores the previous handlers afterwards,
without re-raising. Nothing else about uvicorn changes. :class:`EmbeddedServer` is for a
process that handles signals itself and runs uvicorn as one task among others.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` whose stop on SIGINT/SIGTERM ends with exit status 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop gracefully on SIGINT/SIGTERM; do not re-raise the signal afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            signum: signal.signal(signum, self.handle_exit)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class EmbeddedServer(uvicorn.Server):
    """``uvicorn.Server`` for a process that owns its signal handling (the demo): installs no
    signal handlers; stop it by setting ``should_exit``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the process's signal handlers alone."""
        yield
