"""Bluetooth SIG assigned numbers of the services, characteristics and descriptors the
profiles use (Assigned Numbers 3.4 Services, 3.8 Characteristics, 3.7 Descriptors).

They live apart from the profile modules so that code which only needs to recognise a UUID
(the BLE session choosing what to subscribe to, the pipeline sorting values) does not load a
profile's codec: :mod:`protocols.gatt` loads a profile on first use (issue #18's memory
budget). Each profile module imports its numbers from here.
"""

from __future__ import annotations

# Blood Pressure Service: protocols.gatt.blood_pressure
BLOOD_PRESSURE_SERVICE = 0x1810
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
INTERMEDIATE_CUFF_PRESSURE = 0x2A36
BLOOD_PRESSURE_FEATURE = 0x2A49

# Body Composition Service (BCS 1.0): protocols.gatt.body_composition
BODY_COMPOSITION_SERVICE = 0x181B
BODY_COMPOSITION_FEATURE = 0x2A9B
BODY_COMPOSITION_MEASUREMENT = 0x2A9C

# Continuous Glucose Monitoring Service (CGMS 1.0.2): protocols.gatt.cgm
CONTINUOUS_GLUCOSE_MONITORING_SERVICE = 0x181F
CGM_MEASUREMENT = 0x2AA7
CGM_FEATURE = 0x2AA8
CGM_STATUS = 0x2AA9
CGM_SESSION_START_TIME = 0x2AAA
CGM_SESSION_RUN_TIME = 0x2AAB
CGM_SPECIFIC_OPS_CONTROL_POINT = 0x2AAC

# Current Time Service (CTS 1.1): protocols.gatt.current_time
CURRENT_TIME = 0x2A2B
CURRENT_TIME_SERVICE = 0x1805

# Date Time, Day of Week, Day Date Time (GSS): protocols.gatt.datetime_
DATE_TIME = 0x2A08
DAY_OF_WEEK = 0x2A09
DAY_DATE_TIME = 0x2A0A

# Battery Service and Device Information Service: protocols.gatt.device
BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19
DEVICE_INFORMATION_SERVICE = 0x180A
MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
HARDWARE_REVISION = 0x2A27
SOFTWARE_REVISION = 0x2A28
MANUFACTURER_NAME = 0x2A29
SYSTEM_ID = 0x2A23

# Elapsed Time Service (ETS 1.0): protocols.gatt.elapsed_time
ELAPSED_TIME_SERVICE = 0x183F
ELAPSED_TIME = 0x2BF2

# Blood Pressure Service additions (BLS 1.1.1): protocols.gatt.enhanced_bp
ENHANCED_BLOOD_PRESSURE_MEASUREMENT = 0x2B34
ENHANCED_INTERMEDIATE_CUFF_PRESSURE = 0x2B35
BLOOD_PRESSURE_RECORD = 0x2B36

# Generic Health Sensor Service (GHSS 1.0): protocols.gatt.ghs
GENERIC_HEALTH_SENSOR_SERVICE = 0x1840
LIVE_HEALTH_OBSERVATIONS = 0x2B8B
STORED_HEALTH_OBSERVATIONS = 0x2BDD
OBSERVATION_SCHEDULE_CHANGED = 0x2BF1
HEALTH_SENSOR_FEATURES = 0x2BF3
GHS_CONTROL_POINT = 0x2BF4
OBSERVATION_SCHEDULE_DESCRIPTOR = 0x2910

# the RACP as GHSS 1.0 uses it: protocols.gatt.ghs_racp
GHS_RECORD_ACCESS_CONTROL_POINT = 0x2A52

# Glucose Service (GLS 1.0): protocols.gatt.glucose
GLUCOSE_SERVICE = 0x1808
GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
GLUCOSE_FEATURE = 0x2A51

# Heart Rate Service (HRS 1.0): protocols.gatt.heart_rate
HEART_RATE_SERVICE = 0x180D
HEART_RATE_MEASUREMENT = 0x2A37

# Pulse Oximeter Service (PLXS 1.0): protocols.gatt.plx
PULSE_OXIMETER_SERVICE = 0x1822
PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_CONTINUOUS_MEASUREMENT = 0x2A5F
PLX_FEATURES = 0x2A60

# Record Access Control Point (GSS 3.181): protocols.gatt.racp
RECORD_ACCESS_CONTROL_POINT = 0x2A52

# Health Thermometer Service: protocols.gatt.temperature
TEMPERATURE_MEASUREMENT = 0x2A1C
TEMPERATURE_TYPE = 0x2A1D
INTERMEDIATE_TEMPERATURE = 0x2A1E
HEALTH_THERMOMETER_SERVICE = 0x1809

# Weight Scale Service: protocols.gatt.weight
WEIGHT_SCALE_SERVICE = 0x181D
WEIGHT_MEASUREMENT = 0x2A9D
WEIGHT_SCALE_FEATURE = 0x2A9E
