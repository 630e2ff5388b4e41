"""The GHS transfer policy and clock: pure helpers of :mod:`drivers.ble.ghs_session`.

* **Stored observations** are numbered (uint32 Record Number, GHSS 1.0; the RACP filters on
  it, :mod:`protocols.gatt.ghs_racp`). The hub keeps one committed cursor per device
  (:func:`cursor_key`) and asks for ``>= cursor + 1`` with a Combined Report; the cursor moves
  only after the pipeline committed (:mod:`drivers.ble.record_cursors`).
* **The clock** (PHD IG, coincident time stamp): the device's Elapsed Time 0x2BF2 is read at a
  known hub time. A time-of-day clock gives an offset (device minus hub) that corrects every
  stamp of the session, as Current Time does for the classic profiles; a tick counter has no
  calendar meaning, so the read pairs the counter with the hub's UTC clock, and each
  observation's ticks are placed on the hub's timeline from it
  (:class:`~protocols.gatt.ghs.ReceivedHealthObservation`). A time-of-day clock that is off by
  more than the limit is set from the hub's UTC clock when the hub's clock is trusted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from drivers.ble.events import ClockObservation
from protocols.gatt import ElapsedTime, ObservationSchedule
from protocols.gatt.elapsed_time import EPOCH_2000, TimeResolution, TimeSource
from protocols.gatt.ghs_racp import GhsRacpRequest

#: The record numbers are uint32 (GHSS 1.0 Stored Health Observations).
MAX_RECORD_NUMBER = 0xFFFFFFFF
_EPOCH_2000_UTC = EPOCH_2000.replace(tzinfo=dt.UTC)


@dataclass
class GhsInfo:
    """What a technician sees of a GHS device (no observation values).

    ``schedules`` are the last Observation Schedule Changed values by observation type.
    """

    observation_types: tuple[int, ...] = ()
    clock_is_tick_counter: bool | None = None
    committed_record: int | None = None
    stored_received: int = 0
    live_received: int = 0
    live_started: bool = False
    schedules: dict[int, ObservationSchedule] = field(default_factory=dict)


def cursor_key(address: str) -> str:
    """The record cursor's key of a GHS device's stored observations."""
    return f"{address.upper()}#ghs-records"


def combined_report(committed: int | None) -> GhsRacpRequest:
    """The Combined Report for every stored observation not committed yet."""
    if committed is None or committed >= MAX_RECORD_NUMBER:
        return GhsRacpRequest.combined_report_all()
    return GhsRacpRequest.combined_report_from(committed + 1)


def hub_utc(hub_local: dt.datetime) -> dt.datetime:
    """The hub's naive local wall clock as an aware UTC time (the host's zone rules)."""
    return hub_local.astimezone(dt.UTC)


def clock(elapsed: ElapsedTime, hub_local: dt.datetime) -> ClockObservation:
    """The session's clock observation from an Elapsed Time read at ``hub_local``.

    The offset compares like with like: a UTC device time with the hub's UTC time, a local
    one with the hub's local time. A tick counter (or a time beyond the calendar) gives no
    device time and no offset.
    """
    try:
        device = elapsed.to_datetime()
    except OverflowError:
        device = None
    if device is None:
        return ClockObservation(None, hub_local, None)
    hub = hub_utc(hub_local) if device.tzinfo is not None else hub_local
    return ClockObservation(device, hub_local, (device - hub).total_seconds())


def elapsed_time_to_write(hub_local: dt.datetime, like: ElapsedTime) -> ElapsedTime:
    """The hub's clock as an Elapsed Time in the device's resolution, UTC, from NTP."""
    since = hub_utc(hub_local) - _EPOCH_2000_UTC
    units = since // dt.timedelta(microseconds=TimeResolution(like.resolution).microseconds)
    return ElapsedTime(
        units,
        like.resolution,
        tick_counter=False,
        utc=True,
        tz_dst_offset_used=False,
        current_timeline=True,
        time_sync_source=TimeSource.NETWORK_TIME_PROTOCOL,
        tz_dst_offset_15min=0,
    )
