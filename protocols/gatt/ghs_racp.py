"""The Record Access Control Point 0x2A52 as the Generic Health Sensor Service uses it (GHSS 1.0).

A GHS server keeps the RACP's format (``Op Code | Operator | Operand``) but not the glucose
profile's operands, so this is a second codec of the same characteristic, used by GHS sessions
(the registry's 0x2A52 is the GLS/PLXS one, :mod:`protocols.gatt.racp`):

* **Combined Report** (0x07) replaces Report Stored Records: the server sends the selected
  Stored Health Observations and ends with a **Combined Report Response** (0x08) carrying the
  number of records sent (uint32). Delete (0x02), Abort (0x03, operator Null), Report Number
  of Stored Records (0x04, answered by 0x05 with a **uint32** count) and the Response Code
  (0x06: request op code, response code, with 0x0A *server busy* added) keep their meaning.
* The filter type 0x01 is the **Record Number** (uint32, the number that starts every Stored
  Health Observations message); 0x02 is a time filter whose operand this codec keeps as bytes.

Sources: Realtek's GHSS server header (``ghss_gatt_svc.h``: ``T_GHSS_RACP_OPCODE`` 0x02-0x08,
``T_GHSS_RACP_RESP_CODES`` up to 0x0A server busy, filter types 0x01 record number and 0x02
time) and the Philips GHS server simulator (``GhsRacpHandler.kt``: op code 0x07 combined
report answered by 0x08 with a uint32 count, 0x05 with a uint32 count, the record number read
as uint32 at bytes 3-6). Decoding is strict: reserved op codes, operators and filter types,
wrong lengths and a Null operator where one is needed are :class:`~protocols.gatt.DecodeError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.numbers import GHS_RECORD_ACCESS_CONTROL_POINT
from protocols.gatt.racp import (
    HEAD_LAYOUT,
    RacpOperator,
    ResponseCodeValue,
    bound_operands,
    decode_bounds,
    decode_head,
    decode_response_code,
    encode_operandless,
    encode_response_code,
    unfiltered_request,
)

_NAME = "Record Access Control Point (GHS)"


class GhsRacpOpCode(enum.IntEnum):
    """GHS RACP op codes (GHSS 1.0; Realtek ``T_GHSS_RACP_OPCODE``)."""

    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06
    COMBINED_REPORT = 0x07
    COMBINED_REPORT_RESPONSE = 0x08


#: RACP operators (GSS 3.181.2): GHS keeps the GLS/PLXS ones unchanged.
GhsRacpOperator = RacpOperator


class GhsRacpFilterType(enum.IntEnum):
    """GHS RACP filter types: the record number (uint32) or a time (kept as bytes)."""

    RECORD_NUMBER = 0x01
    TIME = 0x02


class GhsRacpResponseCode(enum.IntEnum):
    """GHS RACP response code values (Realtek ``T_GHSS_RACP_RESP_CODES``)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09
    SERVER_BUSY = 0x0A


@dataclass(frozen=True, slots=True)
class GhsRacpRequest:
    """A request written by the collector.

    With the record-number filter, ``<=`` sets only ``maximum``, ``>=`` only ``minimum``,
    "within range" both (uint32 each). A time filter keeps its operand in ``time_operand``.
    """

    op_code: GhsRacpOpCode
    operator: GhsRacpOperator
    filter_type: GhsRacpFilterType | None = None
    minimum: int | None = None
    maximum: int | None = None
    time_operand: bytes | None = None

    @classmethod
    def combined_report_from(cls, first_record_number: int) -> GhsRacpRequest:
        """``07 03 01 <uint32>``: report the records numbered from ``first_record_number``."""
        return cls(
            GhsRacpOpCode.COMBINED_REPORT,
            GhsRacpOperator.GREATER_THAN_OR_EQUAL_TO,
            GhsRacpFilterType.RECORD_NUMBER,
            minimum=first_record_number,
        )

    @classmethod
    def combined_report_all(cls) -> GhsRacpRequest:
        """``07 01``: report every stored record."""
        return cls(GhsRacpOpCode.COMBINED_REPORT, GhsRacpOperator.ALL_RECORDS)

    @classmethod
    def abort(cls) -> GhsRacpRequest:
        """``03 00``: abort the procedure in progress."""
        return cls(GhsRacpOpCode.ABORT_OPERATION, GhsRacpOperator.NULL)


@dataclass(frozen=True, slots=True)
class GhsRacpRecordCount:
    """0x05 (number of stored records) or 0x08 (records sent by a combined report): uint32."""

    op_code: GhsRacpOpCode
    count: int


@dataclass(frozen=True, slots=True)
class GhsRacpResponse(ResponseCodeValue[GhsRacpResponseCode]):
    """0x06: the outcome of a request (its op code kept as sent)."""


GhsRacpValue = GhsRacpRequest | GhsRacpRecordCount | GhsRacpResponse

_REQUESTS = frozenset(
    {
        GhsRacpOpCode.DELETE_STORED_RECORDS,
        GhsRacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        GhsRacpOpCode.COMBINED_REPORT,
    }
)
_OP_CODES = {o.value: o for o in GhsRacpOpCode}
_FILTERS = {f.value: f for f in GhsRacpFilterType}
_CODES = {c.value: c for c in GhsRacpResponseCode}


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _decode_filtered(
    data: bytes, op_code: GhsRacpOpCode, operator: GhsRacpOperator
) -> GhsRacpRequest:
    c, n = GHS_RECORD_ACCESS_CONTROL_POINT, len(data)
    if n < 3:
        raise length_error(c, _NAME, (*HEAD_LAYOUT, ("Filter Type", 1)), n)
    filter_type = _FILTERS.get(data[2])
    if filter_type is None:
        fail(c, _NAME, f"reserved filter type 0x{data[2]:02X}", 2)
    if filter_type is GhsRacpFilterType.TIME:
        if n == 3:
            fail(c, _NAME, "time filter without an operand", 3)
        return GhsRacpRequest(op_code, operator, filter_type, time_operand=bytes(data[3:]))
    minimum, maximum = decode_bounds(data, c, _NAME, operator, ("Record Number", 4, _u32))
    return GhsRacpRequest(op_code, operator, filter_type, minimum, maximum)


def decode_ghs_racp(data: bytes) -> GhsRacpValue:
    """Decode a GHS RACP value in either direction (the op code tells which)."""
    c, n = GHS_RECORD_ACCESS_CONTROL_POINT, len(data)
    op_code, operator = decode_head(data, c, _NAME, _OP_CODES)
    if op_code not in _REQUESTS:
        if operator is not GhsRacpOperator.NULL:
            fail(c, _NAME, f"operator must be Null for op code {op_code.name}", 1)
        if op_code is GhsRacpOpCode.ABORT_OPERATION:
            if n != 2:
                raise length_error(c, _NAME, HEAD_LAYOUT, n)
            return GhsRacpRequest(op_code, operator)
        if op_code is GhsRacpOpCode.RESPONSE_CODE:
            return GhsRacpResponse(*decode_response_code(data, c, _NAME, _OP_CODES, _CODES))
        if n != 6:
            raise length_error(c, _NAME, (*HEAD_LAYOUT, ("Number of Records", 4)), n)
        return GhsRacpRecordCount(op_code, _u32(data, 2))
    if unfiltered_request(data, c, _NAME, op_code, operator):
        return GhsRacpRequest(op_code, operator)
    return _decode_filtered(data, op_code, operator)


def _encode_u32(value: int | None, what: str) -> bytes:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError(_NAME, f"{what} needs a uint32, got {value!r}")
    return value.to_bytes(4, "little")


def _encode_request(m: GhsRacpRequest) -> bytes:
    abort = m.op_code is GhsRacpOpCode.ABORT_OPERATION
    if not abort and m.op_code not in _REQUESTS:
        raise EncodeError(_NAME, f"{m.op_code.name} is not a request")
    whole = encode_operandless(_NAME, m, abort=abort)
    if whole is not None:
        return whole
    if m.operator is GhsRacpOperator.NULL or m.filter_type is None:
        raise EncodeError(_NAME, f"operator {m.operator.name} needs a filter")
    head = bytes((int(m.op_code), int(m.operator), int(m.filter_type)))
    if m.filter_type is GhsRacpFilterType.TIME:
        if not m.time_operand:
            raise EncodeError(_NAME, "a time filter needs its operand")
        return head + m.time_operand
    values = bound_operands(_NAME, m.operator, m.minimum, m.maximum)
    if len(values) == 1:
        return head + _encode_u32(values[0], "record number")
    low, high = _encode_u32(values[0], "range minimum"), _encode_u32(values[1], "range maximum")
    if int.from_bytes(low, "little") > int.from_bytes(high, "little"):
        raise EncodeError(_NAME, "range minimum > maximum")
    return head + low + high


def encode_ghs_racp(m: GhsRacpValue) -> bytes:
    """Encode a GHS RACP request or response."""
    if isinstance(m, GhsRacpRecordCount):
        if m.op_code not in (
            GhsRacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
            GhsRacpOpCode.COMBINED_REPORT_RESPONSE,
        ):
            raise EncodeError(_NAME, f"{m.op_code.name} carries no record count")
        return bytes((int(m.op_code), 0)) + _encode_u32(m.count, "count")
    if isinstance(m, GhsRacpResponse):
        return encode_response_code(_NAME, GhsRacpOpCode.RESPONSE_CODE, m)
    return _encode_request(m)
