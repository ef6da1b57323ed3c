"""Logins and tokens: Argon2id password hashes (pwdlib), lockout, signed expiring tokens.

- Passwords are hashed with Argon2id through ``pwdlib`` (the maintained library FastAPI
  documents); a hash made with older parameters is upgraded on the next good login.
- ``shuxin-demo``, the documented demo password, is refused outside demo mode, both when an
  account is given it and when somebody logs in with it.
- After ``lockout_after`` consecutive failures an account is locked for ``lockout_s``; a
  login for an unknown user costs the same hash verification as a known one.
- Tokens are JWTs (PyJWT, HS256) naming the user id and expiring after ``token_ttl_s``. The
  role and scope are re-read from the user row on every request, so deactivating an account or
  moving it takes effect at once; the token is only proof of a recent login.

No route code here; the login route and the dependencies call these functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from shuxin.dashboard_api.errors import ApiError
from shuxin.gateway.sql_models import UserRow

DEMO_PASSWORD: Final = "shuxin-demo"  # noqa: S105 - documented demo password, refused outside demo mode
MIN_PASSWORD_CHARS: Final = 10
MAX_PASSWORD_CHARS: Final = 256
TOKEN_ALGORITHM: Final = "HS256"  # noqa: S105 - not a secret
TOKEN_AUDIENCE: Final = "shuxin-api"  # noqa: S105 - not a secret

_HASHER: Final = PasswordHash((Argon2Hasher(),))
#: Verified against when the user does not exist, so timing does not reveal existence.
_DUMMY_HASH: Final = _HASHER.hash("not-a-real-password-0000")


class PasswordPolicyError(ValueError):
    """A password an account may not have."""


def check_password_policy(password: str, *, demo_mode: bool) -> None:
    """Raise :class:`PasswordPolicyError` for a password an account may not be given."""
    if password == DEMO_PASSWORD:
        if not demo_mode:
            raise PasswordPolicyError("the demo password is refused outside demo mode")
        return
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordPolicyError(f"a password may have at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (PHC string)."""
    return _HASHER.hash(password)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token and when it stops working."""

    token: str
    expires_at: datetime


class TokenService:
    """Issue and verify bearer tokens with one shared key."""

    def __init__(
        self, secret: str, ttl_s: int, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)
        self._clock = clock

    def issue(self, user_id: int) -> IssuedToken:
        """A token for ``user_id``, valid for the configured lifetime."""
        now = self._clock()
        expires = now + self._ttl
        claims = {
            "sub": str(user_id),
            "aud": TOKEN_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._secret, algorithm=TOKEN_ALGORITHM)
        return IssuedToken(token, expires)

    def verify(self, token: str) -> int:
        """The user id of a valid token; :class:`ApiError` 401 for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[TOKEN_ALGORITHM],
                audience=TOKEN_AUDIENCE,
                options={"require": ["sub", "exp", "iat", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthenticated("the token has expired; log in again") from exc
        except jwt.PyJWTError as exc:
            raise unauthenticated("the token is invalid") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.isdigit():
            raise unauthenticated("the token is invalid")
        return int(sub)


def unauthenticated(message: str) -> ApiError:
    """401 with the bearer challenge."""
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    db: OrmSession,
    username: str,
    password: str,
    *,
    now: datetime,
    lockout_after: int,
    lockout_s: int,
    demo_mode: bool,
) -> UserRow | ApiError:
    """Check a login inside the caller's transaction: the user, or the refusal (401/423) to
    raise once the transaction has COMMITTED (the failure counter must survive the refusal).

    Failure messages do not say whether the user exists.
    """
    bad = unauthenticated("wrong username or password")
    row = db.scalar(select(UserRow).where(UserRow.username == username).with_for_update())
    if row is None or row.password_hash is None:
        _HASHER.verify(password, _DUMMY_HASH)
        return bad
    if row.locked_until is not None and row.locked_until > now:
        _HASHER.verify(password, _DUMMY_HASH)
        return ApiError(423, "locked", "too many failed logins; the account is locked for now")
    valid, new_hash = _HASHER.verify_and_update(password, row.password_hash)
    if valid and password == DEMO_PASSWORD and not demo_mode:
        valid = False
    if not valid or not row.active:
        row.failed_logins += 1
        if row.failed_logins >= lockout_after:
            row.locked_until = now + timedelta(seconds=lockout_s)
            row.failed_logins = 0
        return bad
    if new_hash is not None:
        row.password_hash = new_hash
    row.failed_logins = 0
    row.locked_until = None
    row.last_login_at = now
    return row
