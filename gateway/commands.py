"""`shuxin gateway …`: central ingest (MQTT → time-series and SQL stores).

Argument handling only; heavy imports happen inside handlers.
"""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add the `gateway` command group."""
    parser = subparsers.add_parser(
        "gateway", help="central ingest (MQTT → time-series and SQL stores)"
    )
    parser.add_subparsers(title="gateway commands", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])
