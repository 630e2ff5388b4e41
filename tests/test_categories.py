"""Data categories (protocols.categories; docs/consent.md): every code narhub emits has one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.board_source import NARHUB_PRIVATE_BASE
from gateway.outbox.telemetry import MDC_NARHUB_EVICTED, NARHUB_TELEMETRY_BASE
from gateway.validate import PLAUSIBLE
from protocols.categories import (
    CATEGORY_BY_CODE,
    NARHUB_BOARD_BASE,
    DataCategory,
    UnknownCategoryError,
    category_of,
    parse_category,
)
from protocols.categories import NARHUB_TELEMETRY_BASE as CAT_TELEMETRY_BASE
from protocols.gatt import observation as mdc
from protocols.sensorlink.messages import SENSOR_KINDS
from protocols.uplink.device_facts import DEVICE_INFO_CODES
from rig import refday

C = DataCategory


def test_private_bases_agree_with_the_hub() -> None:
    assert NARHUB_BOARD_BASE == NARHUB_PRIVATE_BASE
    assert CAT_TELEMETRY_BASE == NARHUB_TELEMETRY_BASE == refday.NARHUB_TELEMETRY_BASE


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (mdc.MDC_PRESS_BLD_NONINV_SYS, C.VITAL_SIGNS),
        (mdc.MDC_PULS_OXIM_SAT_O2, C.VITAL_SIGNS),
        (mdc.MDC_MASS_BODY_ACTUAL, C.VITAL_SIGNS),
        (mdc.MDC_TEMP_TYMP, C.VITAL_SIGNS),
        (mdc.MDC_CONC_GLU_CAPILLARY_PLASMA, C.GLUCOSE),
        (mdc.MDC_CTXT_GLU_MEAL_FASTING, C.GLUCOSE),
        (mdc.MDC_ATTR_VAL_BATT_CHARGE, C.DEVICE_STATUS),
        (NARHUB_PRIVATE_BASE + 1, C.INDOOR_CLIMATE),
        (NARHUB_PRIVATE_BASE + 2, C.INDOOR_CLIMATE),
        (NARHUB_PRIVATE_BASE + 3, C.ACTIVITY),
        (NARHUB_PRIVATE_BASE + 4, C.ACTIVITY),
        (NARHUB_PRIVATE_BASE + 5, C.ACTIVITY),
        (NARHUB_PRIVATE_BASE + 6, C.ACTIVITY),
        (refday.TELEMETRY_CPU_TEMPERATURE, C.DEVICE_STATUS),
        (MDC_NARHUB_EVICTED, C.DEVICE_STATUS),
    ],
)
def test_category_of_named_codes(code: int, expected: DataCategory) -> None:
    assert category_of(code) is expected


def test_every_sensor_kind_has_a_category() -> None:
    for kind in SENSOR_KINDS:
        assert NARHUB_PRIVATE_BASE + kind in CATEGORY_BY_CODE, SENSOR_KINDS[kind].name


def test_every_mdc_table_and_plausibility_code_has_a_category() -> None:
    for code in set(mdc.MDC_TABLE) | set(PLAUSIBLE) | DEVICE_INFO_CODES:
        assert category_of(code) is not C.OTHER, code


def test_an_alert_keeps_its_measurement_category() -> None:
    assert category_of(mdc.MDC_PRESS_BLD_NONINV_SYS, alert=True) is C.VITAL_SIGNS
    assert category_of(NARHUB_PRIVATE_BASE + 4, alert=True) is C.ACTIVITY


def test_unknown_codes() -> None:
    assert category_of(123) is C.OTHER
    assert category_of(123, alert=True) is C.ALERTS
    assert category_of(NARHUB_TELEMETRY_BASE + 0x100) is C.OTHER


@given(st.integers(min_value=0, max_value=2**32 - 1), st.booleans())
def test_category_of_is_total(code: int, alert: bool) -> None:
    assert isinstance(category_of(code, alert=alert), DataCategory)


def test_parse_category() -> None:
    assert parse_category("indoor-climate") is C.INDOOR_CLIMATE
    with pytest.raises(UnknownCategoryError) as info:
        parse_category("climate")
    assert info.value.name == "climate"
    assert isinstance(info.value, ValueError)
