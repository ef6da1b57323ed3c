"""`shuxin ble …`: decode captured BLE notifications, scan for sensors, list device profiles,
and generate the EDA firmware header.

Argument handling only: profiles, parsers and bleak are imported inside the handlers, so
``shuxin --help`` stays fast. Exit status: 0 success, 1 an environment problem (bleak
missing, no adapter, a stale header under ``--check``), 2 bad input (bad hex, unknown
profile or characteristic, undecodable bytes, an invalid profile file). This module must
not import bleak.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shuxin.edge.device_profile import DeviceProfile

# Kept literal (not imported from device_profile) so building the parser stays light;
# tests/unit/edge/test_ble_decode_cli.py checks it equals device_profile.Role.
CHARACTERISTIC_ROLES = ("heart_rate", "battery", "pmd_control", "pmd_data", "eda", "eda_control")
EXIT_ENVIRONMENT = 1
EXIT_BAD_INPUT = 2

_HEX_SEPARATORS = re.compile(r"[\s:,\-]+")


class BadHexError(ValueError):
    """The HEX argument is not a byte string in hex."""


def parse_hex(parts: list[str] | str) -> bytes:
    """Bytes from hex text: ``163c1104``, ``16 3c 11 04``, ``16:3c:11:04`` or ``0x16 0x3c``."""
    text = " ".join(parts) if isinstance(parts, list) else parts
    tokens = [t for t in _HEX_SEPARATORS.split(text.strip()) if t]
    digits = "".join(t[2:] if t.lower().startswith("0x") else t for t in tokens)
    if not digits:
        raise BadHexError("no hex digits given")
    if not re.fullmatch(r"[0-9a-fA-F]+", digits):
        raise BadHexError(f"not hex: {text!r}")
    if len(digits) % 2:
        raise BadHexError(f"odd number of hex digits ({len(digits)}): each byte needs two")
    return bytes.fromhex(digits)


def register(subparsers: Any) -> None:
    """Add the `ble` command group."""
    parser = subparsers.add_parser(
        "ble", help="BLE sensors: decode captured notifications, scan, device profiles"
    )
    group = parser.add_subparsers(title="ble commands", metavar="ACTION")

    decode = group.add_parser(
        "decode",
        help="decode one captured notification with a device profile",
        description=(
            "Decode one characteristic value captured from a sensor (e.g. with nRF Connect or "
            "btmon). Example: shuxin ble decode --profile hrs_strap 16 3c 11 04"
        ),
    )
    decode.add_argument("--profile", required=True, metavar="NAME", help="device profile name")
    decode.add_argument(
        "--characteristic",
        choices=CHARACTERISTIC_ROLES,
        help="which characteristic the bytes came from (default: the profile's first data one)",
    )
    decode.add_argument("--json", action="store_true", help="print JSON instead of text")
    _profiles_dir_argument(decode)
    decode.add_argument("hex", nargs="+", metavar="HEX", help="the value in hex")
    decode.set_defaults(handler=_decode)

    scan = group.add_parser(
        "scan", help="list nearby BLE devices and the profile each matches (needs bleak)"
    )
    scan.add_argument("--timeout", type=float, default=5.0, help="seconds to scan (5)")
    scan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _profiles_dir_argument(scan)
    scan.set_defaults(handler=_scan)

    profiles = group.add_parser("profiles", help="list and validate the device profiles")
    profiles.add_argument("--json", action="store_true", help="print JSON instead of text")
    _profiles_dir_argument(profiles)
    profiles.set_defaults(handler=_profiles)

    header = group.add_parser(
        "firmware-header",
        help="write the EDA module's C header from its profile (or --check it is current)",
    )
    header.add_argument("--profile", default="shuxin_gsr", metavar="NAME", help="(shuxin_gsr)")
    header.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the header is stale"
    )
    _profiles_dir_argument(header)
    header.set_defaults(handler=_firmware_header)

    parser.set_defaults(handler=lambda _args: (parser.print_help(), 0)[1])


def _profiles_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profiles-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="device profiles folder (default: $SHUXIN_DEVICE_PROFILES or "
        "firmware_configs/devices)",
    )


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"shuxin ble: {message}", file=sys.stderr)
    return code


def _load(args: argparse.Namespace) -> dict[str, DeviceProfile]:
    from shuxin.edge.device_profile import default_profiles_dir, load_profiles

    folder: Path = args.profiles_dir or default_profiles_dir()
    return load_profiles(folder)


def jsonable(value: Any) -> Any:
    """Decoded records as JSON-ready values (enums by value/name, bytes as hex)."""
    if isinstance(value, enum.StrEnum):
        return value.value
    if isinstance(value, enum.IntEnum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, frozenset | set):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


def _text_lines(value: Any, indent: str = "  ") -> list[str]:
    lines = []
    for key, item in jsonable(value).items():
        if isinstance(item, list) and item and isinstance(item[0], dict):
            lines.append(f"{indent}{key}: {len(item)}")
            for i, entry in enumerate(item):
                fields = ", ".join(f"{k}={v}" for k, v in entry.items())
                lines.append(f"{indent}  [{i}] {fields}")
        else:
            lines.append(f"{indent}{key}: {item}")
    return lines


def _decode(args: argparse.Namespace) -> int:
    from shuxin.edge.decoders import decoder_for
    from shuxin.edge.errors import ParseError, ProfileError

    try:
        data = parse_hex(args.hex)
    except BadHexError as exc:
        return _fail(f"decode: {exc}")
    try:
        profiles = _load(args)
    except ProfileError as exc:
        return _fail(f"decode: {exc}")
    profile = profiles.get(args.profile)
    if profile is None:
        return _fail(f"decode: no profile {args.profile!r}; known: {', '.join(sorted(profiles))}")
    role = args.characteristic or profile.default_role().value
    try:
        characteristic = profile.characteristic(role)
    except KeyError:
        known = ", ".join(c.role.value for c in profile.characteristics)
        return _fail(f"decode: profile {profile.name} has no {role} characteristic; it has {known}")
    try:
        decoded = decoder_for(profile, role)(data)
    except ParseError as exc:
        return _fail(
            f"decode: cannot decode {len(data)} bytes as {characteristic.payload.value} "
            f"({exc.kind}): {exc.reason}"
        )
    if args.json:
        document = {
            "profile": profile.name,
            "characteristic": role,
            "payload": characteristic.payload.value,
            "bytes": len(data),
            "type": type(decoded).__name__,
            "value": jsonable(decoded),
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{profile.name} · {role} ({characteristic.payload.value}) · {len(data)} bytes → "
        f"{type(decoded).__name__}"
    )
    print("\n".join(_text_lines(decoded)))
    return 0


def _scan(args: argparse.Namespace) -> int:
    from shuxin.edge.device_profile import match_profiles
    from shuxin.edge.errors import BleError, BleUnavailableError, ProfileError
    from shuxin.edge.source_ble_scan import scan_advertisements

    try:
        profiles = _load(args)
    except ProfileError as exc:
        return _fail(f"scan: {exc}")
    try:
        found = asyncio.run(scan_advertisements(args.timeout))
    except BleUnavailableError as exc:
        return _fail(str(exc), EXIT_ENVIRONMENT)
    except BleError as exc:
        return _fail(f"scan: {exc}", EXIT_ENVIRONMENT)
    rows = []
    for adv in found:
        matches = match_profiles(profiles, name=adv.name, service_uuids=adv.service_uuids)
        rows.append(
            {
                "address": adv.address,
                "name": adv.name,
                "rssi": adv.rssi,
                "profile": matches[0].name if matches else None,
                "also_matches": [p.name for p in matches[1:]],
            }
        )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no BLE devices seen")
        return 0
    print(f"{'address':<20} {'rssi':>5}  {'profile':<20} name")
    for row in rows:
        rssi = "" if row["rssi"] is None else str(row["rssi"])
        print(f"{row['address']:<20} {rssi:>5}  {row['profile'] or '-':<20} {row['name'] or ''}")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from shuxin.edge.errors import ProfileError

    try:
        profiles = _load(args)
    except ProfileError as exc:
        return _fail(f"profiles: {exc}")
    if args.json:
        print(
            json.dumps(
                [p.model_dump(mode="json") for p in profiles.values()], ensure_ascii=False, indent=2
            )
        )
        return 0
    for profile in profiles.values():
        streams = ", ".join(
            s.kind.value + (f" {s.sample_rate_hz:g} Hz" if s.sample_rate_hz else "")
            for s in profile.streams
        )
        print(f"{profile.name:<20} {profile.title}")
        print(f"{'':<20} streams: {streams}")
    return 0


def _firmware_header(args: argparse.Namespace) -> int:
    from shuxin.edge.device_profile import default_profiles_dir
    from shuxin.edge.errors import ProfileError
    from shuxin.edge.firmware_header import header_path, render_firmware_header

    folder: Path = args.profiles_dir or default_profiles_dir()
    try:
        profiles = _load(args)
        profile = profiles.get(args.profile)
        if profile is None:
            return _fail(f"firmware-header: no profile {args.profile!r}")
        path = header_path(profile, folder)
        text = render_firmware_header(profile)
    except ProfileError as exc:
        return _fail(f"firmware-header: {exc}")
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            return _fail(
                f"firmware-header: {path} is stale; run: shuxin ble firmware-header "
                f"--profile {profile.name}",
                EXIT_ENVIRONMENT,
            )
        print(f"{path} matches {profile.name}")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0
