"""Record Access Control Point 0x2A52, as used by GLS, PLXS and stored BP records.

GSS section 3.181 / GLS 1.0 section 3.9 / PLXS 1.0 section 3.4 (docs/protocols/phd.md 2.6).
Format ``Op Code (1) | Operator (1) | Operand (0..n)``:

* Requests (client -> server): 0x01 report stored records, 0x02 delete stored records,
  0x04 report number of stored records, each with an operator (0x01 all, 0x02 <=, 0x03 >=,
  0x04 within range inclusive, 0x05 first, 0x06 last); operators 0x02..0x04 carry a Filter
  Type (0x01 sequence number / CGMS time offset, uint16; 0x02 user facing time, Date Time;
  0x04 Omron's vendor sequence number, uint16) and one or two filter values. 0x03 abort
  operation uses operator 0x00 (Null), no operand.
* Responses (server -> client, indicated): 0x05 number of stored records (operator Null,
  **uint16** count; the 1- and 4-byte forms early Nordic code accepts are rejected) and 0x06
  response code (operator Null, request op code, response code).

A response's request op code is kept as sent (a server answers "op code not supported" for
op codes it does not know), as an :class:`RacpOpCode` when defined. The operand depends on the op
code and operator, so this codec is written by hand and registered with
:meth:`~protocols.gatt.registry.Registry.codec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.generator import slot_constructor
from protocols.gatt.registry import codec

RECORD_ACCESS_CONTROL_POINT = 0x2A52
_NAME = "Record Access Control Point"


class RacpOpCode(enum.IntEnum):
    """RACP op codes (GSS 3.181.1)."""

    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class RacpOperator(enum.IntEnum):
    """RACP operators (GSS 3.181.2)."""

    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_OF = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class RacpFilterType(enum.IntEnum):
    """RACP filter types (GLS 1.0 table 3.6; CGMS uses 0x01 for its uint16 time offset).

    ``OMRON_SEQUENCE_NUMBER`` (0x04) is reserved in GLS 1.0 and vendor-defined by Omron: its
    cuffs' RACP (in the Omron Option Service, 5DF5E817-A945-4F81-89C0-3D4E9759C07C) filters
    stored records with ``<=`` / ``>=`` by a uint16 sequence number under this filter type
    instead of 0x01 (Stanford SpeziDevices, SpeziOmron ``OmronRecordAccessOperand.swift``:
    ``RecordAccessFilterType(rawValue: 0x04)``, operand filter type then uint16 LE).
    """

    SEQUENCE_NUMBER = 0x01
    USER_FACING_TIME = 0x02
    OMRON_SEQUENCE_NUMBER = 0x04


#: Filter types whose value is a uint16 sequence number.
_SEQUENCE_FILTERS = frozenset(
    {RacpFilterType.SEQUENCE_NUMBER, RacpFilterType.OMRON_SEQUENCE_NUMBER}
)


class RacpResponseCode(enum.IntEnum):
    """RACP response code values (GSS 3.181.3)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_RECORD_OPS = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
_FILTERED = frozenset(
    {
        RacpOperator.LESS_THAN_OR_EQUAL_TO,
        RacpOperator.GREATER_THAN_OR_EQUAL_TO,
        RacpOperator.WITHIN_RANGE_OF,
    }
)
_UNFILTERED = frozenset(
    {RacpOperator.ALL_RECORDS, RacpOperator.FIRST_RECORD, RacpOperator.LAST_RECORD}
)

FilterValue = int | DateTime


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A RACP request written by the client.

    For ``<=`` only ``maximum`` is set, for ``>=`` only ``minimum``, for "within range" both;
    sequence-number filters take ``int`` (uint16), user-facing-time filters :class:`DateTime`.
    """

    op_code: RacpOpCode
    operator: RacpOperator
    filter_type: RacpFilterType | None = None
    minimum: FilterValue | None = None
    maximum: FilterValue | None = None

    @classmethod
    def report_all(cls) -> RacpRequest:
        """``01 01``: report all stored records."""
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def report_from_sequence(
        cls,
        first_sequence_number: int,
        filter_type: RacpFilterType = RacpFilterType.SEQUENCE_NUMBER,
    ) -> RacpRequest:
        """``01 03 01 <seq>``: report records with sequence number >= the given one (Omron's
        cuffs: ``01 03 04 <seq>``, :attr:`RacpFilterType.OMRON_SEQUENCE_NUMBER`)."""
        if filter_type not in _SEQUENCE_FILTERS:
            raise EncodeError(_NAME, f"{filter_type!r} is not a sequence number filter")
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            filter_type,
            minimum=first_sequence_number,
        )

    @classmethod
    def count_all(cls) -> RacpRequest:
        """``04 01``: report the number of stored records."""
        return cls(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def abort(cls) -> RacpRequest:
        """``03 00``: abort the operation in progress."""
        return cls(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)


@dataclass(frozen=True, slots=True)
class RacpNumberOfStoredRecords:
    """RACP 0x05 response: the number of stored records matching the request (uint16)."""

    count: int


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """RACP 0x06 response: the outcome of a request."""

    request_op_code: int
    response_code: RacpResponseCode

    @property
    def completed(self) -> bool:
        """True for success and for "no records found" (normal for an incremental pull)."""
        return self.response_code in (RacpResponseCode.SUCCESS, RacpResponseCode.NO_RECORDS_FOUND)


RacpValue = RacpRequest | RacpNumberOfStoredRecords | RacpResponse

# Decoded values are built through their slots (values validated first; see generator).
_new_request = slot_constructor(RacpRequest)
_new_count = slot_constructor(RacpNumberOfStoredRecords)
_new_response = slot_constructor(RacpResponse)

_OP_CODES = {op.value: op for op in RacpOpCode}
_OPERATORS = {o.value: o for o in RacpOperator}
_FILTERS = {f.value: f for f in RacpFilterType}
_RESPONSES = {r.value: r for r in RacpResponseCode}
_FILTER_SIZES = {
    RacpFilterType.SEQUENCE_NUMBER: 2,
    RacpFilterType.USER_FACING_TIME: DATE_TIME_SIZE,
    RacpFilterType.OMRON_SEQUENCE_NUMBER: 2,
}


def _filter_value(data: bytes, offset: int, filter_type: RacpFilterType) -> FilterValue:
    if filter_type in _SEQUENCE_FILTERS:
        return data[offset] | data[offset + 1] << 8
    return decode_date_time(data, offset, characteristic=RECORD_ACCESS_CONTROL_POINT, name=_NAME)


def _encode_filter(filter_type: RacpFilterType, value: FilterValue | None) -> bytes:
    if filter_type in _SEQUENCE_FILTERS:
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise EncodeError(_NAME, f"sequence number filter needs a uint16, got {value!r}")
        return value.to_bytes(2, "little")
    if not isinstance(value, DateTime):
        raise EncodeError(_NAME, f"user facing time filter needs a DateTime, got {value!r}")
    return encode_date_time(value)


def encode_racp(m: RacpValue) -> bytes:
    """Encode a RACP request or response."""
    if isinstance(m, RacpNumberOfStoredRecords):
        if not 0 <= m.count <= 0xFFFF:
            raise EncodeError(_NAME, f"count {m.count} out of uint16 range")
        return bytes((RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, 0)) + m.count.to_bytes(
            2, "little"
        )
    if isinstance(m, RacpResponse):
        if not 0 <= int(m.request_op_code) <= 0xFF:
            raise EncodeError(_NAME, f"request op code {m.request_op_code} out of range")
        return bytes((RacpOpCode.RESPONSE_CODE, 0, int(m.request_op_code), int(m.response_code)))
    head = bytes((int(m.op_code), int(m.operator)))
    if m.op_code is RacpOpCode.ABORT_OPERATION:
        if m.operator is not RacpOperator.NULL or m.filter_type is not None:
            raise EncodeError(_NAME, "abort takes operator Null and no operand")
        return head
    if m.op_code not in _RECORD_OPS:
        raise EncodeError(_NAME, f"{m.op_code!r} is a response op code; use the response types")
    if m.operator in _UNFILTERED:
        if m.filter_type is not None or m.minimum is not None or m.maximum is not None:
            raise EncodeError(_NAME, f"operator {m.operator.name} takes no operand")
        return head
    if m.operator not in _FILTERED or m.filter_type is None:
        raise EncodeError(_NAME, f"operator {m.operator.name} needs a filter type")
    body = bytes((int(m.filter_type),))
    if m.operator is RacpOperator.LESS_THAN_OR_EQUAL_TO:
        if m.minimum is not None:
            raise EncodeError(_NAME, "<= takes only a maximum")
        return head + body + _encode_filter(m.filter_type, m.maximum)
    if m.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO:
        if m.maximum is not None:
            raise EncodeError(_NAME, ">= takes only a minimum")
        return head + body + _encode_filter(m.filter_type, m.minimum)
    if isinstance(m.minimum, int) and isinstance(m.maximum, int) and m.minimum > m.maximum:
        raise EncodeError(_NAME, "range minimum > maximum")
    return (
        head
        + body
        + _encode_filter(m.filter_type, m.minimum)
        + _encode_filter(m.filter_type, m.maximum)
    )


@codec(
    RECORD_ACCESS_CONTROL_POINT,
    _NAME,
    gss="3.181 Record Access Control Point",
    service="GLS 1.0 section 3.9; PLXS 1.0 section 3.4",
    values=(RacpRequest, RacpNumberOfStoredRecords, RacpResponse),
    encode=encode_racp,
)
def decode_racp(data: bytes) -> RacpValue:
    """Decode a RACP value in either direction; the op code tells requests from responses."""
    c = RECORD_ACCESS_CONTROL_POINT
    n = len(data)
    if n < 2:
        raise length_error(c, _NAME, (("Op Code", 1), ("Operator", 1)), n)
    op_code = _OP_CODES.get(data[0])
    if op_code is None:
        fail(c, _NAME, f"reserved op code 0x{data[0]:02X}", 0)
    operator = _OPERATORS.get(data[1])
    if operator is None:
        fail(c, _NAME, f"reserved operator 0x{data[1]:02X}", 1)
    if op_code in (
        RacpOpCode.ABORT_OPERATION,
        RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
        RacpOpCode.RESPONSE_CODE,
    ):
        if operator is not RacpOperator.NULL:
            fail(c, _NAME, f"operator must be Null for op code {op_code.name}", 1)
        if op_code is RacpOpCode.ABORT_OPERATION:
            if n != 2:
                raise length_error(c, _NAME, (("Op Code", 1), ("Operator", 1)), n)
            return _new_request(op_code, operator, None, None, None)
        if op_code is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            if n != 4:
                count_layout = (("Op Code", 1), ("Operator", 1), ("Number of Records", 2))
                raise length_error(c, _NAME, count_layout, n)
            return _new_count(data[2] | data[3] << 8)
        if n != 4:
            reply_layout = (("Op Code", 1), ("Operator", 1), ("Request Op Code", 1), ("Code", 1))
            raise length_error(c, _NAME, reply_layout, n)
        response = _RESPONSES.get(data[3])
        if response is None:
            fail(c, _NAME, f"reserved response code 0x{data[3]:02X}", 3)
        request = data[2]
        return _new_response(_OP_CODES.get(request, request), response)
    # A record request: report, delete or count.
    if operator is RacpOperator.NULL:
        fail(c, _NAME, f"operator Null is invalid for op code {op_code.name}", 1)
    if operator in _UNFILTERED:
        if n != 2:
            raise length_error(c, _NAME, (("Op Code", 1), ("Operator", 1)), n)
        return _new_request(op_code, operator, None, None, None)
    if n < 3:
        raise length_error(c, _NAME, (("Op Code", 1), ("Operator", 1), ("Filter Type", 1)), n)
    filter_type = _FILTERS.get(data[2])
    if filter_type is None:
        fail(c, _NAME, f"reserved filter type 0x{data[2]:02X}", 2)
    size = _FILTER_SIZES[filter_type]
    count = 2 if operator is RacpOperator.WITHIN_RANGE_OF else 1
    layout: list[tuple[str, int]] = [("Op Code", 1), ("Operator", 1), ("Filter Type", 1)]
    layout += [(f"Filter Value {i + 1}", size) for i in range(count)]
    if n != 3 + count * size:
        raise length_error(c, _NAME, layout, n)
    first = _filter_value(data, 3, filter_type)
    if operator is RacpOperator.LESS_THAN_OR_EQUAL_TO:
        return _new_request(op_code, operator, filter_type, None, first)
    if operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO:
        return _new_request(op_code, operator, filter_type, first, None)
    second = _filter_value(data, 3 + size, filter_type)
    if isinstance(first, int) and isinstance(second, int) and first > second:
        fail(c, _NAME, f"range minimum {first} > maximum {second}", 3)
    return _new_request(op_code, operator, filter_type, first, second)
