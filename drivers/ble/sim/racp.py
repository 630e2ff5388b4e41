"""The server side of the Record Access Control Point 0x2A52 for emulated devices.

GSS 3.181 (format), GLS 1.0 section 4.9 and PLXS 1.0 section 3.4 (procedures):

* a RACP write needs indications enabled on the RACP and notifications/indications on the
  record characteristics first, else ATT error 0xFD *CCCD Improperly Configured*;
* a second request while one runs gets ATT error 0xFE *Procedure Already In Progress*,
  except Abort Operation; a procedure has run once its final indication (the Response Code,
  or the number of records) is sent: a client that received it may write the next request
  at once, and that write can reach the device with the client's confirmation, before the
  procedure's task has seen the confirmation (a busy device, or both PDUs in one packet);
* Report Stored Records sends the selected records, then a Response Code indication
  (success, or "no records found"); Report Number Of Stored Records answers with the count;
  Delete Stored Records deletes; Abort stops a running report and answers success.

Requests are decoded with :mod:`protocols.gatt.racp`, answers built with its encoder.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.ble.sim._bumble import ATT_Error, Characteristic, Connection
from protocols.gatt import (
    RECORD_ACCESS_CONTROL_POINT,
    DecodeError,
    RacpFilterType,
    RacpNumberOfStoredRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    decode,
    encode,
)

if TYPE_CHECKING:
    from drivers.ble.sim.peripheral import EmulatedDevice

logger = logging.getLogger(__name__)

CCCD_IMPROPERLY_CONFIGURED = 0xFD
PROCEDURE_ALREADY_IN_PROGRESS = 0xFE


@dataclass
class StoredRecord:
    """One stored record: its sequence number (GLS) and the PDUs that carry it."""

    sequence_number: int | None
    pdus: list[tuple[Characteristic[bytes], bytes, bool]]  # (characteristic, value, indicate)


class RacpServer:
    """Stored records behind a RACP, for one emulated device."""

    def __init__(
        self,
        device: EmulatedDevice,
        *,
        sequence_filter: bool,
        filter_type: RacpFilterType = RacpFilterType.SEQUENCE_NUMBER,
    ) -> None:
        self._device = device
        self._sequence_filter = sequence_filter
        #: The one sequence-number filter type this device answers (Omron's: 0x04); any
        #: other gets "operand not supported" (GLS 1.0 4.9.3).
        self.filter_type = filter_type
        self.records: list[StoredRecord] = []
        #: The sequence number of the next record (uint16, wrapping: GSS 3.106 Sequence Number).
        self.next_sequence = 0
        self.characteristic = device._characteristic(
            RECORD_ACCESS_CONTROL_POINT,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            write=self._on_write,
            protected=True,
        )
        #: Characteristics whose CCCD must be enabled before a request (GLS 4.9).
        self.required: list[tuple[Characteristic[bytes], bool]] = []
        self._procedure: asyncio.Task[None] | None = None
        #: The running procedure has sent its final indication (it is over for the client).
        self._answered = False
        #: Requests received, decoded (for tests).
        self.requests: list[RacpRequest] = []

    def _on_write(self, _connection: Connection | None, value: bytes) -> None:
        device = self._device
        configured = device.subscribed(self.characteristic, indicate=True) and all(
            device.subscribed(char, indicate=indicate) for char, indicate in self.required
        )
        if not configured:
            raise ATT_Error(CCCD_IMPROPERLY_CONFIGURED)
        try:
            request = decode(RECORD_ACCESS_CONTROL_POINT, bytes(value))
        except DecodeError:
            op_code = value[0] if value else 0
            device.spawn(self._respond(op_code, RacpResponseCode.INVALID_OPERATOR), "racp")
            return
        if not isinstance(request, RacpRequest):
            device.spawn(self._respond(value[0], RacpResponseCode.OP_CODE_NOT_SUPPORTED), "racp")
            return
        self.requests.append(request)
        running = self._procedure is not None and not self._procedure.done() and not self._answered
        if request.op_code is RacpOpCode.ABORT_OPERATION:
            if running and self._procedure is not None:
                self._procedure.cancel()
            device.spawn(self._respond(request.op_code, RacpResponseCode.SUCCESS), "racp")
            return
        if running:
            raise ATT_Error(PROCEDURE_ALREADY_IN_PROGRESS)
        self._answered = False
        self._procedure = device.spawn(self._run(request), "racp")

    def take_sequence_number(self) -> int:
        """The sequence number of a new record (and the next one moves on)."""
        sequence = self.next_sequence
        self.next_sequence = (sequence + 1) & 0xFFFF
        return sequence

    def _select(self, request: RacpRequest) -> list[StoredRecord] | RacpResponseCode:
        records = self.records
        operator = request.operator
        if operator is RacpOperator.ALL_RECORDS:
            return list(records)
        if operator is RacpOperator.FIRST_RECORD:
            return records[:1]
        if operator is RacpOperator.LAST_RECORD:
            return records[-1:]
        if not self._sequence_filter:
            return RacpResponseCode.OPERATOR_NOT_SUPPORTED
        if request.filter_type is not self.filter_type:
            return RacpResponseCode.OPERAND_NOT_SUPPORTED
        low = request.minimum if isinstance(request.minimum, int) else 0
        high = request.maximum if isinstance(request.maximum, int) else 0xFFFF
        return [
            r for r in records if r.sequence_number is not None and low <= r.sequence_number <= high
        ]

    async def _run(self, request: RacpRequest) -> None:
        answer = await self._perform(request)
        if answer is None:
            return  # link lost: the procedure ends without a response
        self._answered = True
        await self._send(answer)

    async def _perform(self, request: RacpRequest) -> bytes | None:
        """Carry out ``request``; its final indication's value (``None``: the link was lost)."""
        selected = self._select(request)
        if isinstance(selected, RacpResponseCode):
            return encode(RacpResponse(request.op_code, selected))
        if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            return encode(RacpNumberOfStoredRecords(len(selected)))
        if request.op_code is RacpOpCode.DELETE_STORED_RECORDS:
            doomed = {id(r) for r in selected}
            self.records = [r for r in self.records if id(r) not in doomed]
            code = RacpResponseCode.SUCCESS if selected else RacpResponseCode.NO_RECORDS_FOUND
            return encode(RacpResponse(request.op_code, code))
        if request.op_code is not RacpOpCode.REPORT_STORED_RECORDS:
            return encode(RacpResponse(request.op_code, RacpResponseCode.OP_CODE_NOT_SUPPORTED))
        for record in selected:
            for characteristic, payload, indicate in record.pdus:
                sent = await self._device.send(
                    characteristic, self._device.corrupt(payload), indicate=indicate
                )
                if not sent:
                    return None
            if await self._device.count_down_records():
                return None
            await asyncio.sleep(0)  # let the air breathe between records, as a real link does
        code = RacpResponseCode.SUCCESS if selected else RacpResponseCode.NO_RECORDS_FOUND
        return encode(RacpResponse(request.op_code, code))

    async def _respond(self, op_code: int, code: RacpResponseCode) -> None:
        await self._send(encode(RacpResponse(op_code, code)))

    async def _send(self, payload: bytes) -> None:
        await self._device.send(self.characteristic, payload, indicate=True)
