"""Exceptions of the v1 MQTT contract.

Exception tree::

    ContractError                 root; every rejection of a topic or payload is one of these
    ├── InvalidTopicError         the topic is not a v1 shuxin topic (or an id in it is invalid)
    ├── PayloadTooLargeError      the payload exceeds MAX_PAYLOAD_BYTES; it is not parsed at all
    ├── MalformedJsonError        not UTF-8 JSON, not an object, NaN/Infinity tokens, duplicate keys
    ├── UnsupportedVersionError   a JSON object whose ``schema`` is not a version this code reads
    └── InvalidPayloadError       a v1 object that breaks the contract (types, ranges, lengths,
                                  a subject that is not a pseudonymous code, topic mismatch)

Every error carries a one-line ``reason`` fit for a quarantine row and, for payload errors, a
list of structured ``errors`` (``loc``, ``type``, ``msg``). Neither ever repeats the offending
input: a hostile payload may carry a name, and names must not reach logs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One structured validation failure: where (``loc``), what kind (``type``), and why."""

    loc: tuple[str | int, ...]
    type: str
    msg: str

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (``loc`` as a list)."""
        return {"loc": list(self.loc), "type": self.type, "msg": self.msg}


class ContractError(Exception):
    """Root of every contract rejection. ``code`` is stable; ``reason`` is human-readable."""

    code = "contract_error"

    def __init__(self, reason: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors

    def as_dict(self) -> dict[str, object]:
        """Return ``{"code", "reason", "errors"}`` for quarantine rows and API responses."""
        return {
            "code": self.code,
            "reason": self.reason,
            "errors": [e.as_dict() for e in self.errors],
        }


class InvalidTopicError(ContractError):
    """The topic is not a v1 shuxin topic."""

    code = "invalid_topic"


class PayloadTooLargeError(ContractError):
    """The payload is larger than the contract allows; it was not parsed."""

    code = "payload_too_large"


class MalformedJsonError(ContractError):
    """The payload is not a UTF-8 JSON object of plain finite values."""

    code = "malformed_json"


class UnsupportedVersionError(ContractError):
    """The payload names a schema version this code does not read."""

    code = "unsupported_version"


class InvalidPayloadError(ContractError):
    """The payload is a v1 object but breaks the contract."""

    code = "invalid_payload"
