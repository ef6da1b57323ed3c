"""`shuxin ble …` through its own argparse parser built with ``ble_commands.register`` (the lead
wires it into ``shuxin.cli.main``). ``scan`` is driven with bleak absent and with a stand-in
``bleak`` module that answers ``BleakScanner.discover(return_adv=True)`` like the real one."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from shuxin.edge import ble_commands
from shuxin.edge.device_profile import Role
from shuxin.edge.source_ble_scan import BLE_EXTRA_MESSAGE

ROOT = Path(__file__).resolve().parents[3]
DEVICES = ROOT / "firmware_configs" / "devices"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="shuxin")
    ble_commands.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


def test_role_choices_match_the_model() -> None:
    assert set(ble_commands.CHARACTERISTIC_ROLES) == {r.value for r in Role}


def test_decode_heart_rate_text(capsys: pytest.CaptureFixture[str]) -> None:
    # Captured Polar notification (cal-id/Polar-H7-Pi, README.md): 16 3c 11 04.
    assert run("ble", "decode", "--profile", "hrs_strap", "16", "3c", "11", "04") == 0
    out = capsys.readouterr().out
    assert "HeartRateMeasurement" in out
    assert "heart_rate_bpm: 60" in out
    assert "sensor_contact: detected" in out
    assert "rr_ms: [1016.6015625]" in out


def test_decode_ecg_json(capsys: pytest.CaptureFixture[str]) -> None:
    # polarofficial/polar-ble-sdk …/pmd/model/EcgDataTest.kt raw type 0 vector.
    hex_text = "00 00 94 35 77 00 00 00 00 00 02 80 FF 02 80 00"
    code = run(
        "ble",
        "decode",
        "--profile",
        "polar_h10",
        "--characteristic",
        "pmd_data",
        "--json",
        hex_text,
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["type"] == "PmdEcgFrame"
    assert document["bytes"] == 16
    assert document["value"] == {"timestamp_ns": 2_000_000_000, "samples_uv": [-32766, 32770]}


def test_decode_ppi_and_control_point_text(capsys: pytest.CaptureFixture[str]) -> None:
    ppi = "03" + "00" * 8 + "00" + "3C D7 03 0C 00 06"
    assert (
        run("ble", "decode", "--profile", "polar_verity_sense", "--characteristic", "pmd_data", ppi)
        == 0
    )
    out = capsys.readouterr().out
    assert "samples: 1" in out
    assert "pp_ms=983" in out
    assert (
        run(
            "ble",
            "decode",
            "--profile",
            "polar_h10",
            "--characteristic",
            "pmd_control",
            "F0:01:06:07:00",
        )
        == 0
    )
    assert "status_name: ERROR_INVALID_RESOLUTION" in capsys.readouterr().out


def test_decode_eda_json_uses_profile_calibration(capsys: pytest.CaptureFixture[str]) -> None:
    # raw 10000 (0x2710) at 0.5 V / 200 kΩ / gain 4 → exactly 5 µS up to float rounding.
    assert (
        run("ble", "decode", "--profile", "shuxin_gsr", "--json", "0x0100020110270000080110 27")
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["characteristic"] == "eda"
    value = document["value"]
    assert value["frame_type"] == "VOLTAGE_0P1MV"
    assert value["sequence"] == 0x0102
    assert value["eda_us"][0] == pytest.approx(5.0, rel=1e-9)  # float rounding only


@pytest.mark.parametrize(
    ("hex_args", "message"),
    [
        (["zz"], "not hex"),
        (["1"], "odd number of hex digits"),
        (["0x"], "no hex digits"),
        (["16 3c 1"], "odd number"),
    ],
)
def test_bad_hex_exits_2(
    capsys: pytest.CaptureFixture[str], hex_args: list[str], message: str
) -> None:
    assert run("ble", "decode", "--profile", "hrs_strap", *hex_args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_bad_frame_exits_2_with_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ble", "decode", "--profile", "hrs_strap", "113c") == 2
    err = capsys.readouterr().err
    assert "cannot decode 2 bytes as hrs_measurement (truncated_frame)" in err


def test_unknown_frame_type_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    frame = "02" + "00" * 9 + "000000"
    assert (
        run("ble", "decode", "--profile", "polar_h10", "--characteristic", "pmd_data", frame) == 2
    )
    assert "unknown_frame_type" in capsys.readouterr().err


def test_unknown_profile_and_characteristic_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ble", "decode", "--profile", "nope", "00") == 2
    err = capsys.readouterr().err
    assert "no profile 'nope'" in err
    assert "polar_h10" in err
    assert run("ble", "decode", "--profile", "hrs_strap", "--characteristic", "eda", "00") == 2
    assert "has no eda characteristic" in capsys.readouterr().err


def test_invalid_profiles_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.yaml").write_text("profile: 1\nname: broken\n", encoding="utf-8")
    assert run("ble", "decode", "--profiles-dir", str(tmp_path), "--profile", "broken", "00") == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err
    assert "title" in err


def test_parse_hex_forms() -> None:
    expected = bytes.fromhex("163c1104")
    for text in ("163c1104", "16 3C 11 04", "16:3c:11:04", "16-3c-11-04", "0x16 0x3c 0x11 0x04"):
        assert ble_commands.parse_hex(text) == expected
    assert ble_commands.parse_hex(["16", "3c", "1104"]) == expected


def test_profiles_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ble", "profiles") == 0
    out = capsys.readouterr().out
    assert "polar_h10" in out
    assert "ecg 130 Hz" in out
    assert run("ble", "profiles", "--json") == 0
    names = [p["name"] for p in json.loads(capsys.readouterr().out)]
    assert names == ["hrs_strap", "polar_h10", "polar_verity_sense", "shuxin_gsr"]


def test_firmware_header_check_and_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("ble", "firmware-header", "--check") == 0
    assert "matches shuxin_gsr" in capsys.readouterr().out
    devices = tmp_path / "devices"
    shutil.copytree(DEVICES, devices)
    (tmp_path / "firmware").mkdir()
    header = tmp_path / "firmware" / "shuxin_gsr_profile.h"
    header.write_text("/* stale */\n", encoding="utf-8")
    assert run("ble", "firmware-header", "--check", "--profiles-dir", str(devices)) == 1
    assert "is stale" in capsys.readouterr().err
    assert run("ble", "firmware-header", "--profiles-dir", str(devices)) == 0
    assert run("ble", "firmware-header", "--check", "--profiles-dir", str(devices)) == 0
    assert header.read_text(encoding="utf-8") == (
        ROOT / "firmware_configs" / "firmware" / "shuxin_gsr_profile.h"
    ).read_text(encoding="utf-8")
    capsys.readouterr()
    assert run("ble", "firmware-header", "--profile", "polar_h10") == 2
    assert "firmware" in capsys.readouterr().err


# --- scan


def test_scan_without_bleak(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "bleak", None)  # makes `import bleak` raise ImportError
    assert run("ble", "scan", "--timeout", "0.1") == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"shuxin ble: {BLE_EXTRA_MESSAGE}"
    assert captured.out == ""


class _FakeBleakError(Exception):
    pass


def _fake_bleak(found: dict[str, Any] | Exception) -> types.ModuleType:
    """A stand-in for bleak: BleakScanner.discover(timeout=, return_adv=True) returns
    {address: (BLEDevice, AdvertisementData)} as bleak ≥ 0.19 does."""

    class BleakScanner:
        @staticmethod
        async def discover(*, timeout: float, return_adv: bool) -> dict[str, Any]:
            assert return_adv is True
            assert timeout > 0
            if isinstance(found, Exception):
                raise found
            return found

    module = types.ModuleType("bleak")
    module.BleakScanner = BleakScanner  # type: ignore[attr-defined]
    module.exc = types.SimpleNamespace(BleakError=_FakeBleakError)  # type: ignore[attr-defined]
    return module


def _seen(address: str, name: str | None, rssi: int, uuids: list[str]) -> tuple[Any, Any]:
    device = types.SimpleNamespace(address=address, name=name)
    adv = types.SimpleNamespace(local_name=name, rssi=rssi, service_uuids=uuids)
    return device, adv


def test_scan_lists_devices_with_their_profiles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = {
        "AA:00:00:00:00:01": _seen(
            "AA:00:00:00:00:01",
            "Polar H10 8C4A5B2D",
            -60,
            ["0000180d-0000-1000-8000-00805f9b34fb"],
        ),
        "AA:00:00:00:00:02": _seen(
            "AA:00:00:00:00:02", None, -48, ["232C0001-2BB7-446B-BE03-D42515ED27A5"]
        ),
        "AA:00:00:00:00:03": _seen("AA:00:00:00:00:03", "TV", -80, []),
    }
    monkeypatch.setitem(sys.modules, "bleak", _fake_bleak(found))
    assert run("ble", "scan", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["address"], r["profile"]) for r in rows] == [
        ("AA:00:00:00:00:02", "shuxin_gsr"),  # strongest signal first
        ("AA:00:00:00:00:01", "polar_h10"),
        ("AA:00:00:00:00:03", None),
    ]
    assert rows[1]["also_matches"] == ["hrs_strap"]
    assert run("ble", "scan") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["address", "rssi", "profile", "name"]
    assert table[2].split() == ["AA:00:00:00:00:01", "-60", "polar_h10", "Polar", "H10", "8C4A5B2D"]
    assert table[3].split() == ["AA:00:00:00:00:03", "-80", "-", "TV"]


def test_scan_reports_adapter_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        sys.modules, "bleak", _fake_bleak(_FakeBleakError("No Bluetooth adapters found."))
    )
    assert run("ble", "scan") == 1
    assert "BLE scan failed: No Bluetooth adapters found." in capsys.readouterr().err


def test_scan_with_nothing_seen(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "bleak", _fake_bleak({}))
    assert run("ble", "scan") == 0
    assert capsys.readouterr().out.strip() == "no BLE devices seen"


def test_only_source_ble_modules_import_bleak() -> None:
    pattern = re.compile(r"^\s*(import bleak|from bleak)|import_module\(\s*[\"']bleak", re.M)
    offenders = [
        path.name
        for path in sorted((ROOT / "edge").glob("*.py"))
        if pattern.search(path.read_text(encoding="utf-8"))
        and not path.name.startswith("source_ble")
    ]
    assert offenders == []


def test_cli_module_import_stays_light() -> None:
    # `shuxin --help` imports every registrar: ble_commands must not pull pydantic, yaml or
    # bleak in at import time (they load inside the handlers).
    code = (
        "import sys, shuxin.edge.ble_commands; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'bleak') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
