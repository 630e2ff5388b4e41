"""Turning decoded BLE events into Readings (the edge pipeline's first, thin stage).

A clinical reading is never dropped or altered here: a malformed payload is counted by the
central and reported; a decoded one becomes one Reading per observation.
"""

from __future__ import annotations

from decimal import Decimal

from drivers.ble import MeasurementEvent
from gateway.reading import Reading
from protocols.gatt import BATTERY_LEVEL, Observation, to_observations
from protocols.uplink import CODED_FLAG, Priority


def _value_and_flags(o: Observation) -> tuple[Decimal | None, frozenset[str]]:
    """A coded observation (e.g. glucose meal context) travels as its MDC value code."""
    if o.value is None and o.special is None and o.coded_value is not None:
        return Decimal(o.coded_value), o.flags | {CODED_FLAG}
    return o.value, o.flags


#: Device status values (Battery, Device Information): reported by the central, not readings.
_STATUS_CHARACTERISTICS = frozenset({BATTERY_LEVEL})


def _clock_flags(event: MeasurementEvent) -> frozenset[str]:
    """The session's observed device clock offset (PHD IG coincident time stamp, kept with
    the readings so consumers can correct device times; ``health-profiles.md`` 4.5)."""
    clock = event.clock
    if clock is None or event.device_time is None or clock.offset_s is None:
        return frozenset()
    return frozenset({f"device-clock-offset-s:{round(clock.offset_s)}"})


def readings_from_event(event: MeasurementEvent) -> list[Reading]:
    """The Readings of one decoded measurement (none for a malformed or display-only value)."""
    if event.measurement is None or event.characteristic in _STATUS_CHARACTERISTICS:
        return []
    readings = []
    clock_flags = _clock_flags(event)
    for o in to_observations(event.measurement):
        value, flags = _value_and_flags(o)
        flags |= clock_flags
        readings.append(
            Reading(
                stream=f"{event.device}/{o.mdc_code}",
                device=event.device,
                mdc_code=o.mdc_code,
                unit=o.unit,
                value=value,
                special=o.special,
                hub_wall_ms=event.hub_wall_ms,
                hub_mono_ns=event.hub_mono_ns,
                device_time=o.timestamp,
                priority=Priority.CLINICAL,
                flags=flags,
            )
        )
    return readings
