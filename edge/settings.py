"""The edge agent's one settings object (pydantic-settings), validated at start-up.

Sources, highest priority first: the station config file (YAML, ``shuxin edge run --config``)
or the sim station's command line, then environment variables ``SHUXIN_EDGE_…`` (nested with
``__``: ``SHUXIN_EDGE_BROKER__PASSWORD``). The broker password never lives in a config file
that could be committed: give it in ``SHUXIN_EDGE_BROKER__PASSWORD`` or in a file named by
``broker.password_file`` (mode 0600); a ``password`` key in the config file is refused.

:func:`load_settings` reads a file; :func:`check_settings` resolves everything the agent needs
before it starts (device profiles, protocols, data directory, BLE availability, the broker's
TLS files) and raises one :class:`SettingsError` listing every problem, so a station fails fast
with a clear message.
This module must not open connections or start tasks.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shuxin.contract.ids import DeviceId, StationId
from shuxin.edge.device_profile import DeviceProfile, default_profiles_dir, load_profiles
from shuxin.edge.errors import EdgeError
from shuxin.edge.protocol import (
    ProtocolDefinition,
    default_protocols_dir,
    format_validation_error,
    load_protocols,
    read_yaml_mapping,
)
from shuxin.edge.source_sim import FAULT_PRESETS, SimFaults
from shuxin.runtime.tls_files import tls_file_problems

ENV_PREFIX: Final = "SHUXIN_EDGE_"
_SCHEMES: Final = {"mqtt": (1883, False), "mqtts": (8883, True)}


class SettingsError(EdgeError):
    """The agent's settings are incomplete or inconsistent; the message lists every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Model):
    """Where the agent publishes. ``url`` is ``mqtt://host:port`` or ``mqtts://host:port``.

    With ``mqtts://`` the broker's certificate is always verified (chain and host name):
    against ``ca_file`` (a PEM bundle, e.g. the site CA) or, without it, the system trust
    store. ``client_cert_file`` and ``client_key_file`` (PEM, unencrypted key) go together, for
    a broker that requires client certificates (Mosquitto ``require_certificate true``).
    """

    url: str
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=600)] = 30
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError("url must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        if parts.username or parts.password:
            raise ValueError("put credentials in username/password, not in the url")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        tls_files = [
            name
            for name in ("ca_file", "client_cert_file", "client_key_file")
            if getattr(self, name) is not None
        ]
        if tls_files and parts.scheme != "mqtts":
            raise ValueError(f"{', '.join(tls_files)} need an mqtts:// url (TLS)")
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self

    @property
    def host(self) -> str:
        """Broker host name."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """Broker port (1883 / 8883 when the url has none)."""
        parts = urlsplit(self.url)
        return parts.port or _SCHEMES[parts.scheme][0]

    @property
    def tls(self) -> bool:
        """True for ``mqtts://``."""
        return _SCHEMES[urlsplit(self.url).scheme][1]

    def resolved_password(self) -> str | None:
        """The password from the environment/command line or from ``password_file``."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return None


class SimDeviceConfig(_Model):
    """A simulated device: which simulated participant wears it, and what goes wrong."""

    subject: Annotated[int, Field(ge=1, le=64)] = 1
    faults: str | SimFaults = "none"

    def fault_spec(self) -> SimFaults:
        """The fault specification (a preset name is expanded)."""
        if isinstance(self.faults, SimFaults):
            return self.faults
        return FAULT_PRESETS[self.faults]

    @model_validator(mode="after")
    def _known_preset(self) -> Self:
        if isinstance(self.faults, str) and self.faults not in FAULT_PRESETS:
            raise ValueError(f"faults preset must be one of {', '.join(FAULT_PRESETS)}")
        return self


class DeviceConfig(_Model):
    """One sensor: a real BLE device (``address``) or a simulated one (``sim``)."""

    id: DeviceId
    profile: Annotated[str, Field(min_length=1)]
    address: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    sim: SimDeviceConfig | None = None
    upload_raw: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.address is None) == (self.sim is None):
            raise ValueError("give exactly one of address (a BLE device) or sim")
        return self


class OutboxConfig(_Model):
    """Caps on what the outbox keeps while the broker is unreachable."""

    max_messages: Annotated[int, Field(ge=100)] = 500_000
    max_bytes: Annotated[int, Field(ge=1_000_000)] = 512 * 1024 * 1024
    max_age_s: Annotated[float, Field(ge=60)] = 14 * 24 * 3600.0


class ConsoleConfig(_Model):
    """The live station console and VR feed (``shuxin.edge.console``), served by the agent."""

    enabled: bool = False
    host: Annotated[str, Field(min_length=1, max_length=255)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


class AgentSettings(BaseSettings):
    """Everything one station's agent needs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    station: StationId
    broker: BrokerConfig
    data_dir: Path
    devices: list[DeviceConfig] = Field(default_factory=list, max_length=32)
    protocol_dir: Path = Field(default_factory=default_protocols_dir)
    profile_dir: Path = Field(default_factory=default_profiles_dir)
    time_scale: Annotated[float, Field(gt=0, le=10_000)] = 1.0
    record: bool = False
    clock_source: Literal["ntp", "gateway", "gps", "rtc", "none"] = "none"
    seed: Annotated[int, Field(ge=0)] | None = None
    outbox: OutboxConfig = OutboxConfig()
    console: ConsoleConfig = ConsoleConfig()

    @model_validator(mode="after")
    def _unique_devices(self) -> Self:
        ids = [d.id for d in self.devices]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"device id listed twice: {', '.join(twice)}")
        return self


def build_settings(**values: Any) -> AgentSettings:
    """Validate settings from keyword values plus the environment; :class:`SettingsError`."""
    try:
        return AgentSettings(**values)
    except ValidationError as exc:
        raise SettingsError(f"invalid agent settings: {format_validation_error(exc)}") from None


def load_settings(path: Path) -> AgentSettings:
    """Read a station config file (YAML) and the environment into :class:`AgentSettings`.

    Relative paths in the file (data_dir, protocol_dir, profile_dir and the broker's
    password_file, ca_file, client_cert_file, client_key_file) are taken relative to the file's
    folder.
    """
    try:
        data = read_yaml_mapping(path)
    except EdgeError as exc:
        raise SettingsError(str(exc)) from None
    broker = data.get("broker")
    if isinstance(broker, dict) and "password" in broker:
        raise SettingsError(
            f"{path}: broker.password must not be in a config file; set "
            f"{ENV_PREFIX}BROKER__PASSWORD or broker.password_file"
        )
    base = path.parent
    for key in ("data_dir", "protocol_dir", "profile_dir"):
        if isinstance(data.get(key), str):
            data[key] = str(base / data[key])
    if isinstance(broker, dict):
        for key in ("password_file", "ca_file", "client_cert_file", "client_key_file"):
            if isinstance(broker.get(key), str):
                broker[key] = str(base / broker[key])
    try:
        return AgentSettings(**data)
    except ValidationError as exc:
        raise SettingsError(f"{path}: {format_validation_error(exc)}") from None


@dataclass(frozen=True, slots=True)
class ResolvedSettings:
    """Settings plus what they point to, checked: the agent starts from this."""

    settings: AgentSettings
    profiles: dict[str, DeviceProfile]
    protocols: dict[str, ProtocolDefinition]
    password: str | None


def ble_available() -> bool:
    """True when bleak (the ``ble`` extra) is installed."""
    return importlib.util.find_spec("bleak") is not None


def check_settings(settings: AgentSettings) -> ResolvedSettings:
    """Resolve and check everything before the agent starts; :class:`SettingsError` lists all
    problems at once."""
    problems: list[str] = []
    profiles: dict[str, DeviceProfile] = {}
    protocols: dict[str, ProtocolDefinition] = {}
    try:
        profiles = load_profiles(settings.profile_dir)
    except EdgeError as exc:
        problems.append(f"device profiles: {exc}")
    try:
        protocols = load_protocols(settings.protocol_dir)
    except EdgeError as exc:
        problems.append(f"protocols: {exc}")
    for device in settings.devices:
        if profiles and device.profile not in profiles:
            problems.append(
                f"device {device.id}: unknown profile {device.profile!r} "
                f"(known: {', '.join(sorted(profiles))})"
            )
    ble = [d.id for d in settings.devices if d.address is not None]
    if ble and not ble_available():
        problems.append(
            f"devices {', '.join(ble)} are BLE devices, but BLE support is not installed: "
            "pip install 'shuxin[ble]' (bleak, bleak-retry-connector), or use sim devices"
        )
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(settings.data_dir, os.W_OK):
            problems.append(f"data_dir {settings.data_dir} is not writable")
    except OSError as exc:
        problems.append(f"data_dir {settings.data_dir}: {exc.strerror or exc}")
    password: str | None = None
    try:
        password = settings.broker.resolved_password()
    except OSError as exc:
        problems.append(f"broker.password_file: {exc.strerror or exc}")
    if settings.broker.username and password is None:
        problems.append(
            f"broker.username is set but no password: set {ENV_PREFIX}BROKER__PASSWORD or "
            "broker.password_file"
        )
    broker = settings.broker
    problems += tls_file_problems(
        broker.ca_file,
        broker.client_cert_file,
        broker.client_key_file,
        names=("broker.ca_file", "broker.client_cert_file", "broker.client_key_file"),
    )
    if problems:
        raise SettingsError("cannot start the edge agent:\n  - " + "\n  - ".join(problems))
    return ResolvedSettings(settings, profiles, protocols, password)
