"""Glucose Service 0x1808: Glucose Measurement 0x2A18 and Glucose Feature 0x2A51 (GLS 1.0;
docs/protocols/phd.md 2.5; the wire format, observations are in
:mod:`protocols.gatt.mapping.glucose`). Glucose Measurement
Context 0x2A34 is in :mod:`protocols.gatt.glucose_context`.

Glucose Measurement (GSS 3.106):

====== ==== ============================================================== ==========
Offset Size Field                                                          Present if
====== ==== ============================================================== ==========
0      1    Flags: bit0 time offset, bit1 concentration + type/location,   always
            bit2 unit (0 kg/L, 1 mol/L), bit3 sensor status annunciation,
            bit4 context information follows, bits 5-7 RFU
1      2    Sequence Number (uint16)                                       always
3      7    Base Time (Date Time)                                          always
10     2    Time Offset (sint16, minutes)                                  bit0
+0     2    Glucose Concentration (SFLOAT)                                 bit1
+0     1    Type (low nibble) / Sample Location (high nibble)              bit1
+0     2    Sensor Status Annunciation (bits 12-15 RFU)                    bit3
====== ==== ============================================================== ==========

User-facing time = Base Time + Time Offset. kg/L x 100 000 = mg/dL and mol/L x 1 000 = mmol/L,
exact decimal shifts (real meters send mg/dL values with exponent -5: ``0xB06F`` = 111 mg/dL).

Glucose Feature (GSS 3.108): uint16, bits 0-10 defined, 11-15 RFU.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from protocols.gatt.datetime_ import DATE_TIME_FIELD, DateTime
from protocols.gatt.kinds import SFLOAT, Bits, Packed, Part, SInt, UInt, feature_table
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.numbers import GLUCOSE_FEATURE, GLUCOSE_MEASUREMENT
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Field, Flags, FlagValue, Table


class GlucoseConcentrationUnit(enum.Enum):
    """Flag bit 2 of Glucose Measurement: the SI unit the concentration is sent in."""

    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


class GlucoseType(enum.IntEnum):
    """Glucose Measurement Type nibble (GSS 3.106.2.5); 0 and 11-15 are reserved."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(enum.IntEnum):
    """Glucose Measurement Sample Location nibble (GSS 3.106.2.6); 0 and 5-14 are reserved."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class GlucoseSensorStatus(enum.IntFlag):
    """Sensor Status Annunciation (GSS 3.106.2.7); bits 12-15 are RFU."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS = 1 << 5
    RESULT_LOWER_THAN_DEVICE_CAN_PROCESS = 1 << 6
    TEMPERATURE_TOO_HIGH = 1 << 7
    TEMPERATURE_TOO_LOW = 1 << 8
    STRIP_PULLED_TOO_SOON = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


_GM_TIME_OFFSET = 0x01
_GM_CONCENTRATION = 0x02
_GM_MOL_PER_L = 0x04
_GM_STATUS = 0x08
_GM_CONTEXT_FOLLOWS = 0x10
_GM_RFU = 0xE0

_TYPE_SAMPLE_LOCATION = Packed(
    1,
    (Part(0, 4, GlucoseType, "glucose Type"), Part(4, 4, SampleLocation, "Sample Location")),
)
_SENSOR_STATUS = Bits(GlucoseSensorStatus, size=2, rfu=0xF000, label="Sensor Status")


@characteristic(
    GLUCOSE_MEASUREMENT,
    "Glucose Measurement",
    gss="3.106 Glucose Measurement",
    service="GLS 1.0 (Glucose Measurement characteristic)",
    table=Table(
        flags=Flags(rfu=_GM_RFU),
        fields=(
            Field("Sequence Number", UInt(2), "sequence_number"),
            Field("Base Time", DATE_TIME_FIELD, "base_time"),
            Field("Time Offset", SInt(), "time_offset_min", present=_GM_TIME_OFFSET),
            Field("Glucose Concentration", SFLOAT, "concentration", present=_GM_CONCENTRATION),
            Field(
                "Type-Sample Location",
                _TYPE_SAMPLE_LOCATION,
                ("type", "sample_location"),
                present=_GM_CONCENTRATION,
            ),
            Field(
                "Sensor Status Annunciation",
                _SENSOR_STATUS,
                "sensor_status_annunciation",
                present=_GM_STATUS,
            ),
        ),
        flag_values=(
            FlagValue(
                "concentration_unit",
                _GM_MOL_PER_L,
                GlucoseConcentrationUnit.KG_PER_L,
                GlucoseConcentrationUnit.MOL_PER_L,
            ),
            FlagValue("context_information_follows", _GM_CONTEXT_FOLLOWS, False, True),
        ),
    ),
)
@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """Glucose Measurement 0x2A18 (GSS 3.106).

    ``concentration`` is in ``concentration_unit`` (kg/L or mol/L as sent); ``type`` and
    ``sample_location`` are present exactly when the concentration is.
    """

    sequence_number: int
    base_time: DateTime
    time_offset_min: int | None = None
    concentration: MedFloat | None = None
    concentration_unit: GlucoseConcentrationUnit = GlucoseConcentrationUnit.KG_PER_L
    type: GlucoseType | None = None
    sample_location: SampleLocation | None = None
    sensor_status_annunciation: GlucoseSensorStatus | None = None
    context_information_follows: bool = False
    corrections: frozenset[str] = frozenset()

    @property
    def user_facing_time(self) -> dt.datetime | None:
        """Base Time + Time Offset, naive device wall clock; ``None`` when not known."""
        base = self.base_time.to_datetime()
        if base is None:
            return None
        return base + dt.timedelta(minutes=self.time_offset_min or 0)

    @property
    def is_control_solution(self) -> bool:
        """A control-solution test: never a patient value."""
        return (
            self.type is GlucoseType.CONTROL_SOLUTION
            or self.sample_location is SampleLocation.CONTROL_SOLUTION
        )


# --- Glucose Feature ---------------------------------------------------------------------------


class GlucoseFeatureBits(enum.IntFlag):
    """Glucose Feature bits (GSS 3.108); bits 11-15 are RFU."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    SENSOR_STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    SENSOR_STRIP_TYPE_ERROR_DETECTION = 1 << 4
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 5
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    SENSOR_READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


@characteristic(
    GLUCOSE_FEATURE,
    "Glucose Feature",
    gss="3.108 Glucose Feature",
    service="GLS 1.0 (Glucose Feature characteristic)",
    table=feature_table(GlucoseFeatureBits, rfu=0xF800),
)
@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    """Glucose Feature 0x2A51 (GSS 3.108)."""

    features: GlucoseFeatureBits
