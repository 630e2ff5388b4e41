"""Data categories: which kind of personal data a reading is, for consent per recipient.

A patient agrees, per care organisation (a *recipient*: the region, the municipality), to the
kinds of data that organisation may receive (docs/consent.md). The kind is derived from the
reading alone, from a table keyed by MDC code (IEEE 11073-10101 nomenclature, the codes of
docs/protocols/phd.md section 3.2 and narhub's private codes of docs/protocols/sensor-link.md
section 4) and, for codes outside the table, by the code's range. Pure: no I/O.

An alert is routed by the category of what it measures (a blood-pressure alert is vital
signs; it goes where vital signs may go). ``ALERTS`` is the category of an alert that measures
nothing narhub knows (a code outside every table, raised as an alert); a code that is neither
known nor an alert is ``OTHER``, which no recipient receives unless consent names it.
"""

from __future__ import annotations

import enum

from protocols.gatt import observation as mdc
from protocols.uplink.device_facts import DEVICE_INFO_CODES


class DataCategory(enum.StrEnum):
    """The categories consent is given for; the values are the names in files and on the wire."""

    VITAL_SIGNS = "vital-signs"
    GLUCOSE = "glucose"
    #: Motion, bed and chair occupancy (pressure pads), doors.
    ACTIVITY = "activity"
    #: Air temperature and relative humidity indoors.
    INDOOR_CLIMATE = "indoor-climate"
    #: Batteries, device information strings, the hub's own telemetry.
    DEVICE_STATUS = "device-status"
    ALERTS = "alerts"
    #: A code narhub has no row for (new device, new firmware): leaves only with consent for it.
    OTHER = "other"


class UnknownCategoryError(ValueError):
    """A category name that is not one of :class:`DataCategory` (``name`` says which)."""

    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(c.value for c in DataCategory)
        super().__init__(f"unknown data category {name!r} (known: {known})")


def parse_category(name: str) -> DataCategory:
    """The category called ``name``; :class:`UnknownCategoryError` naming it otherwise."""
    try:
        return DataCategory(name)
    except ValueError:
        raise UnknownCategoryError(name) from None


#: narhub's private codes: MDC partition 2 (SCADA) x 65536 + private term 0xF000 + sensor
#: kind (docs/protocols/sensor-link.md section 4); the hub's telemetry from term 0xF100.
NARHUB_BOARD_BASE = 2 * 65536 + 0xF000
NARHUB_TELEMETRY_BASE = 2 * 65536 + 0xF100
#: Telemetry codes used so far (CPU temperature ... store recovered); the range is reserved.
_TELEMETRY_SPAN = 0x100

_V = DataCategory.VITAL_SIGNS
_G = DataCategory.GLUCOSE

#: MDC code -> category. Every measurement code of docs/protocols/phd.md has a row.
CATEGORY_BY_CODE: dict[int, DataCategory] = {
    # Blood pressure, pulse, temperature, weight, oximetry, heart rate: vital signs.
    mdc.MDC_PRESS_BLD_NONINV: _V,
    mdc.MDC_PRESS_BLD_NONINV_SYS: _V,
    mdc.MDC_PRESS_BLD_NONINV_DIA: _V,
    mdc.MDC_PRESS_BLD_NONINV_MEAN: _V,
    mdc.MDC_PULS_RATE_NON_INV: _V,
    mdc.MDC_TEMP_BODY: _V,
    mdc.MDC_TEMP_AXILLA: _V,
    mdc.MDC_TEMP_EAR: _V,
    mdc.MDC_TEMP_FINGER: _V,
    mdc.MDC_TEMP_GIT: _V,
    mdc.MDC_TEMP_ORAL: _V,
    mdc.MDC_TEMP_RECT: _V,
    mdc.MDC_TEMP_TOE: _V,
    mdc.MDC_TEMP_TYMP: _V,
    mdc.MDC_MASS_BODY_ACTUAL: _V,
    mdc.MDC_LEN_BODY_ACTUAL: _V,
    mdc.MDC_RATIO_MASS_BODY_LEN_SQ: _V,
    mdc.MDC_PULS_OXIM_SAT_O2: _V,
    mdc.MDC_PULS_OXIM_PULS_RATE: _V,
    mdc.MDC_PULS_OXIM_PERF_REL: _V,
    mdc.MDC_ECG_HEART_RATE: _V,
    mdc.MDC_ECG_TIME_PD_RR_GL: _V,
    # Body composition (BCS 1.0 scales): the patient's body, as weight is.
    mdc.MDC_BODY_FAT: _V,
    mdc.MDC_MASS_BODY_FAT_FREE: _V,
    mdc.MDC_MASS_BODY_SOFT_LEAN: _V,
    mdc.MDC_BODY_WATER: _V,
    mdc.MDC_BASAL_METABOLISM: _V,
    mdc.MDC_BODY_MUSCLE: _V,
    mdc.MDC_MASS_BODY_MUSCLE: _V,
    mdc.MDC_BODY_ELECTRICAL_IMPEDANCE: _V,
    # Glucose concentrations, HbA1c and the glucose context (meal, tester).
    mdc.MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: _G,
    mdc.MDC_CONC_GLU_CAPILLARY_PLASMA: _G,
    mdc.MDC_CONC_GLU_VENOUS_WHOLEBLOOD: _G,
    mdc.MDC_CONC_GLU_VENOUS_PLASMA: _G,
    mdc.MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD: _G,
    mdc.MDC_CONC_GLU_ARTERIAL_PLASMA: _G,
    mdc.MDC_CONC_GLU_CONTROL: _G,
    mdc.MDC_CONC_GLU_ISF: _G,
    mdc.MDC_CONC_GLU_TREND: _G,  # a CGM's trend, a component of its glucose reading
    mdc.MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD: _G,
    mdc.MDC_CONC_GLU_UNDETERMINED_PLASMA: _G,
    mdc.MDC_CONC_HBA1C: _G,
    mdc.MDC_CTXT_GLU_MEAL: _G,
    mdc.MDC_CTXT_GLU_MEAL_PREPRANDIAL: _G,
    mdc.MDC_CTXT_GLU_MEAL_POSTPRANDIAL: _G,
    mdc.MDC_CTXT_GLU_MEAL_FASTING: _G,
    mdc.MDC_CTXT_GLU_MEAL_CASUAL: _G,
    mdc.MDC_CTXT_GLU_TESTER: _G,
    mdc.MDC_CTXT_GLU_TESTER_SELF: _G,
    mdc.MDC_CTXT_GLU_TESTER_HCP: _G,
    mdc.MDC_CTXT_GLU_TESTER_LAB: _G,
    # The device, not the patient.
    mdc.MDC_ATTR_VAL_BATT_CHARGE: DataCategory.DEVICE_STATUS,
    mdc.MDC_PULS_OXIM_DEV_STATUS: DataCategory.DEVICE_STATUS,
    mdc.MDC_MODALITY_FAST: DataCategory.DEVICE_STATUS,
    mdc.MDC_MODALITY_SLOW: DataCategory.DEVICE_STATUS,
    mdc.MDC_MODALITY_SPOT: DataCategory.DEVICE_STATUS,
    **dict.fromkeys(DEVICE_INFO_CODES, DataCategory.DEVICE_STATUS),
    # Sensor boards (sensor-link kinds 1..6).
    NARHUB_BOARD_BASE + 1: DataCategory.INDOOR_CLIMATE,  # air-temperature
    NARHUB_BOARD_BASE + 2: DataCategory.INDOOR_CLIMATE,  # relative-humidity
    NARHUB_BOARD_BASE + 3: DataCategory.ACTIVITY,  # motion-events
    NARHUB_BOARD_BASE + 4: DataCategory.ACTIVITY,  # door-open
    NARHUB_BOARD_BASE + 5: DataCategory.ACTIVITY,  # pressure-pad-load (bed, chair)
    NARHUB_BOARD_BASE + 6: DataCategory.ACTIVITY,  # occupancy
}


def category_of(mdc_code: int, *, alert: bool = False) -> DataCategory:
    """The category of a reading with ``mdc_code``; ``alert``: it travels as an alert.

    The table first (an alert keeps its measurement's category), then the hub's telemetry
    range, then ``ALERTS`` for an unknown alert and ``OTHER`` for anything else.
    """
    known = CATEGORY_BY_CODE.get(mdc_code)
    if known is not None:
        return known
    if NARHUB_TELEMETRY_BASE <= mdc_code < NARHUB_TELEMETRY_BASE + _TELEMETRY_SPAN:
        return DataCategory.DEVICE_STATUS
    return DataCategory.ALERTS if alert else DataCategory.OTHER
