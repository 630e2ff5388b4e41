"""What an emulated device keeps beside its GATT server: its clock, its fault plan and what
it saw (for tests and the bench). Used by :class:`drivers.ble.sim.peripheral.EmulatedDevice`,
which re-exports them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any


class DeviceClock:
    """A device's wall clock (naive local time, no zone, as GATT Date Time has none).

    It runs ``drift_ppm`` parts per million fast (negative: slow) from ``start`` and can be
    set, as a central does through Current Time (CTS 1.1 section 3.1).
    """

    def __init__(
        self,
        start: dt.datetime | None = None,
        *,
        offset_s: float = 0.0,
        drift_ppm: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # The device clock is deliberately naive local time: that is what devices keep.
        base = start if start is not None else dt.datetime.now()  # noqa: DTZ005
        self._monotonic = monotonic
        self._base = base + dt.timedelta(seconds=offset_s)
        self._mono0 = monotonic()
        self.drift_ppm = drift_ppm
        #: How many times a central set this clock.
        self.sets = 0
        self._last_stamp: dt.datetime | None = None

    def now(self) -> dt.datetime:
        """The time the device shows now."""
        elapsed_s = (self._monotonic() - self._mono0) * (1.0 + self.drift_ppm / 1e6)
        return self._base + dt.timedelta(seconds=elapsed_s)

    def stamp(self) -> dt.datetime:
        """The time stamp of a new measurement, to the second: now, but never the second of
        the previous measurement.

        A real device takes seconds to measure, so its stamps (whole seconds in GATT Date
        Time, GSS 3.70) never repeat; an emulated one run faster than real time (a rig's
        ``time_scale``) would stamp several in one second. The PHD IG identifies a
        time-stamped observation by device, type and that second (``HL7/phd``,
        PhdBaseObservation notes, "Conditional-create Identifier"): two measurements in one
        second would be one observation to a FHIR server. A stamp ahead of the clock by a
        few seconds is what a fast schedule costs."""
        stamp = self.now().replace(microsecond=0)
        last = self._last_stamp
        if last is not None and stamp <= last:
            stamp = last + dt.timedelta(seconds=1)
        self._last_stamp = stamp
        return stamp

    def set(self, value: dt.datetime) -> None:
        """Set the clock (what a Current Time write does); the next stamp follows the new
        time, still never repeating a second already stamped at or after it."""
        self._base = value
        self._mono0 = self._monotonic()
        self.sets += 1
        if self._last_stamp is not None and self._last_stamp > value:
            self._last_stamp = value.replace(microsecond=0)


@dataclass(frozen=True)
class DeviceDefaults:
    """What a kind of emulated device is unless its constructor is told otherwise.

    Each device class declares its own (``defaults``, usually its base's with a few fields
    replaced); a keyword given to the constructor wins over the field of the same name.

    Attributes:
        name: the Complete Local Name it advertises.
        bonding_required: its health characteristics need an encrypted link.
        current_time: it has the Current Time Service 0x1805.
        manufacturer, model, firmware: its Device Information strings.
        device_information: it has the Device Information Service 0x180A.
        drops_unencrypted_reads: a read before encryption ends the link.
    """

    name: str = "narhub-sim"
    bonding_required: bool = False
    current_time: bool = True
    manufacturer: str = "narhub-sim"
    model: str = "EMU-1"
    firmware: str = "1.0.0"
    device_information: bool = True
    drops_unencrypted_reads: bool = False

    def given(self, **values: Any) -> DeviceDefaults:
        """These defaults with the ``values`` that are not None (a constructor's keywords)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass
class Faults:
    """The fault plan of one emulated device; tests and the bench set fields at any time.

    Attributes:
        refuse_connections: refuse (drop at once) the next N connections.
        drop_after_records: drop the link after sending N more stored (RACP) records; once.
        drop_after_notifications: drop the link after N more measurement PDUs; once.
        stall_reads_s: delay ATT reads of a characteristic (16-bit UUID) by this long.
        malformed_next: corrupt the next N measurement payloads (cut to 2 bytes).
    """

    refuse_connections: int = 0
    drop_after_records: int | None = None
    drop_after_notifications: int | None = None
    stall_reads_s: dict[int, float] = field(default_factory=dict)
    malformed_next: int = 0


@dataclass
class DeviceStats:
    """What the device saw, for tests and the bench."""

    connections: int = 0
    refused: int = 0
    drops: int = 0
    delivered: int = 0
    malformed_sent: int = 0
    #: Reads refused (the link dropped) because the central had not bonded first.
    unbonded_reads: int = 0
    #: When (wall ms) a central confirmed the indication of a stored measurement, after which
    #: the device forgets it (the ATT confirmation comes from the central's host stack, Core
    #: 5.3 Vol 3 Part F 3.4.7.3, before its application could store the value).
    stored_confirmed_ms: list[int] = field(default_factory=list)
