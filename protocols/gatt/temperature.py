"""Health Thermometer Service 0x1809: Temperature Measurement 0x2A1C and friends (the wire
format; observations are in :mod:`protocols.gatt.mapping.temperature`).

Layout (GATT Specification Supplement, Temperature Measurement; HTS 1.0; docs/protocols/phd.md
2.2):

====== ==== ============================================ ==============
Offset Size Field                                        Present if
====== ==== ============================================ ==============
0      1    Flags: bit0 unit (0 Cel, 1 degF), bit1 time  always
            stamp, bit2 temperature type, bits 3-7 RFU
1      4    Temperature (FLOAT, IEEE 11073-20601)        always
5      7    Time Stamp (Date Time)                       bit1
+0     1    Temperature Type (0x2A1D values)             bit2
====== ==== ============================================ ==============

Intermediate Temperature 0x2A1E has the same layout (display only). Temperature Type 0x2A1D
(GSS 3.218) is one byte with the same values as the in-measurement field. Errors are reported
in wire order, truncation included ("truncated Time Stamp").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.gatt.datetime_ import DATE_TIME_FIELD, DateTime
from protocols.gatt.kinds import FLOAT, Enumerated
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.numbers import (
    INTERMEDIATE_TEMPERATURE,
    TEMPERATURE_MEASUREMENT,
    TEMPERATURE_TYPE,
)
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Field, Flags, FlagValue, Table

_FLAG_FAHRENHEIT = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_TYPE = 0x04
_FLAGS_RFU = 0xF8


class TemperatureUnit(enum.Enum):
    """Unit selected by flag bit 0, as its UCUM code."""

    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"


class TemperatureType(enum.IntEnum):
    """Temperature Type 0x2A1D (GSS 3.218): where on the body the temperature was taken."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTRO_INTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


_TEMPERATURE_TYPE = Enumerated(TemperatureType, "Temperature Type")

_TABLE = Table(
    flags=Flags(rfu=_FLAGS_RFU),
    fields=(
        Field("Temperature (FLOAT)", FLOAT, "temperature"),
        Field("Time Stamp", DATE_TIME_FIELD, "time_stamp", present=_FLAG_TIME_STAMP),
        Field("Temperature Type", _TEMPERATURE_TYPE, "temperature_type", present=_FLAG_TYPE),
    ),
    flag_values=(
        FlagValue("unit", _FLAG_FAHRENHEIT, TemperatureUnit.CELSIUS, TemperatureUnit.FAHRENHEIT),
    ),
    sequential_errors=True,
)


@characteristic(
    INTERMEDIATE_TEMPERATURE,
    "Intermediate Temperature",
    gss="Intermediate Temperature",
    service="HTS 1.0 (Intermediate Temperature characteristic)",
    table=_TABLE,
    constants={"intermediate": True},
)
@characteristic(
    TEMPERATURE_MEASUREMENT,
    "Temperature Measurement",
    gss="Temperature Measurement",
    service="HTS 1.0 (Temperature Measurement characteristic)",
    table=_TABLE,
)
@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """Temperature Measurement 0x2A1C (or Intermediate Temperature 0x2A1E)."""

    temperature: MedFloat
    unit: TemperatureUnit = TemperatureUnit.CELSIUS
    time_stamp: DateTime | None = None
    temperature_type: TemperatureType | None = None
    intermediate: bool = False
    corrections: frozenset[str] = frozenset()

    @property
    def characteristic(self) -> int:
        """The characteristic this measurement is a value of."""
        return INTERMEDIATE_TEMPERATURE if self.intermediate else TEMPERATURE_MEASUREMENT


@characteristic(
    TEMPERATURE_TYPE,
    "Temperature Type",
    gss="3.218 Temperature Type",
    service="HTS 1.0 (Temperature Type characteristic)",
    table=Table(fields=(Field("Temperature Type", _TEMPERATURE_TYPE, "temperature_type"),)),
)
@dataclass(frozen=True, slots=True)
class TemperatureTypeValue:
    """Temperature Type 0x2A1D (GSS 3.218): the thermometer's fixed measurement site."""

    temperature_type: TemperatureType
