"""The `shuxin` console command: one dispatcher, one sub-command group per component.

Each component contributes its sub-commands through a small ``register(subparsers)`` function
kept in a light module, so ``shuxin --help`` stays fast; heavy imports (numpy, paho, FastAPI)
happen inside the handler that needs them. This module must not hold component logic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from shuxin.cli import analyze_cmd, contract_cmd, demo_cmd
from shuxin.dashboard_api import commands as api_commands
from shuxin.edge import ble_commands, sim_commands
from shuxin.edge import commands as edge_commands
from shuxin.gateway import broker_commands
from shuxin.gateway import commands as gateway_commands

Handler = Callable[[argparse.Namespace], int]

# Component groups, in the order `shuxin --help` lists them. Each module exposes
# `register(subparsers) -> None` and sets `handler` defaults on the parsers it adds.
_REGISTRARS = (
    demo_cmd.register,
    analyze_cmd.register,
    edge_commands.register,
    ble_commands.register,
    sim_commands.register,
    gateway_commands.register,
    broker_commands.register,
    api_commands.register,
    contract_cmd.register,
)


def version_string() -> str:
    """Return the installed distribution version, or a clear marker when running from source."""
    try:
        return metadata.version("shuxin")
    except metadata.PackageNotFoundError:
        return "0+unknown (not installed; run scripts/test.sh or pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser for the `shuxin` command."""
    parser = argparse.ArgumentParser(
        prog="shuxin",
        description=(
            "舒心驿站 shuxin — relief-station biofeedback: edge agent, gateway, signal core "
            "and counselor dashboard."
        ),
    )
    parser.add_argument("--version", action="version", version=f"shuxin {version_string()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in _REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `shuxin` command and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return handler(args)


def component_main(group: str, argv: Sequence[str] | None = None) -> int:
    """Entry for ``python -m shuxin.<component>``: the same as ``shuxin <group> …``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return main([group, *args])
