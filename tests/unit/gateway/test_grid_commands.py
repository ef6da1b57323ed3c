"""`shuxin gateway add-unit / add-station / list-units` on a SQLite store in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from shuxin.cli.main import main
from shuxin.gateway.sql_settings import SqlSettings
from shuxin.gateway.sql_store import open_store


def test_build_the_grid_then_list_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(tmp_path)]
    assert main(["gateway", "add-unit", "detachment", "ZD-01", "一支队", *data]) == 0
    assert (
        main(["gateway", "add-unit", "brigade", "DD-01", "一大队", "--parent", "ZD-01", *data]) == 0
    )
    assert main(["gateway", "add-unit", "station", "ZN-a", "甲站", "--parent", "DD-01", *data]) == 0
    assert main(["gateway", "add-station", "st-a", "--unit", "ZN-a", "--name", "甲站", *data]) == 0
    capsys.readouterr()
    assert main(["gateway", "list-units", *data]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(kind, code) for _id, kind, code, _name in rows] == [
        ("detachment", "ZD-01"),
        ("brigade", "DD-01"),
        ("station", "ZN-a"),
    ]
    sql = open_store(SqlSettings(), tmp_path)
    try:
        station = sql.get_station("st-a")
        assert station.org_unit_id == sql.get_org_unit_by_code("ZN-a").id
    finally:
        sql.close()


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(tmp_path)]
    assert (
        main(["gateway", "add-unit", "brigade", "DD-02", "二大队", "--parent", "NOPE", *data]) == 1
    )
    assert "no org unit with code 'NOPE'" in capsys.readouterr().err
    assert main(["gateway", "add-station", "st-b", "--unit", "NOPE", "--name", "乙站", *data]) == 1
    # A brigade cannot be a root: the store's grid rules are enforced through the command.
    assert main(["gateway", "add-unit", "brigade", "DD-03", "三大队", *data]) == 1
