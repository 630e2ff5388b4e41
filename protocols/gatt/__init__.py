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

from protocols.gatt.blood_pressure import (
    BLOOD_PRESSURE_FEATURE,
    BLOOD_PRESSURE_MEASUREMENT,
    INTERMEDIATE_CUFF_PRESSURE,
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    IntermediateCuffPressure,
    PressureUnit,
    PulseRateRange,
)
from protocols.gatt.codec import (
    SUPPORTED_CHARACTERISTICS,
    Measurement,
    decode,
    encode,
    to_observations,
)
from protocols.gatt.current_time import CURRENT_TIME, AdjustReason, CurrentTime
from protocols.gatt.datetime_ import DATE_TIME, DAY_DATE_TIME, DateTime, DayDateTime, DayOfWeek
from protocols.gatt.device import (
    BATTERY_LEVEL,
    FIRMWARE_REVISION,
    HARDWARE_REVISION,
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    SERIAL_NUMBER,
    SOFTWARE_REVISION,
    BatteryLevel,
    DeviceInformationString,
)
from protocols.gatt.errors import DecodeError
from protocols.gatt.glucose import (
    GLUCOSE_FEATURE,
    GLUCOSE_MEASUREMENT,
    GLUCOSE_MEASUREMENT_CONTEXT,
    GlucoseConcentrationUnit,
    GlucoseFeature,
    GlucoseFeatureBits,
    GlucoseMeasurement,
    GlucoseSensorStatus,
    GlucoseType,
    SampleLocation,
)
from protocols.gatt.glucose_context import (
    CarbohydrateId,
    GlucoseMeasurementContext,
    Health,
    Meal,
    MedicationId,
    MedicationUnit,
    Tester,
)
from protocols.gatt.heart_rate import HEART_RATE_MEASUREMENT, HeartRateMeasurement, SensorContact
from protocols.gatt.medfloat import (
    MedFloat,
    Special,
    encode_medfloat16,
    encode_medfloat32,
    medfloat16,
    medfloat32,
)
from protocols.gatt.observation import Observation
from protocols.gatt.plx import (
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_FEATURES,
    PLX_SPOT_CHECK_MEASUREMENT,
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PlxSupportedFeatures,
)
from protocols.gatt.quirks import STRICT, DeviceProfile, Quirk, select_profile
from protocols.gatt.racp import (
    RECORD_ACCESS_CONTROL_POINT,
    RacpFilterType,
    RacpNumberOfStoredRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
)
from protocols.gatt.temperature import (
    INTERMEDIATE_TEMPERATURE,
    TEMPERATURE_MEASUREMENT,
    TEMPERATURE_TYPE,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureTypeValue,
    TemperatureUnit,
)
from protocols.gatt.uuids import characteristic_id, uuid128
from protocols.gatt.weight import (
    WEIGHT_MEASUREMENT,
    WEIGHT_SCALE_FEATURE,
    HeightResolution,
    WeightMeasurement,
    WeightResolution,
    WeightScaleFeature,
    WeightUnitSystem,
)

__all__ = [
    "BATTERY_LEVEL",
    "BLOOD_PRESSURE_FEATURE",
    "BLOOD_PRESSURE_MEASUREMENT",
    "CURRENT_TIME",
    "DATE_TIME",
    "DAY_DATE_TIME",
    "FIRMWARE_REVISION",
    "GLUCOSE_FEATURE",
    "GLUCOSE_MEASUREMENT",
    "GLUCOSE_MEASUREMENT_CONTEXT",
    "HARDWARE_REVISION",
    "HEART_RATE_MEASUREMENT",
    "INTERMEDIATE_CUFF_PRESSURE",
    "INTERMEDIATE_TEMPERATURE",
    "MANUFACTURER_NAME",
    "MODEL_NUMBER",
    "PLX_CONTINUOUS_MEASUREMENT",
    "PLX_FEATURES",
    "PLX_SPOT_CHECK_MEASUREMENT",
    "RECORD_ACCESS_CONTROL_POINT",
    "SERIAL_NUMBER",
    "SOFTWARE_REVISION",
    "STRICT",
    "SUPPORTED_CHARACTERISTICS",
    "TEMPERATURE_MEASUREMENT",
    "TEMPERATURE_TYPE",
    "WEIGHT_MEASUREMENT",
    "WEIGHT_SCALE_FEATURE",
    "AdjustReason",
    "BatteryLevel",
    "BloodPressureFeature",
    "BloodPressureFeatureBits",
    "BloodPressureMeasurement",
    "BloodPressureMeasurementStatus",
    "CarbohydrateId",
    "CurrentTime",
    "DateTime",
    "DayDateTime",
    "DayOfWeek",
    "DecodeError",
    "DeviceInformationString",
    "DeviceProfile",
    "GlucoseConcentrationUnit",
    "GlucoseFeature",
    "GlucoseFeatureBits",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "GlucoseSensorStatus",
    "GlucoseType",
    "Health",
    "HeartRateMeasurement",
    "HeightResolution",
    "IntermediateCuffPressure",
    "Meal",
    "Measurement",
    "MedFloat",
    "MedicationId",
    "MedicationUnit",
    "Observation",
    "PlxContinuousMeasurement",
    "PlxDeviceAndSensorStatus",
    "PlxFeatures",
    "PlxMeasurementStatus",
    "PlxSpotCheckMeasurement",
    "PlxSupportedFeatures",
    "PressureUnit",
    "PulseRateRange",
    "Quirk",
    "RacpFilterType",
    "RacpNumberOfStoredRecords",
    "RacpOpCode",
    "RacpOperator",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseCode",
    "SampleLocation",
    "SensorContact",
    "Special",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureTypeValue",
    "TemperatureUnit",
    "Tester",
    "WeightMeasurement",
    "WeightResolution",
    "WeightScaleFeature",
    "WeightUnitSystem",
    "characteristic_id",
    "decode",
    "encode",
    "encode_medfloat16",
    "encode_medfloat32",
    "medfloat16",
    "medfloat32",
    "select_profile",
    "to_observations",
    "uuid128",
]
