"""Pick the pure parser for a profile's characteristic (the function the BLE source injects).

``decoder_for(profile, role)`` returns a ``Callable[[bytes], Decoded]``: the parser for the
characteristic's payload format, with the profile's constants (EDA calibration) bound in.
This module must not do I/O, keep state, log, or import bleak.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from shuxin.edge.device_profile import DeviceProfile, EdaCalibrationSpec, PayloadFormat, Role
from shuxin.edge.parse_battery import BatteryLevel, parse_battery_level
from shuxin.edge.parse_eda import (
    EdaCalibration,
    EdaControlRequest,
    EdaFrame,
    parse_eda_control_request,
    parse_eda_frame,
)
from shuxin.edge.parse_hrs import HeartRateMeasurement, parse_heart_rate_measurement
from shuxin.edge.parse_pmd import (
    PmdControlPointResponse,
    PmdEcgFrame,
    PmdFeatures,
    PmdMeasurementStopped,
    PmdPpiFrame,
    parse_pmd_control_point,
    parse_pmd_data,
)

Decoded = (
    HeartRateMeasurement
    | BatteryLevel
    | PmdEcgFrame
    | PmdPpiFrame
    | PmdControlPointResponse
    | PmdMeasurementStopped
    | PmdFeatures
    | EdaFrame
    | EdaControlRequest
)
Decoder = Callable[[bytes], Decoded]


def eda_calibration(spec: EdaCalibrationSpec) -> EdaCalibration:
    """The parser's calibration constants from a profile's ``calibration`` section."""
    return EdaCalibration(
        excitation_v=spec.excitation_v,
        reference_ohm=spec.reference_ohm,
        amplifier_gain=spec.amplifier_gain,
        voltage_lsb_v=spec.voltage_lsb_v,
    )


def decoder_for(profile: DeviceProfile, role: Role | str) -> Decoder:
    """The parser for ``profile``'s characteristic with ``role``.

    Raises ``KeyError`` when the profile has no such characteristic.
    """
    payload = profile.characteristic(role).payload
    if payload is PayloadFormat.SHUXIN_EDA_V1:
        # The model guarantees a calibration section whenever an eda characteristic exists.
        assert profile.calibration is not None
        return partial(parse_eda_frame, calibration=eda_calibration(profile.calibration))
    table: dict[PayloadFormat, Decoder] = {
        PayloadFormat.HRS_MEASUREMENT: parse_heart_rate_measurement,
        PayloadFormat.BATTERY_LEVEL: parse_battery_level,
        PayloadFormat.PMD_CONTROL_POINT: parse_pmd_control_point,
        PayloadFormat.PMD_DATA: parse_pmd_data,
        PayloadFormat.SHUXIN_EDA_CONTROL_V1: parse_eda_control_request,
    }
    return table[payload]
