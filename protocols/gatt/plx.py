"""Pulse Oximeter Service 0x1822: PLX Spot-check Measurement 0x2A5E, PLX Continuous
Measurement 0x2A5F and PLX Features 0x2A60 (PLXS 1.0; docs/protocols/phd.md 2.4; the wire
format, observations are in :mod:`protocols.gatt.mapping.plx`).

Spot-check (GSS 3.170): Flags (bit0 time stamp, bit1 measurement status, bit2 device and sensor
status, bit3 pulse amplitude index, bit4 device clock is not set, bits 5-7 RFU); SpO2 (SFLOAT %);
PR (SFLOAT /min); [Time Stamp 7]; [Measurement Status 2]; [Device and Sensor Status 3];
[Pulse Amplitude Index SFLOAT %].

Continuous (GSS 3.169): Flags (bit0 SpO2PR-Fast, bit1 SpO2PR-Slow, bit2 measurement status,
bit3 device and sensor status, bit4 pulse amplitude index, bits 5-7 RFU); SpO2PR-Normal (2+2);
[SpO2PR-Fast 2+2]; [SpO2PR-Slow 2+2]; [Measurement Status 2]; [Device and Sensor Status 3];
[PAI 2].

PLX Features (GSS 3.171): Supported Features uint16 (bits 8-15 RFU), then Measurement Status
Support uint16 only if bit0, then Device and Sensor Status Support uint24 only if bit1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.gatt.datetime_ import DATE_TIME_FIELD, DateTime
from protocols.gatt.kinds import SFLOAT, Bits
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.numbers import (
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_FEATURES,
    PLX_SPOT_CHECK_MEASUREMENT,
)
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Field, Flags, FlagValue, Table


class PlxMeasurementStatus(enum.IntFlag):
    """PLX Measurement Status (GSS 3.170.2.4); bits 0-4 are RFU."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(enum.IntFlag):
    """PLX Device and Sensor Status (GSS 3.170.2.5), 24 bits; bits 16-23 are RFU."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


# One kind (and cache of validated values) per status field, shared by the three tables.
_MEASUREMENT_STATUS = Bits(PlxMeasurementStatus, size=2, rfu=0x001F, label="Measurement Status")
_DEVICE_STATUS = Bits(
    PlxDeviceAndSensorStatus, size=3, rfu=0xFF0000, label="Device and Sensor Status"
)

# --- Spot-check -------------------------------------------------------------------------------

_SC_TIME_STAMP = 0x01
_SC_STATUS = 0x02
_SC_DEVICE_STATUS = 0x04
_SC_PAI = 0x08
_SC_CLOCK_NOT_SET = 0x10
_SC_RFU = 0xE0


@characteristic(
    PLX_SPOT_CHECK_MEASUREMENT,
    "PLX Spot-check Measurement",
    gss="3.170 PLX Spot-check Measurement",
    service="PLXS 1.0 (PLX Spot-check Measurement characteristic)",
    table=Table(
        flags=Flags(rfu=_SC_RFU),
        fields=(
            Field("SpO2", SFLOAT, "spo2_percent"),
            Field("PR", SFLOAT, "pulse_rate_bpm"),
            Field("Time Stamp", DATE_TIME_FIELD, "time_stamp", present=_SC_TIME_STAMP),
            Field("Measurement Status", _MEASUREMENT_STATUS, "measurement_status", _SC_STATUS),
            Field(
                "Device and Sensor Status",
                _DEVICE_STATUS,
                "device_and_sensor_status",
                present=_SC_DEVICE_STATUS,
            ),
            Field("Pulse Amplitude Index", SFLOAT, "pulse_amplitude_index_percent", _SC_PAI),
        ),
        flag_values=(FlagValue("device_clock_not_set", _SC_CLOCK_NOT_SET, False, True),),
    ),
)
@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    """PLX Spot-check Measurement 0x2A5E (GSS 3.170): SpO2 in %, pulse rate in /min."""

    spo2_percent: MedFloat
    pulse_rate_bpm: MedFloat
    time_stamp: DateTime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index_percent: MedFloat | None = None
    device_clock_not_set: bool = False
    corrections: frozenset[str] = frozenset()


# --- Continuous -------------------------------------------------------------------------------

_CT_FAST = 0x01
_CT_SLOW = 0x02
_CT_STATUS = 0x04
_CT_DEVICE_STATUS = 0x08
_CT_PAI = 0x10
_CT_RFU = 0xE0


@characteristic(
    PLX_CONTINUOUS_MEASUREMENT,
    "PLX Continuous Measurement",
    gss="3.169 PLX Continuous Measurement",
    service="PLXS 1.0 (PLX Continuous Measurement characteristic)",
    table=Table(
        flags=Flags(rfu=_CT_RFU),
        fields=(
            Field("SpO2", SFLOAT, "spo2_percent"),
            Field("PR", SFLOAT, "pulse_rate_bpm"),
            Field("SpO2 Fast", SFLOAT, "spo2_fast_percent", present=_CT_FAST),
            Field("PR Fast", SFLOAT, "pulse_rate_fast_bpm", present=_CT_FAST),
            Field("SpO2 Slow", SFLOAT, "spo2_slow_percent", present=_CT_SLOW),
            Field("PR Slow", SFLOAT, "pulse_rate_slow_bpm", present=_CT_SLOW),
            Field("Measurement Status", _MEASUREMENT_STATUS, "measurement_status", _CT_STATUS),
            Field(
                "Device and Sensor Status",
                _DEVICE_STATUS,
                "device_and_sensor_status",
                present=_CT_DEVICE_STATUS,
            ),
            Field("Pulse Amplitude Index", SFLOAT, "pulse_amplitude_index_percent", _CT_PAI),
        ),
    ),
)
@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    """PLX Continuous Measurement 0x2A5F (GSS 3.169): SpO2 in %, pulse rates in /min."""

    spo2_percent: MedFloat
    pulse_rate_bpm: MedFloat
    spo2_fast_percent: MedFloat | None = None
    pulse_rate_fast_bpm: MedFloat | None = None
    spo2_slow_percent: MedFloat | None = None
    pulse_rate_slow_bpm: MedFloat | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index_percent: MedFloat | None = None
    corrections: frozenset[str] = frozenset()


# --- PLX Features -----------------------------------------------------------------------------


class PlxSupportedFeatures(enum.IntFlag):
    """PLX Features, Supported Features field (GSS 3.171); bits 8-15 are RFU."""

    MEASUREMENT_STATUS = 1 << 0
    DEVICE_AND_SENSOR_STATUS = 1 << 1
    SPOT_CHECK_MEASUREMENT_STORAGE = 1 << 2
    SPOT_CHECK_TIME_STAMP = 1 << 3
    SPO2PR_FAST = 1 << 4
    SPO2PR_SLOW = 1 << 5
    PULSE_AMPLITUDE_INDEX = 1 << 6
    MULTIPLE_BONDS = 1 << 7


@characteristic(
    PLX_FEATURES,
    "PLX Features",
    gss="3.171 PLX Features",
    service="PLXS 1.0 (PLX Features characteristic)",
    table=Table(
        flags=Flags(
            rfu=0xFF00,
            size=2,
            name="Supported Features",
            attr="supported_features",
            convert=PlxSupportedFeatures,
        ),
        fields=(
            Field(
                "Measurement Status Support",
                _MEASUREMENT_STATUS,
                "measurement_status_support",
                present=PlxSupportedFeatures.MEASUREMENT_STATUS,
            ),
            Field(
                "Device and Sensor Status Support",
                _DEVICE_STATUS,
                "device_and_sensor_status_support",
                present=PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS,
            ),
        ),
    ),
)
@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """PLX Features 0x2A60 (GSS 3.171).

    The two support fields are present exactly when their Supported Features bit is set.
    """

    supported_features: PlxSupportedFeatures
    measurement_status_support: PlxMeasurementStatus | None = None
    device_and_sensor_status_support: PlxDeviceAndSensorStatus | None = None
