"""Encryption of subjects' real identities (name ↔ pseudonymous code) at rest, with AES-256-GCM.

A :class:`PersonIdentity` (name, optional employee number) is serialised to JSON and sealed
with a 256-bit key chosen by id from a key ring (``SHUXIN_SQL_IDENTITY_KEYS``; see
:mod:`shuxin.gateway.sql_settings`). Each seal uses a fresh random 96-bit nonce; the subject's
code is bound in as associated data, so a ciphertext copied onto another subject's row does
not decrypt. The SQL store keeps ``key_id``, ``nonce`` and ``ciphertext`` and nothing else.

Key rotation: add a new key to the ring, make it the active id, run
``SqlStore.rekey_identities()``, then drop the old key once no row uses it.

This module holds no keys of its own, never logs, and never puts a name or number in an
exception message or a ``repr``. Decryption is reached through ``SqlStore.reveal_identity``,
which writes the audit record first; nothing else should call :meth:`IdentityCipher.open`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shuxin.gateway.sql_errors import IdentityCryptoError

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KEY_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
_KEY_ID_RE: Final = re.compile(KEY_ID_PATTERN)
_AAD_PREFIX: Final = b"shuxin/identity/v1\x00"
#: Longest accepted name and employee number (characters).
MAX_NAME_CHARS: Final = 100
MAX_EMPLOYEE_NO_CHARS: Final = 32


@dataclass(frozen=True, slots=True)
class PersonIdentity:
    """A subject's real identity. Its ``repr`` shows no values."""

    name: str = field(repr=False)
    employee_no: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > MAX_NAME_CHARS:
            raise ValueError(f"name must be 1–{MAX_NAME_CHARS} characters")
        if self.employee_no is not None and not (
            0 < len(self.employee_no) <= MAX_EMPLOYEE_NO_CHARS
        ):
            raise ValueError(f"employee_no must be 1–{MAX_EMPLOYEE_NO_CHARS} characters")


@dataclass(frozen=True, slots=True)
class SealedIdentity:
    """What the database stores: the key id, the nonce and the ciphertext (with GCM tag)."""

    key_id: str
    nonce: bytes
    ciphertext: bytes


def _aad(subject_code: str) -> bytes:
    return _AAD_PREFIX + subject_code.encode("utf-8")


class IdentityCipher:
    """AES-256-GCM over a key ring; new seals use the active key, opens use the row's key."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        for key_id, key in keys.items():
            if not _KEY_ID_RE.fullmatch(key_id):
                raise IdentityCryptoError(f"identity key id {key_id!r} is not {KEY_ID_PATTERN}")
            if len(key) != KEY_BYTES:
                raise IdentityCryptoError(
                    f"identity key {key_id!r} must be {KEY_BYTES} bytes (AES-256), got {len(key)}"
                )
        if active_key_id not in keys:
            raise IdentityCryptoError(f"active identity key {active_key_id!r} is not in the ring")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    def __repr__(self) -> str:
        return f"IdentityCipher(key_ids={sorted(self._keys)}, active={self.active_key_id!r})"

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key in the ring."""
        return frozenset(self._keys)

    def seal(self, identity: PersonIdentity, *, subject_code: str) -> SealedIdentity:
        """Encrypt ``identity`` for ``subject_code`` under the active key."""
        plaintext = json.dumps(
            {"v": 1, "name": identity.name, "employee_no": identity.employee_no},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        nonce = os.urandom(NONCE_BYTES)
        aead = self._keys[self.active_key_id]
        return SealedIdentity(
            key_id=self.active_key_id,
            nonce=nonce,
            ciphertext=aead.encrypt(nonce, plaintext, _aad(subject_code)),
        )

    def open(self, sealed: SealedIdentity, *, subject_code: str) -> PersonIdentity:
        """Decrypt ``sealed``; raise :class:`IdentityCryptoError` when that is impossible.

        Callers must have written an audit record: use ``SqlStore.reveal_identity``.
        """
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise IdentityCryptoError(f"identity key {sealed.key_id!r} is not in the key ring")
        try:
            plaintext = aead.decrypt(sealed.nonce, sealed.ciphertext, _aad(subject_code))
        except InvalidTag as exc:
            raise IdentityCryptoError(
                f"identity for {subject_code} does not decrypt with key {sealed.key_id!r} "
                "(wrong key, or the row was altered or moved)"
            ) from exc
        data = json.loads(plaintext)
        return PersonIdentity(name=data["name"], employee_no=data["employee_no"])
