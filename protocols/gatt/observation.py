"""Normalised observations: a decoded measurement mapped to MDC, LOINC and UCUM.

Codes follow IEEE 11073-10101 (MDC, 32-bit partition x 65536 + term) and the HL7 FHIR
Personal Health Device IG mapping tables (docs/protocols/phd.md section 3). Units are UCUM
codes. An observation always keeps the device's value and unit; a converted value is a *new*
observation that names the original (:func:`protocols.gatt.units.convert_observation`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from protocols.gatt.generator import fast_init
from protocols.gatt.medfloat import MedFloat

if TYPE_CHECKING:
    from protocols.gatt.datetime_ import DateTime


# The dataclass __init__ of a frozen class calls ``object.__setattr__`` per field (2.3 us for
# these 14); the generated one sets the slots through their descriptors, twice as fast
# (``narhub bench pipeline``), with the same signature. Assignment still raises.
@fast_init
@dataclass(frozen=True, slots=True)
class Observation:
    """One observed quantity (or coded value) with its codes; values keep device precision.

    Attributes:
        mdc_code: IEEE 11073-10101 code (partition x 65536 + term).
        loinc: the LOINC code the PHD IG pairs with it, or ``None``.
        value: the value in ``unit``; ``None`` for a special value or a coded observation.
        special: ``"nan"``, ``"nres"``, ``"+inf"``, ``"-inf"`` or ``"reserved"``, else ``None``.
        unit: UCUM code (``""`` for a coded observation).
        timestamp: device wall-clock time (naive) when the device sent one.
        flags: status names (``"irregular-pulse"``), ``"quirk-corrected:<name>"`` and the like.
        body_site: measurement site (temperature type), lower-case name.
        user_id: the device's user index (0xFF = unknown user) when sent.
        sequence_number: the device record sequence number (glucose) when sent.
        modality: MDC supplemental type (``MDC_MODALITY_FAST`` ...) when relevant.
        coded_value: for a coded enumeration observation (glucose meal), the MDC code of the
            value; ``value`` and ``special`` are then ``None``.
        original_value / original_unit: set only on a converted observation.
    """

    mdc_code: int
    loinc: str | None
    value: Decimal | None
    special: str | None
    unit: str
    timestamp: dt.datetime | None = None
    flags: frozenset[str] = frozenset()
    body_site: str | None = None
    user_id: int | None = None
    sequence_number: int | None = None
    modality: int | None = None
    coded_value: int | None = None
    original_value: Decimal | None = None
    original_unit: str | None = None

    @classmethod
    def from_medfloat(
        cls,
        mdc_code: int,
        loinc: str | None,
        m: MedFloat,
        unit: str,
        *,
        timestamp: dt.datetime | None = None,
        flags: frozenset[str] = frozenset(),
        body_site: str | None = None,
        user_id: int | None = None,
        sequence_number: int | None = None,
        modality: int | None = None,
    ) -> Observation:
        """Build from a :class:`MedFloat`, mapping a special value to its name."""
        special = m.special
        return cls(
            mdc_code,
            loinc,
            m.value,
            None if special is None else special.value,
            unit,
            timestamp,
            flags,
            body_site,
            user_id,
            sequence_number,
            modality,
        )


# --- MDC codes (IEEE 11073-10101), docs/protocols/phd.md section 3.2 ----------------------------
# Blood pressure (SCADA partition).
MDC_PRESS_BLD_NONINV = 150020
MDC_PRESS_BLD_NONINV_SYS = 150021
MDC_PRESS_BLD_NONINV_DIA = 150022
MDC_PRESS_BLD_NONINV_MEAN = 150023
MDC_PULS_RATE_NON_INV = 149546
# Temperature.
MDC_TEMP_BODY = 150364
MDC_TEMP_AXILLA = 188452
MDC_TEMP_EAR = 188428
MDC_TEMP_FINGER = 188432
MDC_TEMP_GIT = 188456
MDC_TEMP_ORAL = 188424
MDC_TEMP_RECT = 188420
MDC_TEMP_TOE = 188448
MDC_TEMP_TYMP = 150392
# Weight scale.
MDC_MASS_BODY_ACTUAL = 188736
MDC_LEN_BODY_ACTUAL = 188740
MDC_RATIO_MASS_BODY_LEN_SQ = 188752
# Pulse oximetry.
MDC_PULS_OXIM_SAT_O2 = 150456
MDC_PULS_OXIM_PULS_RATE = 149530
MDC_PULS_OXIM_PERF_REL = 150448
MDC_PULS_OXIM_DEV_STATUS = 150604
MDC_MODALITY_FAST = 150580
MDC_MODALITY_SLOW = 150584
MDC_MODALITY_SPOT = 150588
# Glucose.
MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD = 160184
MDC_CONC_GLU_CAPILLARY_PLASMA = 160188
MDC_CONC_GLU_VENOUS_WHOLEBLOOD = 160192
MDC_CONC_GLU_VENOUS_PLASMA = 160196
MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD = 160200
MDC_CONC_GLU_ARTERIAL_PLASMA = 160204
MDC_CONC_GLU_CONTROL = 160208
MDC_CONC_GLU_ISF = 160212
MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD = 160364
MDC_CONC_GLU_UNDETERMINED_PLASMA = 160368
MDC_CONC_HBA1C = 160220
MDC_CTXT_GLU_MEAL = 8417864
MDC_CTXT_GLU_MEAL_PREPRANDIAL = 8417868
MDC_CTXT_GLU_MEAL_POSTPRANDIAL = 8417872
MDC_CTXT_GLU_MEAL_FASTING = 8417876
MDC_CTXT_GLU_MEAL_CASUAL = 8417880
MDC_CTXT_GLU_TESTER = 8417884
MDC_CTXT_GLU_TESTER_SELF = 8417888
MDC_CTXT_GLU_TESTER_HCP = 8417892
MDC_CTXT_GLU_TESTER_LAB = 8417896
# Continuous glucose monitoring: the trend (rate of change) of the interstitial glucose,
# MDC_PART_PHD_DM (128) term 29400, as a public 11073 PHD-to-FHIR encoder's nomenclature table
# (Java class ``Mdc``, package ``com.lni.intermediary``) lists it beside MDC_CGM_DEV_STAT, term
# 29452 = 8418060, the code the PHD IG 2.0.0 itself gives the CGM device status
# (CodeSystem.ASN1ToHL7.fsh): the table agrees with the IG where they meet. Not checked
# against IEEE 11073-10425's own table, which is not public (docs/protocols/phd.md 2.10).
MDC_PART_PHD_DM = 128
MDC_CONC_GLU_TREND = MDC_PART_PHD_DM * 0x10000 + 29400  # 8418008
#: The CGM device status (a bit field), the IG's example code for ASN1ToHL7 bits.
MDC_CGM_DEV_STAT = MDC_PART_PHD_DM * 0x10000 + 29452  # 8418060
# Body composition (IEEE 11073-10420 terms in the SCADA partition).
MDC_BODY_FAT = 188748
MDC_MASS_BODY_FAT_FREE = 188756
MDC_MASS_BODY_SOFT_LEAN = 188760
MDC_BODY_WATER = 188764
# BCS 1.0's other fields, in the SCADA partition as the public encoder's table named at
# MDC_CONC_GLU_TREND lists them (terms 57696-57708, marked there "Not in 20601": terms of the
# 11073-10101 nomenclature beyond the 20601 base). That table gives the four 10420 terms above
# exactly as narhub has them (57676-57692); the one public table that disagrees (a Go table
# with MDC_BODY_FAT at 57696) contradicts those four verified terms too, so it is not taken.
# Not confirmed by the PHD IG (which has no body composition example) or the standard:
# docs/protocols/phd.md 2.12.
MDC_BASAL_METABOLISM = 188768
MDC_BODY_MUSCLE = 188772
MDC_MASS_BODY_MUSCLE = 188776
MDC_BODY_ELECTRICAL_IMPEDANCE = 188780
# Heart rate.
MDC_ECG_HEART_RATE = 147842
MDC_ECG_TIME_PD_RR_GL = 147240
# Device.
MDC_ATTR_VAL_BATT_CHARGE = 67996

LOINC_BODY_TEMPERATURE = "8310-5"
LOINC_HEART_RATE = "8867-4"
#: Glucose in interstitial fluid, mass and substance concentration (the CGM reading).
LOINC_GLUCOSE_ISF_MASS = "99504-3"
LOINC_GLUCOSE_ISF_SUBSTANCE = "105272-9"
#: "Percentage of body fat Measured": the LOINC public health-data mappings give a scale's
#: body fat percentage (Open mHealth's FHIR profile OmhBodyFatPercentage, Apple HealthKit's
#: bodyFatPercentage mappings); docs/protocols/phd.md 2.12.
LOINC_BODY_FAT_PERCENT = "41982-0"

#: MDC code -> (reference id, LOINC or None), for display and for the region's FHIR mapping.
#: Glucose codes list the mass-concentration LOINC; an observation in mmol/L carries the
#: substance-concentration LOINC itself (see :mod:`protocols.gatt.glucose`).
MDC_TABLE: dict[int, tuple[str, str | None]] = {
    MDC_PRESS_BLD_NONINV: ("MDC_PRESS_BLD_NONINV", "85354-9"),
    MDC_PRESS_BLD_NONINV_SYS: ("MDC_PRESS_BLD_NONINV_SYS", "8480-6"),
    MDC_PRESS_BLD_NONINV_DIA: ("MDC_PRESS_BLD_NONINV_DIA", "8462-4"),
    MDC_PRESS_BLD_NONINV_MEAN: ("MDC_PRESS_BLD_NONINV_MEAN", None),
    MDC_PULS_RATE_NON_INV: ("MDC_PULS_RATE_NON_INV", LOINC_HEART_RATE),
    MDC_TEMP_BODY: ("MDC_TEMP_BODY", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_AXILLA: ("MDC_TEMP_AXILLA", "8328-7"),
    MDC_TEMP_EAR: ("MDC_TEMP_EAR", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_FINGER: ("MDC_TEMP_FINGER", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_GIT: ("MDC_TEMP_GIT", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_ORAL: ("MDC_TEMP_ORAL", "8331-1"),
    MDC_TEMP_RECT: ("MDC_TEMP_RECT", "8332-9"),
    MDC_TEMP_TOE: ("MDC_TEMP_TOE", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_TYMP: ("MDC_TEMP_TYMP", "8333-7"),
    MDC_MASS_BODY_ACTUAL: ("MDC_MASS_BODY_ACTUAL", "29463-7"),
    MDC_LEN_BODY_ACTUAL: ("MDC_LEN_BODY_ACTUAL", "8302-2"),
    MDC_RATIO_MASS_BODY_LEN_SQ: ("MDC_RATIO_MASS_BODY_LEN_SQ", "39156-5"),
    MDC_PULS_OXIM_SAT_O2: ("MDC_PULS_OXIM_SAT_O2", "2708-6"),
    MDC_PULS_OXIM_PULS_RATE: ("MDC_PULS_OXIM_PULS_RATE", LOINC_HEART_RATE),
    MDC_PULS_OXIM_PERF_REL: ("MDC_PULS_OXIM_PERF_REL", None),
    MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD: ("MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", "41653-7"),
    MDC_CONC_GLU_CAPILLARY_PLASMA: ("MDC_CONC_GLU_CAPILLARY_PLASMA", "41653-7"),
    MDC_CONC_GLU_VENOUS_WHOLEBLOOD: ("MDC_CONC_GLU_VENOUS_WHOLEBLOOD", "2339-0"),
    MDC_CONC_GLU_VENOUS_PLASMA: ("MDC_CONC_GLU_VENOUS_PLASMA", "2345-7"),
    MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD: ("MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD", "2339-0"),
    MDC_CONC_GLU_ARTERIAL_PLASMA: ("MDC_CONC_GLU_ARTERIAL_PLASMA", "2345-7"),
    MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD: ("MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD", "2339-0"),
    MDC_CONC_GLU_UNDETERMINED_PLASMA: ("MDC_CONC_GLU_UNDETERMINED_PLASMA", "2345-7"),
    MDC_CONC_GLU_ISF: ("MDC_CONC_GLU_ISF", LOINC_GLUCOSE_ISF_MASS),
    MDC_CONC_GLU_CONTROL: ("MDC_CONC_GLU_CONTROL", None),
    MDC_CONC_HBA1C: ("MDC_CONC_HBA1C", "4548-4"),
    MDC_CTXT_GLU_MEAL: ("MDC_CTXT_GLU_MEAL", None),
    MDC_CTXT_GLU_TESTER: ("MDC_CTXT_GLU_TESTER", None),
    MDC_CONC_GLU_TREND: ("MDC_CONC_GLU_TREND", None),
    MDC_BODY_FAT: ("MDC_BODY_FAT", LOINC_BODY_FAT_PERCENT),
    MDC_MASS_BODY_FAT_FREE: ("MDC_MASS_BODY_FAT_FREE", None),
    MDC_MASS_BODY_SOFT_LEAN: ("MDC_MASS_BODY_SOFT_LEAN", None),
    MDC_BODY_WATER: ("MDC_BODY_WATER", None),
    MDC_BASAL_METABOLISM: ("MDC_BASAL_METABOLISM", None),
    MDC_BODY_MUSCLE: ("MDC_BODY_MUSCLE", None),
    MDC_MASS_BODY_MUSCLE: ("MDC_MASS_BODY_MUSCLE", None),
    MDC_BODY_ELECTRICAL_IMPEDANCE: ("MDC_BODY_ELECTRICAL_IMPEDANCE", None),
    MDC_ECG_HEART_RATE: ("MDC_ECG_HEART_RATE", LOINC_HEART_RATE),
    MDC_ECG_TIME_PD_RR_GL: ("MDC_ECG_TIME_PD_RR_GL", None),
    MDC_ATTR_VAL_BATT_CHARGE: ("MDC_ATTR_VAL_BATT_CHARGE", None),
}


def quirk_flags(corrections: frozenset[str]) -> frozenset[str]:
    """The observation flags marking readings a device quirk corrected."""
    if not corrections:  # nearly always: no generator for nothing
        return corrections
    return frozenset(f"quirk-corrected:{name}" for name in corrections)


def device_time(
    time_stamp: DateTime | None, flags: frozenset[str]
) -> tuple[dt.datetime | None, frozenset[str]]:
    """A value's Time Stamp (GSS *Date Time*) as a naive datetime, and ``flags``; a time stamp
    that names no calendar time (a zero year, month or day: "not known") gives no time and
    adds the flag ``device-time-unknown``."""
    if time_stamp is None:
        return None, flags
    timestamp = time_stamp.to_datetime()
    if timestamp is None:
        return None, flags | {"device-time-unknown"}
    return timestamp, flags
