"""Encode and decode v1 payloads: the one place where bytes from MQTT become typed messages.

``decode(topic, payload)`` checks, in order and cheapest first: topic shape, payload size, JSON
well-formedness (UTF-8, an object, no NaN/Infinity, no duplicate keys), schema version, the
model, and that the ids in the payload match the topic. Anything wrong raises a
:class:`~shuxin.contract.errors.ContractError` subclass with a reason and structured field
errors — and nothing else, whatever the input. Pure functions; no I/O.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter, ValidationError

from shuxin.contract.errors import (
    ContractError,
    FieldError,
    InvalidPayloadError,
    MalformedJsonError,
    PayloadTooLargeError,
    UnsupportedVersionError,
)
from shuxin.contract.messages import (
    MAX_PAYLOAD_BYTES,
    SUPPORTED_VERSIONS,
    DeviceStatus,
    SessionMessage,
    StationStatus,
)
from shuxin.contract.topics import (
    DeviceStatusTopic,
    SessionTopic,
    StationStatusTopic,
    Topic,
    parse_topic,
)

Message = SessionMessage | StationStatus | DeviceStatus

_SESSION_ADAPTER: Final[TypeAdapter[SessionMessage]] = TypeAdapter(SessionMessage)
_MAX_ERRORS: Final = 20


def encode(message: BaseModel) -> bytes:
    """Serialise a contract message to compact UTF-8 JSON (aliases, no nulls)."""
    return message.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


def decode(topic: str, payload: bytes) -> tuple[Topic, Message]:
    """Validate ``payload`` received on ``topic``; return the parsed topic and message.

    Raises
    ------
    ContractError
        One of its subclasses, with ``reason`` and ``errors``; never any other exception.
    """
    try:
        return _decode(topic, payload)
    except ContractError:
        raise
    except Exception as exc:  # a contract decoder must never crash ingest
        raise InvalidPayloadError(f"payload could not be validated ({type(exc).__name__})") from exc


def _decode(topic: str, payload: bytes) -> tuple[Topic, Message]:
    parsed = parse_topic(topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}"
        )
    _check_json(payload)
    message: Message
    try:
        if isinstance(parsed, SessionTopic):
            message = _SESSION_ADAPTER.validate_json(payload)
        elif isinstance(parsed, StationStatusTopic):
            message = StationStatus.model_validate_json(payload)
        else:
            message = DeviceStatus.model_validate_json(payload)
    except ValidationError as exc:
        raise _payload_error(exc) from None
    _check_matches_topic(parsed, message)
    return parsed, message


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not allowed in the contract")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key in a JSON object")
        result[key] = value
    return result


def _check_json(payload: bytes) -> None:
    """Reject what the model parser would tolerate: NaN/Infinity, duplicate keys, non-objects.

    Duplicate keys are refused so that no two JSON readers can disagree about a message.
    """
    try:
        obj = json.loads(
            payload.decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_reject_duplicates,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as json_exc:
        reason = str(json_exc).splitlines()[0][:200] if str(json_exc) else "invalid JSON"
        raise MalformedJsonError(f"payload is not valid JSON: {reason}") from None
    if not isinstance(obj, dict):
        raise MalformedJsonError("payload must be a JSON object")
    version = obj.get("schema")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        shown = repr(version)[:20]
        raise UnsupportedVersionError(
            f"schema version {shown} is not supported (this code reads "
            f"{sorted(SUPPORTED_VERSIONS)})"
        )


def _payload_error(exc: ValidationError) -> InvalidPayloadError:
    """Summarise a model validation failure without repeating the input."""
    errors = tuple(
        FieldError(
            loc=tuple(err["loc"]),
            type=err["type"],
            # pydantic messages for value errors start with "Value error, "; keep the reason.
            msg=str(err["msg"]).removeprefix("Value error, ")[:200],
        )
        for err in exc.errors(include_url=False, include_input=False, include_context=False)[
            :_MAX_ERRORS
        ]
    )
    first = errors[0] if errors else None
    where = ".".join(str(p) for p in first.loc) if first and first.loc else "payload"
    summary = f"{where}: {first.msg}" if first else "invalid payload"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InvalidPayloadError(f"{summary}{more}", errors)


def _check_matches_topic(topic: Topic, message: Message) -> None:
    mismatches: list[str] = []
    if message.station != topic.station:
        mismatches.append("station")
    if isinstance(topic, SessionTopic):
        if getattr(message, "session", None) != topic.session:
            mismatches.append("session")
        if getattr(message, "stream", None) != topic.stream.value:
            mismatches.append("stream")
    if isinstance(topic, DeviceStatusTopic) and getattr(message, "device", None) != topic.device:
        mismatches.append("device")
    if mismatches:
        raise InvalidPayloadError(
            f"payload {', '.join(mismatches)} does not match the topic",
            tuple(FieldError((m,), "topic_mismatch", "differs from the topic") for m in mismatches),
        )
