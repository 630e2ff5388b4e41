"""Which characteristics a session uses, and what discovery found (cached per device).

The measurement characteristics the session subscribes to, those it reads (clock, battery,
Device Information, the RACP), the CGM and GHS services' own, and :func:`map_characteristics`,
which maps a connected client's services to the characteristics by their 16-bit id (GSS) and
names the services worth discovering next time (:class:`DiscoveryCacheEntry`). Part of
:class:`~drivers.ble.session.DeviceSession`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from drivers.ble._bleak import BleakGATTCharacteristic, BleakGATTService
from protocols.gatt import (
    BATTERY_LEVEL,
    BLOOD_PRESSURE_MEASUREMENT,
    BLOOD_PRESSURE_RECORD,
    BODY_COMPOSITION_MEASUREMENT,
    CGM_FEATURE,
    CGM_MEASUREMENT,
    CGM_SESSION_RUN_TIME,
    CGM_SESSION_START_TIME,
    CGM_SPECIFIC_OPS_CONTROL_POINT,
    CGM_STATUS,
    CURRENT_TIME,
    DATE_TIME,
    ELAPSED_TIME,
    ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
    ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
    GHS_CONTROL_POINT,
    GLUCOSE_MEASUREMENT,
    GLUCOSE_MEASUREMENT_CONTEXT,
    HEALTH_SENSOR_FEATURES,
    HEART_RATE_MEASUREMENT,
    INTERMEDIATE_CUFF_PRESSURE,
    INTERMEDIATE_TEMPERATURE,
    LIVE_HEALTH_OBSERVATIONS,
    OBSERVATION_SCHEDULE_CHANGED,
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    RECORD_ACCESS_CONTROL_POINT,
    STORED_HEALTH_OBSERVATIONS,
    TEMPERATURE_MEASUREMENT,
    WEIGHT_MEASUREMENT,
    DecodeError,
)
from protocols.gatt.device import DEVICE_INFORMATION_STRINGS
from protocols.gatt.numbers import SYSTEM_ID
from protocols.gatt.uuids import characteristic_id

#: bleak's callback for the values notified or indicated on a characteristic.
Handler = Callable[[BleakGATTCharacteristic, bytearray], None]

#: Characteristics the central subscribes to when the device has them (GSS ids).
MEASUREMENT_CHARACTERISTICS = frozenset(
    {
        TEMPERATURE_MEASUREMENT,
        INTERMEDIATE_TEMPERATURE,
        BLOOD_PRESSURE_MEASUREMENT,
        INTERMEDIATE_CUFF_PRESSURE,
        WEIGHT_MEASUREMENT,
        PLX_SPOT_CHECK_MEASUREMENT,
        PLX_CONTINUOUS_MEASUREMENT,
        GLUCOSE_MEASUREMENT,
        GLUCOSE_MEASUREMENT_CONTEXT,
        HEART_RATE_MEASUREMENT,
        ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
        ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
        BODY_COMPOSITION_MEASUREMENT,
        BLOOD_PRESSURE_RECORD,
    }
)
#: Values that arrive during a RACP download and belong to stored records.
RECORD_CHARACTERISTICS = frozenset(
    {GLUCOSE_MEASUREMENT, GLUCOSE_MEASUREMENT_CONTEXT, PLX_SPOT_CHECK_MEASUREMENT}
)
#: Record characteristics whose records carry a uint16 sequence number: the download asks
#: for those above the committed cursor (GLS 1.0 4.9; BLS 1.1.1's Blood Pressure Record).
SEQUENCED_RECORDS = frozenset({GLUCOSE_MEASUREMENT, BLOOD_PRESSURE_RECORD})
#: What the session reads or writes besides measurements.
_INTERESTING = frozenset(
    {
        CURRENT_TIME,
        DATE_TIME,
        BATTERY_LEVEL,
        RECORD_ACCESS_CONTROL_POINT,
        *DEVICE_INFORMATION_STRINGS,
        SYSTEM_ID,
    }
)
#: The CGM and GHS services' characteristics (their sessions subscribe to what they need).
_PROFILE_CHARACTERISTICS = frozenset(
    {
        CGM_MEASUREMENT,
        CGM_FEATURE,
        CGM_STATUS,
        CGM_SESSION_START_TIME,
        CGM_SESSION_RUN_TIME,
        CGM_SPECIFIC_OPS_CONTROL_POINT,
        LIVE_HEALTH_OBSERVATIONS,
        STORED_HEALTH_OBSERVATIONS,
        HEALTH_SENSOR_FEATURES,
        GHS_CONTROL_POINT,
        OBSERVATION_SCHEDULE_CHANGED,
        ELAPSED_TIME,
    }
)


@dataclass
class DiscoveryCacheEntry:
    """What discovery found on a device: the service UUIDs worth discovering next time."""

    services: frozenset[str]
    characteristics: frozenset[int]


def _short_id(char: BleakGATTCharacteristic) -> int | None:
    try:
        return characteristic_id(char.uuid)
    except DecodeError:
        return None


def map_characteristics(
    services: Iterable[BleakGATTService],
) -> tuple[dict[int, BleakGATTCharacteristic], DiscoveryCacheEntry]:
    """The characteristics by 16-bit id (the first of each), and the cache entry naming the
    services that hold any the session uses."""
    found: dict[int, BleakGATTCharacteristic] = {}
    relevant: set[str] = set()
    for service in services:
        for char in service.characteristics:
            cid = _short_id(char)
            if cid is None:
                continue
            found.setdefault(cid, char)
            if (
                cid in MEASUREMENT_CHARACTERISTICS
                or cid in _INTERESTING
                or cid in _PROFILE_CHARACTERISTICS
            ):
                relevant.add(service.uuid)
    return found, DiscoveryCacheEntry(frozenset(relevant), frozenset(found))
