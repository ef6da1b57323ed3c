"""Count parse outcomes per profile, characteristic and error kind; parse without crashing.

``safe_parse(parser, data, profile=…, characteristic=…, counters=…)`` returns the parser's
result, or a :class:`ParseFailure` record that has already been counted. It never raises:
a :class:`~shuxin.edge.errors.ParseError` is counted under its ``kind``, anything else (a
parser bug) under ``internal_error``, so one hostile notification cannot stop a session.

Following Home Assistant's habit, a failing stream is logged once when it starts failing
and once when it recovers, never per notification. Log lines and failure records carry the
error kind, reason and byte count, never the payload bytes.

``ParseCounters`` is meant for one asyncio loop (no locking). This module must not import
bleak or do I/O beyond logging.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shuxin.edge.errors import ParseError

_log = logging.getLogger("shuxin.edge.parse")

T = TypeVar("T")

OK = "ok"
INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A counted failure to decode one value: where, which kind, why, and how many bytes."""

    profile: str
    characteristic: str
    kind: str
    reason: str
    length: int


@dataclass(frozen=True, slots=True)
class ParseCount:
    """One counter: outcome ``kind`` (``ok`` or an error kind) for a profile/characteristic."""

    profile: str
    characteristic: str
    kind: str
    count: int


@dataclass(slots=True)
class ParseCounters:
    """Counts of parse outcomes, keyed by (profile, characteristic, kind)."""

    _counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _failing: set[tuple[str, str]] = field(default_factory=set)

    def record_ok(self, profile: str, characteristic: str) -> None:
        """Count one decoded value; log once if this stream was failing."""
        self._counts[(profile, characteristic, OK)] += 1
        stream = (profile, characteristic)
        if stream in self._failing:
            self._failing.discard(stream)
            _log.info("%s/%s: decoding recovered", profile, characteristic)

    def record_failure(self, failure: ParseFailure) -> None:
        """Count one failure; log once when the stream starts failing."""
        self._counts[(failure.profile, failure.characteristic, failure.kind)] += 1
        stream = (failure.profile, failure.characteristic)
        if stream not in self._failing:
            self._failing.add(stream)
            _log.warning(
                "%s/%s: cannot decode a %d-byte value (%s: %s); further failures are "
                "counted, not logged, until it recovers",
                failure.profile,
                failure.characteristic,
                failure.length,
                failure.kind,
                failure.reason,
            )

    def count(self, profile: str, characteristic: str, kind: str = OK) -> int:
        """How many outcomes of ``kind`` were recorded for this profile/characteristic."""
        return self._counts[(profile, characteristic, kind)]

    def failures(self, profile: str | None = None) -> int:
        """Total failures, optionally for one profile."""
        return sum(
            n
            for (p, _, kind), n in self._counts.items()
            if kind != OK and (profile is None or p == profile)
        )

    def is_failing(self, profile: str, characteristic: str) -> bool:
        """True while the last value on this stream failed to decode."""
        return (profile, characteristic) in self._failing

    def snapshot(self) -> tuple[ParseCount, ...]:
        """Every counter, sorted, as immutable records (for device status and metrics)."""
        return tuple(
            ParseCount(profile=p, characteristic=c, kind=k, count=n)
            for (p, c, k), n in sorted(self._counts.items())
        )


def safe_parse(
    parser: Callable[[bytes], T],
    data: bytes,
    *,
    profile: str,
    characteristic: str,
    counters: ParseCounters,
) -> T | ParseFailure:
    """Run ``parser`` on ``data``; count and return the result or a ``ParseFailure``."""
    try:
        result = parser(data)
    except ParseError as exc:
        failure = ParseFailure(profile, characteristic, exc.kind, exc.reason, len(data))
    except Exception as exc:  # a parser bug must not stop a session; counted, not raised
        failure = ParseFailure(
            profile, characteristic, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", len(data)
        )
    else:
        counters.record_ok(profile, characteristic)
        return result
    counters.record_failure(failure)
    return failure
