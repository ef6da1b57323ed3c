"""`shuxin sim …`: simulated stations for developers, integrators and tests.

``shuxin sim station`` runs a whole station — N simulated participants with their sensors and
simulated staff running protocols — through the real agent against a real broker, keeping its
outbox and state in ``--data`` so that a restarted station resumes where it stopped.

Argument handling only; the station itself is :mod:`shuxin.edge.sim_station`, imported inside
the handler so ``shuxin --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAULT_CHOICES = ("none", "light", "heavy")


def register(subparsers: Any) -> None:
    """Add the `sim` command group."""
    parser = subparsers.add_parser("sim", help="simulated stations (no hardware needed)")
    group = parser.add_subparsers(title="sim commands", metavar="ACTION")
    station = group.add_parser(
        "station",
        help="run a simulated station (participants, sensors, staff) against a broker",
        description=(
            "Run N simulated participants with simulated sensors through the real edge agent: "
            "sessions follow the chosen protocols, data goes through the durable outbox to the "
            "broker. Runs until --sessions sessions have ended (then drains the outbox and "
            "exits) or until interrupted. The password may also come from "
            "SHUXIN_EDGE_BROKER__PASSWORD."
        ),
    )
    station.add_argument(
        "--broker", required=True, metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT"
    )
    station.add_argument("--username", help="broker user (normally the station id)")
    station.add_argument("--password", help="broker password (or SHUXIN_EDGE_BROKER__PASSWORD)")
    station.add_argument(
        "--ca-file",
        type=Path,
        metavar="FILE",
        help="PEM CA bundle to verify an mqtts:// broker (default: the system CAs)",
    )
    station.add_argument(
        "--client-cert-file",
        type=Path,
        metavar="FILE",
        help="client certificate (PEM) for a broker that requires one",
    )
    station.add_argument(
        "--client-key-file", type=Path, metavar="FILE", help="the client certificate's key (PEM)"
    )
    station.add_argument("--station", required=True, help="station id, e.g. st-a")
    station.add_argument(
        "--subjects",
        type=int,
        default=2,
        metavar="N",
        help="simulated participants, each with their own devices (default 2)",
    )
    station.add_argument(
        "--protocol",
        action="append",
        metavar="ID",
        help="protocol id; repeat to cycle through several (default rest-resonance-recovery)",
    )
    station.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="K",
        help="station seconds per real second (default 1 = real time)",
    )
    station.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="DIR",
        help="outbox, session records and station state (reuse it to resume)",
    )
    station.add_argument(
        "--sessions",
        type=int,
        metavar="N",
        help="stop after N sessions in total (default: run until interrupted)",
    )
    station.add_argument("--seed", type=int, metavar="S", help="random seed (default: random)")
    station.add_argument(
        "--faults",
        choices=FAULT_CHOICES,
        default="none",
        help="fault injection preset for every device (default none)",
    )
    station.add_argument(
        "--devices",
        default="polar_h10,shuxin_gsr",
        metavar="PROFILES",
        help="device profiles per participant (polar_h10, hrs_strap, "
        "shuxin_gsr; default polar_h10,shuxin_gsr)",
    )
    station.add_argument(
        "--break-s",
        type=float,
        default=30.0,
        metavar="S",
        help="station seconds between a participant's sessions (default 30)",
    )
    station.add_argument(
        "--protocol-dir",
        type=Path,
        metavar="DIR",
        help="protocol YAML folder (default firmware_configs/protocols)",
    )
    station.add_argument(
        "--record",
        action="store_true",
        help="also write the notifications to DIR/recordings/*.jsonl",
    )
    station.add_argument(
        "--upload-ecg",
        action="store_true",
        help="upload the H10's raw ECG (off by default: raw stays on the edge)",
    )
    station.add_argument(
        "--progress-s",
        type=float,
        default=2.0,
        metavar="S",
        help="real seconds between progress lines (default 2)",
    )
    station.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    station.set_defaults(handler=_station)
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])


def _station(args: argparse.Namespace) -> int:
    from shuxin.edge.errors import EdgeError
    from shuxin.edge.sim_station import SimStationOptions, run_sim_station
    from shuxin.runtime.entry import configure_logging, run_service

    configure_logging(args.verbose)
    for name, value, low in (("--subjects", args.subjects, 1), ("--sessions", args.sessions, 0)):
        if value is not None and value < low:
            print(f"shuxin sim station: {name} must be at least {low}", file=sys.stderr)
            return 2
    if args.subjects > 32:
        print("shuxin sim station: at most 32 --subjects", file=sys.stderr)
        return 2
    opts = SimStationOptions(
        station=args.station,
        broker_url=args.broker,
        username=args.username,
        password=args.password,
        ca_file=args.ca_file,
        client_cert_file=args.client_cert_file,
        client_key_file=args.client_key_file,
        data_dir=args.data,
        subjects=args.subjects,
        protocols=tuple(args.protocol or ("rest-resonance-recovery",)),
        time_scale=args.time_scale,
        sessions=args.sessions,
        seed=args.seed,
        faults=args.faults,
        devices=tuple(d.strip() for d in args.devices.split(",") if d.strip()),
        break_s=args.break_s,
        record=args.record,
        protocol_dir=args.protocol_dir,
        upload_ecg=args.upload_ecg,
    )

    def progress(line: str) -> None:
        print(line, flush=True)

    async def main() -> None:
        await run_sim_station(opts, progress=progress, progress_every_s=args.progress_s)

    try:
        return run_service(main)
    except EdgeError as exc:
        print(f"shuxin sim station: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``shuxin sim …`` without the rest of the CLI (for scripts and tests)."""
    parser = argparse.ArgumentParser(prog="shuxin")
    register(parser.add_subparsers())
    args = parser.parse_args(["sim", *(sys.argv[1:] if argv is None else argv)])
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
