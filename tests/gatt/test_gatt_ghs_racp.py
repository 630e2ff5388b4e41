"""The GHS dialect of the Record Access Control Point (GHSS 1.0).

Vectors: the Philips GHS server simulator (philips-labs/BLE-GHS-Server-Simulator,
``GhsRacpHandler.kt``: combined report 0x07 answered by 0x08 with a uint32 count, the number
of records 0x05 with a uint32 count, the record number read as uint32 at bytes 3-6, "no
records found" followed by a stray ``06 00 05 00``) and Realtek's ``ghss_gatt_svc.h`` (op
codes 0x02-0x08, response codes to 0x0A server busy, filter types 0x01 and 0x02).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import EncodeError
from protocols.gatt import DecodeError
from protocols.gatt.ghs_racp import (
    GhsRacpFilterType,
    GhsRacpOpCode,
    GhsRacpOperator,
    GhsRacpRecordCount,
    GhsRacpRequest,
    GhsRacpResponse,
    GhsRacpResponseCode,
    decode_ghs_racp,
    encode_ghs_racp,
)

VECTORS = [
    ("0701", GhsRacpRequest.combined_report_all()),
    ("07030105000000", GhsRacpRequest.combined_report_from(5)),
    ("0300", GhsRacpRequest.abort()),
    (
        "0401",
        GhsRacpRequest(GhsRacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, GhsRacpOperator.ALL_RECORDS),
    ),
    ("080003000000", GhsRacpRecordCount(GhsRacpOpCode.COMBINED_REPORT_RESPONSE, 3)),
    ("05000a000000", GhsRacpRecordCount(GhsRacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, 10)),
    (
        "06000706",
        GhsRacpResponse(GhsRacpOpCode.COMBINED_REPORT, GhsRacpResponseCode.NO_RECORDS_FOUND),
    ),
    ("0600070a", GhsRacpResponse(GhsRacpOpCode.COMBINED_REPORT, GhsRacpResponseCode.SERVER_BUSY)),
    (
        "070401010000000a000000",
        GhsRacpRequest(
            GhsRacpOpCode.COMBINED_REPORT,
            GhsRacpOperator.WITHIN_RANGE_OF,
            GhsRacpFilterType.RECORD_NUMBER,
            1,
            10,
        ),
    ),
]


@pytest.mark.parametrize(("hex_value", "value"), VECTORS)
def test_vectors(hex_value: str, value: object) -> None:
    raw = bytes.fromhex(hex_value)
    assert decode_ghs_racp(raw) == value
    assert encode_ghs_racp(value) == raw  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hex_value", "offset", "fragment"),
    [
        ("0600 0500", 3, "reserved response code 0x00"),  # Philips's stray second answer
        ("0101", 0, "reserved op code 0x01"),  # GLS's Report Stored Records is not GHS's
        ("07030105", 3, "truncated Record Number 1"),
        ("0703010500000000", 7, "1 trailing"),
        ("0700", 1, "operator Null is invalid"),
        ("0801030000", 1, "operator must be Null"),
        ("070303", 2, "reserved filter type 0x03"),
        ("0704010a00000001000000", 3, "minimum 10 > maximum 1"),
        ("08000300", 2, "truncated Number of Records"),
        ("07", 1, "truncated Operator"),
    ],
)
def test_refused(hex_value: str, offset: int, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_ghs_racp(bytes.fromhex(hex_value.replace(" ", "")))
    assert info.value.offset == offset
    assert fragment in info.value.reason


def test_encoding_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(EncodeError):
        encode_ghs_racp(GhsRacpRequest.combined_report_from(1 << 32))
    with pytest.raises(EncodeError):
        encode_ghs_racp(GhsRacpRecordCount(GhsRacpOpCode.RESPONSE_CODE, 1))


u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def values(draw: st.DrawFn) -> object:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        op = draw(st.sampled_from(sorted(GhsRacpOpCode)))
        if op in (
            GhsRacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
            GhsRacpOpCode.COMBINED_REPORT_RESPONSE,
        ):
            return GhsRacpRecordCount(op, draw(u32))
        return GhsRacpRequest.abort()
    if kind == 1:
        return GhsRacpResponse(
            draw(st.integers(0, 0xFF)), draw(st.sampled_from(GhsRacpResponseCode))
        )
    op = draw(
        st.sampled_from(
            [
                GhsRacpOpCode.COMBINED_REPORT,
                GhsRacpOpCode.DELETE_STORED_RECORDS,
                GhsRacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
            ]
        )
    )
    if kind == 2:
        operator = draw(
            st.sampled_from(
                [
                    GhsRacpOperator.ALL_RECORDS,
                    GhsRacpOperator.FIRST_RECORD,
                    GhsRacpOperator.LAST_RECORD,
                ]
            )
        )
        return GhsRacpRequest(op, operator)
    if kind == 3:
        low = draw(u32)
        return GhsRacpRequest(
            op,
            GhsRacpOperator.WITHIN_RANGE_OF,
            GhsRacpFilterType.RECORD_NUMBER,
            low,
            draw(st.integers(low, 0xFFFFFFFF)),
        )
    if draw(st.booleans()):
        return GhsRacpRequest(
            op,
            GhsRacpOperator.LESS_THAN_OR_EQUAL_TO,
            GhsRacpFilterType.RECORD_NUMBER,
            maximum=draw(u32),
        )
    return GhsRacpRequest(
        op,
        GhsRacpOperator.GREATER_THAN_OR_EQUAL_TO,
        GhsRacpFilterType.TIME,
        time_operand=draw(st.binary(min_size=1, max_size=9)),
    )


@settings(max_examples=200, deadline=None)
@given(value=values())
def test_round_trip(value: object) -> None:
    wire = encode_ghs_racp(value)  # type: ignore[arg-type]
    back = decode_ghs_racp(wire)
    # A response's request op code is kept as an enum member when it is one.
    assert encode_ghs_racp(back) == wire
    assert back == value or isinstance(value, GhsRacpResponse)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=14))
def test_arbitrary_bytes_give_a_value_or_a_decode_error(raw: bytes) -> None:
    error: DecodeError | None = None
    try:
        value = decode_ghs_racp(raw)
    except DecodeError as exc:
        error = exc
    if error is not None:
        assert isinstance(error, ValueError)
        assert error.offset is not None
        assert 0 <= error.offset <= len(raw)
        return
    assert encode_ghs_racp(value) == raw


@pytest.mark.parametrize("field", ["request_op_code", "response_code"])
def test_a_response_code_outside_a_byte_is_an_encode_error(field: str) -> None:
    fields = {"request_op_code": GhsRacpOpCode.COMBINED_REPORT, "response_code": 0x01, field: 0x100}
    response = GhsRacpResponse(**fields)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match=field.replace("_", " ")):
        encode_ghs_racp(response)
