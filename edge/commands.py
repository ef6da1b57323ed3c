"""`shuxin edge …`: the station edge agent (BLE sensors, simulator, sessions, outbox).

``shuxin edge run --config FILE`` runs a real station from a station config file (YAML, see
``docs/edge.md``). Argument handling only; heavy imports happen inside handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `edge` command group."""
    parser = subparsers.add_parser(
        "edge", help="the station edge agent (BLE sensors, simulator, sessions, outbox)"
    )
    group = parser.add_subparsers(title="edge commands", metavar="ACTION")
    run = group.add_parser(
        "run",
        help="run the station agent from a station config file",
        description=(
            "Run the edge agent: read the sensors listed in the config, run sessions, and "
            "publish everything through the durable outbox. The broker password comes from "
            "SHUXIN_EDGE_BROKER__PASSWORD or broker.password_file, never from the config file."
        ),
    )
    run.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="station config (YAML), e.g. firmware_configs/stations/*.yaml",
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="validate the config and exit (0 when the agent could start)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(handler=_run)
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])


def _run(args: argparse.Namespace) -> int:
    from shuxin.edge.agent import build_agent
    from shuxin.edge.errors import EdgeError
    from shuxin.edge.settings import ble_available, check_settings, load_settings
    from shuxin.runtime.entry import configure_logging, run_service

    configure_logging(args.verbose)
    try:
        resolved = check_settings(load_settings(args.config))
    except EdgeError as exc:
        print(f"shuxin edge run: {exc}", file=sys.stderr)
        return 2
    settings = resolved.settings
    lines = [
        f"station {settings.station} → {settings.broker.url} as {settings.broker.username or '-'}",
        f"data {settings.data_dir}; {len(resolved.protocols)} protocols; "
        f"time ×{settings.time_scale:g}; BLE support "
        f"{'installed' if ble_available() else 'not installed'}",
    ]
    for device in settings.devices:
        kind = "simulated" if device.sim is not None else f"BLE {device.address}"
        lines.append(f"device {device.id}: {device.profile} ({kind})")
    print("\n".join(lines), file=sys.stderr)
    if args.check:
        return 0

    async def main() -> None:
        agent = build_agent(resolved)
        try:
            await agent.run()
        finally:
            agent.close()

    try:
        return run_service(main)
    except EdgeError as exc:
        print(f"shuxin edge run: {exc}", file=sys.stderr)
        return 2
