"""The GHS part of a device session (GHSS 1.0 on IEEE 11073-10206 ACOM): the device's
features, its Elapsed Time clock tied to the hub's, stored observations through the RACP's
Combined Report, live observations through the GHS Control Point, and schedule changes.

The order, after Device Information:

1. read Health Sensor Features (the observation types the device sends);
2. read Elapsed Time 0x2BF2 at a known hub time: the session's coincident time stamp
   (:func:`drivers.ble.ghs_records.clock`); set it from the hub's UTC clock when it is a time
   of day off by more than the limit and the hub's clock is trusted;
3. subscribe to Live and Stored Health Observations, the RACP, the GHS Control Point and
   Observation Schedule Changed;
4. Combined Report of the stored observations above the committed cursor; settle commits;
5. GHS Control Point "start sending live observations" (0x01); collect until idle.

Observations arrive in segments (a header byte each); a :class:`HealthObservationReceiver`
per characteristic reassembles them. A message that cannot be reassembled or decoded is a
malformed event (counted), never a reading. A stored record at or below the cursor is a
duplicate. Each observation is handed on as a
:class:`~protocols.gatt.ghs.ReceivedHealthObservation`, with the session's Elapsed Time read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from drivers._aio import reraise_if_cancelling
from drivers.ble._bleak import BleakGATTCharacteristic
from drivers.ble.events import ClockObservation
from drivers.ble.ghs_records import GhsInfo, clock, combined_report, cursor_key, hub_utc
from drivers.ble.ghs_records import elapsed_time_to_write as _to_write
from drivers.ble.retry import Failure, SessionError
from drivers.ble.session_clock import write_clock
from drivers.ble.session_gatt import Handler
from protocols.gatt import (
    ELAPSED_TIME,
    GHS_CONTROL_POINT,
    HEALTH_SENSOR_FEATURES,
    LIVE_HEALTH_OBSERVATIONS,
    OBSERVATION_SCHEDULE_CHANGED,
    RECORD_ACCESS_CONTROL_POINT,
    STORED_HEALTH_OBSERVATIONS,
    DecodeError,
    ElapsedTime,
    GhsControlPoint,
    HealthSensorFeatures,
    ObservationSchedule,
    ReceivedHealthObservation,
    StoredHealthObservation,
    decode,
    encode,
)
from protocols.gatt.ghs import GhsControlPointOpCode, HealthObservationReceiver
from protocols.gatt.ghs_racp import (
    GhsRacpOpCode,
    GhsRacpRecordCount,
    GhsRacpResponse,
    decode_ghs_racp,
    encode_ghs_racp,
)

if TYPE_CHECKING:
    from drivers.ble.session import DeviceSession

logger = logging.getLogger(__name__)


class GhsRunner:
    """The GHS steps of one :class:`~drivers.ble.session.DeviceSession`."""

    def __init__(self, session: DeviceSession) -> None:
        self._s = session
        self._live = HealthObservationReceiver(stored=False)
        self._stored = HealthObservationReceiver(stored=True)
        self._clock: ElapsedTime | None = None
        self._clock_utc: dt.datetime | None = None
        self._control: asyncio.Future[GhsControlPoint] | None = None
        previous = session.status.ghs
        self.info = previous if previous is not None else GhsInfo()
        session.status.ghs = self.info

    # --- before subscribing --------------------------------------------------------------

    async def prepare(self) -> ClockObservation | None:
        """Steps 1-2: features, and the Elapsed Time clock against the hub's."""
        s = self._s
        if s.can(HEALTH_SENSOR_FEATURES, "read"):
            features = decode(HEALTH_SENSOR_FEATURES, await s.read(HEALTH_SENSOR_FEATURES))
            if isinstance(features, HealthSensorFeatures):
                self.info.observation_types = features.observation_types
        tracker = s.central.tracker(cursor_key(s.spec.address))
        s.tracker = tracker
        await tracker.settle(s.settings.commit_timeout_s)
        self.info.committed_record = await tracker.cursor()
        if not s.can(ELAPSED_TIME, "read"):
            s.status.has_clock = False
            return None
        s.status.has_clock = True
        s.status.clock_not_set = None
        hub_local = s.settings.hub_clock()
        try:
            elapsed = decode(ELAPSED_TIME, await s.read(ELAPSED_TIME))
        except DecodeError:
            s.status.malformed += 1
            return ClockObservation(None, hub_local, None)
        if not isinstance(elapsed, ElapsedTime):
            return ClockObservation(None, hub_local, None)
        self.info.clock_is_tick_counter = elapsed.tick_counter
        self._clock, self._clock_utc = elapsed, hub_utc(hub_local)
        observed = clock(elapsed, hub_local)
        return await self._set_clock(observed, elapsed)

    async def _set_clock(
        self, observed: ClockObservation, elapsed: ElapsedTime
    ) -> ClockObservation:
        s = self._s
        limit_s = s.settings.clock_max_offset_s
        if observed.offset_s is None or abs(observed.offset_s) <= limit_s:
            return observed
        if not s.can(ELAPSED_TIME, "write"):
            s.status.clock_not_set = "the device's Elapsed Time is read-only"
            return observed
        if not s.settings.hub_clock_trusted():
            s.status.clock_not_set = "the hub's clock is not trusted yet"
            return observed
        await write_clock(s, ELAPSED_TIME, encode(_to_write(s.settings.hub_clock(), elapsed)))
        s.status.clock_sets += 1
        logger.info("BLE %s: GHS device clock set (off by more than %ss)", s.status.label, limit_s)
        return ClockObservation(
            observed.device_time, observed.hub_time, observed.offset_s, adjusted=True
        )

    # --- subscriptions -------------------------------------------------------------------

    def subscriptions(self) -> frozenset[int]:
        """What the session subscribes to."""
        return frozenset(
            {
                LIVE_HEALTH_OBSERVATIONS,
                STORED_HEALTH_OBSERVATIONS,
                RECORD_ACCESS_CONTROL_POINT,
                GHS_CONTROL_POINT,
                OBSERVATION_SCHEDULE_CHANGED,
            }
        )

    def handler(self, cid: int) -> Handler | None:
        """The handler of ``cid``'s notifications and indications."""
        return {
            LIVE_HEALTH_OBSERVATIONS: self._on_live,
            STORED_HEALTH_OBSERVATIONS: self._on_stored,
            RECORD_ACCESS_CONTROL_POINT: self._on_racp,
            GHS_CONTROL_POINT: self._on_control_point,
            OBSERVATION_SCHEDULE_CHANGED: self._on_schedule,
        }.get(cid)

    def _received(self, value: object, record_number: int | None) -> ReceivedHealthObservation:
        observation = value.observation if isinstance(value, StoredHealthObservation) else value
        return ReceivedHealthObservation(
            observation,  # type: ignore[arg-type]
            record_number,
            self._clock,
            self._clock_utc,
        )

    def _completed(
        self, receiver: HealthObservationReceiver, cid: int, raw: bytes
    ) -> Iterator[object]:
        """The observations a segment completes, in order; a malformed one is emitted as a
        malformed event instead."""
        s = self._s
        s.touch()
        for item in receiver.receive_segment(raw):
            if isinstance(item, DecodeError):
                s.emit(s.new_event(cid, raw, None, item))
                continue
            yield item

    def _on_live(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        s = self._s
        raw = bytes(data)
        for item in self._completed(self._live, LIVE_HEALTH_OBSERVATIONS, raw):
            self.info.live_received += 1
            s.emit(s.new_event(LIVE_HEALTH_OBSERVATIONS, raw, self._received(item, None)))

    def _on_stored(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        s = self._s
        raw = bytes(data)
        for item in self._completed(self._stored, STORED_HEALTH_OBSERVATIONS, raw):
            if not isinstance(item, StoredHealthObservation):
                continue
            number = item.record_number
            if s.tracker.already_committed(number):
                s.tracker.duplicates += 1
                s.status.duplicates += 1
                continue
            self.info.stored_received += 1
            s.status.records_total += 1
            s.emit(
                s.new_event(
                    STORED_HEALTH_OBSERVATIONS,
                    raw,
                    self._received(item, number),
                    sequence_number=number,
                    stored=True,
                    ack=s.tracker.new_ack(number),
                )
            )

    def _on_racp(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        s = self._s
        s.touch()
        try:
            value = decode_ghs_racp(bytes(data))
        except DecodeError:
            # The Philips simulator follows "no records found" with a 06 00 05 00 whose
            # response code 0 is reserved: counted, and the procedure's answer stands.
            s.status.malformed += 1
            return
        if isinstance(value, GhsRacpRecordCount | GhsRacpResponse):
            s.racp_answered(value)

    def _on_control_point(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        value = self._s.arrived(GHS_CONTROL_POINT, data)
        control = self._control
        if isinstance(value, GhsControlPoint) and control is not None and not control.done():
            control.set_result(value)

    def _on_schedule(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        value = self._s.arrived(OBSERVATION_SCHEDULE_CHANGED, data)
        if isinstance(value, ObservationSchedule):
            self.info.schedules[value.observation_type] = value
            logger.info("BLE %s: GHS observation schedule changed", self._s.status.label)

    # --- after subscribing ---------------------------------------------------------------

    async def transfer(self) -> None:
        """Steps 4-5: stored observations above the cursor, then live observations."""
        s = self._s
        if s.has(RECORD_ACCESS_CONTROL_POINT) and s.has(STORED_HEALTH_OBSERVATIONS):
            request = combined_report(s.tracker.committed)
            s.downloading = True
            try:
                answer = await s.racp_exchange(encode_ghs_racp(request))
            finally:
                s.downloading = False
            done = isinstance(answer, GhsRacpRecordCount) and (
                answer.op_code is GhsRacpOpCode.COMBINED_REPORT_RESPONSE
            )
            if not done and not (isinstance(answer, GhsRacpResponse) and answer.completed):
                raise SessionError(Failure.PROTOCOL, f"GHS combined report refused: {answer}")
            await s.tracker.settle(s.settings.commit_timeout_s)
            self.info.committed_record = s.tracker.committed
        if s.can(GHS_CONTROL_POINT, "write"):
            await self._start_live()

    async def _start_live(self) -> None:
        s = self._s
        self._control = asyncio.get_running_loop().create_future()
        await s.write(GHS_CONTROL_POINT, encode(GhsControlPoint(GhsControlPointOpCode(1))))
        answer: GhsControlPoint | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(s.settings.operation_timeout_s):
                answer = await self._control
        reraise_if_cancelling()
        self.info.live_started = answer is not None and answer.op_code == 0x80
        if answer is None:
            logger.info("BLE %s: GHS live observations not confirmed", s.status.label)
