"""safe_parse and ParseCounters: failures are counted per profile, characteristic and kind,
never raised; a failing stream is logged once, and once more when it recovers; logs and
failure records never carry the payload bytes."""

from __future__ import annotations

import logging

import pytest

from shuxin.edge.parse_counters import (
    INTERNAL_ERROR,
    OK,
    ParseCount,
    ParseCounters,
    ParseFailure,
    safe_parse,
)
from shuxin.edge.parse_hrs import HeartRateMeasurement, parse_heart_rate_measurement

GOOD = bytes.fromhex("163C1104")
TRUNCATED = bytes.fromhex("113C")


def _hr(data: bytes, counters: ParseCounters, profile: str = "hrs_strap") -> object:
    return safe_parse(
        parse_heart_rate_measurement,
        data,
        profile=profile,
        characteristic="heart_rate",
        counters=counters,
    )


def test_ok_result_is_returned_and_counted() -> None:
    counters = ParseCounters()
    result = _hr(GOOD, counters)
    assert isinstance(result, HeartRateMeasurement)
    assert counters.count("hrs_strap", "heart_rate") == 1
    assert counters.failures() == 0


def test_parse_error_becomes_a_counted_record() -> None:
    counters = ParseCounters()
    result = _hr(TRUNCATED, counters)
    assert isinstance(result, ParseFailure)
    assert (result.profile, result.characteristic, result.kind, result.length) == (
        "hrs_strap",
        "heart_rate",
        "truncated_frame",
        2,
    )
    assert "113c" not in result.reason.lower()
    assert counters.count("hrs_strap", "heart_rate", "truncated_frame") == 1
    assert counters.is_failing("hrs_strap", "heart_rate")


def test_a_parser_bug_is_contained() -> None:
    def broken(data: bytes) -> int:
        return len(data) // 0

    counters = ParseCounters()
    result = safe_parse(broken, b"\x00", profile="p", characteristic="c", counters=counters)
    assert isinstance(result, ParseFailure)
    assert result.kind == INTERNAL_ERROR
    assert "ZeroDivisionError" in result.reason
    assert counters.count("p", "c", INTERNAL_ERROR) == 1


def test_counts_per_profile_characteristic_and_kind() -> None:
    counters = ParseCounters()
    for data in (GOOD, GOOD, TRUNCATED, b"", GOOD):
        _hr(data, counters)
    _hr(TRUNCATED, counters, profile="polar_h10")
    assert counters.snapshot() == (
        ParseCount("hrs_strap", "heart_rate", OK, 3),
        ParseCount("hrs_strap", "heart_rate", "truncated_frame", 2),
        ParseCount("polar_h10", "heart_rate", "truncated_frame", 1),
    )
    assert counters.failures() == 3
    assert counters.failures("polar_h10") == 1
    assert not counters.is_failing("hrs_strap", "heart_rate")
    assert counters.is_failing("polar_h10", "heart_rate")


def test_logged_once_per_failing_streak_and_once_on_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = ParseCounters()
    with caplog.at_level(logging.INFO, logger="shuxin.edge.parse"):
        for data in (TRUNCATED, TRUNCATED, b"", GOOD, GOOD, TRUNCATED):
            _hr(data, counters)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == ["WARNING", "INFO", "WARNING"]
    assert "cannot decode a 2-byte value (truncated_frame" in messages[0][1]
    assert "recovered" in messages[1][1]
    assert all("113c" not in text.lower() for _, text in messages)
