"""CGM Service 1.0.2 codecs and the E2E-CRC, vector by vector, with their sources.

Nordic = NordicSemiconductor/Android-BLE-Common-Library at c078e25 (ble-common/src/test/java/
no/nordicsemi/android/ble/common/...); the files and test methods are named at each vector.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols.gatt import DecodeError, cgm, cgm_control, numbers
from protocols.gatt.datetime_ import DateTime
from protocols.gatt.e2e_crc import E2ECrcError, crc16_mcrf4xx
from protocols.gatt.medfloat import MedFloat

# --- E2E-CRC --------------------------------------------------------------------------------


def test_crc_catalogue_check_value() -> None:
    # CRC-16/MCRF4XX check value for "123456789"; also Nordic util/CRC16Test.MCRF4XX_123456789.
    assert crc16_mcrf4xx(b"123456789") == 0x6F91


def test_crc_cgms_spec_example() -> None:
    # CGMS 1.0.1 section 3.11 example, as Nordic util/CRC16Test.MCRF4XX_CGMS reads it: the
    # bytes 3E 01..09 give 0x2F01 (the PDF prints the two bytes the other way round).
    assert crc16_mcrf4xx(bytes([0x3E, 1, 2, 3, 4, 5, 6, 7, 8, 9])) == 0x2F01


def test_crc_single_byte_and_microchip_note() -> None:
    # Nordic util/CRC16Test.MCRF4XX_A and MCRF4XX_8552F189 (Microchip AN752).
    assert crc16_mcrf4xx(b"A") == 0x5C0A
    assert crc16_mcrf4xx(bytes([0x58, 0x25, 0x1F, 0x98])) == 0x07F1


# --- CGM Measurement ------------------------------------------------------------------------

# Nordic callback/cgm/ContinuousGlucoseMeasurementDataCallbackTest
# .onContinuousGlucoseMeasurementReceived_full: Size 15, flags 0b11100011, glucose 1234e-2,
# offset 5, octets 02 14 FF, trend 2e-1, quality 997e-1, E2E-CRC 0x3F8E.
NORDIC_FULL = bytes.fromhex("0fe3d2e405000214ff02f0e5f38e3f")
# ..._small: Size 6, flags 0, glucose 12e1, offset 6.
NORDIC_SMALL = bytes.fromhex("06000c100600")
# ..._double: two small records, offsets 5 and 6.
NORDIC_DOUBLE = bytes.fromhex("06000c10050006000c100600")
# ..._crcError: Size 8, flags 0, glucose 12e1, offset 6, CRC 0x6F58 (correct is 0x6F59).
NORDIC_BAD_CRC = bytes.fromhex("08000c100600586f")


def test_nordic_full_record() -> None:
    m = cgm.decode_cgm_measurement(NORDIC_FULL, e2e_crc=True)
    (record,) = m.records
    assert record.glucose_concentration_mg_dl.value == Decimal("12.34")
    assert record.time_offset_min == 5
    assert record.trend_mg_dl_per_min == MedFloat.of("0.2")
    assert record.quality_percent == MedFloat.of("99.7")
    assert record.secured
    status = record.sensor_status_annunciation
    assert status is not None
    # Nordic asserts battery low, temperature too high, calibration recommended and a Sensor
    # Status octet of 0xFF; read in the GSS octet order those are the same bits.
    assert cgm.CgmSensorStatus.DEVICE_BATTERY_LOW in status
    assert cgm.CgmSensorStatus.SENSOR_TEMPERATURE_TOO_HIGH in status
    assert cgm.CgmSensorStatus.CALIBRATION_RECOMMENDED in status
    assert cgm.CgmSensorStatus.SESSION_STOPPED not in status
    assert cgm.CgmSensorStatus.SENSOR_TEMPERATURE_TOO_LOW not in status
    assert record.warning_octet == 0xFF
    assert cgm.encode_cgm_measurement(m) == NORDIC_FULL
    # Without the Feature the Size says a CRC is there, and it is checked.
    assert cgm.decode_cgm_measurement(NORDIC_FULL) == m


def test_nordic_small_and_double() -> None:
    (small,) = cgm.decode_cgm_measurement(NORDIC_SMALL, e2e_crc=False).records
    assert small.glucose_concentration_mg_dl.value == 120
    assert small.time_offset_min == 6
    assert small.sensor_status_annunciation is None
    assert not small.secured
    double = cgm.decode_cgm_measurement(NORDIC_DOUBLE)
    assert [r.time_offset_min for r in double.records] == [5, 6]
    assert cgm.encode_cgm_measurement(double) == NORDIC_DOUBLE


def test_nordic_bad_crc_is_a_typed_error_never_a_reading() -> None:
    with pytest.raises(E2ECrcError) as info:
        cgm.decode_cgm_measurement(NORDIC_BAD_CRC)
    assert isinstance(info.value, DecodeError)
    assert isinstance(info.value, ValueError)
    assert info.value.characteristic == numbers.CGM_MEASUREMENT
    assert info.value.received == 0x6F58
    assert info.value.computed == 0x6F59
    assert info.value.offset == 6


@pytest.mark.parametrize(
    ("data", "e2e_crc", "offset", "fragment"),
    [
        (b"", None, 0, "empty"),
        # Nordic ..._onInvalidDataReceived_tooShort: Size 6 but only 5 bytes.
        (bytes.fromhex("06e30c1006"), None, 5, "truncated record"),
        (NORDIC_SMALL, True, 6, "truncated E2E-CRC"),
        (NORDIC_FULL, False, 13, "2 trailing bytes"),
        (bytes.fromhex("05000c1006"), None, 0, "below the minimum"),
        (bytes.fromhex("06040c100600"), None, 1, "reserved flag bits"),
        (bytes.fromhex("07800c10060040"), None, 6, "Status octet"),
        (NORDIC_SMALL + b"\x00", None, 6, "Size 0 is below"),
    ],
)
def test_invalid_measurements(
    data: bytes, e2e_crc: bool | None, offset: int, fragment: str
) -> None:
    with pytest.raises(DecodeError) as info:
        cgm.decode_cgm_measurement(data, e2e_crc=e2e_crc)
    assert info.value.characteristic == numbers.CGM_MEASUREMENT
    assert info.value.offset == offset
    assert fragment in info.value.reason


def test_record_crc_is_per_record() -> None:
    secured = cgm.CgmMeasurementRecord(MedFloat.of(98), 15, secured=True)
    plain = cgm.CgmMeasurementRecord(MedFloat.of(99), 20)
    wire = cgm.encode_cgm_measurement(cgm.CgmMeasurement((secured, plain)))
    assert wire[0] == 8
    assert cgm.decode_cgm_measurement(wire).records == (secured, plain)
    with pytest.raises(DecodeError):
        cgm.decode_cgm_measurement(wire, e2e_crc=True)


# --- CGM Feature ----------------------------------------------------------------------------

# Nordic callback/cgm/CGMFeatureDataCallbackTest: features 0b11001111001101110, type/location
# 0x16 (arterial plasma, finger), CRC 0xC18A (..._full); E2E bit clear and 0xFFFF
# (..._crcNotSupported); a wrong CRC 0xBEAF (...WithCrcError).
FEATURE_SECURED = bytes.fromhex("6e9e01168ac1")
FEATURE_PLAIN = bytes.fromhex("6e8e0116ffff")


def test_nordic_feature_with_crc() -> None:
    feature = cgm.decode_cgm_feature(FEATURE_SECURED)
    assert feature.e2e_crc_supported
    assert feature.type is cgm.CgmType.ARTERIAL_PLASMA
    assert feature.sample_location is cgm.CgmSampleLocation.FINGER
    bits = cgm.CgmFeatureBits
    assert bits.CALIBRATION not in feature.features
    assert bits.PATIENT_HIGH_LOW_ALERTS in feature.features
    assert bits.RATE_OF_INCREASE_DECREASE_ALERTS not in feature.features
    assert bits.CGM_QUALITY in feature.features
    assert bits.MULTIPLE_BOND not in feature.features
    assert cgm.encode_cgm_feature(feature) == FEATURE_SECURED


def test_nordic_feature_without_crc_and_bad_crcs() -> None:
    feature = cgm.decode_cgm_feature(FEATURE_PLAIN)
    assert not feature.e2e_crc_supported
    assert cgm.encode_cgm_feature(feature) == FEATURE_PLAIN
    with pytest.raises(E2ECrcError):
        cgm.decode_cgm_feature(FEATURE_SECURED[:4] + bytes.fromhex("afbe"))
    # Nordic ..._onInvalidDataReceived_wrongDefaultCrc: not supported means 0xFFFF.
    with pytest.raises(DecodeError, match="0xFFFF"):
        cgm.decode_cgm_feature(FEATURE_PLAIN[:4] + b"\x00\x00")
    with pytest.raises(DecodeError, match="truncated E2E-CRC"):
        cgm.decode_cgm_feature(FEATURE_PLAIN[:4])


def test_reserved_type_and_location_are_kept() -> None:
    feature = cgm.decode_cgm_feature(bytes.fromhex("000000e0ffff"))
    assert feature.type.is_reserved
    assert int(feature.type) == 0
    assert int(feature.sample_location) == 0xE
    assert cgm.encode_cgm_feature(feature) == bytes.fromhex("000000e0ffff")


# --- CGM Status, Session Start Time, Session Run Time ---------------------------------------


def test_nordic_status_all_flags_with_crc() -> None:
    # Nordic callback/cgm/CGMStatusDataCallbackTest.onContinuousGlucoseMonitorStatusChanged_
    # withCrc: offset 5, status 0xFF3F3F, CRC 0xE0A7.
    data = bytes.fromhex("05003f3fffa7e0")
    status = cgm.decode_cgm_status(data)
    assert status.time_offset_min == 5
    assert status.status == 0xFF3F3F
    assert status.secured
    assert cgm.encode_cgm_status(status) == data
    # ..._noCrc: offset 6, 0x010101.
    plain = cgm.decode_cgm_status(bytes.fromhex("0600010101"), e2e_crc=False)
    assert plain.status == (
        cgm.CgmSensorStatus.SESSION_STOPPED
        | cgm.CgmSensorStatus.TIME_SYNCHRONIZATION_REQUIRED
        | cgm.CgmSensorStatus.RESULT_LOWER_THAN_PATIENT_LOW_LEVEL
    )
    # ...ReceivedWithCrcError: the CRC of the first vector on other bytes.
    with pytest.raises(E2ECrcError):
        cgm.decode_cgm_status(bytes.fromhex("0600010101a7e0"))
    # ...onInvalidDataReceived: 6 bytes is neither 5 nor 7.
    with pytest.raises(DecodeError, match="expects 5, or 7"):
        cgm.decode_cgm_status(bytes.fromhex("060001010101"))


def test_nordic_session_start_time() -> None:
    # Nordic callback/cgm/CGMSessionStartTimeDataCallbackTest: 2018-04-24 13:08:24, time zone
    # +8 quarter hours, DST 4 (+1 h), CRC 0xC2E0; the same with 0xC3E0 is a CRC error; 10 bytes
    # are invalid; year 0 with DST 2 and no CRC decodes (year not known).
    data = bytes([0xE2, 0x07, 4, 24, 13, 8, 24, 8, 4, 0xE0, 0xC2])
    sst = cgm.decode_cgm_session_start_time(data)
    assert sst.session_start_time == DateTime(2018, 4, 24, 13, 8, 24)
    assert sst.time_zone_15min == 8
    assert sst.dst_offset is cgm.DstOffset.DAYLIGHT_TIME
    assert sst.dst_offset.minutes == 60
    assert sst.secured
    assert cgm.encode_cgm_session_start_time(sst) == data
    with pytest.raises(E2ECrcError):
        cgm.decode_cgm_session_start_time(data[:-1] + b"\xc3")
    with pytest.raises(DecodeError):
        cgm.decode_cgm_session_start_time(data[:-1])
    no_year = cgm.decode_cgm_session_start_time(bytes([0, 0, 4, 24, 13, 8, 24, 8, 2]))
    assert no_year.session_start_time.to_datetime() is None
    assert no_year.dst_offset is cgm.DstOffset.HALF_AN_HOUR_DAYLIGHT_TIME
    with pytest.raises(DecodeError, match="reserved DST"):
        cgm.decode_cgm_session_start_time(bytes([0xE2, 0x07, 4, 24, 13, 8, 24, 8, 3]))
    with pytest.raises(DecodeError, match="reserved Time Zone"):
        cgm.decode_cgm_session_start_time(bytes([0xE2, 0x07, 4, 24, 13, 8, 24, 60, 0]))


def test_nordic_session_run_time() -> None:
    # Nordic callback/cgm/CGMSessionRunTimeDataCallbackTest: 2 h with CRC 0xC308; 0xC309 is
    # a CRC error; 2 bytes without CRC; 3 bytes invalid.
    srt = cgm.decode_cgm_session_run_time(bytes.fromhex("020008c3"))
    assert srt == cgm.CgmSessionRunTime(2, secured=True)
    assert cgm.encode_cgm_session_run_time(srt) == bytes.fromhex("020008c3")
    with pytest.raises(E2ECrcError):
        cgm.decode_cgm_session_run_time(bytes.fromhex("020009c3"))
    assert cgm.decode_cgm_session_run_time(b"\x02\x00") == cgm.CgmSessionRunTime(2)
    with pytest.raises(DecodeError):
        cgm.decode_cgm_session_run_time(b"\x02\x00\x01")


# --- CGM Specific Ops Control Point ---------------------------------------------------------

SOCP = cgm_control.CgmSocpOpCode


@pytest.mark.parametrize(
    ("data", "op_code", "operand", "secured"),
    [
        # Nordic callback/cgm/CGMSpecificOpsControlPointDataCallbackTest, method by method.
        (bytes([28, 2, 1]), SOCP.RESPONSE_CODE, (SOCP(2), 1), False),  # ...OperationCompleted
        (bytes([28, 2, 2]), SOCP.RESPONSE_CODE, (SOCP(2), 2), False),  # ...OperationError
        (bytes([28, 2, 1, 0x3C, 0x3B]), SOCP.RESPONSE_CODE, (SOCP(2), 1), True),  # _withCrc
        (bytes([28, 2, 2, 0xA7, 0x09]), SOCP.RESPONSE_CODE, (SOCP(2), 2), True),  # Error_withCrc
        (bytes([9, 12, 0xF0]), SOCP.PATIENT_HIGH_ALERT_LEVEL_RESPONSE, "1.2", False),
        (bytes([12, 11, 0xC0, 0x34, 0xBE]), SOCP.PATIENT_LOW_ALERT_LEVEL_RESPONSE, "0.0011", True),
        (bytes([15, 1, 0]), SOCP.HYPO_ALERT_LEVEL_RESPONSE, "1", False),
        (bytes([18, 10, 32]), SOCP.HYPER_ALERT_LEVEL_RESPONSE, "1.0E+3", False),
        (bytes([21, 1, 16]), SOCP.RATE_OF_DECREASE_ALERT_LEVEL_RESPONSE, "1E+1", False),
        (bytes([24, 10, 64]), SOCP.RATE_OF_INCREASE_ALERT_LEVEL_RESPONSE, "1.0E+5", False),
        (bytes([3, 11]), SOCP.CGM_COMMUNICATION_INTERVAL_RESPONSE, 11, False),
        (bytes([3, 10, 0x8A, 0x75]), SOCP.CGM_COMMUNICATION_INTERVAL_RESPONSE, 10, True),
    ],
)
def test_nordic_socp_responses(
    data: bytes, op_code: cgm_control.CgmSocpOpCode, operand: object, secured: bool
) -> None:
    value = cgm_control.decode_cgm_specific_ops_control_point(data)
    assert value.op_code is op_code
    assert value.secured is secured
    if isinstance(operand, tuple):
        assert value.operand == cgm_control.CgmSocpResponse(*operand)  # type: ignore[arg-type]
    elif isinstance(operand, str):
        assert isinstance(value.operand, MedFloat)
        assert value.operand.value == Decimal(operand)
        assert str(value.operand.value) == operand
    else:
        assert value.operand == operand
    assert cgm_control.encode_cgm_specific_ops_control_point(value) == data


def test_nordic_socp_calibration_value() -> None:
    # ...onContinuousGlucoseCalibrationValueReceived(_withCrc): 1e2 mg/dL at 10 min, type 2
    # (capillary plasma) / location 3 (earlobe), next at 20 min, record 1, status 0b100, CRC
    # 0xB2BF.
    data = bytes([6, 0x01, 0x20, 10, 0, 0x32, 20, 0, 1, 0, 4, 0xBF, 0xB2])
    value = cgm_control.decode_cgm_specific_ops_control_point(data)
    calibration = value.operand
    assert isinstance(calibration, cgm_control.CgmCalibrationValue)
    assert calibration.glucose_concentration_mg_dl.value == 100
    assert calibration.calibration_time_min == 10
    assert calibration.next_calibration_time_min == 20
    assert calibration.type is cgm.CgmType.CAPILLARY_PLASMA
    assert calibration.sample_location is cgm.CgmSampleLocation.EARLOBE
    assert calibration.calibration_data_record_number == 1
    pending = cgm_control.CgmCalibrationStatus.CALIBRATION_PROCESS_PENDING
    assert calibration.calibration_status is pending
    assert cgm_control.encode_cgm_specific_ops_control_point(value) == data
    assert cgm_control.decode_cgm_specific_ops_control_point(data[:-2], e2e_crc=False).operand == (
        calibration
    )


def test_socp_requests_and_refusals() -> None:
    start = cgm_control.CgmSpecificOpsControlPoint(SOCP.START_THE_SESSION)
    assert cgm_control.encode_cgm_specific_ops_control_point(start) == b"\x1a"
    interval = cgm_control.CgmSpecificOpsControlPoint(SOCP.SET_CGM_COMMUNICATION_INTERVAL, 5, True)
    wire = cgm_control.encode_cgm_specific_ops_control_point(interval)
    assert wire[:2] == b"\x01\x05"
    assert cgm_control.decode_cgm_specific_ops_control_point(wire) == interval
    # Nordic ...onInvalidDataReceived: a calibration response of 3 bytes.
    with pytest.raises(DecodeError):
        cgm_control.decode_cgm_specific_ops_control_point(bytes([6, 10, 1]))
    with pytest.raises(DecodeError, match="reserved Op Code"):
        cgm_control.decode_cgm_specific_ops_control_point(b"\x1d")
    unknown = cgm_control.decode_cgm_specific_ops_control_point(bytes([0x1C, 0x44, 0x09]))
    assert isinstance(unknown.operand, cgm_control.CgmSocpResponse)
    assert unknown.operand.request_op_code.is_reserved
    assert unknown.operand.response_code.is_reserved
