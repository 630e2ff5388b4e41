"""What the BLE central hands on: one :class:`MeasurementEvent` per value received.

Each event carries the device identity, the hub's reception time (monotonic and wall clock),
the device's own time stamp, the decoded value (or the decode error) and the raw bytes for
audit, plus the session's :class:`ClockObservation` (the PHD IG coincident time stamp,
docs/protocols/phd.md 4). Events from a RACP download carry an ``ack`` future: the consumer
resolves it (:meth:`MeasurementEvent.acknowledge`) once the readings are committed, and only
then does the central advance the device's record cursor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocols.gatt import DecodeError, GlucoseMeasurement

if TYPE_CHECKING:
    from protocols.gatt import Measurement

__all__ = ["ClockObservation", "MeasurementEvent", "device_label", "device_time_of"]


def device_label(kind: str, address: str) -> str:
    """A stable, redacted label for logs at INFO and above (never the MAC address)."""
    digest = hashlib.sha256(address.upper().encode()).hexdigest()[:6]
    return f"{kind}-{digest}"


def device_time_of(measurement: Measurement | None) -> dt.datetime | None:
    """The device wall-clock time a measurement carries, if any (naive, device zone; aware
    when the device states its zone, a GHS Elapsed Time in UTC)."""
    if measurement is None:
        return None
    if isinstance(measurement, GlucoseMeasurement):
        return measurement.user_facing_time
    # A CGM record in its session, a received GHS observation: the value knows its time.
    own = getattr(measurement, "device_time", None)
    if isinstance(own, dt.datetime):
        return own
    stamp = getattr(measurement, "time_stamp", None)
    to_datetime = getattr(stamp, "to_datetime", None)
    if to_datetime is None:
        return None
    value = to_datetime()
    return value if isinstance(value, dt.datetime) else None


@dataclass(frozen=True, slots=True)
class ClockObservation:
    """The device clock read at the start of a session, next to the hub's clock.

    Attributes:
        device_time: what the device's Current Time (0x2A2B) showed, ``None`` when the
            device does not know the date (CTS 1.1 3.1; GSS 3.70 year/month/day 0).
        hub_time: the hub's local wall clock at the read (naive, like device clocks).
        offset_s: ``device_time - hub_time`` in seconds; ``None`` when unknown.
        adjusted: True when the hub then set the device clock (offset beyond the limit).
    """

    device_time: dt.datetime | None
    hub_time: dt.datetime
    offset_s: float | None
    adjusted: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class MeasurementEvent:
    """One value received from a device, decoded or not, with the hub's reception times.

    Attributes:
        device: the device identity (its Bluetooth address; never log it at INFO+).
        characteristic: the 16-bit characteristic UUID the value came from.
        raw: the bytes as received, for audit.
        measurement: the decoded value, ``None`` when malformed.
        error: the :class:`DecodeError` for a malformed value (counted and reported).
        hub_wall_ms / hub_mono_ns: hub wall clock (epoch ms) and monotonic clock (ns).
        kind: the configured device kind (``glucose``, ``blood_pressure`` ...).
        label: a redacted device label, safe for logs.
        device_time: the device's time stamp in the value, if any.
        clock: this session's clock observation (coincident time stamp), if read.
        sequence_number: the record's sequence number (glucose RACP records).
        stored: True for a record downloaded through RACP.
        ack: resolved by the consumer once committed (stored records only).
    """

    device: str
    characteristic: int
    raw: bytes
    measurement: Measurement | None
    error: DecodeError | None
    hub_wall_ms: int
    hub_mono_ns: int
    kind: str = ""
    label: str = ""
    device_time: dt.datetime | None = None
    clock: ClockObservation | None = None
    sequence_number: int | None = None
    stored: bool = False
    ack: asyncio.Future[None] | None = field(default=None, repr=False)

    def acknowledge(self) -> None:
        """Tell the central this event's readings are committed (durably stored)."""
        if self.ack is not None and not self.ack.done():
            self.ack.set_result(None)
