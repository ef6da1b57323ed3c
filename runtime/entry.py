"""Running an asyncio service from a command: one loop, clean stop on Ctrl-C or SIGTERM.

``run_service(main)`` runs ``main()`` on a fresh event loop and cancels it on SIGINT or
SIGTERM, so every ``async with`` unwinds (connections close, the last will is not sent for a
clean stop, files are flushed) and the command exits 0. It configures logging for the process
(plain text to stderr; never personal data — the contract keeps it out of messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG when ``verbose``); quiet the chatty libraries."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("amqtt", "transitions", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiomqtt ("mqtt") warns whenever more than ten publishes are pending, which a publisher
    # with a deliberate in-flight window does all the time.
    logging.getLogger("mqtt").setLevel(logging.ERROR)


def run_service(main: Callable[[], Awaitable[None]]) -> int:
    """Run ``main()`` until it returns or the process is asked to stop; return an exit code."""

    async def runner() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner())
    return 0
