"""The CGM part of a device session (CGMS 1.0.2): session start and run time, the session's
clock, the backfill of stored records through RACP, and live records.

The order, after Device Information:

1. read CGM Feature (whether every value carries an E2E-CRC, CGMS 1.0.2 section 3.2);
2. read CGM Status (the sensor's current Time Offset) at a known hub time: the session's
   coincident time stamp (:func:`drivers.ble.cgm_backfill.clock`);
3. read CGM Session Start Time; when the sensor does not know it (a new sensor), write the
   hub's local time to it (the sensor subtracts its current offset) and read it again;
4. read CGM Session Run Time (the expected session length, reported to technicians);
5. subscribe to CGM Measurement, the RACP and the CGM Specific Ops Control Point;
6. download every stored record above the committed cursor of this sensor session
   (:class:`drivers.ble.cgm_backfill.CgmBackfill`), settle the pipeline's commits;
7. collect live records until idle.

Values are decoded with the E2E-CRC setting the Feature gave: a wrong CRC is a malformed
value (an event with the error, counted), never a reading.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from drivers.ble._bleak import BleakGATTCharacteristic
from drivers.ble.cgm_backfill import (
    CgmBackfill,
    CgmSessionInfo,
    LiveRecord,
    clock,
    cursor_key,
    session_start,
    start_time_to_write,
)
from drivers.ble.events import ClockObservation
from drivers.ble.retry import Failure, SessionError
from drivers.ble.session_gatt import Handler
from protocols.gatt import (
    CGM_FEATURE,
    CGM_MEASUREMENT,
    CGM_SESSION_RUN_TIME,
    CGM_SESSION_START_TIME,
    CGM_SPECIFIC_OPS_CONTROL_POINT,
    CGM_STATUS,
    RECORD_ACCESS_CONTROL_POINT,
    CgmMeasurement,
    CgmSessionMeasurement,
    CgmSessionStartTime,
    DecodeError,
    RacpResponse,
    encode,
)
from protocols.gatt.cgm import (
    decode_cgm_feature,
    decode_cgm_measurement,
    decode_cgm_session_run_time,
    decode_cgm_session_start_time,
    decode_cgm_status,
    encode_cgm_session_start_time,
)

if TYPE_CHECKING:
    from drivers.ble.session import DeviceSession

logger = logging.getLogger(__name__)


class CgmRunner:
    """The CGM steps of one :class:`~drivers.ble.session.DeviceSession`."""

    def __init__(self, session: DeviceSession) -> None:
        self._s = session
        self._e2e: bool | None = None
        self._start: CgmSessionStartTime | None = None
        self._backfill = CgmBackfill(None)
        self._key: str | None = None
        self.info = CgmSessionInfo()

    # --- before subscribing --------------------------------------------------------------

    async def prepare(self) -> ClockObservation:
        """Steps 1-4: Feature, Status at a known hub time, Session Start and Run Time."""
        s = self._s
        if s.can(CGM_FEATURE, "read"):
            self._e2e = decode_cgm_feature(await s.read(CGM_FEATURE)).e2e_crc_supported
        hub_time = s.settings.hub_clock()
        status = decode_cgm_status(await s.read(CGM_STATUS), e2e_crc=self._e2e)
        self._start = await self._session_start()
        start = session_start(self._start)
        run_time = None
        if s.can(CGM_SESSION_RUN_TIME, "read"):
            raw = await s.read(CGM_SESSION_RUN_TIME)
            run_time = decode_cgm_session_run_time(raw, e2e_crc=self._e2e).run_time_h
        await self._load_cursor(start)
        previous = s.status.cgm
        silence_s = None
        if previous is not None and previous.last_record_mono_ns is not None:
            silence_s = (time.monotonic_ns() - previous.last_record_mono_ns) / 1e9
        self.info = CgmSessionInfo(
            session_start=start,
            run_time_h=run_time,
            time_offset_min=status.time_offset_min,
            e2e_crc=bool(self._e2e),
            committed_offset_min=self._backfill.committed,
            silence_s=silence_s,
            last_record_mono_ns=None if previous is None else previous.last_record_mono_ns,
        )
        s.status.cgm = self.info
        return clock(start, status.time_offset_min, hub_time)

    async def _session_start(self) -> CgmSessionStartTime | None:
        s = self._s
        if not s.can(CGM_SESSION_START_TIME, "read"):
            return None
        raw = await s.read(CGM_SESSION_START_TIME)
        value = decode_cgm_session_start_time(raw, e2e_crc=self._e2e)
        if session_start(value) is not None:
            return value
        if not s.can(CGM_SESSION_START_TIME, "write") or not s.settings.hub_clock_trusted():
            return None
        written = start_time_to_write(s.settings.hub_clock())
        if self._e2e:
            written = dataclasses.replace(written, secured=True)
        await s.write(CGM_SESSION_START_TIME, encode_cgm_session_start_time(written))
        logger.info("BLE %s: CGM session start time set from the hub's clock", s.status.label)
        value = decode_cgm_session_start_time(
            await s.read(CGM_SESSION_START_TIME), e2e_crc=self._e2e
        )
        return value if session_start(value) is not None else None

    async def _load_cursor(self, start: object) -> None:
        s = self._s
        if start is None:
            return  # records without a session start cannot be named across connections
        self._key = cursor_key(s.spec.address, start)  # type: ignore[arg-type]
        tracker = s.central.tracker(self._key)
        s.tracker = tracker
        await tracker.settle(s.settings.commit_timeout_s)  # an earlier, dropped connection
        self._backfill = CgmBackfill(await tracker.cursor())

    # --- subscriptions -------------------------------------------------------------------

    def subscriptions(self) -> frozenset[int]:
        """What the session subscribes to."""
        return frozenset(
            {CGM_MEASUREMENT, RECORD_ACCESS_CONTROL_POINT, CGM_SPECIFIC_OPS_CONTROL_POINT}
        )

    def handler(self, cid: int) -> Handler | None:
        """The handler of ``cid``'s notifications; ``None``: the session's own."""
        if cid == CGM_MEASUREMENT:
            return self._on_measurement
        if cid == CGM_SPECIFIC_OPS_CONTROL_POINT:
            return self._on_control_point
        return None

    def _on_control_point(self, _char: BleakGATTCharacteristic, _data: bytearray) -> None:
        self._s.touch()  # answers to requests the hub does not make today: noted, not used

    def _on_measurement(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        s = self._s
        raw = bytes(data)
        try:
            measurement = decode_cgm_measurement(raw, e2e_crc=self._e2e)
        except DecodeError as error:
            s.emit(s.new_event(CGM_MEASUREMENT, raw, None, error))
            if self._key is not None:
                # A record that could not be read (a wrong E2E-CRC: bytes hurt in transit)
                # holds the cursor before it; it is asked for again next time.
                s.tracker.new_ack(None).set_exception(error)
            return
        stored = s.downloading
        records = tuple(
            r
            for r in measurement.records
            if (
                self._backfill.stored_record_is_new(r.time_offset_min)
                if stored
                else self._backfill.live(r.time_offset_min) is not LiveRecord.DUPLICATE
            )
        )
        dropped = len(measurement.records) - len(records)
        if dropped:
            s.status.duplicates += dropped
            s.tracker.duplicates += dropped
        if not records:
            return
        newest = max(r.time_offset_min for r in records)
        acknowledged = stored or self._backfill.live(newest) is LiveRecord.EMIT_AND_ACKNOWLEDGE
        placed = CgmSessionMeasurement(CgmMeasurement(records), self._start)
        event = s.new_event(
            CGM_MEASUREMENT,
            raw,
            placed,
            stored=stored,
            ack=s.tracker.new_ack(newest) if acknowledged and self._key is not None else None,
        )
        if stored:
            s.status.records_total += len(records)
            self.info.backfilled += len(records)
        self.info.last_record_mono_ns = event.hub_mono_ns
        s.emit(event)

    # --- after subscribing ---------------------------------------------------------------

    async def transfer(self) -> None:
        """Step 6: download what the hub has not committed, then let live records move the
        cursor."""
        s = self._s
        if self._key is None or not s.has(RECORD_ACCESS_CONTROL_POINT):
            return
        s.downloading = True
        try:
            answer = await s.racp_exchange(encode(self._backfill.request()))
        except BaseException:
            # Only a completed download may move the cursor: records and live values
            # cannot be told apart on the wire, and a cursor moved past a record that never
            # came would skip it for good. Re-sent records are stored once (their keys).
            s.tracker.discard()
            raise
        finally:
            s.downloading = False
        if not isinstance(answer, RacpResponse) or not answer.completed:
            raise SessionError(Failure.PROTOCOL, f"CGM RACP report refused: {answer}")
        await s.tracker.settle(s.settings.commit_timeout_s)
        self._backfill.completed(s.tracker.committed)
        self.info.committed_offset_min = self._backfill.committed
        logger.info("BLE %s: CGM backfill done (%d records)", s.status.label, self.info.backfilled)
