"""`shuxin analyze`: HRV / EDA / biofeedback metrics for recorded files (filled in by issue 3)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add the `analyze` command."""
    parser = subparsers.add_parser("analyze", help="analyse RR / ECG / PPG / EDA files")
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])
