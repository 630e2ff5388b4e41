"""Bluetooth SIG health-profile codecs (GATT characteristic values), pure and sans-I/O.

``decode(characteristic, data)`` turns a characteristic value into a frozen measurement
dataclass; ``encode(measurement)`` is its inverse; ``to_observations(measurement)`` maps it to
MDC/LOINC/UCUM observations. Layouts follow the GATT Specification Supplement and are declared
as tables (:mod:`protocols.gatt.schema`) registered per characteristic
(:mod:`protocols.gatt.registry`); the mapping follows the HL7 FHIR PHD IG
(:mod:`protocols.gatt.mapping`). See ``docs/protocols/gatt.md`` and
``docs/protocols/phd.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocols.gatt.acom import HealthObservation as HealthObservation
    from protocols.gatt.blood_pressure import BloodPressureFeature as BloodPressureFeature
    from protocols.gatt.blood_pressure import BloodPressureFeatureBits as BloodPressureFeatureBits
    from protocols.gatt.blood_pressure import BloodPressureMeasurement as BloodPressureMeasurement
    from protocols.gatt.blood_pressure import (
        BloodPressureMeasurementStatus as BloodPressureMeasurementStatus,
    )
    from protocols.gatt.blood_pressure import IntermediateCuffPressure as IntermediateCuffPressure
    from protocols.gatt.blood_pressure import PressureUnit as PressureUnit
    from protocols.gatt.blood_pressure import PulseRateRange as PulseRateRange
    from protocols.gatt.body_composition import BodyCompositionFeature as BodyCompositionFeature
    from protocols.gatt.body_composition import (
        BodyCompositionMeasurement as BodyCompositionMeasurement,
    )
    from protocols.gatt.cgm import CgmFeature as CgmFeature
    from protocols.gatt.cgm import CgmMeasurement as CgmMeasurement
    from protocols.gatt.cgm import CgmMeasurementRecord as CgmMeasurementRecord
    from protocols.gatt.cgm import CgmSessionMeasurement as CgmSessionMeasurement
    from protocols.gatt.cgm import CgmSessionRunTime as CgmSessionRunTime
    from protocols.gatt.cgm import CgmSessionStartTime as CgmSessionStartTime
    from protocols.gatt.cgm import CgmStatus as CgmStatus
    from protocols.gatt.cgm_control import CgmSpecificOpsControlPoint as CgmSpecificOpsControlPoint
    from protocols.gatt.codec import SUPPORTED_CHARACTERISTICS as SUPPORTED_CHARACTERISTICS
    from protocols.gatt.codec import Measurement as Measurement
    from protocols.gatt.codec import decode as decode
    from protocols.gatt.codec import encode as encode
    from protocols.gatt.codec import to_observations as to_observations
    from protocols.gatt.current_time import AdjustReason as AdjustReason
    from protocols.gatt.current_time import CurrentTime as CurrentTime
    from protocols.gatt.datetime_ import DateTime as DateTime
    from protocols.gatt.datetime_ import DayDateTime as DayDateTime
    from protocols.gatt.datetime_ import DayOfWeek as DayOfWeek
    from protocols.gatt.device import BatteryLevel as BatteryLevel
    from protocols.gatt.device import DeviceInformationString as DeviceInformationString
    from protocols.gatt.device import SystemId as SystemId
    from protocols.gatt.elapsed_time import ElapsedTime as ElapsedTime
    from protocols.gatt.enhanced_bp import BloodPressureRecordSegment as BloodPressureRecordSegment
    from protocols.gatt.enhanced_bp import (
        EnhancedBloodPressureMeasurement as EnhancedBloodPressureMeasurement,
    )
    from protocols.gatt.enhanced_bp import (
        EnhancedIntermediateCuffPressure as EnhancedIntermediateCuffPressure,
    )
    from protocols.gatt.errors import DecodeError as DecodeError
    from protocols.gatt.ghs import GhsControlPoint as GhsControlPoint
    from protocols.gatt.ghs import HealthSensorFeatures as HealthSensorFeatures
    from protocols.gatt.ghs import ObservationSchedule as ObservationSchedule
    from protocols.gatt.ghs import ReceivedHealthObservation as ReceivedHealthObservation
    from protocols.gatt.ghs import StoredHealthObservation as StoredHealthObservation
    from protocols.gatt.glucose import GlucoseConcentrationUnit as GlucoseConcentrationUnit
    from protocols.gatt.glucose import GlucoseFeature as GlucoseFeature
    from protocols.gatt.glucose import GlucoseFeatureBits as GlucoseFeatureBits
    from protocols.gatt.glucose import GlucoseMeasurement as GlucoseMeasurement
    from protocols.gatt.glucose import GlucoseSensorStatus as GlucoseSensorStatus
    from protocols.gatt.glucose import GlucoseType as GlucoseType
    from protocols.gatt.glucose import SampleLocation as SampleLocation
    from protocols.gatt.glucose_context import CarbohydrateId as CarbohydrateId
    from protocols.gatt.glucose_context import (
        GlucoseMeasurementContext as GlucoseMeasurementContext,
    )
    from protocols.gatt.glucose_context import Health as Health
    from protocols.gatt.glucose_context import Meal as Meal
    from protocols.gatt.glucose_context import MedicationId as MedicationId
    from protocols.gatt.glucose_context import MedicationUnit as MedicationUnit
    from protocols.gatt.glucose_context import Tester as Tester
    from protocols.gatt.heart_rate import HeartRateMeasurement as HeartRateMeasurement
    from protocols.gatt.heart_rate import SensorContact as SensorContact
    from protocols.gatt.medfloat import MedFloat as MedFloat
    from protocols.gatt.medfloat import Special as Special
    from protocols.gatt.medfloat import encode_medfloat16 as encode_medfloat16
    from protocols.gatt.medfloat import encode_medfloat32 as encode_medfloat32
    from protocols.gatt.medfloat import medfloat16 as medfloat16
    from protocols.gatt.medfloat import medfloat32 as medfloat32
    from protocols.gatt.numbers import BATTERY_LEVEL as BATTERY_LEVEL
    from protocols.gatt.numbers import BLOOD_PRESSURE_FEATURE as BLOOD_PRESSURE_FEATURE
    from protocols.gatt.numbers import BLOOD_PRESSURE_MEASUREMENT as BLOOD_PRESSURE_MEASUREMENT
    from protocols.gatt.numbers import BLOOD_PRESSURE_RECORD as BLOOD_PRESSURE_RECORD
    from protocols.gatt.numbers import BODY_COMPOSITION_FEATURE as BODY_COMPOSITION_FEATURE
    from protocols.gatt.numbers import BODY_COMPOSITION_MEASUREMENT as BODY_COMPOSITION_MEASUREMENT
    from protocols.gatt.numbers import CGM_FEATURE as CGM_FEATURE
    from protocols.gatt.numbers import CGM_MEASUREMENT as CGM_MEASUREMENT
    from protocols.gatt.numbers import CGM_SESSION_RUN_TIME as CGM_SESSION_RUN_TIME
    from protocols.gatt.numbers import CGM_SESSION_START_TIME as CGM_SESSION_START_TIME
    from protocols.gatt.numbers import (
        CGM_SPECIFIC_OPS_CONTROL_POINT as CGM_SPECIFIC_OPS_CONTROL_POINT,
    )
    from protocols.gatt.numbers import CGM_STATUS as CGM_STATUS
    from protocols.gatt.numbers import CURRENT_TIME as CURRENT_TIME
    from protocols.gatt.numbers import DATE_TIME as DATE_TIME
    from protocols.gatt.numbers import DAY_DATE_TIME as DAY_DATE_TIME
    from protocols.gatt.numbers import ELAPSED_TIME as ELAPSED_TIME
    from protocols.gatt.numbers import (
        ENHANCED_BLOOD_PRESSURE_MEASUREMENT as ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
    )
    from protocols.gatt.numbers import (
        ENHANCED_INTERMEDIATE_CUFF_PRESSURE as ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
    )
    from protocols.gatt.numbers import FIRMWARE_REVISION as FIRMWARE_REVISION
    from protocols.gatt.numbers import GHS_CONTROL_POINT as GHS_CONTROL_POINT
    from protocols.gatt.numbers import GLUCOSE_FEATURE as GLUCOSE_FEATURE
    from protocols.gatt.numbers import GLUCOSE_MEASUREMENT as GLUCOSE_MEASUREMENT
    from protocols.gatt.numbers import GLUCOSE_MEASUREMENT_CONTEXT as GLUCOSE_MEASUREMENT_CONTEXT
    from protocols.gatt.numbers import HARDWARE_REVISION as HARDWARE_REVISION
    from protocols.gatt.numbers import HEALTH_SENSOR_FEATURES as HEALTH_SENSOR_FEATURES
    from protocols.gatt.numbers import HEART_RATE_MEASUREMENT as HEART_RATE_MEASUREMENT
    from protocols.gatt.numbers import INTERMEDIATE_CUFF_PRESSURE as INTERMEDIATE_CUFF_PRESSURE
    from protocols.gatt.numbers import INTERMEDIATE_TEMPERATURE as INTERMEDIATE_TEMPERATURE
    from protocols.gatt.numbers import LIVE_HEALTH_OBSERVATIONS as LIVE_HEALTH_OBSERVATIONS
    from protocols.gatt.numbers import MANUFACTURER_NAME as MANUFACTURER_NAME
    from protocols.gatt.numbers import MODEL_NUMBER as MODEL_NUMBER
    from protocols.gatt.numbers import OBSERVATION_SCHEDULE_CHANGED as OBSERVATION_SCHEDULE_CHANGED
    from protocols.gatt.numbers import PLX_CONTINUOUS_MEASUREMENT as PLX_CONTINUOUS_MEASUREMENT
    from protocols.gatt.numbers import PLX_FEATURES as PLX_FEATURES
    from protocols.gatt.numbers import PLX_SPOT_CHECK_MEASUREMENT as PLX_SPOT_CHECK_MEASUREMENT
    from protocols.gatt.numbers import RECORD_ACCESS_CONTROL_POINT as RECORD_ACCESS_CONTROL_POINT
    from protocols.gatt.numbers import SERIAL_NUMBER as SERIAL_NUMBER
    from protocols.gatt.numbers import SOFTWARE_REVISION as SOFTWARE_REVISION
    from protocols.gatt.numbers import STORED_HEALTH_OBSERVATIONS as STORED_HEALTH_OBSERVATIONS
    from protocols.gatt.numbers import SYSTEM_ID as SYSTEM_ID
    from protocols.gatt.numbers import TEMPERATURE_MEASUREMENT as TEMPERATURE_MEASUREMENT
    from protocols.gatt.numbers import TEMPERATURE_TYPE as TEMPERATURE_TYPE
    from protocols.gatt.numbers import WEIGHT_MEASUREMENT as WEIGHT_MEASUREMENT
    from protocols.gatt.numbers import WEIGHT_SCALE_FEATURE as WEIGHT_SCALE_FEATURE
    from protocols.gatt.observation import Observation as Observation
    from protocols.gatt.plx import PlxContinuousMeasurement as PlxContinuousMeasurement
    from protocols.gatt.plx import PlxDeviceAndSensorStatus as PlxDeviceAndSensorStatus
    from protocols.gatt.plx import PlxFeatures as PlxFeatures
    from protocols.gatt.plx import PlxMeasurementStatus as PlxMeasurementStatus
    from protocols.gatt.plx import PlxSpotCheckMeasurement as PlxSpotCheckMeasurement
    from protocols.gatt.plx import PlxSupportedFeatures as PlxSupportedFeatures
    from protocols.gatt.quirks import STRICT as STRICT
    from protocols.gatt.quirks import DeviceProfile as DeviceProfile
    from protocols.gatt.quirks import ProfileChoice as ProfileChoice
    from protocols.gatt.quirks import Quirk as Quirk
    from protocols.gatt.quirks import choose_profile as choose_profile
    from protocols.gatt.quirks import select_profile as select_profile
    from protocols.gatt.racp import RacpFilterType as RacpFilterType
    from protocols.gatt.racp import RacpNumberOfStoredRecords as RacpNumberOfStoredRecords
    from protocols.gatt.racp import RacpOpCode as RacpOpCode
    from protocols.gatt.racp import RacpOperator as RacpOperator
    from protocols.gatt.racp import RacpRequest as RacpRequest
    from protocols.gatt.racp import RacpResponse as RacpResponse
    from protocols.gatt.racp import RacpResponseCode as RacpResponseCode
    from protocols.gatt.temperature import TemperatureMeasurement as TemperatureMeasurement
    from protocols.gatt.temperature import TemperatureType as TemperatureType
    from protocols.gatt.temperature import TemperatureTypeValue as TemperatureTypeValue
    from protocols.gatt.temperature import TemperatureUnit as TemperatureUnit
    from protocols.gatt.uuids import characteristic_id as characteristic_id
    from protocols.gatt.uuids import uuid128 as uuid128
    from protocols.gatt.weight import HeightResolution as HeightResolution
    from protocols.gatt.weight import WeightMeasurement as WeightMeasurement
    from protocols.gatt.weight import WeightResolution as WeightResolution
    from protocols.gatt.weight import WeightScaleFeature as WeightScaleFeature
    from protocols.gatt.weight import WeightUnitSystem as WeightUnitSystem

#: Where each public name is defined. The package loads a module on the first use of one of its
#: names (PEP 562 module ``__getattr__``), so importing one submodule (``protocols.gatt.uuids``,
#: a single profile) does not load every profile: a hub loads the codecs it uses.
_DEFINED_IN: dict[str, tuple[str, ...]] = {
    "acom": ("HealthObservation",),
    "blood_pressure": (
        "BloodPressureFeature",
        "BloodPressureFeatureBits",
        "BloodPressureMeasurement",
        "BloodPressureMeasurementStatus",
        "IntermediateCuffPressure",
        "PressureUnit",
        "PulseRateRange",
    ),
    "body_composition": (
        "BodyCompositionFeature",
        "BodyCompositionMeasurement",
    ),
    "cgm": (
        "CgmFeature",
        "CgmMeasurement",
        "CgmMeasurementRecord",
        "CgmSessionMeasurement",
        "CgmSessionRunTime",
        "CgmSessionStartTime",
        "CgmStatus",
    ),
    "cgm_control": ("CgmSpecificOpsControlPoint",),
    "codec": (
        "SUPPORTED_CHARACTERISTICS",
        "Measurement",
        "decode",
        "encode",
        "to_observations",
    ),
    "current_time": (
        "AdjustReason",
        "CurrentTime",
    ),
    "datetime_": (
        "DateTime",
        "DayDateTime",
        "DayOfWeek",
    ),
    "device": (
        "BatteryLevel",
        "DeviceInformationString",
        "SystemId",
    ),
    "elapsed_time": ("ElapsedTime",),
    "enhanced_bp": (
        "BloodPressureRecordSegment",
        "EnhancedBloodPressureMeasurement",
        "EnhancedIntermediateCuffPressure",
    ),
    "errors": ("DecodeError",),
    "ghs": (
        "GhsControlPoint",
        "HealthSensorFeatures",
        "ObservationSchedule",
        "ReceivedHealthObservation",
        "StoredHealthObservation",
    ),
    "glucose": (
        "GlucoseConcentrationUnit",
        "GlucoseFeature",
        "GlucoseFeatureBits",
        "GlucoseMeasurement",
        "GlucoseSensorStatus",
        "GlucoseType",
        "SampleLocation",
    ),
    "glucose_context": (
        "CarbohydrateId",
        "GlucoseMeasurementContext",
        "Health",
        "Meal",
        "MedicationId",
        "MedicationUnit",
        "Tester",
    ),
    "heart_rate": (
        "HeartRateMeasurement",
        "SensorContact",
    ),
    "medfloat": (
        "MedFloat",
        "Special",
        "encode_medfloat16",
        "encode_medfloat32",
        "medfloat16",
        "medfloat32",
    ),
    "observation": ("Observation",),
    "plx": (
        "PlxContinuousMeasurement",
        "PlxDeviceAndSensorStatus",
        "PlxFeatures",
        "PlxMeasurementStatus",
        "PlxSpotCheckMeasurement",
        "PlxSupportedFeatures",
    ),
    "quirks": (
        "STRICT",
        "DeviceProfile",
        "ProfileChoice",
        "Quirk",
        "choose_profile",
        "select_profile",
    ),
    "racp": (
        "RacpFilterType",
        "RacpNumberOfStoredRecords",
        "RacpOpCode",
        "RacpOperator",
        "RacpRequest",
        "RacpResponse",
        "RacpResponseCode",
    ),
    "temperature": (
        "TemperatureMeasurement",
        "TemperatureType",
        "TemperatureTypeValue",
        "TemperatureUnit",
    ),
    "uuids": (
        "characteristic_id",
        "uuid128",
    ),
    "weight": (
        "HeightResolution",
        "WeightMeasurement",
        "WeightResolution",
        "WeightScaleFeature",
        "WeightUnitSystem",
    ),
    "numbers": (
        "BATTERY_LEVEL",
        "BLOOD_PRESSURE_FEATURE",
        "BLOOD_PRESSURE_MEASUREMENT",
        "BLOOD_PRESSURE_RECORD",
        "BODY_COMPOSITION_FEATURE",
        "BODY_COMPOSITION_MEASUREMENT",
        "CGM_FEATURE",
        "CGM_MEASUREMENT",
        "CGM_SESSION_RUN_TIME",
        "CGM_SESSION_START_TIME",
        "CGM_SPECIFIC_OPS_CONTROL_POINT",
        "CGM_STATUS",
        "CURRENT_TIME",
        "DATE_TIME",
        "DAY_DATE_TIME",
        "ELAPSED_TIME",
        "ENHANCED_BLOOD_PRESSURE_MEASUREMENT",
        "ENHANCED_INTERMEDIATE_CUFF_PRESSURE",
        "FIRMWARE_REVISION",
        "GHS_CONTROL_POINT",
        "GLUCOSE_FEATURE",
        "GLUCOSE_MEASUREMENT",
        "GLUCOSE_MEASUREMENT_CONTEXT",
        "HARDWARE_REVISION",
        "HEALTH_SENSOR_FEATURES",
        "HEART_RATE_MEASUREMENT",
        "INTERMEDIATE_CUFF_PRESSURE",
        "INTERMEDIATE_TEMPERATURE",
        "LIVE_HEALTH_OBSERVATIONS",
        "MANUFACTURER_NAME",
        "MODEL_NUMBER",
        "OBSERVATION_SCHEDULE_CHANGED",
        "PLX_CONTINUOUS_MEASUREMENT",
        "PLX_FEATURES",
        "PLX_SPOT_CHECK_MEASUREMENT",
        "RECORD_ACCESS_CONTROL_POINT",
        "SERIAL_NUMBER",
        "SOFTWARE_REVISION",
        "STORED_HEALTH_OBSERVATIONS",
        "SYSTEM_ID",
        "TEMPERATURE_MEASUREMENT",
        "TEMPERATURE_TYPE",
        "WEIGHT_MEASUREMENT",
        "WEIGHT_SCALE_FEATURE",
    ),
}
_MODULE_OF = {name: module for module, names in _DEFINED_IN.items() for name in names}


def __getattr__(name: str) -> object:
    """Load the module that defines ``name`` on its first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [*_MODULE_OF]  # noqa: PLE0604 (the names of the table above, all strings)
