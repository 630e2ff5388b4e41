"""The device clock in a session: read it, and set it when it is off (CTS 1.1, quirk rules).

Current Time 0x2A2B is read first, the offset recorded (the PHD IG's coincident time stamp),
and only then written when beyond ``clock_max_offset_s``; an ATT application error 0x80
"data field ignored" on that write counts as success (CTS 1.1 3.1.2.1). Where the clock is
and when it may be written is the device's quirk profile's clock rule
(:mod:`drivers.ble.hints`): Date Time 0x2A08 in the health service after a settle pause
(A&D), the write right after the first Current Time notification (Omron), or not at all (a
clock in a vendor service). Part of :class:`~drivers.ble.session.DeviceSession`, through
the interface the CGM and GHS runners use too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING

from drivers._aio import reraise_if_cancelling
from drivers.ble._bleak import BleakGATTCharacteristic, BleakGATTProtocolError
from drivers.ble.events import ClockObservation
from drivers.ble.hints import (
    clock_after_notification,
    clock_characteristic,
    clock_left_alone,
    date_time_value,
    settle,
)
from protocols.gatt import (
    CURRENT_TIME,
    DATE_TIME,
    AdjustReason,
    CurrentTime,
    DateTime,
    DecodeError,
    decode,
    encode,
)

if TYPE_CHECKING:
    from drivers.ble.session import DeviceSession

logger = logging.getLogger(__name__)

#: ATT application error "data field ignored" on a CTS write: a success (CTS 1.1 3.1.2.1).
_DATA_FIELD_IGNORED = 0x80


async def write_clock(session: DeviceSession, cid: int, value: bytes) -> None:
    """Write a clock value; "data field ignored" (0x80) is taken as a success, as devices
    answer it when they keep their own time (CTS 1.1 3.1.2.1)."""
    try:
        await session.write(cid, value)
    except BleakGATTProtocolError as exc:
        if int(exc.code) != _DATA_FIELD_IGNORED:
            raise


class DeviceClockSync:
    """Reads the device clock (:meth:`read`) and sets it when off (:meth:`set`)."""

    def __init__(self, session: DeviceSession) -> None:
        self._session = session
        #: The characteristic holding the clock this session (``None``: the device has none).
        self.cid: int | None = None
        #: Set on the device's first Current Time notification (profiles that wait for it).
        self.time_notified = asyncio.Event()

    def on_time_notification(self, _char: BleakGATTCharacteristic, _data: bytearray) -> None:
        """bleak's callback for Current Time notifications (Omron's rule)."""
        self.time_notified.set()

    async def read(self) -> ClockObservation | None:
        """Read the clock where the profile says; the observation (``None``: no clock)."""
        session = self._session
        status = session.status
        settings = session.settings
        cid = self.cid = clock_characteristic(status.profile, session.available)
        status.has_clock = cid is not None
        status.clock_not_set = None  # this session's answer, not an earlier one's
        if cid is None:
            return None
        hub_time = settings.hub_clock()
        device_time: dt.datetime | None = None
        if session.can(cid, "read"):
            raw = await session.read(cid)
            hub_time = settings.hub_clock()
            try:
                value = decode(cid, raw)
                if isinstance(value, (CurrentTime, DateTime)):
                    device_time = value.to_datetime()
            except DecodeError:
                status.malformed += 1
        offset_s = None if device_time is None else (device_time - hub_time).total_seconds()
        observation = ClockObservation(device_time, hub_time, offset_s)
        status.clock = observation
        return observation

    async def set(self, observed: ClockObservation | None) -> ClockObservation | None:
        """Write the hub's time when ``observed`` is off by more than the limit and the
        profile, the device and the hub's own clock allow it; the observation then marked
        adjusted (else ``observed`` as it was)."""
        session = self._session
        status = session.status
        settings = session.settings
        cid = self.cid
        if observed is None or cid is None:
            return observed
        limit_s = settings.clock_max_offset_s
        if observed.offset_s is not None and abs(observed.offset_s) <= limit_s:
            return observed
        if (why := clock_left_alone(status.profile)) is not None:
            status.clock_not_set = why
            return observed
        if not session.can(cid, "write"):
            status.clock_not_set = "the device's Current Time is read-only"
            return observed
        if not settings.hub_clock_trusted():
            status.clock_not_set = "the hub's clock is not trusted yet"
            logger.info(
                "BLE %s: device clock left as it is (the hub's clock is not trusted yet)",
                status.label,
            )
            return observed
        if clock_after_notification(status.profile) and cid == CURRENT_TIME:
            # Omron: the write right after its first Current Time notification.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.operation_timeout_s):
                    await self.time_notified.wait()
            reraise_if_cancelling()
        if cid == DATE_TIME:
            await settle(status.profile)  # A&D: a pause before the Date Time write
            value = date_time_value(settings.hub_clock())
        else:
            value = encode(
                CurrentTime.from_datetime(settings.hub_clock(), AdjustReason.MANUAL_TIME_UPDATE)
            )
        await write_clock(session, cid, value)
        adjusted = ClockObservation(
            observed.device_time, observed.hub_time, observed.offset_s, adjusted=True
        )
        status.clock = adjusted
        status.clock_sets += 1
        logger.info("BLE %s: device clock set (it was off by more than %ss)", status.label, limit_s)
        return adjusted
