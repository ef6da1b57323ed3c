"""`shuxin gateway …`: run central ingest; argument handling only.

Heavy imports happen inside the handlers so `shuxin --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
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
    run.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://HOST:PORT or mqtts://HOST:PORT (default mqtt://127.0.0.1:1883)",
    )
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
    run.add_argument(
        "--tls-ca-file",
        type=Path,
        metavar="FILE",
        help="PEM CA bundle to verify an mqtts:// broker (default: the system CAs)",
    )
    run.add_argument(
        "--tls-cert-file", type=Path, metavar="FILE", help="client certificate (PEM), if required"
    )
    run.add_argument(
        "--tls-key-file", type=Path, metavar="FILE", help="the client certificate's key (PEM)"
    )
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
    _register_lifecycle(group)
    _register_grid(group)
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
            "tls_ca_file": getattr(args, "tls_ca_file", None),
            "tls_cert_file": getattr(args, "tls_cert_file", None),
            "tls_key_file": getattr(args, "tls_key_file", None),
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


# --- data lifecycle: purge, withdraw, export-subject (shuxin.gateway.lifecycle) -----------------


def _store_flags(parser: Any) -> None:
    parser.add_argument("--tsdb", metavar="URL", help="as for `gateway run`")
    parser.add_argument("--sql", metavar="URL", help="as for `gateway run`")
    parser.add_argument("--data", type=Path, metavar="DIR", help="as for `gateway run`")
    parser.add_argument("--env-file", type=Path, help="read SHUXIN_GATEWAY_* settings")


def _actor_flags(parser: Any) -> None:
    parser.add_argument(
        "--actor", help="who does this, for the audit log (default: cli:<login name>)"
    )
    parser.add_argument("--purpose", required=True, help="why, for the audit log")


def _register_lifecycle(group: Any) -> None:
    purge = group.add_parser(
        "purge",
        help="delete data older than the retention settings allow",
        description=(
            "Delete raw beats and samples, derived metrics, summaries and curves, quarantined "
            "messages and audit entries older than the SHUXIN_RETENTION_* settings allow, "
            "and report what went per kind. See docs/data-lifecycle.md."
        ),
    )
    _store_flags(purge)
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.set_defaults(handler=_purge)
    withdraw = group.add_parser(
        "withdraw",
        help="consent withdrawal: delete or anonymise a subject's data everywhere",
        description=(
            "Delete (or anonymise) everything held about SUBJECT in the time-series and SQL "
            "stores. The consent records and the audit trail stay. Idempotent."
        ),
    )
    withdraw.add_argument("subject", metavar="SUBJECT", help="pseudonymous subject code")
    withdraw.add_argument("--mode", choices=("delete", "anonymise"), required=True)
    _actor_flags(withdraw)
    _store_flags(withdraw)
    withdraw.set_defaults(handler=_withdraw)
    export = group.add_parser(
        "export-subject",
        help="write everything held about one subject to a zip file (audited)",
    )
    export.add_argument("subject", metavar="SUBJECT", help="pseudonymous subject code")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
    export.add_argument(
        "--include-identity",
        action="store_true",
        help="include the decrypted real identity (audited as a reveal)",
    )
    _actor_flags(export)
    _store_flags(export)
    export.set_defaults(handler=_export_subject)


def _actor(args: argparse.Namespace) -> Any:
    import getpass

    from shuxin.gateway.sql_store import Actor

    if args.actor:
        return Actor(args.actor)
    try:
        login = getpass.getuser()
    except (OSError, KeyError):
        login = "unknown"
    return Actor(f"cli:{login}"[:64])


def _open_stores(args: argparse.Namespace, command: str) -> Any:
    """(settings, tsdb, sql) from flags, or None after printing why."""
    from shuxin.gateway.errors import GatewayError
    from shuxin.gateway.service import open_store
    from shuxin.gateway.sql_errors import SqlStoreError
    from shuxin.gateway.sql_store import open_store as open_sql_store

    settings = _settings(args)
    if settings is None:
        return None
    try:
        tsdb = open_store(settings)
    except (GatewayError, ValueError, OSError) as exc:
        print(f"shuxin gateway {command}: {exc}", file=sys.stderr)
        return None
    try:
        sql = open_sql_store(settings.sql, settings.data_dir)
    except (SqlStoreError, GatewayError, ValueError, OSError) as exc:
        tsdb.close()
        print(f"shuxin gateway {command}: {exc}", file=sys.stderr)
        return None
    return settings, tsdb, sql


def _purge(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from shuxin.gateway.lifecycle import LifecycleError, RetentionSettings, purge
    from shuxin.gateway.quarantine import SqliteQuarantine

    try:
        retention = RetentionSettings(_env_file=args.env_file)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"shuxin gateway purge: retention {where}: {message}", file=sys.stderr)
        return 2
    opened = _open_stores(args, "purge")
    if opened is None:
        return 2
    settings, tsdb, sql = opened
    quarantine_path = settings.data_dir / "quarantine.sqlite3"
    quarantine = SqliteQuarantine(quarantine_path) if quarantine_path.exists() else None
    try:
        report = purge(
            retention, sql=sql, tsdb=tsdb, quarantine_file=quarantine, dry_run=args.dry_run
        )
    except LifecycleError as exc:
        print(f"shuxin gateway purge: {exc}", file=sys.stderr)
        return 1
    finally:
        if quarantine is not None:
            quarantine.close()
        sql.close()
        tsdb.close()
    verb = "would delete" if report.dry_run else "deleted"
    for line in report.lines:
        if line.cutoff is None:
            print(f"{line.kind.value:<16} kept (no retention limit)")
            continue
        count = "an uncounted number of" if line.count is None else str(line.count)
        print(f"{line.kind.value:<16} {verb} {count} before {line.cutoff.isoformat()}")
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    from shuxin.gateway.lifecycle import LifecycleError, WithdrawalMode, withdraw_subject

    opened = _open_stores(args, "withdraw")
    if opened is None:
        return 2
    _settings_used, tsdb, sql = opened
    try:
        report = withdraw_subject(
            args.subject,
            WithdrawalMode(args.mode),
            sql=sql,
            tsdb=tsdb,
            actor=_actor(args),
            purpose=args.purpose,
        )
    except LifecycleError as exc:
        print(f"shuxin gateway withdraw: {exc}", file=sys.stderr)
        return 1
    finally:
        sql.close()
        tsdb.close()
    points = "uncounted" if report.points is None else str(report.points)
    rows = ", ".join(f"{name} {count}" for name, count in report.sql.items())
    print(f"{args.subject}: {report.mode.value}; SQL rows: {rows}; time-series points: {points}")
    if report.sessions_without_time:
        print(
            f"{report.sessions_without_time} session(s) had no time range: their points "
            "could not be located",
            file=sys.stderr,
        )
    return 0


def _export_subject(args: argparse.Namespace) -> int:
    from shuxin.gateway.lifecycle import LifecycleError, export_subject

    opened = _open_stores(args, "export-subject")
    if opened is None:
        return 2
    _settings_used, tsdb, sql = opened
    try:
        report = export_subject(
            args.subject,
            args.out,
            sql=sql,
            tsdb=tsdb,
            actor=_actor(args),
            purpose=args.purpose,
            include_identity=args.include_identity,
        )
    except LifecycleError as exc:
        print(f"shuxin gateway export-subject: {exc}", file=sys.stderr)
        return 1
    finally:
        sql.close()
        tsdb.close()
    print(f"wrote {report.path} ({len(report.files)} files)")
    return 0


def _register_grid(group: Any) -> None:
    add_unit = group.add_parser(
        "add-unit",
        help="add an org unit (支队 detachment, 大队 brigade or 站 station) to the grid",
        description=(
            "Add an org unit to the SQL store. A detachment has no parent; a brigade's parent "
            "is a detachment, a station's a brigade. Dashboard users are attached to units."
        ),
    )
    add_unit.add_argument("kind", choices=("detachment", "brigade", "station"))
    add_unit.add_argument("code", help="unique code, e.g. ZD-01, DD-01, ZN-st-a")
    add_unit.add_argument("name", help="display name (Chinese), e.g. 一大队")
    add_unit.add_argument("--parent", metavar="CODE", help="the parent unit's code")
    _store_flags(add_unit)
    add_unit.set_defaults(handler=_add_unit)
    add_station = group.add_parser(
        "add-station",
        help="register a relief station (its MQTT id) at a station org unit",
        description=(
            "Register a relief station so the gateway accepts its messages, then run "
            "`shuxin broker config` to give it broker credentials."
        ),
    )
    add_station.add_argument("station", help="station id as in MQTT topics, e.g. st-a")
    add_station.add_argument("--unit", required=True, metavar="CODE", help="station org unit")
    add_station.add_argument("--name", required=True, help="display name, e.g. 甲站")
    _store_flags(add_station)
    add_station.set_defaults(handler=_add_station)
    units = group.add_parser("list-units", help="print the org units (the 支队-大队-站 grid)")
    _store_flags(units)
    units.set_defaults(handler=_list_units)


def _open_sql(args: argparse.Namespace, command: str) -> Any:
    from shuxin.gateway.sql_errors import SqlStoreError
    from shuxin.gateway.sql_store import open_store as open_sql_store

    settings = _settings(args)
    if settings is None:
        return None
    try:
        return open_sql_store(settings.sql, settings.data_dir)
    except (SqlStoreError, ValueError, OSError) as exc:
        print(f"shuxin gateway {command}: {exc}", file=sys.stderr)
        return None


def _with_sql(args: argparse.Namespace, command: str, action: Callable[[Any], str]) -> int:
    """Open the SQL store, run ``action`` on it and print what it returns; a store error is
    printed and exits 1, unusable settings exit 2."""
    from shuxin.gateway.sql_errors import SqlStoreError

    sql = _open_sql(args, command)
    if sql is None:
        return 2
    try:
        output = action(sql)
    except SqlStoreError as exc:
        print(f"shuxin gateway {command}: {exc}", file=sys.stderr)
        return 1
    finally:
        sql.close()
    if output:
        print(output)
    return 0


def _add_unit(args: argparse.Namespace) -> int:
    from shuxin.gateway.sql_models import OrgUnitKind

    def add(sql: Any) -> str:
        parent = sql.get_org_unit_by_code(args.parent).id if args.parent else None
        unit = sql.create_org_unit(OrgUnitKind(args.kind), args.code, args.name, parent)
        return f"added {unit.kind.value} {unit.code} ({unit.name_zh}), id {unit.id}"

    return _with_sql(args, "add-unit", add)


def _add_station(args: argparse.Namespace) -> int:
    def add(sql: Any) -> str:
        unit = sql.get_org_unit_by_code(args.unit)
        station = sql.register_station(args.station, org_unit_id=unit.id, display_name=args.name)
        return f"registered station {station.id} at {unit.code}"

    return _with_sql(args, "add-station", add)


def _list_units(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from shuxin.gateway.sql_models import OrgUnitRow

    def listing(sql: Any) -> str:
        with sql.engine.connect() as db:
            roots = list(db.scalars(select(OrgUnitRow.id).where(OrgUnitRow.parent_id.is_(None))))
        return "\n".join(
            f"{unit.id}\t{unit.kind.value}\t{unit.code}\t{unit.name_zh}"
            for root in roots
            for unit in sql.subtree(root)
        )

    return _with_sql(args, "list-units", listing)
