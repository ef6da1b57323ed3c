"""Device profiles: every YAML in firmware_configs/devices loads; bad files give errors naming
the file and the field; scan matching; the generated EDA firmware header is current and
compiles (and its conductance formula agrees with the Python parser)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from shuxin.edge.decoders import decoder_for
from shuxin.edge.device_profile import (
    PROFILES_ENV,
    DeviceProfile,
    Role,
    default_profiles_dir,
    load_profile,
    load_profiles,
    match_profiles,
    normalise_uuid,
)
from shuxin.edge.errors import ProfileError
from shuxin.edge.firmware_header import header_path, render_firmware_header
from shuxin.edge.parse_battery import BATTERY_LEVEL_UUID, BATTERY_SERVICE_UUID
from shuxin.edge.parse_eda import EdaFrame
from shuxin.edge.parse_hrs import HEART_RATE_MEASUREMENT_UUID, HEART_RATE_SERVICE_UUID
from shuxin.edge.parse_pmd import PMD_CONTROL_POINT_UUID, PMD_DATA_UUID, PMD_SERVICE_UUID

ROOT = Path(__file__).resolve().parents[3]
DEVICES = ROOT / "firmware_configs" / "devices"
PROFILE_FILES = sorted(DEVICES.glob("*.yaml"))
GSR_SERVICE = "232c0001-2bb7-446b-be03-d42515ed27a5"


@pytest.fixture(scope="module")
def profiles() -> dict[str, DeviceProfile]:
    return load_profiles(DEVICES)


@pytest.mark.parametrize("path", PROFILE_FILES, ids=[p.stem for p in PROFILE_FILES])
def test_every_profile_file_loads(path: Path) -> None:
    profile = load_profile(path)
    assert profile.name == path.stem
    for characteristic in profile.characteristics:
        decoder = decoder_for(profile, characteristic.role)
        assert callable(decoder)


def test_the_shipped_profiles(profiles: dict[str, DeviceProfile]) -> None:
    assert set(profiles) == {"hrs_strap", "polar_h10", "polar_verity_sense", "shuxin_gsr"}
    assert default_profiles_dir().resolve() == DEVICES.resolve()


def test_standard_uuids_match_the_parsers(profiles: dict[str, DeviceProfile]) -> None:
    for profile in profiles.values():
        hr = profile.characteristic(Role.HEART_RATE) if profile.name != "shuxin_gsr" else None
        if hr is not None:
            assert (hr.service_uuid, hr.uuid) == (
                HEART_RATE_SERVICE_UUID,
                HEART_RATE_MEASUREMENT_UUID,
            )
        battery = profile.characteristic(Role.BATTERY)
        assert (battery.service_uuid, battery.uuid) == (BATTERY_SERVICE_UUID, BATTERY_LEVEL_UUID)
    for name in ("polar_h10", "polar_verity_sense"):
        control = profiles[name].characteristic(Role.PMD_CONTROL)
        data = profiles[name].characteristic(Role.PMD_DATA)
        assert control.service_uuid == data.service_uuid == PMD_SERVICE_UUID
        assert (control.uuid, data.uuid) == (PMD_CONTROL_POINT_UUID, PMD_DATA_UUID)


def test_polar_streams(profiles: dict[str, DeviceProfile]) -> None:
    ecg = profiles["polar_h10"].stream("ecg")
    assert ecg.sample_rate_hz == 130
    assert ecg.pmd is not None
    assert (ecg.pmd.measurement_type, ecg.pmd.resolution_bits) == (0, 14)
    ppi = profiles["polar_verity_sense"].stream("ppi")
    assert ppi.pmd is not None
    assert ppi.pmd.measurement_type == 3
    with pytest.raises(KeyError):
        profiles["polar_verity_sense"].stream("rr")  # Verity's HRS carries no RR


def test_gsr_uuids_never_change(profiles: dict[str, DeviceProfile]) -> None:
    # Firmware in the field depends on these; they were drawn once (see the YAML comment).
    gsr = profiles["shuxin_gsr"]
    assert gsr.match.service_uuids == (GSR_SERVICE,)
    assert gsr.characteristic(Role.EDA).uuid == "232c0002-2bb7-446b-be03-d42515ed27a5"
    assert gsr.characteristic(Role.EDA_CONTROL).uuid == "232c0003-2bb7-446b-be03-d42515ed27a5"
    assert gsr.stream("eda").sample_rates_hz == (4, 8, 16, 32)
    assert gsr.stream("eda").sample_rate_hz == 8


def test_gsr_decoder_uses_the_profile_calibration(profiles: dict[str, DeviceProfile]) -> None:
    # raw 10000 = 1.0 V at the ADC = 0.25 V across 200 kΩ with 0.5 V excitation → 5 µS.
    frame = decoder_for(profiles["shuxin_gsr"], "eda")(bytes.fromhex("010000000000000008011027"))
    assert isinstance(frame, EdaFrame)
    assert frame.eda_us[0] == pytest.approx(5.0, rel=1e-9)  # float rounding only


def test_default_roles(profiles: dict[str, DeviceProfile]) -> None:
    assert profiles["polar_h10"].default_role() is Role.HEART_RATE
    assert profiles["shuxin_gsr"].default_role() is Role.EDA
    with pytest.raises(KeyError):
        profiles["hrs_strap"].characteristic("pmd_data")


# --- the generated firmware header


def test_committed_firmware_header_is_current(profiles: dict[str, DeviceProfile]) -> None:
    gsr = profiles["shuxin_gsr"]
    path = header_path(gsr, DEVICES)
    assert path == ROOT / "firmware_configs" / "firmware" / "shuxin_gsr_profile.h"
    assert path.read_text(encoding="utf-8") == render_firmware_header(gsr), (
        "firmware_configs/firmware/shuxin_gsr_profile.h is stale: run "
        "`shuxin ble firmware-header` and commit the result"
    )


def test_header_needs_a_firmware_profile(profiles: dict[str, DeviceProfile]) -> None:
    with pytest.raises(ProfileError, match="firmware"):
        render_firmware_header(profiles["polar_h10"])
    with pytest.raises(ProfileError, match="firmware"):
        header_path(profiles["polar_h10"], DEVICES)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_header_compiles_and_agrees_with_python(
    profiles: dict[str, DeviceProfile], tmp_path: Path
) -> None:
    header = header_path(profiles["shuxin_gsr"], DEVICES)
    source = tmp_path / "check.c"
    source.write_text(
        textwrap.dedent(
            """
            #include <stdio.h>
            #include "shuxin_gsr_profile.h"
            static const uint8_t service[16] = {SHUXIN_GSR_SERVICE_UUID128_LE};
            static const uint8_t rates[] = SHUXIN_GSR_SUPPORTED_RATES_HZ;
            int main(void) {
                printf("%.6f %.6f %u %u %u\\n", shuxin_gsr_conductance_us(10000),
                       shuxin_gsr_conductance_us(1234), service[0], service[15],
                       (unsigned)(sizeof rates));
                return 0;
            }
            """
        ),
        encoding="utf-8",
    )
    binary = tmp_path / "check"
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(header.parent)]
    subprocess.run(["gcc", *flags, str(source), "-o", str(binary)], check=True)
    out = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split()
    five, other, first, last, n_rates = out
    python_other = decoder_for(profiles["shuxin_gsr"], "eda")(
        bytes.fromhex("01000000000000000801D204")  # raw 1234
    )
    assert isinstance(python_other, EdaFrame)
    # C computes in float32 (~7 significant digits): 1e-5 relative covers its rounding.
    assert float(five) == pytest.approx(5.0, rel=1e-5)
    assert float(other) == pytest.approx(python_other.eda_us[0], rel=1e-5)
    # Little-endian byte order: the UUID's last byte first, its first byte last.
    assert (int(first), int(last)) == (0xA5, 0x23)
    assert int(n_rates) == 4
    if shutil.which("g++") is not None:
        cpp = tmp_path / "check.cpp"
        cpp.write_text('#include "shuxin_gsr_profile.h"\nint main() { return 0; }\n')
        subprocess.run(
            [
                "g++",
                "-std=c++11",
                "-Wall",
                "-Werror",
                "-fsyntax-only",
                "-I",
                str(header.parent),
                str(cpp),
            ],
            check=True,
        )


# --- scan matching


@pytest.mark.parametrize(
    ("name", "uuids", "expected"),
    [
        (
            "Polar H10 8C4A5B2D",
            ["0000180D-0000-1000-8000-00805F9B34FB"],
            ["polar_h10", "hrs_strap"],
        ),
        ("Polar H10 8C4A5B2D", [], ["polar_h10"]),
        ("Polar Sense B5C2D3E1", ["180d"], ["polar_verity_sense", "hrs_strap"]),
        ("HRM-Dual:123456", ["0000180d-0000-1000-8000-00805f9b34fb"], ["hrs_strap"]),
        ("SHUXIN-GSR-01", [GSR_SERVICE.upper()], ["shuxin_gsr"]),
        (None, [GSR_SERVICE], ["shuxin_gsr"]),
        ("Polar H10 8C4A5B2D", ["not-a-uuid"], ["polar_h10"]),
        ("Mi Band 7", ["0000fee0-0000-1000-8000-00805f9b34fb"], []),
        (None, [], []),
    ],
)
def test_match_profiles(
    profiles: dict[str, DeviceProfile], name: str | None, uuids: list[str], expected: list[str]
) -> None:
    assert [p.name for p in match_profiles(profiles, name=name, service_uuids=uuids)] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0x180D, "0000180d-0000-1000-8000-00805f9b34fb"),
        ("0x2A37", "00002a37-0000-1000-8000-00805f9b34fb"),
        ("2a37", "00002a37-0000-1000-8000-00805f9b34fb"),
        ("FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8", "fb005c80-02e7-f387-1cad-8acd2d8df0c8"),
    ],
)
def test_normalise_uuid(value: object, expected: str) -> None:
    assert normalise_uuid(value) == expected


@pytest.mark.parametrize("value", [True, -1, 1 << 33, "xyz", "0x12345", 1.5, None])
def test_normalise_uuid_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="UUID"):
        normalise_uuid(value)


# --- bad files: the error names the file and the field


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _variant(old: str, new: str, name: str = "hrs_strap") -> str:
    text = (DEVICES / "hrs_strap.yaml").read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new).replace("name: hrs_strap", f"name: {name}")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  priority: 0", "  priority: 0\n  colour: red", "match.colour"),
        ('    uuid: "0x2A37"', '    uuid: "0x2A3"', "characteristics.0.uuid"),
        ("    payload: hrs_measurement", "    payload: pmd_data", "characteristics.0"),
        ("    unit: bpm", "    unit: bps", "streams.0"),
        (
            "  - kind: rr\n    characteristic: heart_rate",
            "  - kind: rr\n    characteristic: pmd_data",
            "streams.1",
        ),
        ("profile: 1", "profile: 2", "profile"),
        ('  service_uuids: ["0x180D"]', "  service_uuids: []", "match"),
        (
            "    properties: [notify]",
            "    properties: [notify, broadcast]",
            "characteristics.0.properties",
        ),
    ],
)
def test_invalid_field_is_named(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _write(tmp_path, "hrs_strap", _variant(old, new))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert field in message


def test_cross_field_errors(tmp_path: Path) -> None:
    twice = _variant("  - role: battery", "  - role: heart_rate").replace(
        "    payload: battery_level", "    payload: hrs_measurement"
    )
    path = _write(tmp_path, "hrs_strap", twice)
    with pytest.raises(ProfileError, match="role listed twice"):
        load_profile(path)
    gsr = (DEVICES / "shuxin_gsr.yaml").read_text(encoding="utf-8")
    without_cal = gsr[: gsr.index("calibration:")]
    with pytest.raises(ProfileError, match="calibration is required"):
        load_profile(_write(tmp_path, "shuxin_gsr", without_cal))
    bad_rate = gsr.replace("    sample_rate_hz: 8\n", "    sample_rate_hz: 10\n")
    with pytest.raises(ProfileError, match="sample_rate_hz must be one of"):
        load_profile(_write(tmp_path, "shuxin_gsr", bad_rate))
    clipping = gsr.replace("  amplifier_gain: 4.0", "  amplifier_gain: 6.0")
    with pytest.raises(ProfileError, match="adc_full_scale_v"):
        load_profile(_write(tmp_path, "shuxin_gsr", clipping))
    h10 = (DEVICES / "polar_h10.yaml").read_text(encoding="utf-8")
    no_control = h10.replace("  - role: pmd_control", "  - role: eda_control").replace(
        "    payload: pmd_control_point", "    payload: shuxin_eda_control_v1"
    )
    with pytest.raises(ProfileError, match="needs a pmd_control"):
        load_profile(_write(tmp_path, "polar_h10", no_control))


def test_name_must_equal_file_stem(tmp_path: Path) -> None:
    path = _write(tmp_path, "other_name", _variant("title:", "title:"))
    with pytest.raises(ProfileError, match="must equal the file name"):
        load_profile(path)


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "hrs_strap", _variant("profile: 1", "profile: 1\nprofile: 1"))
    with pytest.raises(ProfileError, match="given twice"):
        load_profile(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("- a\n- b\n", "a profile is a YAML mapping"), ("a: [1, 2\n", "not valid YAML")],
)
def test_not_a_profile_document(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        load_profile(_write(tmp_path, "x", text))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "absent.yaml")
    with pytest.raises(ProfileError, match="not a directory"):
        load_profiles(tmp_path / "absent")
    with pytest.raises(ProfileError, match=r"no \*\.yaml"):
        load_profiles(tmp_path)


def test_profiles_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PROFILES_ENV, str(tmp_path))
    assert default_profiles_dir() == tmp_path
