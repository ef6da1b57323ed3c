"""`shuxin broker …`: write a Mosquitto configuration with per-station credentials and ACL.

``shuxin broker config --out DIR`` renders ``mosquitto.conf``, ``acl`` and ``passwd`` into DIR
(via :mod:`shuxin.gateway.broker_config`) for the stations of the SQL registry (``--sql``) or an
explicit ``--stations`` list, plus one reader user for the gateway. Each user gets a random
password, written in plain text only to ``DIR/credentials`` (mode 0600); a later run keeps the
existing passwords and only creates ones for new users, or for ``--rotate STATION``. With a SQL
store, the station's ``$7$`` hash and rotation time are recorded (``set_station_credential``).

This module never prints a password unless ``--show`` is given, never starts the broker and
never deletes a user's password except the one being rotated.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from shuxin.gateway.broker_config import (
    BrokerConfigError,
    MosquittoConfig,
    TlsFiles,
    hash_password,
    render_acl,
    render_mosquitto_conf,
    validate_station_id,
    validate_username,
    verify_password,
)

CONF_NAME: Final = "mosquitto.conf"
ACL_NAME: Final = "acl"
PASSWD_NAME: Final = "passwd"  # noqa: S105 - a file name
CREDENTIALS_NAME: Final = "credentials"
DEFAULT_LISTEN: Final = "127.0.0.1:1883"
DEFAULT_GATEWAY_USER: Final = "gateway"
#: 24 random bytes, URL-safe base64: 32 characters, no ``:`` or whitespace.
PASSWORD_BYTES: Final = 24


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """What :func:`write_broker_config` wrote; ``created`` / ``rotated`` list user names."""

    out_dir: Path
    config_path: Path
    acl_path: Path
    password_path: Path
    credentials_path: Path
    hashes: Mapping[str, str]
    created: tuple[str, ...]
    rotated: tuple[str, ...]


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6) and validate the port."""
    host, sep, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit():
        raise BrokerConfigError(f"--listen must be HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise BrokerConfigError(f"--listen port must be 1-65535, got {port}")
    return host, port


def read_credentials(path: Path) -> dict[str, str]:
    """Read ``user:password`` lines from a credentials file (``#`` lines are comments)."""
    users: dict[str, str] = {}
    if not path.exists():
        return users
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not password:
            raise BrokerConfigError(f"{path}:{number}: expected user:password")
        users[validate_username(user)] = password
    return users


def _read_hashes(path: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            user, sep, encoded = line.partition(":")
            if sep:
                hashes[user] = encoded
    return hashes


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _keeps_hash(password: str, encoded: str) -> bool:
    try:
        return verify_password(password, encoded)
    except BrokerConfigError:
        return False


def write_broker_config(
    out_dir: Path,
    stations: Sequence[str],
    *,
    gateway_user: str = DEFAULT_GATEWAY_USER,
    listen: str = DEFAULT_LISTEN,
    tls: TlsFiles | None = None,
    rotate: Sequence[str] = (),
    run_as_user: str | None = None,
    max_queued_messages: int | None = None,
    max_queued_bytes: int | None = None,
) -> BrokerFiles:
    """Write ``mosquitto.conf``, ``acl``, ``passwd`` and ``credentials`` into ``out_dir``.

    Existing passwords in ``out_dir/credentials`` are kept; users without one, and the
    stations in ``rotate``, get a fresh random password. Users no longer listed are dropped.

    Raises
    ------
    BrokerConfigError
        Invalid station id or user name, duplicate, a rotated station not in ``stations``,
        no stations, or a bad ``listen`` value.
    """
    station_ids = [validate_station_id(station) for station in stations]
    if not station_ids:
        raise BrokerConfigError("no stations: register some or pass --stations")
    validate_username(gateway_user)
    for station in rotate:
        if validate_station_id(station) not in station_ids:
            raise BrokerConfigError(f"cannot rotate {station!r}: not among the stations")
    host, port = parse_listen(listen)
    acl_text = render_acl(station_ids, [gateway_user])  # also rejects duplicates
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / "data"
    data_dir.mkdir(exist_ok=True)
    paths = {name: out_dir / name for name in (CONF_NAME, ACL_NAME, PASSWD_NAME, CREDENTIALS_NAME)}

    old_passwords = read_credentials(paths[CREDENTIALS_NAME])
    old_hashes = _read_hashes(paths[PASSWD_NAME])
    passwords: dict[str, str] = {}
    hashes: dict[str, str] = {}
    created: list[str] = []
    rotated: list[str] = []
    for user in (*station_ids, gateway_user):
        old = old_passwords.get(user)
        if old is not None and user not in rotate:
            passwords[user] = old
            old_hash = old_hashes.get(user)
            if old_hash is not None and _keeps_hash(old, old_hash):
                hashes[user] = old_hash
            else:
                hashes[user] = hash_password(old)
            continue
        passwords[user] = secrets.token_urlsafe(PASSWORD_BYTES)
        hashes[user] = hash_password(passwords[user])
        (rotated if old is not None else created).append(user)

    config = MosquittoConfig(
        host=host,
        port=port,
        password_file=paths[PASSWD_NAME],
        acl_file=paths[ACL_NAME],
        data_dir=data_dir,
        tls=tls,
        run_as_user=run_as_user,
    )
    if max_queued_messages is not None:
        config = dataclasses.replace(config, max_queued_messages=max_queued_messages)
    if max_queued_bytes is not None:
        config = dataclasses.replace(config, max_queued_bytes=max_queued_bytes)
    conf_text = render_mosquitto_conf(config)
    header = "# shuxin broker credentials: plain-text passwords, keep private (mode 0600).\n"
    _write_private(
        paths[CREDENTIALS_NAME],
        header + "".join(f"{user}:{password}\n" for user, password in passwords.items()),
    )
    _write_private(
        paths[PASSWD_NAME], "".join(f"{user}:{encoded}\n" for user, encoded in hashes.items())
    )
    paths[ACL_NAME].write_text(acl_text, encoding="utf-8")
    paths[CONF_NAME].write_text(conf_text, encoding="utf-8")
    return BrokerFiles(
        out_dir=out_dir,
        config_path=paths[CONF_NAME],
        acl_path=paths[ACL_NAME],
        password_path=paths[PASSWD_NAME],
        credentials_path=paths[CREDENTIALS_NAME],
        hashes=hashes,
        created=tuple(created),
        rotated=tuple(rotated),
    )


def register(subparsers: Any) -> None:
    """Add the `broker` command group."""
    parser = subparsers.add_parser("broker", help="Mosquitto configuration and credentials")
    group = parser.add_subparsers(title="broker commands", metavar="ACTION")
    config = group.add_parser(
        "config",
        help="write mosquitto.conf, acl, passwd and a 0600 credentials file",
        description=(
            "Render a Mosquitto 2.x configuration from the station registry (--sql) or an "
            "explicit --stations list. Passwords are generated once and kept in DIR/credentials "
            "(mode 0600); they are printed only with --show."
        ),
    )
    config.add_argument("--out", type=Path, required=True, metavar="DIR")
    source = config.add_mutually_exclusive_group(required=True)
    source.add_argument("--sql", metavar="URL", help="SQLAlchemy URL of the station registry")
    source.add_argument("--stations", metavar="ID,ID", help="comma-separated station ids")
    config.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT")
    config.add_argument("--tls-cert", type=Path, metavar="FILE")
    config.add_argument("--tls-key", type=Path, metavar="FILE")
    config.add_argument("--tls-ca", type=Path, metavar="FILE")
    config.add_argument("--gateway-user", default=DEFAULT_GATEWAY_USER, metavar="NAME")
    config.add_argument("--rotate", action="append", default=[], metavar="STATION")
    config.add_argument("--run-as", metavar="USER", help="user the broker drops to as root")
    config.add_argument(
        "--max-queued-messages",
        type=int,
        metavar="N",
        help="messages held for the gateway while it lags or is down; beyond, Mosquitto drops "
        "(default 1000000; 0: no limit)",
    )
    config.add_argument(
        "--max-queued-bytes",
        type=int,
        metavar="N",
        help="the same bound in payload bytes (default 1 GiB; 0: no limit)",
    )
    config.add_argument("--show", action="store_true", help="print the new passwords")
    config.set_defaults(handler=_config)
    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])


def _tls(args: argparse.Namespace) -> TlsFiles | None:
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_ca is not None:
            raise BrokerConfigError("--tls-ca needs --tls-cert and --tls-key")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise BrokerConfigError("--tls-cert and --tls-key go together")
    files = [args.tls_cert, args.tls_key, *([args.tls_ca] if args.tls_ca else [])]
    for path in files:
        if not path.is_file():
            raise BrokerConfigError(f"TLS file not found: {path}")
    return TlsFiles(
        certfile=args.tls_cert.resolve(),
        keyfile=args.tls_key.resolve(),
        cafile=args.tls_ca.resolve() if args.tls_ca else None,
    )


def _registry_stations(url: str) -> list[str]:
    from sqlalchemy import select

    from shuxin.gateway.sql_engine import make_engine, make_session_factory
    from shuxin.gateway.sql_models import ReliefStationRow

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as db:
            return list(db.scalars(select(ReliefStationRow.id).order_by(ReliefStationRow.id)))
    finally:
        engine.dispose()


def _record_hashes(url: str, files: BrokerFiles, stations: Sequence[str]) -> None:
    from shuxin.gateway.sql_engine import make_engine
    from shuxin.gateway.sql_store import SqlStore

    changed = set(files.created) | set(files.rotated)
    store = SqlStore(make_engine(url))
    try:
        now = datetime.now(UTC)
        for station in stations:
            current = store.get_station(station).credential_hash
            if station in changed or current != files.hashes[station]:
                store.set_station_credential(station, files.hashes[station], now)
    finally:
        store.close()


def _config(args: argparse.Namespace) -> int:
    from shuxin.gateway.sql_errors import SqlStoreError

    try:
        tls = _tls(args)
        if args.sql is not None:
            stations = _registry_stations(args.sql)
        else:
            stations = [part.strip() for part in args.stations.split(",") if part.strip()]
        files = write_broker_config(
            args.out,
            stations,
            gateway_user=args.gateway_user,
            listen=args.listen,
            tls=tls,
            rotate=args.rotate,
            run_as_user=args.run_as,
            max_queued_messages=args.max_queued_messages,
            max_queued_bytes=args.max_queued_bytes,
        )
        if args.sql is not None:
            _record_hashes(args.sql, files, stations)
    except (BrokerConfigError, SqlStoreError, OSError) as exc:
        print(f"shuxin broker config: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {files.config_path}, {files.acl_path}, {files.password_path}")
    print(f"credentials (0600): {files.credentials_path}")
    for label, users in (("new", files.created), ("rotated", files.rotated)):
        if users:
            print(f"{label} passwords: {', '.join(users)}")
    if args.show:
        passwords = read_credentials(files.credentials_path)
        for user in (*files.created, *files.rotated):
            print(f"{user}:{passwords[user]}")
    return 0
