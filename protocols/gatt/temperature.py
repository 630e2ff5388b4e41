"""Health Thermometer Service 0x1809: Temperature Measurement 0x2A1C and friends.

Layout (GATT Specification Supplement, Temperature Measurement; ``health-profiles.md`` 2.2):

====== ==== ============================================ ==============
Offset Size Field                                        Present if
====== ==== ============================================ ==============
0      1    Flags: bit0 unit (0 Cel, 1 degF), bit1 time  always
            stamp, bit2 temperature type, bits 3-7 RFU
1      4    Temperature (FLOAT, IEEE 11073-20601)        always
5      7    Time Stamp (Date Time)                       bit1
+0     1    Temperature Type (0x2A1D values)             bit2
====== ==== ============================================ ==============

Intermediate Temperature 0x2A1E has the same layout (display only).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.gatt import observation as obs
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.errors import DecodeError
from protocols.gatt.medfloat import MedFloat, encode_medfloat32, float_from_raw

TEMPERATURE_MEASUREMENT = 0x2A1C
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


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """Temperature Measurement 0x2A1C (or Intermediate Temperature 0x2A1E)."""

    temperature: MedFloat
    unit: TemperatureUnit = TemperatureUnit.CELSIUS
    time_stamp: DateTime | None = None
    temperature_type: TemperatureType | None = None
    intermediate: bool = False

    @property
    def characteristic(self) -> int:
        """The characteristic this measurement is a value of."""
        return INTERMEDIATE_TEMPERATURE if self.intermediate else TEMPERATURE_MEASUREMENT


def decode_temperature_measurement(
    data: bytes, *, characteristic: int = TEMPERATURE_MEASUREMENT
) -> TemperatureMeasurement:
    """Decode 0x2A1C / 0x2A1E strictly: RFU flags, truncation and trailing bytes are errors."""
    name = "Temperature Measurement"
    n = len(data)
    if n < 5:
        raise DecodeError(characteristic, name, "truncated: needs flags and FLOAT", offset=n)
    flags = data[0]
    if flags & _FLAGS_RFU:
        raise DecodeError(characteristic, name, f"reserved flag bits set (0x{flags:02X})", offset=0)
    temperature = float_from_raw(int.from_bytes(data[1:5], "little"))
    offset = 5
    time_stamp = None
    if flags & _FLAG_TIME_STAMP:
        if n < offset + DATE_TIME_SIZE:
            raise DecodeError(characteristic, name, "truncated Time Stamp", offset=n)
        time_stamp = decode_date_time(data, offset, what=f"{name} (0x{characteristic:04X})")
        offset += DATE_TIME_SIZE
    temperature_type = None
    if flags & _FLAG_TYPE:
        if n < offset + 1:
            raise DecodeError(characteristic, name, "truncated Temperature Type", offset=n)
        raw_type = data[offset]
        try:
            temperature_type = TemperatureType(raw_type)
        except ValueError:
            raise DecodeError(
                characteristic, name, f"reserved Temperature Type {raw_type}", offset=offset
            ) from None
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


# Temperature Type -> (MDC code, body site text) per the PHD IG table (health-profiles.md 4.2).
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
    return [
        obs.Observation.from_medfloat(
            mdc,
            loinc,
            m.temperature,
            m.unit.value,
            timestamp=None if m.time_stamp is None else m.time_stamp.to_datetime(),
            body_site=None if site is None else site.name.lower(),
        )
    ]
