"""Operational alerts: station offline, device lost, outbox backlog growing.

``evaluate_operational`` is pure: the stations, their devices, the devices of running sessions,
the unresolved operational alerts and the per-target timers go in; which alerts to open, which
to resolve and the new timers come out. ``OpsAlertChecker.tick(now)`` reads those inputs from
the SQL store, applies the decisions (``SqlStore.open_alert``, one unresolved alert per target;
``SqlStore.resolve_operational_alert``) and keeps the timers in memory. The gateway runs it
periodically (``GatewayService.run``).

Conditions (per target):

- **station offline** (target: the station): its presence is ``offline`` (retained status or
  last will), or — when ``station_silent_after_s`` is set — it is ``online`` but nothing has
  been seen from it for that long. A station never seen at all (presence ``unknown``) is not
  alerted.
- **device lost** (target: station + device): the device is listed by a running session of
  an online station and its last status says ``connected: false`` (or, when
  ``device_silent_after_s`` is set, its status is older than that). Once no running session
  lists it, the condition is false. Devices of an offline station are not judged (the station
  alert covers them).
- **outbox backlog** (target: the station): the backlog the station reports in its status is
  ≥ ``backlog_open`` and not smaller than at the previous check (growing or stuck); it clears
  at ≤ ``backlog_clear``; in between, nothing changes (hysteresis band). Not judged while the
  station is offline (its figure is stale).

Hysteresis: an alert opens only when its condition holds now and has held for
``open_after_s`` (per kind) across checks (an undecided check, e.g. a backlog in the band or
shrinking, keeps the timers but opens nothing), and an open alert is resolved by the system
only after the condition has been false for ``clear_after_s``. The timers live in memory, so
after a gateway restart they start again (an alert opens at most one hold later than it
would have).

This module must not touch advisory alerts (watch, check-in: only a person resolves those)
and must not read raw data; it works on the health the SQL sink already stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from shuxin.gateway.sql_errors import InvalidTransitionError
from shuxin.gateway.sql_models import AlertKind, Presence
from shuxin.gateway.sql_store import GATEWAY, Actor, Alert, Device, SqlStore, Station
from shuxin.runtime.threads import to_thread_settled

log = logging.getLogger(__name__)

RULES_VERSION: Final = "ops-1"
OPERATIONAL_KINDS: Final = frozenset(
    {AlertKind.STATION_OFFLINE, AlertKind.DEVICE_LOST, AlertKind.OUTBOX_BACKLOG}
)
WORDING: Final[Mapping[AlertKind, str]] = {
    AlertKind.STATION_OFFLINE: "驿站离线：未收到该驿站的在线状态或数据",
    AlertKind.DEVICE_LOST: "设备丢失：会话进行中传感器已断开",
    AlertKind.OUTBOX_BACKLOG: "上传积压：驿站待发送消息持续增加",
}


@dataclass(frozen=True, slots=True)
class OpsThresholds:
    """Thresholds and holds of the operational rules (seconds, messages)."""

    station_offline_after_s: float = 60.0
    station_silent_after_s: float | None = None
    device_lost_after_s: float = 30.0
    device_silent_after_s: float | None = None
    backlog_open: int = 500
    backlog_clear: int = 50
    backlog_after_s: float = 60.0
    clear_after_s: float = 30.0

    def open_after_s(self, kind: AlertKind) -> float:
        """How long ``kind``'s condition must hold before an alert opens."""
        return {
            AlertKind.STATION_OFFLINE: self.station_offline_after_s,
            AlertKind.DEVICE_LOST: self.device_lost_after_s,
        }.get(kind, self.backlog_after_s)

    def as_doc(self) -> dict[str, Any]:
        """The thresholds as stored in an alert's explanation."""
        return {
            "station_offline_after_s": self.station_offline_after_s,
            "station_silent_after_s": self.station_silent_after_s,
            "device_lost_after_s": self.device_lost_after_s,
            "device_silent_after_s": self.device_silent_after_s,
            "backlog_open": self.backlog_open,
            "backlog_clear": self.backlog_clear,
            "backlog_after_s": self.backlog_after_s,
            "clear_after_s": self.clear_after_s,
        }


@dataclass(frozen=True, slots=True)
class OpsTarget:
    """What an operational alert is about: a kind and a station (and a device)."""

    kind: AlertKind
    station_id: str
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class TargetTimer:
    """Since when a target's condition has been continuously true, or false."""

    true_since: datetime | None = None
    false_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpsDecision:
    """An alert to open (with its explanation) or to resolve (with the alert id and why)."""

    target: OpsTarget
    explanation: Mapping[str, Any]
    resolve_alert_id: int | None = None


@dataclass(frozen=True, slots=True)
class OpsEvaluation:
    """The outcome of one check: alerts to open and to resolve, the new timers and backlogs."""

    to_open: tuple[OpsDecision, ...]
    to_resolve: tuple[OpsDecision, ...]
    timers: Mapping[OpsTarget, TargetTimer]
    backlogs: Mapping[str, int]


def _age_s(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds()


def _station_condition(
    station: Station, now: datetime, th: OpsThresholds
) -> tuple[bool | None, dict[str, Any]]:
    inputs: dict[str, Any] = {
        "presence": station.presence.value,
        "presence_at": station.presence_at.isoformat() if station.presence_at else None,
        "last_seen_at": station.last_seen_at.isoformat() if station.last_seen_at else None,
    }
    if station.presence is Presence.OFFLINE:
        inputs["reason"] = "presence offline (status or last will)"
        return True, inputs
    if station.presence is Presence.UNKNOWN:
        return None, inputs
    silent = _age_s(now, station.last_seen_at)
    if th.station_silent_after_s is not None and silent is not None:
        inputs["silent_s"] = round(silent, 1)
        if silent >= th.station_silent_after_s:
            inputs["reason"] = f"not seen for {silent:.0f} s"
            return True, inputs
    return False, inputs


def _device_condition(
    device: Device, now: datetime, th: OpsThresholds
) -> tuple[bool, dict[str, Any]]:
    inputs: dict[str, Any] = {
        "connected": device.connected,
        "status_at": device.status_at.isoformat() if device.status_at else None,
        "in_running_session": True,
    }
    if device.connected is False:
        inputs["reason"] = "device status says disconnected"
        return True, inputs
    stale = _age_s(now, device.status_at)
    if th.device_silent_after_s is not None and stale is not None:
        inputs["status_age_s"] = round(stale, 1)
        if stale >= th.device_silent_after_s:
            inputs["reason"] = f"no device status for {stale:.0f} s"
            return True, inputs
    return False, inputs


def _backlog_condition(
    station: Station, previous: int | None, th: OpsThresholds
) -> tuple[bool | None, dict[str, Any]]:
    backlog = station.outbox_backlog
    inputs: dict[str, Any] = {"outbox_backlog": backlog, "previous_backlog": previous}
    if backlog is None or station.presence is not Presence.ONLINE:
        return None, inputs
    if backlog <= th.backlog_clear:
        return False, inputs
    if backlog >= th.backlog_open and (previous is None or backlog >= previous):
        inputs["reason"] = f"outbox backlog {backlog} ≥ {th.backlog_open} and not shrinking"
        return True, inputs
    return None, inputs


def evaluate_operational(
    stations: Sequence[Station],
    devices: Mapping[str, Sequence[Device]],
    running_devices: Mapping[str, frozenset[str]],
    unresolved: Mapping[OpsTarget, int],
    *,
    now: datetime,
    thresholds: OpsThresholds,
    timers: Mapping[OpsTarget, TargetTimer] | None = None,
    backlogs: Mapping[str, int] | None = None,
) -> OpsEvaluation:
    """Decide which operational alerts to open and which to resolve (pure).

    ``devices`` are each station's devices; ``running_devices`` the device ids that running
    sessions list, per station; ``unresolved`` the open or acknowledged operational alerts by
    target (alert id); ``timers`` and ``backlogs`` what the previous call returned.
    """
    th = thresholds
    old_timers = dict(timers or {})
    old_backlogs = dict(backlogs or {})
    conditions: dict[OpsTarget, tuple[bool | None, dict[str, Any]]] = {}
    new_backlogs: dict[str, int] = {}
    for station in stations:
        offline, inputs = _station_condition(station, now, th)
        conditions[OpsTarget(AlertKind.STATION_OFFLINE, station.id)] = (offline, inputs)
        backlog_state = _backlog_condition(station, old_backlogs.get(station.id), th)
        conditions[OpsTarget(AlertKind.OUTBOX_BACKLOG, station.id)] = backlog_state
        if station.outbox_backlog is not None:
            new_backlogs[station.id] = station.outbox_backlog
        if offline is not False:
            continue
        active = running_devices.get(station.id, frozenset())
        for device in devices.get(station.id, ()):
            target = OpsTarget(AlertKind.DEVICE_LOST, station.id, device.device_id)
            if device.device_id in active:
                conditions[target] = _device_condition(device, now, th)
            else:
                conditions[target] = (False, {"in_running_session": False})
    for target in unresolved:
        if target not in conditions and target.kind is AlertKind.DEVICE_LOST:
            conditions[target] = (False, {"in_running_session": False})

    to_open: list[OpsDecision] = []
    to_resolve: list[OpsDecision] = []
    new_timers: dict[OpsTarget, TargetTimer] = {}
    for target, (condition, inputs) in conditions.items():
        timer = old_timers.get(target, TargetTimer())
        if condition is True:
            timer = TargetTimer(true_since=timer.true_since or now)
        elif condition is False:
            timer = TargetTimer(false_since=timer.false_since or now)
        new_timers[target] = timer
        held_true = _age_s(now, timer.true_since)
        held_false = _age_s(now, timer.false_since)
        explanation = {
            "message": WORDING[target.kind],
            "advisory": False,
            "rules_version": RULES_VERSION,
            "inputs": inputs,
            "thresholds": th.as_doc(),
            "condition_since": timer.true_since.isoformat() if timer.true_since else None,
        }
        alert_id = unresolved.get(target)
        if alert_id is None:
            if (
                condition is True
                and held_true is not None
                and held_true >= th.open_after_s(target.kind)
            ):
                to_open.append(OpsDecision(target, explanation))
        elif condition is False and held_false is not None and held_false >= th.clear_after_s:
            cleared = {**explanation, "cleared_since": timer.false_since.isoformat()}  # type: ignore[union-attr]
            to_resolve.append(OpsDecision(target, cleared, resolve_alert_id=alert_id))
    return OpsEvaluation(tuple(to_open), tuple(to_resolve), new_timers, new_backlogs)


@dataclass(slots=True)
class OpsCounters:
    """Checks run and failed, alerts opened and resolved by the checker."""

    checks: int = 0
    failed: int = 0
    opened: int = 0
    resolved: int = 0


@dataclass
class OpsAlertChecker:
    """Runs :func:`evaluate_operational` against the SQL store and applies the result."""

    sql: SqlStore
    thresholds: OpsThresholds = field(default_factory=OpsThresholds)
    actor: Actor = GATEWAY
    counters: OpsCounters = field(default_factory=OpsCounters)
    _timers: Mapping[OpsTarget, TargetTimer] = field(default_factory=dict, repr=False)
    _backlogs: Mapping[str, int] = field(default_factory=dict, repr=False)

    def tick(self, now: datetime) -> OpsEvaluation:
        """One check at ``now``: read health, open and resolve alerts, keep the timers."""
        stations = self.sql.all_stations()
        devices = {s.id: self.sql.list_devices(s.id) for s in stations}
        running: dict[str, set[str]] = {}
        for session in self.sql.running_sessions():
            running.setdefault(session.station_id, set()).update(session.devices)
        unresolved: dict[OpsTarget, int] = {}
        for alert in self.sql.unresolved_operational_alerts():
            target = _target_of(alert)
            if target is not None:
                unresolved[target] = alert.id
        evaluation = evaluate_operational(
            stations,
            devices,
            {k: frozenset(v) for k, v in running.items()},
            unresolved,
            now=now,
            thresholds=self.thresholds,
            timers=self._timers,
            backlogs=self._backlogs,
        )
        for decision in evaluation.to_open:
            target = decision.target
            self.sql.open_alert(
                target.kind,
                decision.explanation,
                created_at=now,
                station_id=target.station_id,
                device_id=target.device_id,
            )
            self.counters.opened += 1
            log.warning("operational alert %s opened for %s", target.kind.value, target.station_id)
        for decision in evaluation.to_resolve:
            assert decision.resolve_alert_id is not None  # set for every resolution
            try:
                self.sql.resolve_operational_alert(
                    decision.resolve_alert_id,
                    actor=self.actor,
                    note="condition cleared (auto-resolved)",
                    at=now,
                )
            except InvalidTransitionError:  # another replica resolved it first
                log.info("alert %s was already resolved", decision.resolve_alert_id)
                continue
            self.counters.resolved += 1
        self._timers = evaluation.timers
        self._backlogs = evaluation.backlogs
        self.counters.checks += 1
        return evaluation

    async def run_forever(
        self, interval_s: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Check every ``interval_s`` until cancelled; a failed check is logged and counted."""
        while True:
            try:
                await to_thread_settled(self.tick, clock())
            except Exception:
                self.counters.failed += 1
                log.exception("operational alert check failed")
            await asyncio.sleep(interval_s)


def _target_of(alert: Alert) -> OpsTarget | None:
    if alert.kind not in OPERATIONAL_KINDS or alert.station_id is None:
        return None
    device = alert.device_id if alert.kind is AlertKind.DEVICE_LOST else None
    return OpsTarget(alert.kind, alert.station_id, device)
