"""`shuxin api …`: the counselor dashboard API and web UI.

Argument handling only; heavy imports happen inside handlers.
"""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add the `api` command group."""
    parser = subparsers.add_parser("api", help="the counselor dashboard API and web UI")
    parser.add_subparsers(title="api commands", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])
