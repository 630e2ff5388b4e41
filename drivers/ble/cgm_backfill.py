"""The CGM backfill policy: which stored records to ask for, and what to do with each record.

Pure (no I/O): a :class:`CgmBackfill` takes what the session read and returns decisions; the
session (:mod:`drivers.ble.cgm_session`) carries them out over the radio.

A CGM record is named by its session and its Time Offset (minutes since the CGM Session Start
Time, CGMS 1.0.2); the Record Access Control Point filters on the Time Offset (filter type
0x01, GLS's sequence-number slot). So the hub keeps one committed cursor per **sensor
session**, keyed by the device and the Session Start Time (:func:`cursor_key`):

* a new Session Start Time (a sensor change) is a new key, whose cursor starts empty: the new
  session's records are all asked for, none is skipped because an old session got further;
* the same Session Start Time after a hub restart loads the committed cursor from the store
  and asks for ``>= cursor + 1``: nothing committed is asked for again, nothing uncommitted is
  skipped (the cursor moves only after the pipeline committed, :mod:`drivers.ble.record_cursors`).

Live notifications interleave with the download. A live record at or below the committed
cursor is a duplicate (dropped). Any other live record is handed on; it may move the cursor
(carry an acknowledgement) only once this connection's download has completed, because only
then are all records before it on their way too: a cursor moved by a fresh live record while
older ones are still missing would skip them for good (the lesson of xDrip+'s backfill). A
live record handed on without an acknowledgement is asked for again by the next download and
then stored once: its de-duplication key (device, session start plus offset, code, value) is
the same.

The session's clock is the coincident time stamp of the PHD IG: the CGM Status gives the
sensor's current Time Offset, read at a known hub time; the sensor's "now" is the Session
Start Time plus that offset, so every record lands on the hub's timeline with the same
correction, and gaps are measured on the hub's clock.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from drivers.ble.events import ClockObservation
from protocols.gatt import CgmSessionStartTime, DateTime, RacpRequest
from protocols.gatt.cgm import TIME_ZONE_UNKNOWN, DstOffset

#: RACP time offsets are uint16 minutes (CGMS 1.0.2): a session lasts at most 45.5 days.
MAX_TIME_OFFSET_MIN = 0xFFFF


class LiveRecord(enum.Enum):
    """What to do with a record that arrived live (not in a download)."""

    DUPLICATE = "duplicate"
    EMIT = "emit"
    EMIT_AND_ACKNOWLEDGE = "emit-and-acknowledge"


def session_start(value: CgmSessionStartTime | None) -> dt.datetime | None:
    """The Session Start Time as a naive device-local time, ``None`` when unknown."""
    return None if value is None else value.session_start_time.to_datetime()


def cursor_key(address: str, start: dt.datetime) -> str:
    """The record cursor's key for one sensor session of one device."""
    return f"{address.upper()}#cgm-session:{start.isoformat(timespec='minutes')}"


def start_time_to_write(hub_now: dt.datetime) -> CgmSessionStartTime:
    """The value a collector writes to set the Session Start Time: its own current local
    time (the sensor subtracts its current Time Offset; CGMS 1.0.2, CGM Session Start Time)."""
    return CgmSessionStartTime(
        DateTime.from_datetime(hub_now), TIME_ZONE_UNKNOWN, DstOffset.UNKNOWN
    )


def clock(
    start: dt.datetime | None, time_offset_min: int, hub_time: dt.datetime
) -> ClockObservation:
    """The session's coincident time stamp: the sensor's now (start + current offset) beside
    the hub's local clock at the CGM Status read."""
    if start is None:
        return ClockObservation(None, hub_time, None)
    device_now = start + dt.timedelta(minutes=time_offset_min)
    return ClockObservation(device_now, hub_time, (device_now - hub_time).total_seconds())


@dataclass
class CgmSessionInfo:
    """What a technician sees of a CGM's sensor session (no glucose values).

    ``silence_s`` is how long the hub heard no record from the sensor before this
    connection, on the hub's monotonic clock (``None`` for the first connection of a run);
    ``backfilled`` the records the last download brought.
    """

    session_start: dt.datetime | None = None
    run_time_h: int | None = None
    time_offset_min: int | None = None
    e2e_crc: bool = False
    committed_offset_min: int | None = None
    backfilled: int = 0
    silence_s: float | None = None
    #: The hub's monotonic clock (ns) when the last record of this device arrived.
    last_record_mono_ns: int | None = None


@dataclass
class CgmBackfill:
    """The backfill state of one connection with one sensor session.

    ``committed`` is the session's committed cursor (the highest Time Offset known stored),
    ``None`` when nothing was ever committed for it.
    """

    committed: int | None
    download_complete: bool = False

    def request(self) -> RacpRequest:
        """The RACP request for every record not committed yet."""
        if self.committed is None or self.committed >= MAX_TIME_OFFSET_MIN:
            return RacpRequest.report_all()
        return RacpRequest.report_from_sequence(self.committed + 1)

    def stored_record_is_new(self, time_offset_min: int) -> bool:
        """Whether a downloaded record is above the cursor (a server may re-send)."""
        return self.committed is None or time_offset_min > self.committed

    def live(self, time_offset_min: int) -> LiveRecord:
        """What to do with a record notified live."""
        if self.committed is not None and time_offset_min <= self.committed:
            return LiveRecord.DUPLICATE
        if self.download_complete:
            return LiveRecord.EMIT_AND_ACKNOWLEDGE
        return LiveRecord.EMIT

    def completed(self, committed: int | None) -> None:
        """The download ended with a Response Code and its records were settled."""
        self.download_complete = True
        if committed is not None and (self.committed is None or committed > self.committed):
            self.committed = committed
