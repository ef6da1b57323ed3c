"""Mosquitto 2.x configuration for the shuxin broker: main config, ACL file, password file.

Three pure renderers, used by the test fixtures and by the gateway's deployment tooling:

- :func:`render_mosquitto_conf` — one loopback or public listener, ``allow_anonymous false``,
  ``password_file``, ``acl_file``, persistence in a data directory, optional TLS files, optional
  ``per_listener_settings``.
- :func:`render_acl` — each station user may write (and read back) only under
  ``shuxin/v1/<station_id>/#``; each reader (gateway) user may read ``shuxin/v1/#``. A station
  logs in with its station id as user name. Everything not granted is denied by Mosquitto.
- :func:`render_password_file` / :func:`hash_password` — lines in Mosquitto's own ``$7$``
  format: PBKDF2-HMAC-SHA512, ``$7$<iterations>$<base64 salt>$<base64 hash>`` with the standard
  base64 alphabet and padding, 12-byte salt, 64-byte hash, 101 iterations by default (the values
  ``mosquitto_passwd`` 2.0 writes).

Every value that reaches a file is validated first: Mosquitto's files are line-based, so a
newline in a path, a ``:`` in a user name or a wildcard in a station id would change their
meaning. This module returns text; it never writes files, starts processes or reads the
environment (the only impurity is the random salt, which callers may pass in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final, Literal

from shuxin.contract.ids import STATION_ID_PATTERN
from shuxin.contract.topics import ALL_STATIONS_FILTER, PREFIX

#: ``mosquitto_passwd`` 2.0 defaults (src: ``PW_DEFAULT_ITERATIONS``, ``SALT_LEN``).
DEFAULT_PBKDF2_ITERATIONS: Final = 101
SALT_BYTES: Final = 12
HASH_BYTES: Final = 64
_HASH_PREFIX: Final = "$7$"

#: Service user names (the gateway): letters, digits, ``.``, ``_``, ``-``; no ``:`` (password
#: file separator), no whitespace, no MQTT wildcards.
USERNAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

_STATION_RE: Final = re.compile(STATION_ID_PATTERN)
_USERNAME_RE: Final = re.compile(USERNAME_PATTERN)
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9.:-]{1,253}$")
_LOG_TYPES: Final = frozenset(
    {"debug", "error", "warning", "notice", "information", "subscribe", "unsubscribe",
     "websockets", "none", "all"}
)  # fmt: skip


class BrokerConfigError(ValueError):
    """A value cannot be written safely into a Mosquitto configuration, ACL or password file."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """TLS options of the listener (PEM files readable by the broker)."""

    certfile: PurePath
    keyfile: PurePath
    #: CA used to verify client certificates; required when ``require_certificate``.
    cafile: PurePath | None = None
    require_certificate: bool = False
    tls_version: Literal["tlsv1.2", "tlsv1.3"] | None = None


@dataclass(frozen=True, slots=True)
class MosquittoConfig:
    """Everything :func:`render_mosquitto_conf` needs; paths must be absolute."""

    host: str
    port: int
    password_file: PurePath
    acl_file: PurePath
    data_dir: PurePath
    #: ``None`` logs to stderr (the caller redirects it), otherwise ``log_dest file <path>``.
    log_file: PurePath | None = None
    log_types: tuple[str, ...] = ("error", "warning", "notice", "information")
    tls: TlsFiles | None = None
    #: Put the auth options under the listener instead of globally.
    per_listener_settings: bool = False
    #: Seconds between saves, or changes between saves when ``autosave_on_changes``.
    autosave_interval: int = 1800
    autosave_on_changes: bool = False
    #: When the broker starts as root it drops to this user (Mosquitto's default: ``mosquitto``).
    run_as_user: str | None = None
    #: QoS 1 messages held for one client beyond those in flight — the gateway's persistent
    #: session while it lags behind a burst (an outbox replay) or is down. Mosquitto DROPS what
    #: exceeds it, and the station already had its PUBACK, so it must cover the longest
    #: gateway outage (Mosquitto's own default is 1000: seconds of a replay). 0: no limit.
    max_queued_messages: int = 1_000_000
    #: The same bound in payload bytes (what it costs in broker memory); 0: no limit.
    max_queued_bytes: int = 1024**3
    #: Unacknowledged QoS 1 messages in flight to one client. The gateway acknowledges after
    #: storing, in batches; Mosquitto's default of 20 keeps those batches tiny.
    max_inflight_messages: int = 256


def validate_station_id(station_id: str) -> str:
    """Return ``station_id`` if it is a valid station id (the contract's pattern), else raise.

    Station ids become MQTT user names and topic levels, so ``+``, ``#``, ``/``, upper case,
    whitespace and empty strings are all rejected.
    """
    if not _STATION_RE.fullmatch(station_id):
        raise BrokerConfigError(
            f"invalid station id {station_id!r}: must match {STATION_ID_PATTERN}"
        )
    return station_id


def validate_username(username: str) -> str:
    """Return ``username`` if it is a valid service user name, else raise."""
    if not _USERNAME_RE.fullmatch(username):
        raise BrokerConfigError(f"invalid user name {username!r}: must match {USERNAME_PATTERN}")
    return username


def station_topic_filter(station_id: str) -> str:
    """Return ``shuxin/v1/<station_id>/#``, the only place a station may publish."""
    return f"{PREFIX}/{validate_station_id(station_id)}/#"


def _path(option: str, value: PurePath) -> str:
    text = str(value)
    if not value.is_absolute():
        raise BrokerConfigError(f"{option} must be an absolute path, got {text!r}")
    if text != text.strip() or any(ord(ch) < 0x20 or ch == "\x7f" for ch in text):
        raise BrokerConfigError(
            f"{option} must not contain control characters or surrounding spaces"
        )
    return text


def render_mosquitto_conf(config: MosquittoConfig) -> str:
    """Render ``mosquitto.conf`` for Mosquitto 2.x.

    One listener on ``config.host:config.port``; anonymous clients refused; users from
    ``password_file``; topic rights from ``acl_file``; retained messages and QoS 1/2 sessions
    persisted under ``data_dir``.
    """
    if not _HOST_RE.fullmatch(config.host):
        raise BrokerConfigError(f"invalid listener host {config.host!r}")
    if not 1 <= config.port <= 65535:
        raise BrokerConfigError(f"listener port must be 1-65535, got {config.port}")
    if config.autosave_interval < 0:
        raise BrokerConfigError("autosave_interval must be >= 0")
    for option in ("max_queued_messages", "max_queued_bytes", "max_inflight_messages"):
        if getattr(config, option) < 0:
            raise BrokerConfigError(f"{option} must be >= 0 (0: no limit)")
    unknown = set(config.log_types) - _LOG_TYPES
    if unknown or not config.log_types:
        raise BrokerConfigError(f"log_types must be a non-empty subset of {sorted(_LOG_TYPES)}")

    auth = [
        "allow_anonymous false",
        f"password_file {_path('password_file', config.password_file)}",
        f"acl_file {_path('acl_file', config.acl_file)}",
    ]
    lines = [
        "# Generated by shuxin.gateway.broker_config; edit the inputs, not this file.",
        f"per_listener_settings {'true' if config.per_listener_settings else 'false'}",
    ]
    if config.run_as_user is not None:
        lines.append(f"user {validate_username(config.run_as_user)}")
    # Mosquitto wants a trailing slash on persistence_location.
    data_dir = _path("data_dir", config.data_dir).rstrip("/") + "/"
    lines += [
        "persistence true",
        f"persistence_location {data_dir}",
        "persistence_file mosquitto.db",
        f"autosave_interval {config.autosave_interval}",
        f"autosave_on_changes {'true' if config.autosave_on_changes else 'false'}",
        f"max_queued_messages {config.max_queued_messages}",
        f"max_queued_bytes {config.max_queued_bytes}",
        f"max_inflight_messages {config.max_inflight_messages}",
    ]
    if config.log_file is None:
        lines.append("log_dest stderr")
    else:
        lines.append(f"log_dest file {_path('log_file', config.log_file)}")
    lines += [f"log_type {log_type}" for log_type in config.log_types]
    lines += ["log_timestamp_format %Y-%m-%dT%H:%M:%S", "connection_messages true"]
    if not config.per_listener_settings:
        lines += auth
    lines += ["", f"listener {config.port} {config.host}"]
    if config.tls is not None:
        lines += _tls_lines(config.tls)
    if config.per_listener_settings:
        lines += auth
    return "\n".join(lines) + "\n"


def _tls_lines(tls: TlsFiles) -> list[str]:
    lines = [
        f"certfile {_path('certfile', tls.certfile)}",
        f"keyfile {_path('keyfile', tls.keyfile)}",
    ]
    if tls.cafile is not None:
        lines.append(f"cafile {_path('cafile', tls.cafile)}")
    elif tls.require_certificate:
        raise BrokerConfigError("require_certificate needs a cafile to verify clients against")
    lines.append(f"require_certificate {'true' if tls.require_certificate else 'false'}")
    if tls.tls_version is not None:
        lines.append(f"tls_version {tls.tls_version}")
    return lines


def render_acl(stations: Iterable[str], readers: Iterable[str]) -> str:
    """Render a Mosquitto ACL file.

    Parameters
    ----------
    stations : iterable of str
        Station ids; each is also that station's user name and may read and write only
        ``shuxin/v1/<station_id>/#``.
    readers : iterable of str
        Service user names (the gateway) that may read ``shuxin/v1/#`` and write nothing.

    Raises
    ------
    BrokerConfigError
        On an invalid id or name, a duplicate, or a name used both as station and reader.
    """
    station_ids = [validate_station_id(station) for station in stations]
    reader_names = [validate_username(reader) for reader in readers]
    _reject_duplicates([*station_ids, *reader_names])
    blocks = ["# Generated by shuxin.gateway.broker_config. Anything not granted is denied."]
    blocks += [
        f"user {station}\ntopic readwrite {station_topic_filter(station)}"
        for station in station_ids
    ]
    blocks += [f"user {reader}\ntopic read {ALL_STATIONS_FILTER}" for reader in reader_names]
    return "\n\n".join(blocks) + "\n"


def _reject_duplicates(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BrokerConfigError(f"user name {name!r} appears more than once")
        seen.add(name)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_PBKDF2_ITERATIONS
) -> str:
    """Hash ``password`` the way ``mosquitto_passwd`` 2.0 does: ``$7$<it>$<salt>$<hash>``.

    ``salt`` defaults to 12 random bytes from :mod:`secrets`; pass one only to reproduce a
    known hash.
    """
    if not password:
        raise BrokerConfigError("password must not be empty")
    if iterations < 1:
        raise BrokerConfigError("iterations must be >= 1")
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    elif not salt:
        raise BrokerConfigError("salt must not be empty")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"{_HASH_PREFIX}{iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Return True when ``password`` matches an encoded ``$7$`` hash (constant-time compare)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[:2] != ["", "7"] or not re.fullmatch(r"[1-9][0-9]{0,8}", parts[2]):
        raise BrokerConfigError("not a mosquitto $7$ password hash")
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError as exc:
        raise BrokerConfigError("not a mosquitto $7$ password hash") from exc
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode("utf-8"), salt, int(parts[2]), len(expected)
    )
    return hmac.compare_digest(digest, expected)


def render_password_file(
    credentials: Mapping[str, str], *, iterations: int = DEFAULT_PBKDF2_ITERATIONS
) -> str:
    """Render a Mosquitto password file, one ``user:$7$…`` line per user with a fresh salt.

    User names are checked like service user names (station ids also match that pattern).
    """
    lines = [
        f"{validate_username(user)}:{hash_password(password, iterations=iterations)}"
        for user, password in credentials.items()
    ]
    return "\n".join(lines) + "\n" if lines else ""
