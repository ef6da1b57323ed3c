"""`shuxin contract …`: export and check the JSON Schema of the v1 MQTT contract.

Only argument handling lives here; the schema itself comes from ``shuxin.contract.schema``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_SCHEMA_DIR = Path("docs/contract")


def register(subparsers: Any) -> None:
    """Add the `contract` command group."""
    parser = subparsers.add_parser(
        "contract", help="the v1 MQTT message contract (JSON Schema export and check)"
    )
    group = parser.add_subparsers(title="contract commands", metavar="ACTION")
    export = group.add_parser(
        "export-schema", help="write docs/contract/*.schema.json from the pydantic models"
    )
    export.add_argument(
        "--out", type=Path, default=DEFAULT_SCHEMA_DIR, help="output folder (docs/contract)"
    )
    export.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files on disk differ from the models",
    )
    export.set_defaults(handler=_export)
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])


def _export(args: argparse.Namespace) -> int:
    from shuxin.contract.schema import diff_schema_dir, write_schema_dir

    out: Path = args.out
    if args.check:
        stale = diff_schema_dir(out)
        if stale:
            print(
                "contract schema is stale: "
                + ", ".join(stale)
                + "\nrun: shuxin contract export-schema",
                file=sys.stderr,
            )
            return 1
        print(f"contract schema in {out} matches the models")
        return 0
    written = write_schema_dir(out)
    print(f"wrote {len(written)} schema files to {out}")
    return 0
