"""Device profiles: the validated model of ``firmware_configs/devices/*.yaml``.

A profile says how to recognise a sensor in a BLE scan, which GATT characteristics to use
(UUIDs, properties, payload format), what streams they carry (heart rate, RR, ECG, PPI,
EDA; rates and units) and, for the EDA module, how to calibrate it. ``load_profile`` and
``load_profiles`` read files into frozen pydantic models; every failure is a
:class:`~shuxin.edge.errors.ProfileError` whose message names the file and the field.
``match_profiles`` picks the profiles an advertisement fits.

UUIDs may be written as 16-bit shorthand (``"0x2A37"``) or in full; the model stores the
lower-case 128-bit form. This module must not open BLE connections or import bleak.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shuxin.edge.errors import ProfileError
from shuxin.edge.yaml_files import read_yaml_mapping

PROFILE_FORMAT_VERSION = 1
PROFILES_ENV = "SHUXIN_DEVICE_PROFILES"
BLUETOOTH_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHORT_RE = re.compile(r"^(0x)?([0-9a-f]{4}|[0-9a-f]{8})$")


def normalise_uuid(value: object) -> str:
    """Return the lower-case 128-bit form of a 16/32-bit shorthand or a full UUID.

    An int (YAML reads an unquoted ``0x180D`` as 6157) is taken as a 16/32-bit shorthand.
    """
    if isinstance(value, bool):
        raise ValueError("a UUID must be a string such as '0x2A37' or a full 128-bit UUID")
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"{value} is not a 16- or 32-bit UUID")
        return f"{value:08x}{BLUETOOTH_BASE_UUID_SUFFIX}"
    if not isinstance(value, str):
        raise ValueError("a UUID must be a string such as '0x2A37' or a full 128-bit UUID")
    text = value.strip().lower()
    if _UUID_RE.match(text):
        return text
    short = _SHORT_RE.match(text)
    if short:
        return f"{int(short.group(2), 16):08x}{BLUETOOTH_BASE_UUID_SUFFIX}"
    raise ValueError(f"{value!r} is not a UUID (use '0x2A37' or a full 128-bit UUID)")


Uuid = Annotated[str, BeforeValidator(normalise_uuid)]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]


class Role(enum.StrEnum):
    """What a characteristic is for; ``shuxin ble decode --characteristic`` takes these."""

    HEART_RATE = "heart_rate"
    BATTERY = "battery"
    PMD_CONTROL = "pmd_control"
    PMD_DATA = "pmd_data"
    EDA = "eda"
    EDA_CONTROL = "eda_control"


class PayloadFormat(enum.StrEnum):
    """The byte layout of a characteristic value; each has a parser in ``shuxin.edge``."""

    HRS_MEASUREMENT = "hrs_measurement"
    BATTERY_LEVEL = "battery_level"
    PMD_CONTROL_POINT = "pmd_control_point"
    PMD_DATA = "pmd_data"
    SHUXIN_EDA_V1 = "shuxin_eda_v1"
    SHUXIN_EDA_CONTROL_V1 = "shuxin_eda_control_v1"


class StreamKind(enum.StrEnum):
    """A data stream a sensor delivers."""

    HR = "hr"
    RR = "rr"
    ECG = "ecg"
    PPI = "ppi"
    EDA = "eda"


# Which payload each role must carry, and which payload each stream kind is decoded from.
_ROLE_PAYLOAD = {
    Role.HEART_RATE: PayloadFormat.HRS_MEASUREMENT,
    Role.BATTERY: PayloadFormat.BATTERY_LEVEL,
    Role.PMD_CONTROL: PayloadFormat.PMD_CONTROL_POINT,
    Role.PMD_DATA: PayloadFormat.PMD_DATA,
    Role.EDA: PayloadFormat.SHUXIN_EDA_V1,
    Role.EDA_CONTROL: PayloadFormat.SHUXIN_EDA_CONTROL_V1,
}
_STREAM_ROLE = {
    StreamKind.HR: Role.HEART_RATE,
    StreamKind.RR: Role.HEART_RATE,
    StreamKind.ECG: Role.PMD_DATA,
    StreamKind.PPI: Role.PMD_DATA,
    StreamKind.EDA: Role.EDA,
}
_STREAM_UNIT = {
    StreamKind.HR: "bpm",
    StreamKind.RR: "ms",
    StreamKind.ECG: "uV",
    StreamKind.PPI: "ms",
    StreamKind.EDA: "uS",
}
_PMD_MEASUREMENT = {StreamKind.ECG: 0, StreamKind.PPI: 3}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Model):
    """How a scan recognises the device: any listed service UUID and/or a name prefix.

    A profile matches when (``service_uuids`` is empty or the advertisement lists one of
    them) and (``name_prefixes`` is empty or the advertised name starts with one of them).
    Among several matches the highest ``priority`` wins.
    """

    service_uuids: tuple[Uuid, ...] = ()
    name_prefixes: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    priority: int = 0

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.service_uuids and not self.name_prefixes:
            raise ValueError("give at least one of service_uuids or name_prefixes")
        return self


class Characteristic(_Model):
    """One GATT characteristic the edge uses."""

    role: Role
    service_uuid: Uuid
    uuid: Uuid
    properties: tuple[Literal["read", "write", "write_without_response", "notify", "indicate"], ...]
    payload: PayloadFormat
    optional: bool = False

    @model_validator(mode="after")
    def _payload_fits_role(self) -> Self:
        expected = _ROLE_PAYLOAD[self.role]
        if self.payload is not expected:
            raise ValueError(f"role {self.role.value} carries payload {expected.value}")
        if not self.properties:
            raise ValueError("list at least one property")
        return self


class PmdSettings(_Model):
    """Polar PMD measurement to start for an ECG or PPI stream."""

    measurement_type: Annotated[int, Field(ge=0, le=0x3F)]
    resolution_bits: Annotated[int, Field(gt=0, le=32)] | None = None


class Stream(_Model):
    """A stream the device delivers, on which characteristic, at what rate and unit."""

    kind: StreamKind
    characteristic: Role
    unit: str
    sample_rate_hz: Annotated[float, Field(gt=0)] | None = None
    sample_rates_hz: tuple[Annotated[float, Field(gt=0)], ...] = ()
    pmd: PmdSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.characteristic is not _STREAM_ROLE[self.kind]:
            raise ValueError(
                f"a {self.kind.value} stream comes from characteristic "
                f"{_STREAM_ROLE[self.kind].value}"
            )
        if self.unit != _STREAM_UNIT[self.kind]:
            raise ValueError(f"a {self.kind.value} stream is in {_STREAM_UNIT[self.kind]}")
        wants_pmd = self.kind in _PMD_MEASUREMENT
        if wants_pmd != (self.pmd is not None):
            raise ValueError("pmd settings are required for ecg/ppi streams and only for them")
        if self.pmd is not None and self.pmd.measurement_type != _PMD_MEASUREMENT[self.kind]:
            raise ValueError(
                f"a {self.kind.value} stream is PMD measurement type {_PMD_MEASUREMENT[self.kind]}"
            )
        if self.kind in (StreamKind.ECG, StreamKind.EDA) and self.sample_rate_hz is None:
            raise ValueError(f"a {self.kind.value} stream needs sample_rate_hz")
        if self.sample_rates_hz and self.sample_rate_hz not in self.sample_rates_hz:
            raise ValueError("sample_rate_hz must be one of sample_rates_hz")
        return self


class EdaCalibrationSpec(_Model):
    """Series-reference-resistor calibration (formula in ``shuxin.edge.parse_eda``)."""

    method: Literal["series_reference_resistor"]
    excitation_v: Annotated[float, Field(gt=0, le=5)]
    reference_ohm: Annotated[float, Field(gt=0)]
    amplifier_gain: Annotated[float, Field(ge=1)]
    voltage_lsb_v: Annotated[float, Field(gt=0)]
    adc_full_scale_v: Annotated[float, Field(gt=0)]
    valid_range_us: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]]

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if self.valid_range_us[0] >= self.valid_range_us[1]:
            raise ValueError("valid_range_us must be (low, high) with low < high")
        if self.excitation_v * self.amplifier_gain > self.adc_full_scale_v:
            raise ValueError(
                "excitation_v × amplifier_gain exceeds adc_full_scale_v: the top of the "
                "range would clip"
            )
        return self


class FirmwareSpec(_Model):
    """Constants only the device firmware needs (for profiles shuxin defines itself)."""

    header: str
    c_prefix: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    advertised_name_prefix: Annotated[str, Field(min_length=1, max_length=20)]
    default_frame_type: Annotated[int, Field(ge=1, le=2)]
    samples_per_frame: Annotated[int, Field(ge=1, le=32)]
    battery_low_percent: Annotated[int, Field(ge=0, le=100)]
    electrode_off_below_us: Annotated[float, Field(ge=0)]


class DeviceProfile(_Model):
    """One ``firmware_configs/devices/<name>.yaml`` file."""

    profile: Literal[1]
    name: Slug
    title: Annotated[str, Field(min_length=1)]
    description: str = ""
    match: Match
    characteristics: tuple[Characteristic, ...] = Field(min_length=1)
    streams: tuple[Stream, ...] = Field(min_length=1)
    calibration: EdaCalibrationSpec | None = None
    firmware: FirmwareSpec | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        roles = [c.role for c in self.characteristics]
        duplicated = sorted({r.value for r in roles if roles.count(r) > 1})
        if duplicated:
            raise ValueError(f"characteristic role listed twice: {', '.join(duplicated)}")
        for stream in self.streams:
            if stream.characteristic not in roles:
                raise ValueError(
                    f"stream {stream.kind.value} uses characteristic "
                    f"{stream.characteristic.value}, which the profile does not list"
                )
            if stream.pmd is not None and Role.PMD_CONTROL not in roles:
                raise ValueError(f"stream {stream.kind.value} needs a pmd_control characteristic")
        has_eda = Role.EDA in roles
        if has_eda != (self.calibration is not None):
            raise ValueError("calibration is required with an eda characteristic and only then")
        if self.firmware is not None and not has_eda:
            raise ValueError("a firmware section is only defined for the shuxin EDA profile")
        return self

    def characteristic(self, role: Role | str) -> Characteristic:
        """The characteristic with ``role``; ``KeyError`` when the profile has none."""
        for item in self.characteristics:
            if item.role == role:
                return item
        raise KeyError(str(role))

    def stream(self, kind: StreamKind | str) -> Stream:
        """The stream of ``kind``; ``KeyError`` when the profile has none."""
        for item in self.streams:
            if item.kind == kind:
                return item
        raise KeyError(str(kind))

    def default_role(self) -> Role:
        """The characteristic ``ble decode`` uses when none is named: the first data one."""
        for item in self.characteristics:
            if "notify" in item.properties and item.role is not Role.BATTERY:
                return item.role
        return self.characteristics[0].role


def _format_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in item["loc"]) or "(file)"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def load_profile(path: str | os.PathLike[str]) -> DeviceProfile:
    """Read and validate one profile file.

    Raises
    ------
    ProfileError
        The file cannot be read, is not YAML, is not a mapping, breaks the model (the
        message lists every ``field.path: problem``), or its name differs from the file
        stem.
    """
    file = Path(path)
    data = read_yaml_mapping(file, ProfileError, "(file): a profile is a YAML mapping")
    try:
        profile = DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(str(file), _format_validation(exc)) from exc
    if profile.name != file.stem:
        raise ProfileError(
            str(file), f"name: {profile.name!r} must equal the file name {file.stem!r}"
        )
    return profile


def load_profiles(directory: str | os.PathLike[str]) -> dict[str, DeviceProfile]:
    """Load every ``*.yaml`` in ``directory``, keyed by profile name, in name order."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ProfileError(str(folder), "not a directory of device profiles")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ProfileError(str(folder), "no *.yaml device profiles found")
    return {p.name: p for p in (load_profile(f) for f in files)}


def default_profiles_dir() -> Path:
    """Where the shipped profiles are: ``$SHUXIN_DEVICE_PROFILES``, else the checkout's
    ``firmware_configs/devices`` (found from this file's real location), else the one under
    the current directory."""
    override = os.environ.get(PROFILES_ENV)
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "firmware_configs" / "devices"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "firmware_configs" / "devices"


def match_profiles(
    profiles: Iterable[DeviceProfile] | Mapping[str, DeviceProfile],
    *,
    name: str | None,
    service_uuids: Iterable[str],
) -> list[DeviceProfile]:
    """Profiles an advertisement fits, best first (priority, then name)."""
    items = profiles.values() if isinstance(profiles, Mapping) else profiles
    advertised = set()
    for uuid in service_uuids:
        try:
            advertised.add(normalise_uuid(uuid))
        except ValueError:
            continue
    found = []
    for profile in items:
        rule = profile.match
        if rule.service_uuids and not advertised.intersection(rule.service_uuids):
            continue
        if rule.name_prefixes and not (
            name and any(name.startswith(prefix) for prefix in rule.name_prefixes)
        ):
            continue
        found.append(profile)
    return sorted(found, key=lambda p: (-p.match.priority, p.name))
