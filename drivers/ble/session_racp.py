"""RACP procedures in a session: the stored-record download (GSS 3.181, GLS 1.0 4.9).

"Report records >= cursor + 1" (or "all" the first time; the sequence filter type is the
quirk profile's, 0x01 or Omron's 0x04), collect until the Response Code indication, abort
(``03 00``) after ``racp_idle_timeout_s`` without progress. PLXS records have no sequence
number: they are reported in full and deleted (``02 01``) once every one of them is
committed. :meth:`RacpProcedures.exchange` also serves the CGM and GHS runners, whose own
RACP dialects hand their final indication to :meth:`RacpProcedures.answered`. Part of
:class:`~drivers.ble.session.DeviceSession`, through the interface the runners use too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from drivers._aio import reraise_if_cancelling
from drivers.ble._bleak import BleakError, BleakGATTCharacteristic
from drivers.ble.hints import racp_sequence_filter
from drivers.ble.retry import Failure, SessionError
from drivers.ble.session_gatt import SEQUENCED_RECORDS
from protocols.gatt import (
    RECORD_ACCESS_CONTROL_POINT,
    RacpNumberOfStoredRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    encode,
)

if TYPE_CHECKING:
    from drivers.ble.bp_records import RecordAssembler
    from drivers.ble.session import DeviceSession
    from protocols.gatt import Measurement

logger = logging.getLogger(__name__)


class RacpProcedures:
    """The RACP of one session: one procedure at a time, its final indication awaited."""

    def __init__(self, session: DeviceSession) -> None:
        self._session = session
        self._answer: asyncio.Future[Any] | None = None
        #: Blood Pressure Record segments joined per record (BLS 1.1.1) in a download; made
        #: with the first record (:meth:`DeviceSession._on_bp_record`).
        self.bp_records: RecordAssembler | None = None

    def link_lost(self) -> None:
        """Fail the running procedure's waiter (the link dropped)."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(
                SessionError(Failure.LINK_LOST, "link lost during a RACP procedure")
            )

    async def request(self, request: RacpRequest) -> Measurement:
        """A GLS-dialect request and its final indication, decoded."""
        answer: Measurement = await self.exchange(encode(request))
        return answer

    async def exchange(self, request: bytes) -> Any:
        """Write a RACP request and wait for its final indication (the value a RACP handler
        hands to :meth:`answered`); abort after ``racp_idle_timeout_s`` without progress (no
        record received)."""
        session = self._session
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self._answer = answer
        try:
            await session.write(RECORD_ACCESS_CONTROL_POINT, request)
            progress = session.tracker.pending
            while True:
                try:
                    async with asyncio.timeout(session.settings.racp_idle_timeout_s):
                        return await asyncio.shield(answer)
                except TimeoutError:
                    reraise_if_cancelling()
                    if session.tracker.pending == progress:
                        await self._abort()
                        raise
                    progress = session.tracker.pending
        finally:
            self._answer = None

    async def _abort(self) -> None:
        session = self._session
        logger.warning("BLE %s: RACP procedure stalled; aborting it", session.status.label)
        with contextlib.suppress(BleakError, TimeoutError, SessionError):
            # ``03 00`` in both the GLS and the GHS dialect.
            await session.write(RECORD_ACCESS_CONTROL_POINT, encode(RacpRequest.abort()))

    def answered(self, value: object) -> None:
        """Hand the final indication of the running procedure to its waiter."""
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(value)

    async def download_records(self) -> None:
        """Only the new stored records; the cursor advances after the pipeline commits."""
        session = self._session
        status = session.status
        settle_s = session.settings.commit_timeout_s
        await session.tracker.settle(settle_s)  # records from an earlier, dropped session
        by_sequence = not SEQUENCED_RECORDS.isdisjoint(session.available)
        self.bp_records = None  # partial segments of an earlier download are dropped
        cursor = await session.tracker.cursor() if by_sequence else None
        if cursor is not None and cursor >= 0xFFFF:
            cursor = None
        request = (
            RacpRequest.report_all()
            if cursor is None
            else RacpRequest.report_from_sequence(cursor + 1, racp_sequence_filter(status.profile))
        )
        session.downloading = True
        try:
            answer = await self.request(request)
        finally:
            session.downloading = False
        if not isinstance(answer, RacpResponse) or not answer.completed:
            raise SessionError(Failure.PROTOCOL, f"RACP report refused: {answer}")
        everything_committed = await session.tracker.settle(settle_s)
        if not by_sequence and everything_committed and status.records_pending_delete:
            # PLXS: no sequence numbers, so committed records are deleted from the device.
            delete = await self.request(
                RacpRequest(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL_RECORDS)
            )
            if isinstance(delete, RacpResponse) and delete.completed:
                status.records_pending_delete = 0

    def on_indication(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        """bleak's callback for the GLS-dialect RACP's indications."""
        value = self._session.arrived(RECORD_ACCESS_CONTROL_POINT, data)
        if isinstance(value, (RacpResponse, RacpNumberOfStoredRecords)):
            self.answered(value)
