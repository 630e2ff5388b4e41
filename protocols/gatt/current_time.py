"""Current Time Service 0x1805: Current Time 0x2A2B (read, notify, optional write).

GSS section 3.62 *Current Time*, 10 bytes (CTS 1.1 section 3.1; docs/protocols/phd.md 2.8):

====== ==== ===================================================================
Offset Size Field
====== ==== ===================================================================
0      7    Date Time (GSS 3.70)
7      1    Day of Week (GSS 3.73: 1 Monday .. 7 Sunday, 0 unknown)
8      1    Fractions256 (1/256 s)
9      1    Adjust Reason: bit0 manual time update, bit1 external reference time
            update, bit2 change of time zone, bit3 change of DST; bits 4-7 RFU
====== ==== ===================================================================

The same 10 bytes are written to set a device clock; :meth:`CurrentTime.from_datetime` builds
the value to write from the hub's wall clock. An ATT application error 0x80 "Data field
ignored" on that write is a success (CTS 1.1 section 3.1.2.1), which the session layer handles.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from protocols.gatt.datetime_ import DAY_DATE_TIME_FIELDS, DayDateTime
from protocols.gatt.kinds import Bits, Record, UInt
from protocols.gatt.numbers import CURRENT_TIME
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Field, Table

CURRENT_TIME_SIZE = 10


class AdjustReason(enum.IntFlag):
    """Adjust Reason bits of Current Time (GSS 3.62); bits 4-7 are reserved."""

    MANUAL_TIME_UPDATE = 0x01
    EXTERNAL_REFERENCE_TIME_UPDATE = 0x02
    CHANGE_OF_TIME_ZONE = 0x04
    CHANGE_OF_DST = 0x08


_NO_REASON = AdjustReason(0)


@characteristic(
    CURRENT_TIME,
    "Current Time",
    gss="3.62 Current Time",
    service="CTS 1.1 section 3.1",
    table=Table(
        fields=(
            Field("Day Date Time", Record(DayDateTime, DAY_DATE_TIME_FIELDS), "day_date_time"),
            Field("Fractions256", UInt(1), "fractions256"),
            Field(
                "Adjust Reason",
                Bits(AdjustReason, size=1, rfu=0xF0, label="Adjust Reason"),
                "adjust_reason",
            ),
        )
    ),
)
@dataclass(frozen=True, slots=True)
class CurrentTime:
    """Current Time 0x2A2B: Exact Time 256 (Day Date Time + 1/256 s) and an adjust reason."""

    day_date_time: DayDateTime
    fractions256: int = 0
    adjust_reason: AdjustReason = _NO_REASON

    @classmethod
    def from_datetime(
        cls, value: dt.datetime, adjust_reason: AdjustReason = AdjustReason.MANUAL_TIME_UPDATE
    ) -> CurrentTime:
        """The value to write to set a device clock to the wall-clock time ``value``.

        Sub-second precision is truncated to 1/256 s.
        """
        return cls(
            DayDateTime.from_datetime(value),
            fractions256=value.microsecond * 256 // 1_000_000,
            adjust_reason=adjust_reason,
        )

    def to_datetime(self) -> dt.datetime | None:
        """The naive wall-clock time, or ``None`` when the date is not known."""
        base = self.day_date_time.date_time.to_datetime()
        if base is None:
            return None
        return base + dt.timedelta(microseconds=self.fractions256 * 1_000_000 // 256)
