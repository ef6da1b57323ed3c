"""k-suppression, complementary suppression and report periods of the pure report module."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shuxin.dashboard_api.reports import (
    COMPLEMENTARY,
    K_MIN,
    PRIMARY,
    AlertFact,
    ReportFacts,
    ReportKind,
    SessionFact,
    StationFact,
    SubjectFact,
    Unit,
    build_report,
    civil_today,
    distribution,
    report_period,
)

ROOT = Unit(1, None, "ZD", "支队")
BA = Unit(2, 1, "DA", "甲大队")
BB = Unit(3, 1, "DB", "乙大队")
S1 = Unit(4, 2, "SA1", "一站")
S2 = Unit(5, 2, "SA2", "二站")
S3 = Unit(6, 2, "SA3", "三站")
UNITS = [ROOT, BA, BB, S1, S2, S3]
PERIOD = report_period(ReportKind.DAILY, date(2026, 11, 18))


def _people(unit: Unit, first_id: int, count: int) -> list[SessionFact]:
    return [SessionFact(subject_id=first_id + i, unit_id=unit.id) for i in range(count)]


#: Six people in brigade DB, so that DA's total is not a complement in the detachment family.
DB_PEOPLE = [SessionFact(subject_id=900 + i, unit_id=BB.id) for i in range(6)]


def _report(sessions: list[SessionFact], target: Unit = ROOT) -> dict[str, object]:
    report = build_report(PERIOD, UNITS, target.id, ReportFacts(sessions=sessions))
    out: dict[str, object] = {"_": report.cells["sessions_held"]}
    for row in report.rows:
        out[row.unit.code] = row.cells["sessions_held"]
    return out


def test_four_people_are_suppressed_five_are_shown() -> None:
    four = build_report(PERIOD, [ROOT], ROOT.id, ReportFacts(sessions=_people(ROOT, 1, 4)))
    assert four.cells["sessions_held"].value is None
    assert four.cells["sessions_held"].suppressed is True
    assert four.cells["sessions_held"].reason == PRIMARY == "k<5"
    five = build_report(PERIOD, [ROOT], ROOT.id, ReportFacts(sessions=_people(ROOT, 1, 5)))
    assert five.cells["sessions_held"].value == 5
    assert five.cells["sessions_held"].suppressed is False


def test_many_sessions_of_few_people_are_still_suppressed() -> None:
    # 20 sessions by 4 distinct people: the count rests on 4 people.
    sessions = [SessionFact(subject_id=1 + i % 4, unit_id=ROOT.id) for i in range(20)]
    report = build_report(PERIOD, [ROOT], ROOT.id, ReportFacts(sessions=sessions))
    assert report.cells["sessions_held"].suppressed is True
    assert report.cells["participants"].suppressed is True


def test_zero_people_is_suppressed_too() -> None:
    report = build_report(PERIOD, [ROOT], ROOT.id, ReportFacts())
    assert report.cells["sessions_held"].suppressed is True


def test_a_lone_suppressed_child_gets_a_complement() -> None:
    # SA1 = 6, SA2 = 3 (k<5), SA3 = 7: DA (16) − SA1 − SA3 would reveal SA2.
    sessions = _people(S1, 100, 6) + _people(S2, 200, 3) + _people(S3, 300, 7) + DB_PEOPLE
    cells = _report(sessions, BA)
    assert cells["SA2"].reason == PRIMARY  # type: ignore[attr-defined]
    assert cells["SA1"].reason == COMPLEMENTARY  # type: ignore[attr-defined]  # fewest people
    assert cells["SA3"].value == 7  # type: ignore[attr-defined]
    assert cells["_"].value == 16  # type: ignore[attr-defined]


def test_two_suppressed_children_summing_to_fewer_than_k_need_a_third() -> None:
    # SA1 = 2, SA2 = 2: DA − SA3 = 4 people would still be a cell of fewer than 5.
    sessions = _people(S1, 100, 2) + _people(S2, 200, 2) + _people(S3, 300, 8) + DB_PEOPLE
    cells = _report(sessions, BA)
    assert cells["SA1"].reason == cells["SA2"].reason == PRIMARY  # type: ignore[attr-defined]
    assert cells["SA3"].reason == COMPLEMENTARY  # type: ignore[attr-defined]
    assert cells["_"].value == 12  # type: ignore[attr-defined]


def test_two_suppressed_children_of_enough_people_need_nothing_more() -> None:
    sessions = _people(S1, 100, 3) + _people(S2, 200, 3) + _people(S3, 300, 8) + DB_PEOPLE
    cells = _report(sessions, BA)
    assert cells["SA3"].value == 8  # type: ignore[attr-defined]
    assert cells["SA1"].suppressed  # type: ignore[attr-defined]
    assert cells["SA2"].suppressed  # type: ignore[attr-defined]


def test_complementary_suppression_is_the_same_in_every_report_of_the_tree() -> None:
    # DB has nobody (suppressed); DA has 9: ZD (9) − DA would give DB away only if DA shows,
    # so DA is suppressed in the detachment report AND in its own report.
    sessions = _people(S1, 100, 6) + _people(S3, 300, 3)
    top = _report(sessions, ROOT)
    assert top["DB"].reason == PRIMARY  # type: ignore[attr-defined]
    assert top["DA"].reason == COMPLEMENTARY  # type: ignore[attr-defined]
    assert top["_"].value == 9  # type: ignore[attr-defined]
    own = _report(sessions, BA)
    assert own["_"].suppressed is True  # type: ignore[attr-defined]


def test_no_shown_cell_lets_a_suppressed_one_be_recovered() -> None:
    """Property over many layouts: for every family with a shown parent, the suppressed
    children (if any) are at least two and together rest on at least K_MIN people."""
    import itertools

    for a, b, c in itertools.product((0, 1, 3, 4, 5, 6, 9), repeat=3):
        sessions = _people(S1, 100, a) + _people(S2, 200, b) + _people(S3, 300, c) + DB_PEOPLE
        report = build_report(PERIOD, UNITS, BA.id, ReportFacts(sessions=sessions))
        parent = report.cells["sessions_held"]
        hidden = [r for r in report.rows if r.cells["sessions_held"].suppressed]
        if parent.suppressed:
            assert a + b + c < K_MIN, (a, b, c)  # with DB shown, only a primary can hide DA
            continue
        if not hidden:
            continue
        sizes = {"SA1": a, "SA2": b, "SA3": c}
        assert len(hidden) >= 2, (a, b, c)
        assert sum(sizes[r.unit.code] for r in hidden) >= K_MIN, (a, b, c)


def test_participation_and_operational_cells() -> None:
    facts = ReportFacts(
        sessions=_people(ROOT, 1, 5),
        subjects=[SubjectFact(i, ROOT.id) for i in range(1, 11)],
        alerts=[AlertFact("station_offline", ROOT.id, None), AlertFact("watch", ROOT.id, 1)],
        stations=[StationFact(ROOT.id, True, 1, 0), StationFact(ROOT.id, False, 0, 2)],
    )
    report = build_report(PERIOD, [ROOT], ROOT.id, facts)
    assert report.cells["participation_pct"].value == 50.0
    assert report.cells["followups_watch"].suppressed is True  # one person
    assert report.cells["followups_station_offline"].value == 1
    assert report.cells["stations_online"].value == 1
    assert report.cells["devices_lost"].value == 2
    assert report.cells["devices_low_battery"].suppressed is False


def test_distributions_are_suppressed_below_k_people() -> None:
    assert distribution([(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]).suppressed is True
    # Five values from four people: still four people.
    assert distribution([(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (4, 5.0)]).suppressed is True
    shown = distribution([(i, float(i)) for i in range(1, 6)])
    assert shown.suppressed is False
    assert shown.n == 5
    assert shown.median == 3.0
    assert shown.p25 == 2.0  # numpy's linear interpolation at index 1 of 5 sorted values


@pytest.mark.parametrize(
    ("kind", "day", "first", "last"),
    [
        (ReportKind.DAILY, date(2026, 11, 18), date(2026, 11, 18), date(2026, 11, 18)),
        (ReportKind.WEEKLY, date(2026, 11, 18), date(2026, 11, 16), date(2026, 11, 22)),
        (ReportKind.WEEKLY, date(2026, 11, 16), date(2026, 11, 16), date(2026, 11, 22)),
        (ReportKind.WEEKLY, date(2026, 11, 22), date(2026, 11, 16), date(2026, 11, 22)),
        (ReportKind.WEEKLY, date(2027, 1, 1), date(2026, 12, 28), date(2027, 1, 3)),
        (ReportKind.MONTHLY, date(2026, 2, 14), date(2026, 2, 1), date(2026, 2, 28)),
        (ReportKind.MONTHLY, date(2028, 2, 29), date(2028, 2, 1), date(2028, 2, 29)),
    ],
)
def test_periods(kind: ReportKind, day: date, first: date, last: date) -> None:
    period = report_period(kind, day)
    assert (period.first_day, period.last_day) == (first, last)
    # Shanghai midnight is 16:00 UTC the day before.
    midnight_utc = datetime(first.year, first.month, first.day, tzinfo=UTC)
    assert period.start == midnight_utc - timedelta(hours=8)
    assert (period.end - period.start).days == (last - first).days + 1


def test_civil_today_is_shanghai() -> None:
    assert civil_today(datetime(2026, 11, 17, 16, 30, tzinfo=UTC)) == date(2026, 11, 18)
    assert civil_today(datetime(2026, 11, 17, 15, 59, tzinfo=UTC)) == date(2026, 11, 17)


def _determined(rows: list[list[float]], column: int, width: int) -> bool:
    """Whether the unknown ``column`` is fixed by the linear system ``rows`` (rank test)."""
    import numpy as np

    if not rows:
        return False
    base = np.array(rows, dtype=np.float64)
    unit = np.zeros((1, width))
    unit[0, column] = 1.0
    return bool(np.linalg.matrix_rank(np.vstack([base, unit])) == np.linalg.matrix_rank(base))


def test_no_suppressed_cell_is_determined_by_the_tree_equations() -> None:
    """Random two-level trees: an attacker knows every shown cell of every report of the tree,
    the equations parent = children + residual, and that a parent's empty residual is 0. No cell
    suppressed for k<5 may be fixed by that linear system (rank test)."""
    import random

    rng = random.Random(7)
    for _ in range(200):
        units = [Unit(1, None, "ZD", "z")]
        next_id = 2
        for b in range(rng.randint(1, 3)):
            brigade = Unit(next_id, 1, f"B{b}", "b")
            units.append(brigade)
            next_id += 1
            for s in range(rng.randint(1, 3)):
                units.append(Unit(next_id, brigade.id, f"B{b}S{s}", "s"))
                next_id += 1
        sessions: list[SessionFact] = []
        person = 1
        for unit in units:
            # Stations get people; brigades sometimes have some of their own (a residual).
            is_station = len(unit.code) > 2
            count = rng.choice([0, 1, 2, 3, 4, 5, 6, 9]) if is_station or rng.random() < 0.2 else 0
            sessions += _people(unit, person, count)
            person += count
        flags = {}
        for unit in units:
            cells = build_report(PERIOD, units, unit.id, ReportFacts(sessions=sessions)).cells
            flags[unit.id] = cells["sessions_held"]
        # Unknowns: one per unit total, one per unit residual.
        index = {unit.id: i for i, unit in enumerate(units)}
        width = 2 * len(units)
        own_count = {unit.id: 0 for unit in units}
        for s in sessions:
            own_count[s.unit_id] += 1
        rows: list[list[float]] = []
        for unit in units:
            if not flags[unit.id].suppressed:  # a shown total
                row = [0.0] * width
                row[index[unit.id]] = 1.0
                rows.append(row)
            children = [child for child in units if child.parent_id == unit.id]
            if not children:
                continue  # a leaf's total is its own: no equation, no residual
            if own_count[unit.id] == 0:  # an empty residual of a parent is known to be 0
                row = [0.0] * width
                row[len(units) + index[unit.id]] = 1.0
                rows.append(row)
            row = [0.0] * width  # total − children − residual = 0
            row[index[unit.id]] = 1.0
            row[len(units) + index[unit.id]] = -1.0
            for child in children:
                row[index[child.id]] = -1.0
            rows.append(row)
        for unit in units:
            if flags[unit.id].reason == PRIMARY:
                assert not _determined(rows, index[unit.id], width), (units, sessions)
            has_children = any(child.parent_id == unit.id for child in units)
            if has_children and 0 < own_count[unit.id] < K_MIN:  # a small residual is hidden
                assert not _determined(rows, len(units) + index[unit.id], width), (units, sessions)
        # A shown cell rests on at least K_MIN people (one session per person here).
        for unit in units:
            if not flags[unit.id].suppressed:
                assert flags[unit.id].value >= K_MIN
