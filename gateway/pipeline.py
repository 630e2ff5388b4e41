"""Turning decoded BLE events into Readings (the edge pipeline's first, thin stage).

A clinical reading is never dropped or altered here: a malformed payload is counted by the
central and reported; a decoded one becomes one Reading per observation.
"""

from __future__ import annotations

from drivers.ble import MeasurementEvent
from gateway.reading import Reading
from protocols.gatt import to_observations
from protocols.uplink import Priority


def readings_from_event(event: MeasurementEvent) -> list[Reading]:
    """The Readings of one decoded measurement (none for a malformed or display-only value)."""
    if event.measurement is None:
        return []
    return [
        Reading(
            stream=f"{event.device}/{o.mdc_code}",
            device=event.device,
            mdc_code=o.mdc_code,
            unit=o.unit,
            value=o.value,
            special=o.special,
            hub_wall_ms=event.hub_wall_ms,
            hub_mono_ns=event.hub_mono_ns,
            device_time=o.timestamp,
            priority=Priority.CLINICAL,
            flags=o.flags,
        )
        for o in to_observations(event.measurement)
    ]
