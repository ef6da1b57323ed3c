"""Exceptions of the central SQL store, under the gateway's root ``GatewayError``.

Exception tree::

    GatewayError                      (shuxin.gateway.errors)
    ├── SqlStoreError                 the SQL store failed; base of everything below
    │   ├── SqlUnavailableError       cannot reach the database, it is locked, or a time-out
    │   │                             passed: retryable, the same call may succeed later
    │   ├── SqlSchemaError            the migrations failed, or the database is at a revision
    │   │                             this code does not know (newer code wrote it)
    │   └── SqlDataError              the request or message itself cannot be stored; retrying
    │       │                         it unchanged cannot succeed
    │       ├── NotFoundError         a row it refers to does not exist
    │       │   └── UnknownStationError   a message names a station nobody registered
    │       ├── ConflictError         it contradicts stored data (a duplicate code, a session
    │       │                         id another station used, a grid rule)
    │       ├── InvalidTransitionError    an alert cannot move to that state
    │       └── TooLargeError         a JSON document or list exceeds its bound
    └── IdentityCryptoError           an identity cannot be sealed or opened (no keys
                                      configured, unknown key id, wrong key, tampered row)

Ingest note: ``shuxin.gateway.ingest`` retries a batch on any ``GatewayError`` except
``StoreRejectedError``. A SQL sink must therefore translate :class:`SqlDataError` into
``StoreRejectedError`` (quarantine the message) and let :class:`SqlUnavailableError` through
(retry later).

Messages name tables, ids and pseudonymous codes, never a person's name, number or a payload.
Standard library only.
"""

from __future__ import annotations

from shuxin.gateway.errors import GatewayError


class SqlStoreError(GatewayError):
    """The SQL store failed."""


class SqlUnavailableError(SqlStoreError):
    """The database cannot be reached or is busy; the same call may succeed later."""


class SqlSchemaError(SqlStoreError):
    """Migrating failed, or the database's schema revision is unknown to this code."""


class SqlDataError(SqlStoreError):
    """The data itself cannot be stored; retrying it unchanged cannot succeed."""


class NotFoundError(SqlDataError):
    """A row the call refers to does not exist."""


class UnknownStationError(NotFoundError):
    """A message names a station that is not registered."""


class ConflictError(SqlDataError):
    """The call contradicts what is stored."""


class InvalidTransitionError(SqlDataError):
    """An alert cannot move from its state to the one asked for."""


class TooLargeError(SqlDataError):
    """A JSON document or a list is larger than its column allows."""


class IdentityCryptoError(GatewayError):
    """An identity cannot be sealed or opened: no keys, unknown key id, wrong key, tampering."""
