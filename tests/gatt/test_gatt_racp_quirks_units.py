"""RACP vectors, device quirks and unit conversions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from protocols import gatt as g
from protocols.errors import EncodeError
from protocols.gatt import units

# --- RACP: Nordic RecordAccessControlPointDataCallbackTest responses --------------------------


@pytest.mark.parametrize(
    ("data", "request_op", "code"),
    [
        (bytes([6, 0, 1, 1]), 1, g.RacpResponseCode.SUCCESS),
        (bytes([6, 0, 12, 2]), 12, g.RacpResponseCode.OP_CODE_NOT_SUPPORTED),
        (bytes([6, 0, 1, 3]), 1, g.RacpResponseCode.INVALID_OPERATOR),
        (bytes([6, 0, 2, 4]), 2, g.RacpResponseCode.OPERATOR_NOT_SUPPORTED),
        (bytes([6, 0, 1, 5]), 1, g.RacpResponseCode.INVALID_OPERAND),
        (bytes([6, 0, 1, 6]), 1, g.RacpResponseCode.NO_RECORDS_FOUND),
        (bytes([6, 0, 3, 7]), 3, g.RacpResponseCode.ABORT_UNSUCCESSFUL),
        (bytes([6, 0, 2, 8]), 2, g.RacpResponseCode.PROCEDURE_NOT_COMPLETED),
        (bytes([6, 0, 2, 9]), 2, g.RacpResponseCode.OPERAND_NOT_SUPPORTED),
    ],
)
def test_racp_response_codes(data: bytes, request_op: int, code: g.RacpResponseCode) -> None:
    m = g.decode(0x2A52, data)
    assert m == g.RacpResponse(request_op, code)
    assert isinstance(m, g.RacpResponse)
    assert m.completed == (
        code in (g.RacpResponseCode.SUCCESS, g.RacpResponseCode.NO_RECORDS_FOUND)
    )
    assert g.encode(m) == data


def test_racp_number_of_records_is_uint16_only() -> None:
    assert g.decode(0x2A52, bytes([5, 0, 2, 1])) == g.RacpNumberOfStoredRecords(258)
    # Nordic also accepts 1- and 4-byte counts; GLS/PLXS/CGMS: uint16 (docs/protocols/phd.md 2.6).
    for bad in (bytes([5, 0, 1]), bytes([5, 0, 4, 3, 2, 1]), bytes([5, 0, 3, 2, 1])):
        with pytest.raises(g.DecodeError):
            g.decode(0x2A52, bad)


def test_racp_invalid_values() -> None:
    # Nordic: response with operator 1 is invalid; reserved response code 10 is rejected here.
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A52, bytes([6, 1, 1]))
    assert info.value.offset == 1
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A52, bytes([6, 0, 1, 10]))
    assert info.value.offset == 3
    with pytest.raises(g.DecodeError):
        g.decode(0x2A52, bytes([1, 4, 1, 9, 0, 2, 0]))  # range minimum 9 > maximum 2
    with pytest.raises(g.DecodeError):
        g.decode(0x2A52, bytes([1, 3, 0x09, 1, 0]))  # reserved filter type
    with pytest.raises(g.DecodeError):
        g.decode(0x2A52, bytes([1, 3, 0x03, 1, 0]))  # reserved (0x04 is Omron's, 0x03 is not)
    with pytest.raises(EncodeError):
        g.RacpRequest.report_from_sequence(1, g.RacpFilterType.USER_FACING_TIME)


@pytest.mark.parametrize(
    ("racp_request", "wire"),
    [
        # docs/protocols/phd.md 2.6 download procedure.
        (g.RacpRequest.report_all(), "0101"),
        (g.RacpRequest.count_all(), "0401"),
        (g.RacpRequest.abort(), "0300"),
        (g.RacpRequest.report_from_sequence(43), "0103012b00"),
        # SpeziBluetooth RecordAccessControlPointTests operands (sequence numbers 41, 12..412).
        (
            g.RacpRequest(
                g.RacpOpCode.DELETE_STORED_RECORDS,
                g.RacpOperator.LESS_THAN_OR_EQUAL_TO,
                g.RacpFilterType.SEQUENCE_NUMBER,
                maximum=41,
            ),
            "0202012900",
        ),
        (
            g.RacpRequest(
                g.RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
                g.RacpOperator.WITHIN_RANGE_OF,
                g.RacpFilterType.SEQUENCE_NUMBER,
                minimum=12,
                maximum=412,
            ),
            "0404010c009c01",
        ),
        (
            g.RacpRequest(
                g.RacpOpCode.REPORT_STORED_RECORDS,
                g.RacpOperator.GREATER_THAN_OR_EQUAL_TO,
                g.RacpFilterType.USER_FACING_TIME,
                minimum=g.DateTime(2024, 6, 1, 0, 0, 0),
            ),
            "010302e8070601000000",
        ),
        (g.RacpRequest(g.RacpOpCode.REPORT_STORED_RECORDS, g.RacpOperator.LAST_RECORD), "0106"),
        # SpeziOmron OmronRecordAccessOperand: Omron's vendor filter type 0x04, uint16 LE
        # (its greaterThanOrEqualTo(sequenceNumber:), written here for sequence number 1234).
        (
            g.RacpRequest.report_from_sequence(1234, g.RacpFilterType.OMRON_SEQUENCE_NUMBER),
            "010304d204",
        ),
        (
            g.RacpRequest(
                g.RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
                g.RacpOperator.LESS_THAN_OR_EQUAL_TO,
                g.RacpFilterType.OMRON_SEQUENCE_NUMBER,
                maximum=7,
            ),
            "0402040700",
        ),
    ],
)
def test_racp_requests(racp_request: g.RacpRequest, wire: str) -> None:
    assert g.encode(racp_request) == bytes.fromhex(wire)
    assert g.decode(0x2A52, bytes.fromhex(wire)) == racp_request


# --- Quirks -------------------------------------------------------------------------------

# Constructed from the Beurer behaviour described in derdilla/blood-pressure-monitor-fl PR #735
# and #737 (BM85) and docs/protocols/phd.md 6.2; not a capture. 124/80 mmHg, MAP 0,
# 2024-05-01 08:30:00, pulse 72 big-endian, unflagged user 1, status big-endian (irregular pulse).
BEURER_BM85 = bytes.fromhex("567c0050000000e8070501081e000048010004")


def test_beurer_payload_is_rejected_when_strict() -> None:
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A35, BEURER_BM85)
    assert "reserved flag bits" in info.value.reason


def test_beurer_quirk_corrects_and_marks() -> None:
    profile = g.select_profile(manufacturer="Beurer GmbH", model="BM 85")
    assert profile.name == "beurer-bpm"
    m = g.decode(0x2A35, BEURER_BM85, profile=profile)
    assert isinstance(m, g.BloodPressureMeasurement)
    assert (m.systolic.value, m.diastolic.value) == (124, 80)
    assert m.pulse_rate_bpm == g.MedFloat.of(72)
    assert m.user_id == 1
    assert m.measurement_status == g.BloodPressureMeasurementStatus.of(
        irregular_pulse_detected=True
    )
    assert m.corrections == frozenset({"beurer-bpm-byte-order"})
    observations = g.to_observations(m)
    assert [o.mdc_code for o in observations] == [150021, 150022, 149546]  # MAP 0: not provided
    assert all("quirk-corrected:beurer-bpm-byte-order" in o.flags for o in observations)
    assert observations[0].timestamp == dt.datetime(2024, 5, 1, 8, 30)


def test_quirk_leaves_conformant_values_unmarked() -> None:
    profile = g.select_profile(local_name="BM85")
    conformant = bytes.fromhex("007c0050005e00")
    m = g.decode(0x2A35, conformant, profile=profile)
    assert isinstance(m, g.BloodPressureMeasurement)
    assert m.corrections == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"manufacturer": "A&D Medical", "model": "UA-651BLE"}, "and-medical"),
        ({"manufacturer": "OMRON HEALTHCARE", "model": "BP7000"}, "omron"),
        (
            {"manufacturer": "Ascensia Diabetes Care", "model": "Contour Next One"},
            "ascensia-contour",
        ),
        ({"manufacturer": "Nordic Semiconductor", "model": "nRF52"}, "strict"),
        ({}, "strict"),
    ],
)
def test_profile_selection(kwargs: dict[str, str], name: str) -> None:
    profile = g.select_profile(**kwargs)
    assert profile.name == name
    assert profile.quirk_for(0x2A35) is None


def test_and_settle_delay_by_firmware() -> None:
    fast = g.select_profile(manufacturer="A&D", model="UA-651BLE", firmware="BLP008_d016")
    slow = g.select_profile(manufacturer="A&D", model="UA-651BLE", firmware="BLP009_x")
    assert (fast.settle_delay_ms, slow.settle_delay_ms) == (40, 100)


# --- Units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (units.kpa_from_mmhg, "120", "16.00"),
        (units.mmhg_from_kpa, "16.00", "120.01"),
        (units.mmhg_from_kpa, "16.0", "120.0"),
        (units.fahrenheit_from_celsius, "37.2", "98.96"),
        (units.celsius_from_fahrenheit, "98.6", "37.00"),
        (units.kg_from_lb, "150.0", "68.039"),
        (units.lb_from_kg, "70.0", "154.3"),
        (units.mmol_per_l_from_mg_per_dl, "100", "5.551"),
        (units.mg_per_dl_from_mmol_per_l, "5.5", "99.1"),
    ],
)
def test_conversions(function: object, value: str, expected: str) -> None:
    result = function(Decimal(value))  # type: ignore[operator]
    assert str(result) == expected


def test_convert_observation_keeps_the_original() -> None:
    m = g.decode(0x2A35, bytes.fromhex("01a0f064f07bf0"))  # 16.0/10.0/12.3 kPa
    systolic = g.to_observations(m)[0]
    converted = units.convert_observation(systolic, "mm[Hg]")
    assert (converted.value, converted.unit) == (Decimal("120.0"), "mm[Hg]")
    assert (converted.original_value, converted.original_unit) == (Decimal("16.0"), "kPa")
    assert (systolic.value, systolic.unit) == (Decimal("16.0"), "kPa")
    assert units.convert_observation(converted, "kPa").original_unit == "kPa"
    assert units.convert_observation(systolic, "kPa") is systolic
    with pytest.raises(ValueError, match="no conversion"):
        units.convert_observation(systolic, "kg")
