"""CGM Specific Ops Control Point 0x2AAC (CGMS 1.0.2; GSS *CGM Specific Ops Control Point*):
written by the collector (communication interval, calibration values, alert levels, session
start and stop) and indicated back with a response. An E2E-CRC follows when the sensor supports
it, as for the other CGM characteristics (:mod:`protocols.gatt.cgm`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._enum import OpenIntEnum
from protocols.gatt._wire import fail
from protocols.gatt.cgm import (
    CgmSampleLocation,
    CgmType,
    _check_u16,
    _crc_present,
    _finish,
    _sfloat,
    _type_location,
    _type_location_byte,
    _u16,
)
from protocols.gatt.e2e_crc import check_e2e_crc
from protocols.gatt.medfloat import MedFloat, encode_medfloat16
from protocols.gatt.numbers import CGM_SPECIFIC_OPS_CONTROL_POINT
from protocols.gatt.registry import codec

_SOCP_NAME = "CGM Specific Ops Control Point"


class CgmSocpOpCode(OpenIntEnum):
    """Op Codes of the CGM Specific Ops Control Point (GSS, Op Code and Operand table)."""

    SET_CGM_COMMUNICATION_INTERVAL = 0x01
    GET_CGM_COMMUNICATION_INTERVAL = 0x02
    CGM_COMMUNICATION_INTERVAL_RESPONSE = 0x03
    SET_GLUCOSE_CALIBRATION_VALUE = 0x04
    GET_GLUCOSE_CALIBRATION_VALUE = 0x05
    GLUCOSE_CALIBRATION_VALUE_RESPONSE = 0x06
    SET_PATIENT_HIGH_ALERT_LEVEL = 0x07
    GET_PATIENT_HIGH_ALERT_LEVEL = 0x08
    PATIENT_HIGH_ALERT_LEVEL_RESPONSE = 0x09
    SET_PATIENT_LOW_ALERT_LEVEL = 0x0A
    GET_PATIENT_LOW_ALERT_LEVEL = 0x0B
    PATIENT_LOW_ALERT_LEVEL_RESPONSE = 0x0C
    SET_HYPO_ALERT_LEVEL = 0x0D
    GET_HYPO_ALERT_LEVEL = 0x0E
    HYPO_ALERT_LEVEL_RESPONSE = 0x0F
    SET_HYPER_ALERT_LEVEL = 0x10
    GET_HYPER_ALERT_LEVEL = 0x11
    HYPER_ALERT_LEVEL_RESPONSE = 0x12
    SET_RATE_OF_DECREASE_ALERT_LEVEL = 0x13
    GET_RATE_OF_DECREASE_ALERT_LEVEL = 0x14
    RATE_OF_DECREASE_ALERT_LEVEL_RESPONSE = 0x15
    SET_RATE_OF_INCREASE_ALERT_LEVEL = 0x16
    GET_RATE_OF_INCREASE_ALERT_LEVEL = 0x17
    RATE_OF_INCREASE_ALERT_LEVEL_RESPONSE = 0x18
    RESET_DEVICE_SPECIFIC_ALERT = 0x19
    START_THE_SESSION = 0x1A
    STOP_THE_SESSION = 0x1B
    RESPONSE_CODE = 0x1C


class CgmSocpResponseCode(OpenIntEnum):
    """Response Code Values (GSS *CGM Specific Ops Control Point*); others RFU (kept)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERAND = 0x03
    PROCEDURE_NOT_COMPLETED = 0x04
    PARAMETER_OUT_OF_RANGE = 0x05


class CgmCalibrationStatus(enum.IntFlag):
    """Calibration Status of a Calibration Value; bits 3-7 are RFU."""

    CALIBRATION_DATA_REJECTED = 1 << 0
    CALIBRATION_DATA_OUT_OF_RANGE = 1 << 1
    CALIBRATION_PROCESS_PENDING = 1 << 2


_NO_CALIBRATION_STATUS = CgmCalibrationStatus(0)


@dataclass(frozen=True, slots=True)
class CgmCalibrationValue:
    """The Calibration Value operand (Op Codes 0x04 and 0x06), 10 bytes."""

    glucose_concentration_mg_dl: MedFloat
    calibration_time_min: int
    type: CgmType
    sample_location: CgmSampleLocation
    next_calibration_time_min: int
    calibration_data_record_number: int
    calibration_status: CgmCalibrationStatus = _NO_CALIBRATION_STATUS


@dataclass(frozen=True, slots=True)
class CgmSocpResponse:
    """The operand of Response Code (0x1C): the request it answers and the outcome."""

    request_op_code: CgmSocpOpCode
    response_code: CgmSocpResponseCode


#: What an operand decodes to, by Op Code.
CgmSocpOperand = int | MedFloat | CgmCalibrationValue | CgmSocpResponse | None


@dataclass(frozen=True, slots=True)
class CgmSpecificOpsControlPoint:
    """A CGM Specific Ops Control Point value, written by the collector or indicated back.

    ``operand`` is an ``int`` for the communication interval (minutes) and the calibration
    record number, a :class:`MedFloat` for the alert levels (mg/dL or mg/dL/min), a
    :class:`CgmCalibrationValue`, a :class:`CgmSocpResponse` or ``None``.
    """

    op_code: CgmSocpOpCode
    operand: CgmSocpOperand = None
    secured: bool = False


class _Operand(enum.Enum):
    NONE = 0
    UINT8 = 1
    UINT16 = 2
    SFLOAT = 3
    CALIBRATION = 4
    RESPONSE = 5


_OPERAND_SIZES = {
    _Operand.NONE: 0,
    _Operand.UINT8: 1,
    _Operand.UINT16: 2,
    _Operand.SFLOAT: 2,
    _Operand.CALIBRATION: 10,
    _Operand.RESPONSE: 2,
}
_SFLOAT_OPS = frozenset({0x07, 0x09, 0x0A, 0x0C, 0x0D, 0x0F, 0x10, 0x12, 0x13, 0x15, 0x16, 0x18})
_NONE_OPS = frozenset({0x02, 0x08, 0x0B, 0x0E, 0x11, 0x14, 0x17, 0x19, 0x1A, 0x1B})


def _operand_kind(op_code: int) -> _Operand | None:
    """The operand of an Op Code. The communication interval is uint8 in both directions
    (CGMS 1.0.2; GSS's table says uint16 for the response, which Nordic's collector and
    sensor code do not follow)."""
    if op_code in _SFLOAT_OPS:
        return _Operand.SFLOAT
    if op_code in _NONE_OPS:
        return _Operand.NONE
    return {
        0x01: _Operand.UINT8,
        0x03: _Operand.UINT8,
        0x04: _Operand.CALIBRATION,
        0x06: _Operand.CALIBRATION,
        0x05: _Operand.UINT16,
        0x1C: _Operand.RESPONSE,
    }.get(op_code)


def _decode_calibration(data: bytes) -> CgmCalibrationValue:
    status = data[10]
    if status & 0xF8:
        fail(CGM_SPECIFIC_OPS_CONTROL_POINT, _SOCP_NAME, "reserved Calibration Status bits", 10)
    type_, location = _type_location(data[5])
    return CgmCalibrationValue(
        _sfloat(data, 1),
        _u16(data, 3),
        type_,
        location,
        _u16(data, 6),
        _u16(data, 8),
        CgmCalibrationStatus(status),
    )


def decode_cgm_specific_ops_control_point(
    data: bytes, *, e2e_crc: bool | None = None
) -> CgmSpecificOpsControlPoint:
    """Decode 0x2AAC (a request or a response). A reserved Op Code is refused: its operand's
    length is unknown."""
    c, name = CGM_SPECIFIC_OPS_CONTROL_POINT, _SOCP_NAME
    if not data:
        fail(c, name, "empty value: needs an Op Code", 0)
    op_code = data[0]
    kind = _operand_kind(op_code)
    if kind is None:
        fail(c, name, f"reserved Op Code 0x{op_code:02X}", 0)
    base = 1 + _OPERAND_SIZES[kind]
    secured = _crc_present(len(data), base, e2e_crc, characteristic=c, name=name)
    if secured:
        check_e2e_crc(data, 0, base, characteristic=c, name=name)
    operand: CgmSocpOperand = None
    if kind is _Operand.UINT8:
        operand = data[1]
    elif kind is _Operand.UINT16:
        operand = _u16(data, 1)
    elif kind is _Operand.SFLOAT:
        operand = _sfloat(data, 1)
    elif kind is _Operand.CALIBRATION:
        operand = _decode_calibration(data)
    elif kind is _Operand.RESPONSE:
        operand = CgmSocpResponse(CgmSocpOpCode(data[1]), CgmSocpResponseCode(data[2]))
    return CgmSpecificOpsControlPoint(CgmSocpOpCode(op_code), operand, secured)


def _encode_calibration(value: CgmCalibrationValue) -> bytes:
    for what, number in (
        ("calibration time", value.calibration_time_min),
        ("next calibration time", value.next_calibration_time_min),
        ("calibration data record number", value.calibration_data_record_number),
    ):
        _check_u16(number, what, _SOCP_NAME)
    status = int(value.calibration_status)
    if not 0 <= status <= 0x07:
        raise EncodeError(_SOCP_NAME, f"reserved Calibration Status bits in 0x{status:X}")
    return (
        encode_medfloat16(value.glucose_concentration_mg_dl)
        + value.calibration_time_min.to_bytes(2, "little")
        + bytes((_type_location_byte(_SOCP_NAME, value.type, value.sample_location),))
        + value.next_calibration_time_min.to_bytes(2, "little")
        + value.calibration_data_record_number.to_bytes(2, "little")
        + bytes((status,))
    )


def _encode_operand(kind: _Operand, operand: CgmSocpOperand) -> bytes | None:
    """The operand bytes, or ``None`` when ``operand`` is not of the kind the Op Code takes."""
    if kind is _Operand.NONE:
        return b"" if operand is None else None
    if kind is _Operand.UINT8 and isinstance(operand, int) and 0 <= operand <= 0xFF:
        return bytes((operand,))
    if kind is _Operand.UINT16 and isinstance(operand, int) and 0 <= operand <= 0xFFFF:
        return operand.to_bytes(2, "little")
    if kind is _Operand.SFLOAT and isinstance(operand, MedFloat):
        return encode_medfloat16(operand)
    if kind is _Operand.CALIBRATION and isinstance(operand, CgmCalibrationValue):
        return _encode_calibration(operand)
    if kind is _Operand.RESPONSE and isinstance(operand, CgmSocpResponse):
        request, code = int(operand.request_op_code), int(operand.response_code)
        if 0 <= request <= 0xFF and 0 <= code <= 0xFF:
            return bytes((request, code))
    return None


def encode_cgm_specific_ops_control_point(value: CgmSpecificOpsControlPoint) -> bytes:
    """Encode 0x2AAC; the operand must be of the kind the Op Code takes."""
    op_code = int(value.op_code)
    kind = _operand_kind(op_code)
    if kind is None:
        raise EncodeError(_SOCP_NAME, f"reserved Op Code 0x{op_code:02X}")
    operand = _encode_operand(kind, value.operand)
    if operand is None:
        raise EncodeError(_SOCP_NAME, f"operand {value.operand!r} does not fit Op Code {op_code}")
    body = bytes((op_code,)) + operand
    return _finish(body, value.secured)


codec(
    CGM_SPECIFIC_OPS_CONTROL_POINT,
    _SOCP_NAME,
    gss="CGM Specific Ops Control Point",
    service="CGMS 1.0.2 (CGM Specific Ops Control Point characteristic)",
    values=(CgmSpecificOpsControlPoint,),
    encode=encode_cgm_specific_ops_control_point,
)(decode_cgm_specific_ops_control_point)
