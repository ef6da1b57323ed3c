"""Exceptions of the edge agent (``shuxin.edge``).

Exception tree::

    EdgeError                      root; every failure the edge raises on purpose is one of these
    ├── OutboxError                the on-disk outbox cannot be opened or written
    ├── ProfileError               a device-profile file is missing, not YAML, or breaks the
    │                              model; the message names the file and the field
    ├── BleError                   the BLE stack failed (no adapter, BlueZ unreachable)
    │   └── BleUnavailableError    bleak is not installed (the optional 'ble' extra)
    └── ParseError                 bytes from a device (or a capture) that cannot be decoded
        ├── TruncatedFrameError    fewer bytes than the declared layout needs (including a
        │                          partial trailing sample)
        ├── UnknownFrameTypeError  a type/op/frame code this parser does not decode
        └── InvalidValueError      the layout is complete but a field holds an impossible
                                   value (a zero sample rate, bytes beyond the declared count)

Every ``ParseError`` carries a stable ``kind`` (used as a counter key) and a one-line
``reason``. Neither repeats the offending bytes: logs and counters record the kind and the
length only. This module must not import anything heavier than the standard library.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Root of every deliberate edge-agent failure."""


class ProfileError(EdgeError):
    """A device-profile file could not be loaded; the message names the file and the field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class BleError(EdgeError):
    """The BLE stack failed; adapters translate bleak's errors into this with ``raise … from``."""


class BleUnavailableError(BleError):
    """bleak is not installed: BLE needs the optional ``ble`` extra."""


class ParseError(EdgeError):
    """Bytes that cannot be decoded. ``kind`` is stable; ``reason`` is human-readable."""

    kind = "parse_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TruncatedFrameError(ParseError):
    """Fewer bytes than the declared layout needs."""

    kind = "truncated_frame"


class UnknownFrameTypeError(ParseError):
    """A type, op or frame code that this parser does not decode."""

    kind = "unknown_frame_type"


class InvalidValueError(ParseError):
    """The layout is complete but a field holds an impossible value."""

    kind = "invalid_value"


class OutboxError(EdgeError):
    """The on-disk outbox cannot be opened or written (disk full, corrupt file)."""
