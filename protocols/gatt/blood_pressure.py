"""Blood Pressure Service 0x1810: Blood Pressure Measurement 0x2A35, Intermediate Cuff Pressure
0x2A36 and Blood Pressure Feature 0x2A49 (the wire format; observations are in
:mod:`protocols.gatt.mapping.blood_pressure`).

GSS section 3.31 *Blood Pressure Measurement* (BLS 1.0 section 3.1; docs/protocols/phd.md 2.1):

====== ==== =================================================== ============
Offset Size Field                                               Present if
====== ==== =================================================== ============
0      1    Flags: bit0 unit (0 mmHg, 1 kPa), bit1 time stamp,  always
            bit2 pulse rate, bit3 user ID, bit4 measurement
            status, bits 5-7 RFU
1      2    Systolic (SFLOAT)                                   always
3      2    Diastolic (SFLOAT)                                  always
5      2    Mean Arterial Pressure (SFLOAT)                     always
7      7    Time Stamp (Date Time, GSS 3.70)                    bit1
+0     2    Pulse Rate (SFLOAT, beats/min)                      bit2
+0     1    User ID (uint8, 0xFF = unknown user)                bit3
+0     2    Measurement Status (16 bits)                        bit4
====== ==== =================================================== ============

Measurement Status (GSS 3.31.2.6): bit0 body movement detected, bit1 cuff too loose, bit2
irregular pulse detected, bits 3-4 pulse rate range (0 within, 1 exceeds upper limit, 2 below
lower limit, 3 reserved), bit5 improper measurement position, bits 6-15 RFU.

Intermediate Cuff Pressure (GSS 3.129) has the same layout; its first SFLOAT is the current cuff
pressure and the other two "shall be NaN" (Nordic's test data sends 0), so they are kept only
to re-encode the value exactly. It is display-only and yields no observation.

Blood Pressure Feature (GSS 3.32) is a uint16; BLS 1.1 defines bits 0-8, bits 9-15 are RFU.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.gatt.datetime_ import DATE_TIME_FIELD, DateTime
from protocols.gatt.kinds import SFLOAT, Bits, Reserved, UInt, feature_table
from protocols.gatt.medfloat import MedFloat, Special
from protocols.gatt.numbers import (
    BLOOD_PRESSURE_FEATURE,
    BLOOD_PRESSURE_MEASUREMENT,
    INTERMEDIATE_CUFF_PRESSURE,
)
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Field, Flags, FlagValue, Table

#: The User ID value meaning "unknown user" (GSS 3.31.2.5).
UNKNOWN_USER = 0xFF

_FLAG_KPA = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_PULSE_RATE = 0x04
_FLAG_USER_ID = 0x08
_FLAG_STATUS = 0x10
_FLAGS_RFU = 0xE0


class PressureUnit(enum.Enum):
    """Unit selected by flag bit 0, as its UCUM code."""

    MMHG = "mm[Hg]"
    KPA = "kPa"


class PulseRateRange(enum.IntEnum):
    """Measurement Status bits 3-4 (GSS 3.31.2.6); 3 is reserved."""

    WITHIN_RANGE = 0
    EXCEEDS_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2


_STATUS_RFU = 0xFFC0
_STATUS_RANGE_SHIFT = 3
_STATUS_RANGE_MASK = 0x18


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurementStatus:
    """Measurement Status of 0x2A35/0x2A36 (GSS 3.31.2.6), kept as its raw 16 bits."""

    raw: int

    def __post_init__(self) -> None:
        if not 0 <= self.raw <= 0xFFFF or self.raw & _STATUS_RFU:
            raise ValueError(f"reserved Measurement Status bits in 0x{self.raw:04X}")
        if (self.raw & _STATUS_RANGE_MASK) == _STATUS_RANGE_MASK:
            raise ValueError("reserved pulse rate range 3")

    @classmethod
    def of(
        cls,
        *,
        body_movement_detected: bool = False,
        cuff_too_loose: bool = False,
        irregular_pulse_detected: bool = False,
        pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN_RANGE,
        improper_measurement_position: bool = False,
    ) -> BloodPressureMeasurementStatus:
        """Build from named fields."""
        return cls(
            int(body_movement_detected)
            | int(cuff_too_loose) << 1
            | int(irregular_pulse_detected) << 2
            | int(pulse_rate_range) << _STATUS_RANGE_SHIFT
            | int(improper_measurement_position) << 5
        )

    @property
    def body_movement_detected(self) -> bool:
        """Bit 0: body movement detected during measurement."""
        return bool(self.raw & 0x01)

    @property
    def cuff_too_loose(self) -> bool:
        """Bit 1: cuff fit too loose."""
        return bool(self.raw & 0x02)

    @property
    def irregular_pulse_detected(self) -> bool:
        """Bit 2: irregular pulse detected."""
        return bool(self.raw & 0x04)

    @property
    def pulse_rate_range(self) -> PulseRateRange:
        """Bits 3-4: pulse rate within, above or below the device's range."""
        return PulseRateRange((self.raw & _STATUS_RANGE_MASK) >> _STATUS_RANGE_SHIFT)

    @property
    def improper_measurement_position(self) -> bool:
        """Bit 5: improper measurement position."""
        return bool(self.raw & 0x20)


def _status_raw(status: BloodPressureMeasurementStatus) -> int:
    return status.raw


#: The Measurement Status field kind, shared with the BLS 1.1 enhanced values.
MEASUREMENT_STATUS_FIELD = _MEASUREMENT_STATUS = Bits(
    BloodPressureMeasurementStatus,
    size=2,
    rfu=_STATUS_RFU,
    label="Measurement Status",
    reserved=(
        Reserved(
            _STATUS_RANGE_MASK,
            _STATUS_RANGE_MASK,
            "reserved pulse rate range 3 in Measurement Status",
        ),
    ),
    to_raw=_status_raw,
)


def _table(first: str, second: str, third: str) -> Table:
    """The shared layout of 0x2A35 and 0x2A36; the three SFLOATs fill different attributes."""
    return Table(
        flags=Flags(rfu=_FLAGS_RFU),
        fields=(
            Field("SFLOAT 1", SFLOAT, first),
            Field("SFLOAT 2", SFLOAT, second),
            Field("SFLOAT 3", SFLOAT, third),
            Field("Time Stamp", DATE_TIME_FIELD, "time_stamp", present=_FLAG_TIME_STAMP),
            Field("Pulse Rate", SFLOAT, "pulse_rate_bpm", present=_FLAG_PULSE_RATE),
            Field("User ID", UInt(1), "user_id", present=_FLAG_USER_ID),
            Field("Measurement Status", _MEASUREMENT_STATUS, "measurement_status", _FLAG_STATUS),
        ),
        flag_values=(FlagValue("unit", _FLAG_KPA, PressureUnit.MMHG, PressureUnit.KPA),),
    )


@characteristic(
    BLOOD_PRESSURE_MEASUREMENT,
    "Blood Pressure Measurement",
    gss="3.31 Blood Pressure Measurement",
    service="BLS 1.0 section 3.1",
    table=_table("systolic", "diastolic", "mean_arterial_pressure"),
)
@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """Blood Pressure Measurement 0x2A35 (GSS 3.31).

    Pressures are in ``unit`` (mmHg or kPa); the pulse rate is in beats per minute.
    ``corrections`` names the device quirks applied to decode it (empty when strict).
    """

    systolic: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp: DateTime | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None
    corrections: frozenset[str] = frozenset()


_NAN = MedFloat(None, Special.NAN)


@characteristic(
    INTERMEDIATE_CUFF_PRESSURE,
    "Intermediate Cuff Pressure",
    gss="3.129 Intermediate Cuff Pressure",
    service="BLS 1.0 (Intermediate Cuff Pressure characteristic)",
    table=_table("current_cuff_pressure", "unused_diastolic", "unused_mean_arterial_pressure"),
)
@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """Intermediate Cuff Pressure 0x2A36 (GSS 3.129): live cuff pressure, display only."""

    current_cuff_pressure: MedFloat
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp: DateTime | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None
    unused_diastolic: MedFloat = _NAN
    unused_mean_arterial_pressure: MedFloat = _NAN
    corrections: frozenset[str] = frozenset()


class BloodPressureFeatureBits(enum.IntFlag):
    """Blood Pressure Feature bits (GSS 3.32, BLS 1.1)."""

    BODY_MOVEMENT_DETECTION = 0x0001
    CUFF_FIT_DETECTION = 0x0002
    IRREGULAR_PULSE_DETECTION = 0x0004
    PULSE_RATE_RANGE_DETECTION = 0x0008
    MEASUREMENT_POSITION_DETECTION = 0x0010
    MULTIPLE_BONDS = 0x0020
    E2E_CRC = 0x0040
    USER_DATA_SERVICE = 0x0080
    USER_FACING_TIME = 0x0100


@characteristic(
    BLOOD_PRESSURE_FEATURE,
    "Blood Pressure Feature",
    gss="3.32 Blood Pressure Feature",
    service="BLS 1.1 (Blood Pressure Feature characteristic)",
    table=feature_table(BloodPressureFeatureBits, rfu=0xFE00),
)
@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """Blood Pressure Feature 0x2A49 (GSS 3.32): what the cuff can detect."""

    features: BloodPressureFeatureBits
