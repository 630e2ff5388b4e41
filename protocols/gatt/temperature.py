"""Health Thermometer Service 0x1809: Temperature Measurement 0x2A1C and friends.

Layout (GATT Specification Supplement, Temperature Measurement; docs/protocols/phd.md 2.2):

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
(GSS 3.218) is one byte with the same values as the in-measurement field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt import observation as obs
from protocols.gatt._wire import length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.errors import DecodeError
from protocols.gatt.medfloat import MedFloat, encode_medfloat32, float_from_raw

TEMPERATURE_MEASUREMENT = 0x2A1C
TEMPERATURE_TYPE = 0x2A1D
INTERMEDIATE_TEMPERATURE = 0x2A1E
HEALTH_THERMOMETER_SERVICE = 0x1809

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


_TYPES: dict[int, TemperatureType] = {t.value: t for t in TemperatureType}


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


def decode_temperature_measurement(
    data: bytes, *, characteristic: int = TEMPERATURE_MEASUREMENT
) -> TemperatureMeasurement:
    """Decode 0x2A1C / 0x2A1E strictly: RFU flags, truncation and trailing bytes are errors."""
    name = (
        "Intermediate Temperature"
        if characteristic == INTERMEDIATE_TEMPERATURE
        else ("Temperature Measurement")
    )
    n = len(data)
    if n < 5:
        field, at = ("Flags", 0) if n == 0 else ("Temperature (FLOAT)", 1)
        raise DecodeError(characteristic, name, f"truncated {field}", offset=at)
    flags = data[0]
    if flags & _FLAGS_RFU:
        raise DecodeError(characteristic, name, f"reserved flag bits set (0x{flags:02X})", offset=0)
    temperature = float_from_raw(int.from_bytes(data[1:5], "little"))
    offset = 5
    time_stamp = None
    if flags & _FLAG_TIME_STAMP:
        if n < offset + DATE_TIME_SIZE:
            raise DecodeError(characteristic, name, "truncated Time Stamp", offset=offset)
        time_stamp = decode_date_time(data, offset, characteristic=characteristic, name=name)
        offset += DATE_TIME_SIZE
    temperature_type = None
    if flags & _FLAG_TYPE:
        if n < offset + 1:
            raise DecodeError(characteristic, name, "truncated Temperature Type", offset=offset)
        raw_type = data[offset]
        temperature_type = _TYPES.get(raw_type)
        if temperature_type is None:
            raise DecodeError(
                characteristic, name, f"reserved Temperature Type {raw_type}", offset=offset
            )
        offset += 1
    if offset != n:
        raise DecodeError(characteristic, name, f"{n - offset} trailing bytes", offset=offset)
    return TemperatureMeasurement(
        temperature=temperature,
        unit=TemperatureUnit.FAHRENHEIT if flags & _FLAG_FAHRENHEIT else TemperatureUnit.CELSIUS,
        time_stamp=time_stamp,
        temperature_type=temperature_type,
        intermediate=characteristic == INTERMEDIATE_TEMPERATURE,
    )


def encode_temperature_measurement(m: TemperatureMeasurement) -> bytes:
    """Encode to the wire layout; flags follow from which optional fields are set."""
    flags = 0
    if m.unit is TemperatureUnit.FAHRENHEIT:
        flags |= _FLAG_FAHRENHEIT
    tail = b""
    if m.time_stamp is not None:
        flags |= _FLAG_TIME_STAMP
        tail += encode_date_time(m.time_stamp)
    if m.temperature_type is not None:
        flags |= _FLAG_TYPE
        tail += bytes((int(m.temperature_type),))
    return bytes((flags,)) + encode_medfloat32(m.temperature) + tail


# Temperature Type -> (MDC code, body site text) per the PHD IG table (docs/protocols/phd.md 2.2).
_SITE_CODES: dict[TemperatureType, int] = {
    TemperatureType.ARMPIT: obs.MDC_TEMP_AXILLA,
    TemperatureType.EAR: obs.MDC_TEMP_EAR,
    TemperatureType.FINGER: obs.MDC_TEMP_FINGER,
    TemperatureType.GASTRO_INTESTINAL_TRACT: obs.MDC_TEMP_GIT,
    TemperatureType.MOUTH: obs.MDC_TEMP_ORAL,
    TemperatureType.RECTUM: obs.MDC_TEMP_RECT,
    TemperatureType.TOE: obs.MDC_TEMP_TOE,
    TemperatureType.TYMPANUM: obs.MDC_TEMP_TYMP,
}


def temperature_observations(m: TemperatureMeasurement) -> list[obs.Observation]:
    """One body-temperature observation (MDC_TEMP_BODY or the site's code; LOINC 8310-5).

    Intermediate temperatures are display-only and produce no observation.
    """
    if m.intermediate:
        return []
    site = m.temperature_type
    mdc = _SITE_CODES.get(site, obs.MDC_TEMP_BODY) if site is not None else obs.MDC_TEMP_BODY
    _, loinc = obs.MDC_TABLE[mdc]
    flags = obs.quirk_flags(m.corrections)
    timestamp = None
    if m.time_stamp is not None:
        timestamp = m.time_stamp.to_datetime()
        if timestamp is None:
            flags |= {"device-time-unknown"}
    return [
        obs.Observation.from_medfloat(
            mdc,
            loinc,
            m.temperature,
            m.unit.value,
            timestamp=timestamp,
            flags=flags,
            body_site=None if site is None else site.name.lower(),
        )
    ]


@dataclass(frozen=True, slots=True)
class TemperatureTypeValue:
    """Temperature Type 0x2A1D (GSS 3.218): the thermometer's fixed measurement site."""

    temperature_type: TemperatureType


def decode_temperature_type(data: bytes) -> TemperatureTypeValue:
    """Decode 0x2A1D: exactly one byte; 0 and 10..255 are reserved."""
    name = "Temperature Type"
    if len(data) != 1:
        raise length_error(TEMPERATURE_TYPE, name, (("Temperature Type", 1),), len(data))
    try:
        return TemperatureTypeValue(TemperatureType(data[0]))
    except ValueError:
        raise DecodeError(
            TEMPERATURE_TYPE, name, f"reserved Temperature Type {data[0]}", offset=0
        ) from None


def encode_temperature_type(m: TemperatureTypeValue) -> bytes:
    """Encode 0x2A1D."""
    if not isinstance(m.temperature_type, TemperatureType):
        raise EncodeError("Temperature Type", f"not a Temperature Type: {m.temperature_type!r}")
    return bytes((int(m.temperature_type),))
