"""Topic names of the v1 MQTT contract: builders, a parser and subscription filters.

Layout (DESIGN §5); a station writes only under its own id::

    shuxin/v1/<station>/status                               retained presence, last will
    shuxin/v1/<station>/devices/<device>/status              retained device state
    shuxin/v1/<station>/sessions/<session>/<stream>          session data, QoS 1, seq per topic

Pure string handling; no MQTT client here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shuxin.contract.errors import InvalidTopicError
from shuxin.contract.ids import DEVICE_ID_PATTERN, SESSION_ID_PATTERN, STATION_ID_PATTERN

TOPIC_ROOT: Final = "shuxin"
CONTRACT_VERSION: Final = "v1"
PREFIX: Final = f"{TOPIC_ROOT}/{CONTRACT_VERSION}"

#: Filter matching every v1 topic of every station.
ALL_STATIONS_FILTER: Final = f"{PREFIX}/#"


class Stream(StrEnum):
    """The per-session streams a station publishes."""

    LIFECYCLE = "lifecycle"
    RR = "rr"
    HR = "hr"
    EDA = "eda"
    METRICS = "metrics"
    EVENTS = "events"
    ECG = "ecg"
    PPG = "ppg"


_STATION_RE: Final = re.compile(STATION_ID_PATTERN)
_DEVICE_RE: Final = re.compile(DEVICE_ID_PATTERN)
_SESSION_RE: Final = re.compile(SESSION_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class StationStatusTopic:
    """``shuxin/v1/<station>/status``."""

    station: str

    def __str__(self) -> str:
        return f"{PREFIX}/{self.station}/status"


@dataclass(frozen=True, slots=True)
class DeviceStatusTopic:
    """``shuxin/v1/<station>/devices/<device>/status``."""

    station: str
    device: str

    def __str__(self) -> str:
        return f"{PREFIX}/{self.station}/devices/{self.device}/status"


@dataclass(frozen=True, slots=True)
class SessionTopic:
    """``shuxin/v1/<station>/sessions/<session>/<stream>``."""

    station: str
    session: str
    stream: Stream

    def __str__(self) -> str:
        return f"{PREFIX}/{self.station}/sessions/{self.session}/{self.stream.value}"


Topic = StationStatusTopic | DeviceStatusTopic | SessionTopic


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value):
        raise InvalidTopicError(f"invalid {kind} id in topic: must match {pattern.pattern}")
    return value


def station_status_topic(station: str) -> str:
    """Return the retained presence topic of ``station``."""
    return str(StationStatusTopic(_check("station", station, _STATION_RE)))


def device_status_topic(station: str, device: str) -> str:
    """Return the retained status topic of ``device`` at ``station``."""
    _check("station", station, _STATION_RE)
    return str(DeviceStatusTopic(station, _check("device", device, _DEVICE_RE)))


def session_topic(station: str, session: str, stream: Stream | str) -> str:
    """Return the topic of one stream of one session."""
    _check("station", station, _STATION_RE)
    _check("session", session, _SESSION_RE)
    try:
        stream_enum = Stream(stream)
    except ValueError:
        raise InvalidTopicError(f"unknown stream {stream!r}") from None
    return str(SessionTopic(station, session, stream_enum))


def station_filter(station: str) -> str:
    """Return the filter covering everything ``station`` may publish (its ACL scope)."""
    return f"{PREFIX}/{_check('station', station, _STATION_RE)}/#"


def shared_subscription(group: str, topic_filter: str = ALL_STATIONS_FILTER) -> str:
    """Return the MQTT 5 shared-subscription form ``$share/<group>/<filter>``."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", group):
        raise ValueError("shared subscription group must be 1-64 of [A-Za-z0-9_-]")
    return f"$share/{group}/{topic_filter}"


def parse_topic(topic: str) -> Topic:
    """Parse a v1 topic; raise :class:`InvalidTopicError` with the reason otherwise."""
    if len(topic) > 256:
        raise InvalidTopicError("topic longer than 256 characters")
    parts = topic.split("/")
    if parts[:2] != [TOPIC_ROOT, CONTRACT_VERSION]:
        raise InvalidTopicError(f"topic does not start with {PREFIX}/")
    rest = parts[2:]
    if len(rest) == 2 and rest[1] == "status":
        return StationStatusTopic(_check("station", rest[0], _STATION_RE))
    if len(rest) == 4 and rest[1] == "devices" and rest[3] == "status":
        station = _check("station", rest[0], _STATION_RE)
        return DeviceStatusTopic(station, _check("device", rest[2], _DEVICE_RE))
    if len(rest) == 4 and rest[1] == "sessions":
        station = _check("station", rest[0], _STATION_RE)
        session = _check("session", rest[2], _SESSION_RE)
        try:
            stream = Stream(rest[3])
        except ValueError:
            raise InvalidTopicError(f"unknown stream {rest[3][:32]!r}") from None
        return SessionTopic(station, session, stream)
    raise InvalidTopicError("topic is not a station status, device status or session stream")
