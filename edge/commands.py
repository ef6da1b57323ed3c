"""`shuxin edge …`: the station edge agent (BLE sensors, simulator, sessions, outbox).

Argument handling only; heavy imports happen inside handlers.
"""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add the `edge` command group."""
    parser = subparsers.add_parser(
        "edge", help="the station edge agent (BLE sensors, simulator, sessions, outbox)"
    )
    parser.add_subparsers(title="edge commands", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])
