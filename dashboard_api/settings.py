"""Settings of the dashboard API: where its stores are, how tokens and logins behave.

One settings object for the deployable (STYLE: one per entry point), read from the environment
(prefix ``SHUXIN_API_``, the SQL store's own section from ``SHUXIN_SQL_``) or from flags.

``SHUXIN_API_HOST`` / ``SHUXIN_API_PORT``
    Where to listen (default ``127.0.0.1:8000``; behind a reverse proxy in production).
``SHUXIN_API_DATA_DIR``
    Directory of the default SQLite files (the SQL store and the time-series store), the same
    directory the gateway uses when both run on one machine.
``SHUXIN_API_TSDB_URL`` / ``SHUXIN_API_INFLUX_TOKEN``
    The time-series store, as ``shuxin gateway run --tsdb`` (full-resolution series).
``SHUXIN_API_TOKEN_SECRET``
    HMAC key of the bearer tokens (≥ 32 characters). Required outside demo mode; every API
    replica must share it. Secret: environment or secrets directory only.
``SHUXIN_API_TOKEN_TTL_S``
    Token lifetime (default 8 h, one shift).
``SHUXIN_API_LOCKOUT_AFTER`` / ``SHUXIN_API_LOCKOUT_S``
    Consecutive failed logins that lock an account (default 5) and for how long (900 s).
``SHUXIN_API_DEMO_MODE``
    Demo mode: the documented demo password is accepted only here. Never in production.

Validation only: nothing connects here and no secret appears in a ``repr``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shuxin.gateway.settings import parse_tsdb_url
from shuxin.gateway.sql_settings import SqlSettings

MIN_SECRET_CHARS: Final = 32


class ApiSettings(BaseSettings):
    """Configuration of one dashboard API process (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="SHUXIN_API_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    data_dir: Path = Path("shuxin-data")
    sql: SqlSettings = Field(default_factory=SqlSettings)
    tsdb_url: str | None = None
    influx_token: SecretStr | None = None
    token_secret: SecretStr | None = None
    token_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    lockout_after: int = Field(default=5, ge=1, le=100)
    lockout_s: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    demo_mode: bool = False

    @field_validator("tsdb_url")
    @classmethod
    def _check_tsdb(cls, value: str | None) -> str | None:
        if value:
            parse_tsdb_url(value, token=None, data_dir=Path("."), check_secrets=False)
            return value
        return None

    @model_validator(mode="after")
    def _check_secret(self) -> ApiSettings:
        if self.token_secret is None:
            if not self.demo_mode:
                raise ValueError(
                    "SHUXIN_API_TOKEN_SECRET is required (at least "
                    f"{MIN_SECRET_CHARS} random characters, the same on every API replica); "
                    "generate one with: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            # Demo: one process, tokens need not outlive it.
            self.token_secret = SecretStr(secrets.token_urlsafe(48))
        if len(self.token_secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"SHUXIN_API_TOKEN_SECRET must have at least {MIN_SECRET_CHARS} characters"
            )
        return self

    def secret(self) -> str:
        """The token key (always set after validation)."""
        assert self.token_secret is not None
        return self.token_secret.get_secret_value()
