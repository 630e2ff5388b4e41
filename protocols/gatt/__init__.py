"""Bluetooth SIG health-profile codecs (GATT characteristic values), pure and sans-I/O.

``decode(characteristic, data)`` turns a characteristic value into a frozen measurement
dataclass; ``encode(measurement)`` is its inverse; ``to_observations(measurement)`` maps it to
MDC/LOINC/UCUM observations. Layouts follow the GATT Specification Supplement; the mapping
follows the HL7 FHIR PHD IG (see ``docs`` and ``health-profiles.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocols.gatt.datetime_ import DateTime
from protocols.gatt.errors import DecodeError
from protocols.gatt.medfloat import (
    MedFloat,
    Special,
    encode_medfloat16,
    encode_medfloat32,
    medfloat16,
    medfloat32,
)
from protocols.gatt.observation import Observation
from protocols.gatt.temperature import (
    INTERMEDIATE_TEMPERATURE,
    TEMPERATURE_MEASUREMENT,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    decode_temperature_measurement,
    encode_temperature_measurement,
    temperature_observations,
)
from protocols.gatt.uuids import characteristic_id, uuid128

Measurement = TemperatureMeasurement

_DECODERS: dict[int, Callable[[bytes], Any]] = {
    TEMPERATURE_MEASUREMENT: decode_temperature_measurement,
    INTERMEDIATE_TEMPERATURE: lambda data: decode_temperature_measurement(
        data, characteristic=INTERMEDIATE_TEMPERATURE
    ),
}


def decode(characteristic: int | str, data: bytes) -> Measurement:
    """Decode ``data`` as the value of ``characteristic`` (0x2A1C, "2A1C" or a 128-bit UUID)."""
    cid = characteristic_id(characteristic)
    decoder = _DECODERS.get(cid)
    if decoder is None:
        raise DecodeError(cid, "characteristic", "no decoder for this characteristic", offset=0)
    result: Measurement = decoder(bytes(data))
    return result


def encode(measurement: Measurement) -> bytes:
    """Encode a measurement to the value bytes of its characteristic."""
    return encode_temperature_measurement(measurement)


def to_observations(measurement: Measurement) -> list[Observation]:
    """Normalise a measurement to MDC/LOINC/UCUM observations."""
    return temperature_observations(measurement)


__all__ = [
    "INTERMEDIATE_TEMPERATURE",
    "TEMPERATURE_MEASUREMENT",
    "DateTime",
    "DecodeError",
    "Measurement",
    "MedFloat",
    "Observation",
    "Special",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureUnit",
    "characteristic_id",
    "decode",
    "encode",
    "encode_medfloat16",
    "encode_medfloat32",
    "medfloat16",
    "medfloat32",
    "to_observations",
    "uuid128",
]
