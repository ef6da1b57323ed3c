"""Generate the C header an EDA module's firmware compiles against, from its device profile.

``render_firmware_header(profile)`` turns the profile's UUIDs, rates, calibration and
firmware constants, plus the ``shuxin_eda_v1`` frame layout constants of
``shuxin.edge.parse_eda``, into a deterministic C header (C11 and C++11). The committed copy
is ``firmware_configs/firmware/shuxin_gsr_profile.h``; ``shuxin ble firmware-header`` writes
it and ``--check`` (and a unit test) fail when it is stale. This module must not import
bleak or touch files itself.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from shuxin.edge.decoders import eda_calibration
from shuxin.edge.device_profile import DeviceProfile, Role, StreamKind
from shuxin.edge.errors import ProfileError
from shuxin.edge.parse_eda import (
    EDA_CONTROL_SET_FRAME_TYPE,
    EDA_CONTROL_SET_RATE,
    EDA_FLAG_ADC_SATURATED,
    EDA_FLAG_BATTERY_LOW,
    EDA_FLAG_ELECTRODE_OFF,
    EDA_FORMAT,
    EDA_HEADER_BYTES,
    EDA_INVALID_CONDUCTANCE,
    EDA_INVALID_VOLTAGE,
    EDA_MAX_SAMPLE_RATE_HZ,
    EDA_MAX_SAMPLES_PER_FRAME,
    EdaFrameType,
    voltage_raw_for_conductance,
)

ATT_ERROR_VALUE_NOT_SUPPORTED = 0x80


def header_path(profile: DeviceProfile, profiles_dir: Path) -> Path:
    """Where the profile's header lives: ``firmware.header`` relative to the profile file."""
    if profile.firmware is None:
        raise ProfileError(profile.name, "firmware: this profile defines no firmware header")
    return (profiles_dir / profile.firmware.header).resolve()


def _c_float(value: float) -> str:
    text = repr(float(value))
    return f"{text}f"


def _uuid_le(text: str) -> str:
    return ", ".join(f"0x{b:02x}" for b in uuid.UUID(text).bytes[::-1])


def _uuid16(text: str) -> str:
    return f"0x{int(text[:8], 16):04X}"


def render_firmware_header(profile: DeviceProfile) -> str:
    """The C header text for ``profile`` (which must have ``firmware`` and ``calibration``)."""
    fw, cal = profile.firmware, profile.calibration
    if fw is None or cal is None:
        raise ProfileError(profile.name, "firmware: only an EDA profile with a firmware section")
    p = fw.c_prefix
    eda = profile.stream(StreamKind.EDA)
    data = profile.characteristic(Role.EDA)
    control = profile.characteristic(Role.EDA_CONTROL)
    battery = profile.characteristic(Role.BATTERY)
    declared = [*(eda.sample_rates_hz or ()), eda.sample_rate_hz or 0.0]
    if not all(r.is_integer() and 1 <= r <= EDA_MAX_SAMPLE_RATE_HZ for r in declared):
        raise ProfileError(profile.name, "streams.eda: sample rates must be whole 1-32 Hz")
    default_rate = int(declared[-1])
    rates = [int(r) for r in declared[:-1]] or [default_rate]
    off_raw = voltage_raw_for_conductance(fw.electrode_off_below_us, eda_calibration(cal))
    guard = f"{p}_PROFILE_H"
    lines = [
        f"/* {Path(fw.header).name}: constants the {profile.name} firmware must match.",
        " *",
        f" * GENERATED from firmware_configs/devices/{profile.name}.yaml by",
        " * `shuxin ble firmware-header` (shuxin.edge.firmware_header). Do not edit: change the",
        " * YAML and regenerate; tests/unit/edge/test_device_profiles.py fails while stale.",
        ' * Specification: docs/edge-ble.md, "The shuxin EDA profile".',
        " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdint.h>",
        "",
        f'#define {p}_PROFILE_NAME "{profile.name}"',
        f'#define {p}_FORMAT "{EDA_FORMAT}"',
        f'#define {p}_ADVERTISED_NAME_PREFIX "{fw.advertised_name_prefix}"',
        "",
        "/* GATT. Strings for Arduino-ESP32 BLEDevice / NimBLE-Arduino; the *_UUID128_LE byte",
        " * lists are in the little-endian order of ESP-IDF NimBLE's BLE_UUID128_INIT(). The",
        " * service UUID must be advertised (advertisement or scan response). */",
        f'#define {p}_SERVICE_UUID "{data.service_uuid}"',
        f"#define {p}_SERVICE_UUID128_LE {_uuid_le(data.service_uuid)}",
        f'#define {p}_DATA_UUID "{data.uuid}"  /* notify */',
        f"#define {p}_DATA_UUID128_LE {_uuid_le(data.uuid)}",
        f'#define {p}_CONTROL_UUID "{control.uuid}"  /* write with response */',
        f"#define {p}_CONTROL_UUID128_LE {_uuid_le(control.uuid)}",
        f"#define {p}_BATTERY_SERVICE_UUID16 {_uuid16(battery.service_uuid)}",
        f"#define {p}_BATTERY_LEVEL_UUID16 {_uuid16(battery.uuid)}  /* read, notify; uint8 % */",
        "",
        "/* Data frame (little-endian): header, then sample_count samples. */",
        f"#define {p}_HEADER_BYTES {EDA_HEADER_BYTES}",
        f"#define {p}_FRAME_TYPE_VOLTAGE_0P1MV 0x{EdaFrameType.VOLTAGE_0P1MV:02X}"
        "  /* uint16 samples, 0.1 mV at the ADC */",
        f"#define {p}_FRAME_TYPE_CONDUCTANCE_NS 0x{EdaFrameType.CONDUCTANCE_NS:02X}"
        "  /* uint32 samples, nS */",
        f"#define {p}_FLAG_ELECTRODE_OFF 0x{EDA_FLAG_ELECTRODE_OFF:02X}",
        f"#define {p}_FLAG_ADC_SATURATED 0x{EDA_FLAG_ADC_SATURATED:02X}",
        f"#define {p}_FLAG_BATTERY_LOW 0x{EDA_FLAG_BATTERY_LOW:02X}",
        f"#define {p}_INVALID_VOLTAGE 0x{EDA_INVALID_VOLTAGE:04X}u",
        f"#define {p}_INVALID_CONDUCTANCE 0x{EDA_INVALID_CONDUCTANCE:08X}u",
        f"#define {p}_MAX_SAMPLES_PER_FRAME {EDA_MAX_SAMPLES_PER_FRAME}",
        f"#define {p}_MAX_SAMPLE_RATE_HZ {EDA_MAX_SAMPLE_RATE_HZ}",
        "",
        "/* Rates and framing. */",
        f"#define {p}_DEFAULT_SAMPLE_RATE_HZ {default_rate}",
        f"#define {p}_SUPPORTED_RATES_HZ {{{', '.join(str(r) for r in rates)}}}",
        f"#define {p}_SUPPORTED_RATE_COUNT {len(rates)}",
        f"#define {p}_DEFAULT_FRAME_TYPE 0x{fw.default_frame_type:02X}",
        f"#define {p}_SAMPLES_PER_FRAME {fw.samples_per_frame}",
        "",
        "/* Control point: write {op, value}; reply ATT error 0x80 to an unsupported value. */",
        f"#define {p}_CONTROL_SET_RATE 0x{EDA_CONTROL_SET_RATE:02X}",
        f"#define {p}_CONTROL_SET_FRAME_TYPE 0x{EDA_CONTROL_SET_FRAME_TYPE:02X}",
        f"#define {p}_ATT_ERROR_VALUE_NOT_SUPPORTED 0x{ATT_ERROR_VALUE_NOT_SUPPORTED:02X}",
        "",
        "/* Calibration (series reference resistor, constant-voltage excitation):",
        " *   V_r = raw * VOLTAGE_LSB_V / AMPLIFIER_GAIN",
        " *   G   = V_r / (REFERENCE_OHM * (EXCITATION_V - V_r))  [S] */",
        f"#define {p}_EXCITATION_V {_c_float(cal.excitation_v)}",
        f"#define {p}_REFERENCE_OHM {_c_float(cal.reference_ohm)}",
        f"#define {p}_AMPLIFIER_GAIN {_c_float(cal.amplifier_gain)}",
        f"#define {p}_VOLTAGE_LSB_V {_c_float(cal.voltage_lsb_v)}",
        f"#define {p}_ADC_FULL_SCALE_V {_c_float(cal.adc_full_scale_v)}",
        f"#define {p}_VALID_MIN_US {_c_float(cal.valid_range_us[0])}",
        f"#define {p}_VALID_MAX_US {_c_float(cal.valid_range_us[1])}",
        f"#define {p}_ELECTRODE_OFF_BELOW_US {_c_float(fw.electrode_off_below_us)}",
        f"#define {p}_ELECTRODE_OFF_BELOW_RAW {off_raw}u"
        "  /* frame-type-1 sample at ELECTRODE_OFF_BELOW_US */",
        f"#define {p}_BATTERY_LOW_PERCENT {fw.battery_low_percent}",
        "",
        "typedef struct __attribute__((packed)) {",
        "    uint8_t frame_type;      /* FRAME_TYPE_* */",
        "    uint8_t flags;           /* FLAG_*; other bits 0 */",
        "    uint16_t sequence;       /* +1 per frame, wraps */",
        "    uint32_t first_sample_ms; /* device ms since boot of sample 0, wraps */",
        "    uint8_t sample_rate_hz;  /* one of SUPPORTED_RATES_HZ */",
        "    uint8_t sample_count;    /* 1..MAX_SAMPLES_PER_FRAME */",
        f"}} {p.lower()}_frame_header_t;",
        "",
        "#ifdef __cplusplus",
        f"static_assert(sizeof({p.lower()}_frame_header_t) == {p}_HEADER_BYTES,"
        ' "frame header must be packed");',
        "#else",
        f"_Static_assert(sizeof({p.lower()}_frame_header_t) == {p}_HEADER_BYTES,"
        ' "frame header must be packed");',
        "#endif",
        "",
        "/* Skin conductance in uS for a frame-type-1 sample; negative when impossible. */",
        f"static inline float {p.lower()}_conductance_us(uint16_t raw)",
        "{",
        f"    const float v_r = (float)raw * {p}_VOLTAGE_LSB_V / {p}_AMPLIFIER_GAIN;",
        f"    if (raw == {p}_INVALID_VOLTAGE || v_r >= {p}_EXCITATION_V) {{",
        "        return -1.0f;",
        "    }",
        f"    return 1e6f * v_r / ({p}_REFERENCE_OHM * ({p}_EXCITATION_V - v_r));",
        "}",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)
