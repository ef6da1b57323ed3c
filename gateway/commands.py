"""`shuxin gateway …`: run central ingest; argument handling only.

Heavy imports happen inside the handlers so `shuxin --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `gateway` command group."""
    parser = subparsers.add_parser(
        "gateway", help="central ingest (MQTT → time-series and SQL stores)"
    )
    group = parser.add_subparsers(title="gateway commands", metavar="ACTION")
    run = group.add_parser(
        "run",
        help="subscribe to every station and store what arrives",
        description=(
            "Run one gateway replica. Settings come from these flags, from SHUXIN_GATEWAY_* "
            "environment variables, or from --env-file; flags win. Secrets (the broker "
            "password, an InfluxDB token) belong in the environment, not on the command line."
        ),
    )
    run.add_argument("--broker", metavar="URL", help="mqtt://HOST:PORT (default 127.0.0.1:1883)")
    run.add_argument("--username", help="broker user (default: gateway)")
    run.add_argument("--password", help="broker password (prefer SHUXIN_GATEWAY_PASSWORD)")
    run.add_argument(
        "--tsdb",
        metavar="URL",
        help="sqlite:///PATH | influxdb1://HOST:PORT/DB | influxdb2://HOST:PORT?org=&bucket=",
    )
    run.add_argument(
        "--sql", metavar="URL", help="SQLAlchemy URL of the SQL store (default: SQLite in --data)"
    )
    run.add_argument("--data", type=Path, metavar="DIR", help="spool, dedupe and quarantine")
    run.add_argument("--client-id", help="MQTT client id, fixed per replica")
    run.add_argument("--shared-group", help="MQTT 5 shared-subscription group ('' for plain)")
    run.add_argument("--mqtt-protocol", choices=("auto", "5", "3.1.1"))
    run.add_argument("--env-file", type=Path, help="read SHUXIN_GATEWAY_* settings from a file")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(handler=_run)
    reprocess = group.add_parser(
        "reprocess",
        help="recompute one session's summary from its stored beats and samples",
        description=(
            "Recompute and store the authoritative summary of one session from the raw data "
            "in the time-series and SQL stores (the same stores `gateway run` uses)."
        ),
    )
    reprocess.add_argument("session", metavar="SESSION", help="session id")
    reprocess.add_argument("--tsdb", metavar="URL", help="as for `gateway run`")
    reprocess.add_argument("--sql", metavar="URL", help="as for `gateway run`")
    reprocess.add_argument("--data", type=Path, metavar="DIR", help="as for `gateway run`")
    reprocess.add_argument("--env-file", type=Path, help="read SHUXIN_GATEWAY_* settings")
    reprocess.add_argument("--json", action="store_true", help="print the result as JSON")
    reprocess.set_defaults(handler=_reprocess)
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])


def _settings(args: argparse.Namespace) -> Any:
    """Build ``GatewaySettings`` from flags over env/file; print errors and return None."""
    from pydantic import ValidationError

    from shuxin.gateway.settings import GatewaySettings

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "broker_url": getattr(args, "broker", None),
            "username": getattr(args, "username", None),
            "password": getattr(args, "password", None),
            "tsdb_url": args.tsdb,
            "data_dir": args.data,
            "client_id": getattr(args, "client_id", None),
            "shared_group": getattr(args, "shared_group", None),
            "mqtt_protocol": getattr(args, "mqtt_protocol", None),
        }.items()
        if value is not None
    }
    if args.sql is not None:
        from shuxin.gateway.sql_settings import SqlSettings

        overrides["sql"] = SqlSettings(url=args.sql)
    try:
        return GatewaySettings(_env_file=args.env_file, **overrides)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"shuxin gateway: {where}: {message}", file=sys.stderr)
        return None


def _reprocess(args: argparse.Namespace) -> int:
    import json

    from shuxin.gateway.errors import GatewayError
    from shuxin.gateway.service import open_store
    from shuxin.gateway.sql_store import open_store as open_sql_store
    from shuxin.gateway.summaries import summarize_session

    settings = _settings(args)
    if settings is None:
        return 2
    try:
        tsdb = open_store(settings)
        sql = open_sql_store(settings.sql, settings.data_dir)
    except (GatewayError, ValueError, OSError) as exc:
        print(f"shuxin gateway reprocess: {exc}", file=sys.stderr)
        return 2
    try:
        result = summarize_session(args.session, sql, tsdb)
    except (GatewayError, ValueError) as exc:
        print(f"shuxin gateway reprocess: {exc}", file=sys.stderr)
        return 2
    finally:
        sql.close()
        tsdb.close()
    rows: list[dict[str, Any]] = [
        {"phase": p.name or "(whole session)", **p.metrics} for p in (*result.phases, result.whole)
    ]
    if args.json:
        document = {"session": args.session, "phases": rows, "deltas": result.deltas}
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return 0

    def shown(value: Any, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    for row in rows:
        print(
            f"{row['phase']:<18} HR {shown(row.get('mean_hr_bpm'), 1)} bpm  "
            f"RMSSD {shown(row.get('rmssd_ms'), 1)} ms  "
            f"coherence {shown(row.get('coherence_ratio'), 2)}"
        )
    print(f"stored summary of {args.session} ({len(rows)} rows)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from shuxin.gateway.service import build_gateway
    from shuxin.runtime.entry import configure_logging, run_service

    settings = _settings(args)
    if settings is None:
        return 2
    configure_logging(args.verbose)
    try:
        service = build_gateway(settings)
    except (ValueError, OSError) as exc:
        print(f"shuxin gateway: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        try:
            await service.run()
        finally:
            service.close()

    return run_service(main)
