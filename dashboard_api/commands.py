"""`shuxin api …`: the counselor dashboard API and web UI.

Argument handling only; heavy imports happen inside handlers so `shuxin --help` stays fast.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

ROLES = ("station_staff", "counselor", "programme_lead", "commander", "admin", "auditor")


def register(subparsers: Any) -> None:
    """Add the `api` command group."""
    parser = subparsers.add_parser("api", help="the counselor dashboard API and web UI")
    group = parser.add_subparsers(title="api commands", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])

    run = group.add_parser(
        "run",
        help="serve the API and the web UI",
        description=(
            "Serve the dashboard API and web UI. Settings come from these flags or from "
            "SHUXIN_API_* / SHUXIN_SQL_* environment variables (--env-file reads a file); "
            "flags win. SHUXIN_API_TOKEN_SECRET is required outside demo mode."
        ),
    )
    run.add_argument("--host", help="listen address (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default 8000)")
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help=(
            "worker processes sharing the port (default 1); each has its own connections, "
            "and /metrics counts the requests of the worker that answers it"
        ),
    )
    _store_flags(run)
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(handler=_run)

    create = group.add_parser(
        "create-user",
        help="add a dashboard user",
        description=(
            "Add a user with a role, attached to an org unit (their scope). The password is "
            "read from the environment variable --password-env names, else asked for."
        ),
    )
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--org-unit", required=True, metavar="CODE", help="org unit code")
    create.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    _store_flags(create)
    create.set_defaults(handler=_create_user)


#: Environment variable that hands the store flags of ``api run --workers N`` to the workers.
WORKER_ARGS_ENV = "SHUXIN_WORKER_API_RUN_ARGS"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sql", metavar="URL", help="SQLAlchemy URL (default: SQLite in --data)")
    parser.add_argument("--tsdb", metavar="URL", help="time-series store URL, as for `gateway run`")
    parser.add_argument("--data", type=Path, metavar="DIR", help="data directory")
    parser.add_argument("--env-file", type=Path, help="read SHUXIN_API_* settings from a file")


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from pydantic import ValidationError

    from shuxin.dashboard_api.settings import ApiSettings
    from shuxin.gateway.sql_settings import SqlSettings

    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if args.data is not None:
        overrides["data_dir"] = args.data
    if args.tsdb is not None:
        overrides["tsdb_url"] = args.tsdb
    try:
        if args.sql is not None:
            overrides["sql"] = SqlSettings(url=args.sql)
        env_file = args.env_file
        if env_file is not None and not env_file.is_file():
            raise SystemExit(f"shuxin api: no such env file: {env_file}")
        return ApiSettings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise SystemExit(f"shuxin api: invalid settings ({where}): {first.get('msg')}") from exc


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from shuxin.dashboard_api.app import create_app
    from shuxin.runtime.entry import configure_logging
    from shuxin.runtime.uvicorn_server import GracefulServer

    configure_logging(args.verbose)
    settings = _settings(args, host=args.host, port=args.port)
    if args.workers == 1:
        app = create_app(settings)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="info", access_log=False
        )
        GracefulServer(config).run()
        return 0
    return _run_workers(args, settings)


def _run_workers(args: argparse.Namespace, settings: Any) -> int:
    """``--workers N``: migrate once here, then N uvicorn worker processes (spawned; each
    builds its app with :func:`worker_app` from the same flags) share one listening socket."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from shuxin.gateway.sql_store import open_store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    open_store(settings.sql, settings.data_dir).close()  # migrations run once, not per worker
    os.environ[WORKER_ARGS_ENV] = json.dumps(
        {
            "sql": args.sql,
            "tsdb": args.tsdb,
            "data": None if args.data is None else str(args.data),
            "env_file": None if args.env_file is None else str(args.env_file),
        }
    )
    config = uvicorn.Config(
        "shuxin.dashboard_api.commands:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
    )
    Multiprocess(config, sockets=[_listening_socket(settings.host, settings.port)]).run()
    return 0


def _listening_socket(host: str, port: int) -> socket.socket:
    """The workers' shared TCP socket. Unlike ``uvicorn.Config.bind_socket`` it states the
    protocol (``IPPROTO_TCP``): asyncio sets ``TCP_NODELAY`` on accepted connections only
    when the socket says TCP, and without it every small response waits ~40 ms for the
    client's delayed ACK (Nagle)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"shuxin api: cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def worker_app() -> Any:
    """The app of one ``api run --workers N`` worker process (a uvicorn factory): the
    parent's store flags from :data:`WORKER_ARGS_ENV`; the rest of the settings from the
    environment the worker inherited, as in the parent."""
    from shuxin.dashboard_api.app import create_app

    flags = json.loads(os.environ[WORKER_ARGS_ENV])
    args = argparse.Namespace(
        sql=flags["sql"],
        tsdb=flags["tsdb"],
        data=None if flags["data"] is None else Path(flags["data"]),
        env_file=None if flags["env_file"] is None else Path(flags["env_file"]),
    )
    return create_app(_settings(args))


def _create_user(args: argparse.Namespace) -> int:
    from shuxin.dashboard_api.auth import PasswordPolicyError, check_password_policy, hash_password
    from shuxin.gateway.sql_errors import SqlStoreError
    from shuxin.gateway.sql_models import Role
    from shuxin.gateway.sql_store import Actor, open_store

    settings = _settings(args)
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            print(f"shuxin api: ${args.password_env} is empty or unset", file=sys.stderr)
            return 2
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    try:
        check_password_policy(password, demo_mode=settings.demo_mode)
    except PasswordPolicyError as exc:
        print(f"shuxin api: {exc}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.sql, settings.data_dir)
    try:
        unit = store.get_org_unit_by_code(args.org_unit)
        user = store.create_user(
            args.username,
            role=Role(args.role),
            org_unit_id=unit.id,
            password_hash=hash_password(password),
        )
        store.append_audit(
            actor=Actor("cli:api"),
            action="user.create",
            resource=f"user:{user.username}",
            purpose="administration",
        )
    except SqlStoreError as exc:
        print(f"shuxin api: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"created {user.username} ({user.role.value}) at {unit.code}")
    return 0
