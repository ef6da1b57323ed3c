"""Daily, weekly and monthly reports (每日一研判、每周一汇报、每月一总结): pure aggregation with
k-anonymity suppression.

Input: facts already read from the stores (sessions, subjects, alerts, stations of one org-unit
tree); output: the report's cells, per-child rows and distributions with every people-cell of
fewer than :data:`K_MIN` distinct people suppressed. No I/O and no clock here; the route reads
the facts and writes the audit record. Nothing individual ever leaves this module: a
distribution is reduced to percentiles and a count before it is returned.

Suppression rules (also in ``docs/api-reports-exports.md``):

1. *Primary*: a cell that describes people (sessions held, participants, subjects registered,
   person alerts) and rests on fewer than ``K_MIN`` distinct people is suppressed, reason
   ``"k<5"`` — including zero. Operational cells (stations, devices, station alerts) describe
   no person and are never suppressed.
2. *Complementary*: every people metric is additive down the tree (a subject counts for the one
   org unit it is registered at), so for each unit P with children C1..Cn the equation
   ``P = C1 + … + Cn + R`` holds, R being what is attached to P itself (never shown, so always
   unknown when non-empty). When P is suppressed, a child is suppressed, or R rests on 1 to
   k−1 people, the unknown part of the children's side (suppressed children plus R) must be at
   least two cells resting together on at least ``K_MIN`` people — so neither one cell nor the
   derivable sum ``P − shown children`` isolates fewer than ``K_MIN`` people. Otherwise the
   shown child with the fewest people (then the lowest code) is suppressed too, reason
   ``"complementary"``; with no shown child left, P is suppressed. Suppressing P makes its
   children's family sensitive in turn (a complementary P must not be re-derivable as the sum
   of its children). Families are revisited until nothing changes. The flags are computed
   once over the whole tree from its root detachment, so every report of that tree hides the
   same (unit, metric) cells and no report can undo a suppression made for another.
3. Derived cells: ``participation_pct`` is suppressed when participants or registered subjects
   are. Distributions are only given for the report's own unit, suppressed when their values
   come from fewer than ``K_MIN`` distinct people.

Periods are civil days in :data:`REPORT_TZ` (China Standard Time, UTC+8 all year, no daylight
saving since 1991; a constant, not a setting): daily = that day, weekly = the ISO week Monday to
Sunday containing it, monthly = its calendar month. Times in the facts are UTC.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Final

import numpy as np

#: Fewest distinct people a shown cell may rest on.
K_MIN: Final = 5
#: The reports' civil time zone: Asia/Shanghai (UTC+8, no DST). Deliberately not a setting.
REPORT_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
PRIMARY: Final = "k<5"
COMPLEMENTARY: Final = "complementary"

#: Cells that describe people (k-suppressed), in display order.
PEOPLE_CELLS: Final = (
    "sessions_held",
    "participants",
    "subjects_registered",
    "followups_watch",
    "followups_check_in",
)
#: Cells about stations and devices (never suppressed), in display order.
OPERATIONAL_CELLS: Final = (
    "stations_total",
    "stations_online",
    "devices_low_battery",
    "devices_lost",
    "followups_station_offline",
    "followups_device_lost",
    "followups_outbox_backlog",
)
#: The derived cell.
PARTICIPATION: Final = "participation_pct"
#: Distributions: name → (delta label in the summary, metric key); ``rating_change`` is apart.
DELTA_DISTRIBUTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "delta_lnrmssd_training": ("training_minus_baseline", "ln_rmssd"),
    "delta_lnrmssd_recovery": ("recovery_minus_baseline", "ln_rmssd"),
    "delta_hr_bpm_training": ("training_minus_baseline", "mean_hr_bpm"),
    "delta_hr_bpm_recovery": ("recovery_minus_baseline", "mean_hr_bpm"),
}
RATING_CHANGE: Final = "rating_change"
#: A device at or below this battery level counts as low.
LOW_BATTERY_PCT: Final = 20
_PERSON_ALERTS: Final = {"watch": "followups_watch", "check_in": "followups_check_in"}
_STATION_ALERTS: Final = {
    "station_offline": "followups_station_offline",
    "device_lost": "followups_device_lost",
    "outbox_backlog": "followups_outbox_backlog",
}


class ReportKind(StrEnum):
    """The three report periods."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Period:
    """A report period: civil days ``first_day..last_day`` in :data:`REPORT_TZ`, and the UTC
    instants ``start <= t < end`` they cover."""

    kind: ReportKind
    first_day: date
    last_day: date
    start: datetime
    end: datetime


def report_period(kind: ReportKind, day: date) -> Period:
    """The period of ``kind`` that contains the civil day ``day``."""
    if kind is ReportKind.DAILY:
        first, last = day, day
    elif kind is ReportKind.WEEKLY:
        first = day - timedelta(days=day.isoweekday() - 1)
        last = first + timedelta(days=6)
    else:
        first = day.replace(day=1)
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    start = datetime.combine(first, time(0), REPORT_TZ).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), REPORT_TZ).astimezone(UTC)
    return Period(kind, first, last, start, end)


def civil_today(now: datetime) -> date:
    """The civil day of ``now`` (aware) in :data:`REPORT_TZ`."""
    return now.astimezone(REPORT_TZ).date()


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class Unit:
    """An org unit of the tree a report is computed over."""

    id: int
    parent_id: int | None
    code: str
    name_zh: str


@dataclass(frozen=True, slots=True)
class SessionFact:
    """One session of the period, attributed to its subject's org unit.

    ``deltas`` is the whole-session summary's ``deltas`` document (label → metric → value).
    """

    subject_id: int
    unit_id: int
    rating_before: int | None = None
    rating_after: int | None = None
    deltas: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubjectFact:
    """A subject registered at ``unit_id`` (active, registered before the period ended)."""

    subject_id: int
    unit_id: int


@dataclass(frozen=True, slots=True)
class AlertFact:
    """An alert unresolved at the period's end: a person alert has a subject, attributed to
    the subject's unit; an operational alert is attributed to its station's unit."""

    kind: str
    unit_id: int
    subject_id: int | None


@dataclass(frozen=True, slots=True)
class StationFact:
    """A station's current health: presence and its devices' battery and loss."""

    unit_id: int
    online: bool
    low_battery_devices: int
    lost_devices: int


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """Everything a report of one tree is computed from."""

    sessions: Sequence[SessionFact] = ()
    subjects: Sequence[SubjectFact] = ()
    alerts: Sequence[AlertFact] = ()
    stations: Sequence[StationFact] = ()


# --------------------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class Cell:
    """A shown or suppressed value; a suppressed cell has ``value`` None."""

    value: float | None
    suppressed: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Distribution:
    """Percentiles of one change measure over the people of a unit, or suppressed."""

    suppressed: bool
    n: int | None = None
    p10: float | None = None
    p25: float | None = None
    median: float | None = None
    p75: float | None = None
    p90: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One child org unit's cells."""

    unit: Unit
    cells: Mapping[str, Cell]


@dataclass(frozen=True, slots=True)
class Report:
    """A computed report of one unit and its children."""

    period: Period
    unit: Unit
    cells: Mapping[str, Cell]
    rows: tuple[ReportRow, ...]
    distributions: Mapping[str, Distribution]
    k_min: int = K_MIN


# --------------------------------------------------------------------------- tallies


@dataclass(slots=True)
class Tally:
    """A metric's value and the distinct people it rests on."""

    value: float = 0.0
    people: set[int] = field(default_factory=set)

    def add(self, other: Tally) -> None:
        """Add ``other`` into this tally."""
        self.value += other.value
        self.people |= other.people


Tallies = dict[str, Tally]


def _empty() -> Tallies:
    return {name: Tally() for name in (*PEOPLE_CELLS, *OPERATIONAL_CELLS)}


def own_tallies(units: Iterable[Unit], facts: ReportFacts) -> dict[int, Tallies]:
    """Per unit, the tallies of what is attached to that unit itself (not its children)."""
    own = {unit.id: _empty() for unit in units}
    for s in facts.sessions:
        if s.unit_id in own:
            t = own[s.unit_id]
            t["sessions_held"].value += 1
            t["sessions_held"].people.add(s.subject_id)
            if s.subject_id not in t["participants"].people:
                t["participants"].value += 1
                t["participants"].people.add(s.subject_id)
    for subject in facts.subjects:
        if subject.unit_id in own:
            cell = own[subject.unit_id]["subjects_registered"]
            if subject.subject_id not in cell.people:
                cell.value += 1
                cell.people.add(subject.subject_id)
    for alert in facts.alerts:
        if alert.unit_id not in own:
            continue
        if alert.kind in _PERSON_ALERTS and alert.subject_id is not None:
            cell = own[alert.unit_id][_PERSON_ALERTS[alert.kind]]
            cell.value += 1
            cell.people.add(alert.subject_id)
        elif alert.kind in _STATION_ALERTS:
            own[alert.unit_id][_STATION_ALERTS[alert.kind]].value += 1
    for station in facts.stations:
        if station.unit_id in own:
            t = own[station.unit_id]
            t["stations_total"].value += 1
            t["stations_online"].value += 1 if station.online else 0
            t["devices_low_battery"].value += station.low_battery_devices
            t["devices_lost"].value += station.lost_devices
    return own


def _children(units: Sequence[Unit]) -> dict[int, list[Unit]]:
    kids: dict[int, list[Unit]] = {unit.id: [] for unit in units}
    for unit in units:
        if unit.parent_id is not None and unit.parent_id in kids:
            kids[unit.parent_id].append(unit)
    for members in kids.values():
        members.sort(key=lambda u: u.code)
    return kids


def subtree_totals(units: Sequence[Unit], own: Mapping[int, Tallies]) -> dict[int, Tallies]:
    """Per unit, its own tallies plus all its descendants'."""
    kids = _children(units)
    totals: dict[int, Tallies] = {}

    def total(unit_id: int) -> Tallies:
        if unit_id not in totals:
            acc = _empty()
            for name, tally in own[unit_id].items():
                acc[name].add(tally)
            for child in kids[unit_id]:
                for name, tally in total(child.id).items():
                    acc[name].add(tally)
            totals[unit_id] = acc
        return totals[unit_id]

    for unit in units:
        total(unit.id)
    return totals


# --------------------------------------------------------------------------- suppression


def suppression_flags(
    units: Sequence[Unit],
    own: Mapping[int, Tallies],
    totals: Mapping[int, Tallies],
    *,
    k: int = K_MIN,
) -> dict[tuple[int, str], str]:
    """The suppressed (unit id, people cell) pairs of the whole tree, with their reason
    (primary ``"k<5"`` or ``"complementary"``; see the module docstring)."""
    flags: dict[tuple[int, str], str] = {}
    for unit in units:
        for name in PEOPLE_CELLS:
            if len(totals[unit.id][name].people) < k:
                flags[(unit.id, name)] = PRIMARY
    kids = _children(units)
    families = [(unit, kids[unit.id]) for unit in units if kids[unit.id]]
    changed = True
    while changed:
        changed = False
        for parent, children in families:
            for name in PEOPLE_CELLS:
                if _protect(
                    parent=parent,
                    children=children,
                    name=name,
                    own=own,
                    totals=totals,
                    flags=flags,
                    k=k,
                ):
                    changed = True
    return flags


def _protect(
    *,
    parent: Unit,
    children: Sequence[Unit],
    name: str,
    own: Mapping[int, Tallies],
    totals: Mapping[int, Tallies],
    flags: dict[tuple[int, str], str],
    k: int,
) -> bool:
    """Make one family's equation safe for one cell; True when a flag was added."""
    residual = own[parent.id][name].people
    parent_hidden = (parent.id, name) in flags
    hidden_children = [c for c in children if (c.id, name) in flags]
    if not (parent_hidden or hidden_children or 0 < len(residual) < k):
        return False
    cells = len(hidden_children) + (1 if residual else 0)
    people: set[int] = set(residual)
    for child in hidden_children:
        people |= totals[child.id][name].people
    if cells >= 2 and len(people) >= k:
        return False
    shown = [c for c in children if (c.id, name) not in flags]
    if shown:
        pick = min(shown, key=lambda c: (len(totals[c.id][name].people), c.code))
        flags[(pick.id, name)] = COMPLEMENTARY
        return True
    if not parent_hidden:
        flags[(parent.id, name)] = COMPLEMENTARY
        return True
    return False  # everything of this family is hidden: nothing more to do here


def _cells(
    unit_id: int, totals: Mapping[int, Tallies], flags: Mapping[tuple[int, str], str]
) -> dict[str, Cell]:
    tallies = totals[unit_id]
    cells: dict[str, Cell] = {}
    for name in PEOPLE_CELLS:
        reason = flags.get((unit_id, name))
        cells[name] = Cell(None, True, reason) if reason else Cell(tallies[name].value, False)
    participants, registered = cells["participants"], cells["subjects_registered"]
    if participants.suppressed or registered.suppressed:
        cells[PARTICIPATION] = Cell(None, True, participants.reason or registered.reason)
    elif registered.value:
        pct = 100.0 * (participants.value or 0.0) / registered.value
        cells[PARTICIPATION] = Cell(round(pct, 1), False)
    else:
        cells[PARTICIPATION] = Cell(None, False)
    for name in OPERATIONAL_CELLS:
        cells[name] = Cell(tallies[name].value, False)
    return cells


def distribution(values: Sequence[tuple[int, float]], *, k: int = K_MIN) -> Distribution:
    """Percentiles of ``(person, value)`` pairs, suppressed below ``k`` distinct people."""
    people = {person for person, _ in values}
    if len(people) < k:
        return Distribution(suppressed=True, reason=PRIMARY)
    data = np.array([value for _, value in values], dtype=np.float64)
    p10, p25, median, p75, p90 = (
        round(float(q), 4) for q in np.percentile(data, [10, 25, 50, 75, 90])
    )
    return Distribution(False, int(data.size), p10, p25, median, p75, p90)


def _distributions(sessions: Iterable[SessionFact], *, k: int) -> dict[str, Distribution]:
    samples: dict[str, list[tuple[int, float]]] = {RATING_CHANGE: []}
    samples.update({name: [] for name in DELTA_DISTRIBUTIONS})
    for s in sessions:
        if s.rating_before is not None and s.rating_after is not None:
            samples[RATING_CHANGE].append((s.subject_id, float(s.rating_after - s.rating_before)))
        for name, (label, key) in DELTA_DISTRIBUTIONS.items():
            value = s.deltas.get(label, {}).get(key)
            if value is not None:
                samples[name].append((s.subject_id, float(value)))
    return {name: distribution(values, k=k) for name, values in samples.items()}


def descendants(units: Sequence[Unit], unit_id: int) -> set[int]:
    """``unit_id`` and every unit below it."""
    kids = _children(units)
    out: set[int] = set()
    stack = [unit_id]
    while stack:
        current = stack.pop()
        out.add(current)
        stack.extend(child.id for child in kids.get(current, []))
    return out


def build_report(
    period: Period,
    units: Sequence[Unit],
    target_id: int,
    facts: ReportFacts,
    *,
    k: int = K_MIN,
) -> Report:
    """The report of unit ``target_id`` over ``period``.

    ``units`` must be the WHOLE tree from the root detachment (so suppression is the same in
    every report of the tree) and ``facts`` everything of that tree in the period.
    """
    by_id = {unit.id: unit for unit in units}
    own = own_tallies(units, facts)
    totals = subtree_totals(units, own)
    flags = suppression_flags(units, own, totals, k=k)
    rows = tuple(
        ReportRow(child, _cells(child.id, totals, flags)) for child in _children(units)[target_id]
    )
    inside = descendants(units, target_id)
    return Report(
        period=period,
        unit=by_id[target_id],
        cells=_cells(target_id, totals, flags),
        rows=rows,
        distributions=_distributions((s for s in facts.sessions if s.unit_id in inside), k=k),
        k_min=k,
    )
