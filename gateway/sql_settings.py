"""Settings of the central SQL store: where it is, its identity keys, start-up behaviour.

Read from the environment (prefix ``SHUXIN_SQL_``) or passed explicitly; the gateway's and the
API's settings objects embed :class:`SqlSettings` as their ``sql`` section. Fields:

``SHUXIN_SQL_URL``
    A SQLAlchemy URL. ``sqlite:///PATH`` (the default is ``shuxin.sqlite3`` in the data
    directory) or ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (driven by psycopg 3; the
    ``postgresql+psycopg://`` form is accepted too). Secret: it may hold a password.
``SHUXIN_SQL_IDENTITY_KEYS``
    JSON object ``{"key id": "base64 of 32 random bytes", …}``: the AES-256-GCM key ring for
    identities. Never in the repository or in a config file under version control: use the
    environment, or a secrets directory (``SqlSettings(_secrets_dir="/run/secrets")`` reads
    the file ``shuxin_sql_identity_keys``). Empty: identities can be neither stored nor read.
``SHUXIN_SQL_IDENTITY_KEY_ID``
    The key id new identities are sealed with (required when keys are given).
``SHUXIN_SQL_MIGRATE_ON_START``
    Upgrade the schema to the newest migration when the store opens (default true).
``SHUXIN_SQL_SQLITE_BUSY_TIMEOUT_MS``
    How long a SQLite writer waits for another one (default 10 000).

Validation only: no connection is made here, and no key or URL appears in a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shuxin.gateway.identity_crypto import KEY_BYTES, IdentityCipher

DEFAULT_SQLITE_NAME: Final = "shuxin.sqlite3"


class SqlSettings(BaseSettings):
    """Configuration of the SQL store (see the module docstring for each field)."""

    model_config = SettingsConfigDict(env_prefix="SHUXIN_SQL_", extra="forbid")

    url: SecretStr | None = None
    identity_keys: dict[str, SecretStr] = Field(default_factory=dict)
    identity_key_id: str | None = None
    migrate_on_start: bool = True
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0, le=600_000)

    @model_validator(mode="after")
    def _check_keys(self) -> SqlSettings:
        if self.identity_keys and self.identity_key_id is None:
            raise ValueError("identity_key_id is required when identity_keys are given")
        if self.identity_key_id is not None and self.identity_key_id not in self.identity_keys:
            raise ValueError(f"identity_key_id {self.identity_key_id!r} is not in identity_keys")
        self.decoded_identity_keys()  # raises on a malformed key
        return self

    def decoded_identity_keys(self) -> dict[str, bytes]:
        """The key ring as raw bytes; raise ``ValueError`` for a key that is not 32 bytes."""
        ring: dict[str, bytes] = {}
        for key_id, secret in self.identity_keys.items():
            try:
                key = base64.b64decode(secret.get_secret_value(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"identity key {key_id!r} is not valid base64") from exc
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"identity key {key_id!r} must decode to {KEY_BYTES} bytes, got {len(key)}"
                )
            ring[key_id] = key
        return ring

    def identity_cipher(self) -> IdentityCipher | None:
        """The identity cipher, or None when no keys are configured."""
        if self.identity_key_id is None:
            return None
        return IdentityCipher(self.decoded_identity_keys(), self.identity_key_id)

    def resolved_url(self, data_dir: Path) -> str:
        """The configured URL, or ``sqlite:///<data_dir>/shuxin.sqlite3``."""
        if self.url is not None:
            return self.url.get_secret_value()
        return f"sqlite:///{(data_dir / DEFAULT_SQLITE_NAME).resolve()}"
