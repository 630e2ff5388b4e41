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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.generator import slot_constructor
from protocols.gatt.numbers import RECORD_ACCESS_CONTROL_POINT
from protocols.gatt.registry import codec

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


#: The response code values that end a procedure normally, the same in GSS 3.181.3 and GHSS.
_COMPLETED = frozenset({RacpResponseCode.SUCCESS, RacpResponseCode.NO_RECORDS_FOUND})
_Code = TypeVar("_Code", bound=enum.IntEnum)

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
class ResponseCodeValue(Generic[_Code]):
    """A Response Code value (GSS 3.181.3): the request op code (kept as sent) and the outcome,
    a response code of the RACP variant at hand (GSS 3.181.3 or GHSS 1.0's superset)."""

    request_op_code: int
    response_code: _Code

    @property
    def completed(self) -> bool:
        """True for success and for "no records found" (normal for an incremental pull)."""
        return self.response_code in _COMPLETED


@dataclass(frozen=True, slots=True)
class RacpResponse(ResponseCodeValue[RacpResponseCode]):
    """RACP 0x06 response: the outcome of a request."""


RacpValue = RacpRequest | RacpNumberOfStoredRecords | RacpResponse

# Decoded values are built through their slots (values validated first; see generator).
_new_request = slot_constructor(RacpRequest)
_new_count = slot_constructor(RacpNumberOfStoredRecords)
_new_response = slot_constructor(RacpResponse)

_OP_CODES = {op.value: op for op in RacpOpCode}
_FILTERS = {f.value: f for f in RacpFilterType}
_RESPONSES = {r.value: r for r in RacpResponseCode}
_FILTER_SIZES = {
    RacpFilterType.SEQUENCE_NUMBER: 2,
    RacpFilterType.USER_FACING_TIME: DATE_TIME_SIZE,
    RacpFilterType.OMRON_SEQUENCE_NUMBER: 2,
}


# --- the wire shared with the GHS variant (protocols.gatt.ghs_racp) -------------------------
# GHSS 1.0 keeps the RACP format (Op Code | Operator | Operand), the operators and the
# response code value; only its op codes, filter types and count widths differ, so the
# checks of the shared parts take those as parameters.

#: The two bytes every RACP value starts with (GSS 3.181).
HEAD_LAYOUT = (("Op Code", 1), ("Operator", 1))
_RESPONSE_LAYOUT = (*HEAD_LAYOUT, ("Request Op Code", 1), ("Code", 1))
_OPERATORS = {o.value: o for o in RacpOperator}

_Op = TypeVar("_Op", bound=enum.IntEnum)
_V = TypeVar("_V")


def decode_head(
    data: bytes, characteristic: int, name: str, op_codes: Mapping[int, _Op]
) -> tuple[_Op, RacpOperator]:
    """The Op Code (one of ``op_codes``) and the Operator; reserved values raise."""
    if len(data) < 2:
        raise length_error(characteristic, name, HEAD_LAYOUT, len(data))
    op_code = op_codes.get(data[0])
    if op_code is None:
        fail(characteristic, name, f"reserved op code 0x{data[0]:02X}", 0)
    operator = _OPERATORS.get(data[1])
    if operator is None:
        fail(characteristic, name, f"reserved operator 0x{data[1]:02X}", 1)
    return op_code, operator


def decode_response_code(
    data: bytes,
    characteristic: int,
    name: str,
    op_codes: Mapping[int, _Op],
    codes: Mapping[int, _Code],
) -> tuple[_Op | int, _Code]:
    """The Response Code value (GSS 3.181.3): the request op code (kept as sent, as an op code
    when defined) and the response code."""
    if len(data) != 4:
        raise length_error(characteristic, name, _RESPONSE_LAYOUT, len(data))
    code = codes.get(data[3])
    if code is None:
        fail(characteristic, name, f"reserved response code 0x{data[3]:02X}", 3)
    return op_codes.get(data[2], data[2]), code


def unfiltered_request(
    data: bytes, characteristic: int, name: str, op_code: enum.IntEnum, operator: RacpOperator
) -> bool:
    """Whether a record request takes no operand (checking its length then); a Null operator
    raises."""
    if operator is RacpOperator.NULL:
        fail(characteristic, name, f"operator Null is invalid for op code {op_code.name}", 1)
    if operator in _UNFILTERED:
        if len(data) != 2:
            raise length_error(characteristic, name, HEAD_LAYOUT, len(data))
        return True
    return False


def decode_bounds(
    data: bytes,
    characteristic: int,
    name: str,
    operator: RacpOperator,
    value: tuple[str, int, Callable[[bytes, int], _V]],
) -> tuple[_V | None, _V | None]:
    """The (minimum, maximum) of a filtered request: one filter value for ``<=`` (the maximum)
    and ``>=`` (the minimum), two for "within range". ``value`` is the filter value's name,
    size and reader; the operand starts after the Filter Type byte."""
    label, size, read = value
    count = 2 if operator is RacpOperator.WITHIN_RANGE_OF else 1
    if len(data) != 3 + count * size:
        layout = (
            *HEAD_LAYOUT,
            ("Filter Type", 1),
            *((f"{label} {i + 1}", size) for i in range(count)),
        )
        raise length_error(characteristic, name, layout, len(data))
    first = read(data, 3)
    if operator is RacpOperator.LESS_THAN_OR_EQUAL_TO:
        return None, first
    if operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO:
        return first, None
    second = read(data, 3 + size)
    if isinstance(first, int) and isinstance(second, int) and first > second:
        fail(characteristic, name, f"range minimum {first} > maximum {second}", 3)
    return first, second


class RequestFields(Protocol):
    """What the request encoders share: both request dataclasses have these fields."""

    @property
    def op_code(self) -> enum.IntEnum: ...
    @property
    def operator(self) -> RacpOperator: ...
    @property
    def filter_type(self) -> enum.IntEnum | None: ...
    @property
    def minimum(self) -> object: ...
    @property
    def maximum(self) -> object: ...


def encode_operandless(name: str, m: RequestFields, *, abort: bool) -> bytes | None:
    """The whole value of a request without an operand (abort, an unfiltered operator), or
    ``None`` when its operator takes a filter."""
    head = bytes((int(m.op_code), int(m.operator)))
    if abort:
        if m.operator is not RacpOperator.NULL or m.filter_type is not None:
            raise EncodeError(name, "abort takes operator Null and no operand")
        return head
    if m.operator in _UNFILTERED:
        if m.filter_type is not None or m.minimum is not None or m.maximum is not None:
            raise EncodeError(name, f"operator {m.operator.name} takes no operand")
        return head
    return None


def encode_response_code(name: str, op_code: enum.IntEnum, m: ResponseCodeValue[Any]) -> bytes:
    """A Response Code value (GSS 3.181.3): ``op_code``, operator Null, the request op code
    (a byte, kept as sent) and the response code."""
    if not 0 <= int(m.request_op_code) <= 0xFF:
        raise EncodeError(name, f"request op code {m.request_op_code} out of range")
    if not 0 <= int(m.response_code) <= 0xFF:
        raise EncodeError(name, f"response code {m.response_code} out of range")
    return bytes((op_code, 0, int(m.request_op_code), int(m.response_code)))


def bound_operands(name: str, operator: RacpOperator, minimum: _V, maximum: _V) -> tuple[_V, ...]:
    """The filter values a request's operator takes, in wire order (checked against it)."""
    if operator is RacpOperator.LESS_THAN_OR_EQUAL_TO:
        if minimum is not None:
            raise EncodeError(name, "<= takes only a maximum")
        return (maximum,)
    if operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO:
        if maximum is not None:
            raise EncodeError(name, ">= takes only a minimum")
        return (minimum,)
    return minimum, maximum


def _sequence_number(data: bytes, offset: int) -> FilterValue:
    return data[offset] | data[offset + 1] << 8


def _user_facing_time(data: bytes, offset: int) -> FilterValue:
    return decode_date_time(data, offset, characteristic=RECORD_ACCESS_CONTROL_POINT, name=_NAME)


_FILTER_READERS: dict[RacpFilterType, Callable[[bytes, int], FilterValue]] = {
    RacpFilterType.SEQUENCE_NUMBER: _sequence_number,
    RacpFilterType.USER_FACING_TIME: _user_facing_time,
    RacpFilterType.OMRON_SEQUENCE_NUMBER: _sequence_number,
}


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
        return encode_response_code(_NAME, RacpOpCode.RESPONSE_CODE, m)
    abort = m.op_code is RacpOpCode.ABORT_OPERATION
    if not abort and m.op_code not in _RECORD_OPS:
        raise EncodeError(_NAME, f"{m.op_code!r} is a response op code; use the response types")
    whole = encode_operandless(_NAME, m, abort=abort)
    if whole is not None:
        return whole
    if m.operator not in _FILTERED or m.filter_type is None:
        raise EncodeError(_NAME, f"operator {m.operator.name} needs a filter type")
    values = bound_operands(_NAME, m.operator, m.minimum, m.maximum)
    low, high = values[0], values[-1]
    if len(values) == 2 and isinstance(low, int) and isinstance(high, int) and low > high:
        raise EncodeError(_NAME, "range minimum > maximum")
    head = bytes((int(m.op_code), int(m.operator), int(m.filter_type)))
    return head + b"".join(_encode_filter(m.filter_type, value) for value in values)


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
    op_code, operator = decode_head(data, c, _NAME, _OP_CODES)
    if op_code in (
        RacpOpCode.ABORT_OPERATION,
        RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
        RacpOpCode.RESPONSE_CODE,
    ):
        if operator is not RacpOperator.NULL:
            fail(c, _NAME, f"operator must be Null for op code {op_code.name}", 1)
        if op_code is RacpOpCode.ABORT_OPERATION:
            if n != 2:
                raise length_error(c, _NAME, HEAD_LAYOUT, n)
            return _new_request(op_code, operator, None, None, None)
        if op_code is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            if n != 4:
                raise length_error(c, _NAME, (*HEAD_LAYOUT, ("Number of Records", 2)), n)
            return _new_count(data[2] | data[3] << 8)
        return _new_response(*decode_response_code(data, c, _NAME, _OP_CODES, _RESPONSES))
    # A record request: report, delete or count.
    if unfiltered_request(data, c, _NAME, op_code, operator):
        return _new_request(op_code, operator, None, None, None)
    if n < 3:
        raise length_error(c, _NAME, (*HEAD_LAYOUT, ("Filter Type", 1)), n)
    filter_type = _FILTERS.get(data[2])
    if filter_type is None:
        fail(c, _NAME, f"reserved filter type 0x{data[2]:02X}", 2)
    value = ("Filter Value", _FILTER_SIZES[filter_type], _FILTER_READERS[filter_type])
    minimum, maximum = decode_bounds(data, c, _NAME, operator, value)
    return _new_request(op_code, operator, filter_type, minimum, maximum)
