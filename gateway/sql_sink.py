"""The ingest sink that keeps sessions, events, ratings and station/device health in SQL.

Lifecycle messages create or update sessions, events messages add phases, markers, ratings and
gaps, status messages update presence and device state, and every session-stream message marks
its station as seen. Everything it calls on :class:`~shuxin.gateway.sql_store.SqlStore` is
idempotent, so a redelivered batch changes nothing. A message the store can never accept
(:class:`~shuxin.gateway.sql_errors.SqlDataError`, e.g. an unregistered station) becomes a
:class:`~shuxin.gateway.errors.StoreRejectedError`, which ingest quarantines with the reason;
an unreachable database passes through so the batch is retried. Time series are not its job.

:class:`SqlConsentGate` is ingest's consent gate over the same store: messages of a withdrawn
session, and lifecycle messages naming a subject whose consent is withdrawn, are discarded
before any sink sees them (docs/data-lifecycle.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shuxin.contract.messages import DeviceStatus, EventsMessage, LifecycleMessage, StationStatus
from shuxin.contract.topics import SessionTopic
from shuxin.gateway.errors import StoreRejectedError
from shuxin.gateway.ingest import CONSENT_WITHDRAWN, Accepted
from shuxin.gateway.sql_errors import SqlDataError
from shuxin.gateway.sql_store import SqlStore


@dataclass(slots=True)
class SqlSinkCounters:
    """What the sink applied, by kind."""

    applied: dict[str, int] = field(default_factory=dict)

    def bump(self, kind: str) -> None:
        """Count one applied message of ``kind``."""
        self.applied[kind] = self.applied.get(kind, 0) + 1


class SqlSink:
    """Applies lifecycle, events and status messages to the SQL store.

    "Last seen" is written at most once per ``touch_every_s`` per station: it is health
    information, and a write per batch would cost a disk sync each time.
    """

    def __init__(self, store: SqlStore, touch_every_s: float = 5.0) -> None:
        self._store = store
        self._touch_every_s = touch_every_s
        self._touched: dict[str, datetime] = {}
        self.counters = SqlSinkCounters()

    def accept(self, messages: Sequence[Accepted]) -> None:
        """Apply ``messages``; raise ``StoreRejectedError`` for data the store refuses."""
        try:
            self._apply(messages)
        except SqlDataError as exc:
            raise StoreRejectedError(str(exc)) from exc

    def _apply(self, messages: Sequence[Accepted]) -> None:
        seen: dict[str, datetime] = {}
        for accepted in messages:
            message = accepted.message
            received_at = accepted.received.received_at
            if isinstance(message, LifecycleMessage):
                self._store.apply_lifecycle(message)
                self.counters.bump("lifecycle")
            elif isinstance(message, EventsMessage):
                self._store.apply_events(message)
                self.counters.bump("events")
            elif isinstance(message, StationStatus):
                self._store.record_station_status(message, received_at)
                self.counters.bump("station_status")
                continue
            elif isinstance(message, DeviceStatus):
                self._store.record_device_status(message, received_at)
                self.counters.bump("device_status")
                continue
            station = message.station
            seen[station] = max(seen.get(station, received_at), received_at)
        for station, at in seen.items():
            last = self._touched.get(station)
            if last is None or (at - last).total_seconds() >= self._touch_every_s:
                self._store.touch_station(station, at)
                self._touched[station] = at


class SqlConsentGate:
    """Refuses what must not be stored after a consent withdrawal (see ``ConsentGate``).

    A message is refused when its session id is a withdrawn session (the subject's data was
    erased or anonymised), or when it is a lifecycle message for a subject whose consent is
    withdrawn; such a session is then recorded as withdrawn, so the rest of its messages
    follow, and a placeholder an earlier events message created is deleted. Subjects first
    seen in a session (consent not yet recorded) are accepted: stations enrol offline.
    One indexed lookup per batch; a second transaction only when a new session is refused.
    """

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def refused(self, messages: Sequence[Accepted]) -> Mapping[int, str]:
        """Positions of the messages to discard (reason ``consent_withdrawn``)."""
        sessions = {m.topic.session for m in messages if isinstance(m.topic, SessionTopic)}
        subjects = {m.message.subject for m in messages if isinstance(m.message, LifecycleMessage)}
        withdrawn, withdrawn_subjects = self._store.withdrawn_among(sessions, subjects)
        newly = {
            m.message.session
            for m in messages
            if isinstance(m.message, LifecycleMessage)
            and m.message.subject in withdrawn_subjects
            and m.message.session not in withdrawn
        }
        if newly:
            self._store.withdraw_sessions(newly)
            withdrawn |= newly
        return {
            i: CONSENT_WITHDRAWN
            for i, m in enumerate(messages)
            if isinstance(m.topic, SessionTopic) and m.topic.session in withdrawn
        }
