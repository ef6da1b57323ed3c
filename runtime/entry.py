"""Running an asyncio service from a command: one loop, clean stop on Ctrl-C or SIGTERM.

``run_service(main)`` runs ``main()`` on a fresh event loop and cancels it on SIGINT or
SIGTERM, so every ``async with`` unwinds (connections close, the last will is not sent for a
clean stop, files are flushed) and the command exits 0. It configures logging for the process:
plain text to stderr by default, or one JSON object per line (``--log-format json`` or
``SHUXIN_LOG_FORMAT=json``) with ``ts``, ``level``, ``logger``, ``msg``, ``component`` and any
``extra=`` fields, for log shippers. It must never add personal data to a record: log lines
carry codes, counts and station ids only (the contract keeps names out of messages).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

LogFormat = Literal["plain", "json"]
#: Environment variable that selects the log format when no flag does.
LOG_FORMAT_ENV: Final = "SHUXIN_LOG_FORMAT"
PLAIN_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``,
    ``component``, then the record's ``extra=`` fields, then ``exc`` for an exception."""

    def __init__(self, component: str | None = None) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "component": self.component or _component_of(record.name),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _component_of(logger_name: str) -> str:
    """``shuxin.gateway.ingest`` → ``gateway``; a library logger keeps its top-level name."""
    parts = logger_name.split(".")
    if parts[0] == "shuxin" and len(parts) > 1:
        return parts[1]
    return parts[0] or "root"


def resolve_log_format(requested: str | None = None) -> LogFormat:
    """The flag's value if given, else ``SHUXIN_LOG_FORMAT``, else ``plain``."""
    value = (requested or os.environ.get(LOG_FORMAT_ENV) or "plain").strip().lower()
    if value == "json":
        return "json"
    if value == "plain":
        return "plain"
    raise ValueError(f"log format must be plain or json, got {value!r}")


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-format {plain,json}`` (default: ``SHUXIN_LOG_FORMAT`` or plain)."""
    parser.add_argument(
        "--log-format",
        choices=("plain", "json"),
        default=None,
        help=f"log line format (default: ${LOG_FORMAT_ENV} or plain)",
    )


def configure_logging(
    verbose: bool = False,
    log_format: str | None = None,
    *,
    component: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Log to stderr at INFO (DEBUG when ``verbose``); quiet the chatty libraries.

    ``log_format`` is ``plain`` or ``json`` (None: ``SHUXIN_LOG_FORMAT``, else plain);
    ``component`` names the process in JSON lines (default: from each logger's name).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if resolve_log_format(log_format) == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    # Like basicConfig always did here: a no-op when the root logger already has handlers.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
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
