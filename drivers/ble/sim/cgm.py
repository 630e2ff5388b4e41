"""An emulated continuous glucose monitor (CGM Service 0x181F, CGMS 1.0.2).

A sensor session of ``run_time_h`` hours (12 by default): :meth:`EmulatedCgm.add_record`
makes the next CGM Measurement record (glucose in mg/dL, trend, quality, every value with an
E2E-CRC: the Feature's bit 12 is set), keeps it for the Record Access Control Point (Time
Offset filter, CGMS's use of filter type 0x01) and notifies it when a central listens, as a
real sensor does whether or not anyone hears it. Characteristics:

* CGM Measurement 0x2AA7 (notify), CGM Feature 0x2AA8, CGM Status 0x2AA9 (the current Time
  Offset), CGM Session Run Time 0x2AAB (read);
* CGM Session Start Time 0x2AAA (read, write): unknown (year 0) until a collector writes its
  current time; the sensor then subtracts its current Time Offset (CGMS 1.0.2);
* CGM Specific Ops Control Point 0x2AAC (write, indicate): start and stop the session,
  answered with a Response Code; anything else "op code not supported";
* the RACP (report, count, delete, abort; :mod:`drivers.ble.sim.racp`).

The Time Offset follows the rig's schedule, not the device clock: the rig runs a 12-hour
session in seconds, and a Time Offset counts minutes. :meth:`change_sensor` starts a new
session (a new sensor: offsets from 0, the start time unknown again, the old records gone).
CGMS requires an encrypted link: bonding is on by default. No Current Time Service.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from drivers.ble.sim._bumble import ATT_Error, Connection, Service
from drivers.ble.sim.peripheral import VALUE_NOT_ALLOWED, DeviceDefaults, EmulatedDevice, Properties
from drivers.ble.sim.racp import RacpServer, StoredRecord
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    CGM_FEATURE,
    CGM_MEASUREMENT,
    CGM_SESSION_RUN_TIME,
    CGM_SESSION_START_TIME,
    CGM_SPECIFIC_OPS_CONTROL_POINT,
    CGM_STATUS,
    CgmFeature,
    CgmMeasurement,
    CgmMeasurementRecord,
    CgmSessionRunTime,
    CgmSessionStartTime,
    CgmStatus,
    DateTime,
    DecodeError,
    MedFloat,
)
from protocols.gatt.cgm import (
    TIME_ZONE_UNKNOWN,
    CgmFeatureBits,
    CgmSensorStatus,
    DstOffset,
    decode_cgm_session_start_time,
    encode_cgm_feature,
    encode_cgm_measurement,
    encode_cgm_session_run_time,
    encode_cgm_session_start_time,
    encode_cgm_status,
)
from protocols.gatt.cgm_control import (
    CgmSocpOpCode,
    CgmSocpResponse,
    CgmSocpResponseCode,
    CgmSpecificOpsControlPoint,
    decode_cgm_specific_ops_control_point,
    encode_cgm_specific_ops_control_point,
)
from protocols.gatt.numbers import CONTINUOUS_GLUCOSE_MONITORING_SERVICE

_UNKNOWN_START = DateTime(0, 0, 0, 0, 0, 0)


class EmulatedCgm(EmulatedDevice):
    """A CGM sensor session: records every few (scenario) minutes, a RACP, E2E-CRC."""

    service_uuid = CONTINUOUS_GLUCOSE_MONITORING_SERVICE
    defaults = DeviceDefaults(name="narhub-cgm", bonding_required=True, current_time=False)

    def __init__(
        self, radio: SimRadio, address: str, *, run_time_h: int = 12, **kwargs: Any
    ) -> None:
        self.run_time_h = run_time_h
        self.feature_value = CgmFeature(
            CgmFeatureBits.E2E_CRC
            | CgmFeatureBits.CGM_TREND_INFORMATION
            | CgmFeatureBits.CGM_QUALITY
            | CgmFeatureBits.LOW_BATTERY_DETECTION
        )
        self.time_offset_min = 0
        self.sessions = 1
        self._start = _UNKNOWN_START
        super().__init__(radio, address, **kwargs)
        self._glucose = self.rng.randint(90, 140)

    def build_services(self) -> list[Service]:
        """CGM Service 0x181F."""
        self.measurement = self._measurement(CGM_MEASUREMENT, indicate=False)
        feature = encode_cgm_feature(self.feature_value)
        chars = [
            self.measurement,
            self._fixed(CGM_FEATURE, feature),
            self._characteristic(
                CGM_STATUS, Properties.READ, read=self._read_status, protected=True
            ),
            self._characteristic(
                CGM_SESSION_START_TIME,
                Properties.READ | Properties.WRITE,
                read=self._read_start,
                write=self._write_start,
                protected=True,
            ),
            self._characteristic(
                CGM_SESSION_RUN_TIME,
                Properties.READ,
                read=lambda: encode_cgm_session_run_time(
                    CgmSessionRunTime(self.run_time_h, secured=True)
                ),
                protected=True,
            ),
        ]
        self.control_point = self._characteristic(
            CGM_SPECIFIC_OPS_CONTROL_POINT,
            Properties.WRITE | Properties.INDICATE,
            write=self._write_control_point,
            protected=True,
        )
        self.racp = RacpServer(self, sequence_filter=True)
        self.racp.required = [(self.measurement, False)]
        chars += [self.control_point, self.racp.characteristic]
        return [self._service(*chars)]

    # --- the session -----------------------------------------------------------------------

    @property
    def session_start(self) -> dt.datetime | None:
        """The Session Start Time, ``None`` until a collector set it."""
        return self._start.to_datetime()

    def _read_status(self) -> bytes:
        status = CgmStatus(self.time_offset_min, CgmSensorStatus(0), secured=True)
        return encode_cgm_status(status)

    def _read_start(self) -> bytes:
        value = CgmSessionStartTime(self._start, TIME_ZONE_UNKNOWN, DstOffset.UNKNOWN, secured=True)
        return encode_cgm_session_start_time(value)

    def _write_start(self, _connection: Connection | None, value: bytes) -> None:
        try:
            written = decode_cgm_session_start_time(bytes(value), e2e_crc=True)
        except DecodeError as exc:
            raise ATT_Error(VALUE_NOT_ALLOWED) from exc
        now = written.session_start_time.to_datetime()
        if now is None:
            raise ATT_Error(VALUE_NOT_ALLOWED)
        start = now - dt.timedelta(minutes=self.time_offset_min)
        self._start = DateTime.from_datetime(start)

    def _write_control_point(self, _connection: Connection | None, value: bytes) -> None:
        try:
            request = decode_cgm_specific_ops_control_point(bytes(value), e2e_crc=True)
        except DecodeError as exc:
            raise ATT_Error(VALUE_NOT_ALLOWED) from exc
        code = CgmSocpResponseCode.OP_CODE_NOT_SUPPORTED
        if request.op_code is CgmSocpOpCode.START_THE_SESSION:
            self.change_sensor()
            code = CgmSocpResponseCode.SUCCESS
        elif request.op_code is CgmSocpOpCode.STOP_THE_SESSION:
            code = CgmSocpResponseCode.SUCCESS
        answer = CgmSpecificOpsControlPoint(
            CgmSocpOpCode.RESPONSE_CODE, CgmSocpResponse(request.op_code, code), secured=True
        )
        self.spawn(
            self.send(
                self.control_point, encode_cgm_specific_ops_control_point(answer), indicate=True
            ),
            "socp",
        )

    def change_sensor(self) -> None:
        """A new sensor: a new session (offsets from 0, start unknown, old records gone)."""
        self.sessions += 1
        self.time_offset_min = 0
        self._start = _UNKNOWN_START
        self.racp.records = []
        self._bump()

    # --- records ---------------------------------------------------------------------------

    def next_record(self, time_offset_min: int) -> CgmMeasurementRecord:
        """The record at ``time_offset_min``: a random walk in mg/dL, its trend and quality."""
        step = self.rng.randint(-6, 6)
        self._glucose = min(380, max(45, self._glucose + step))
        return CgmMeasurementRecord(
            MedFloat.of(self._glucose),
            time_offset_min,
            trend_mg_dl_per_min=MedFloat(Decimal(step).scaleb(-1), None),
            quality_percent=MedFloat.of(self.rng.randint(85, 100)),
            secured=True,
        )

    async def add_record(self, time_offset_min: int | None = None) -> CgmMeasurement:
        """Make the next record (at ``time_offset_min``, default: the current offset), keep
        it for the RACP and notify it to a listening central."""
        if time_offset_min is not None:
            self.time_offset_min = time_offset_min
        record = self.next_record(self.time_offset_min)
        measurement = CgmMeasurement((record,))
        payload = encode_cgm_measurement(measurement)
        self.racp.records.append(
            StoredRecord(self.time_offset_min, [(self.measurement, payload, False)])
        )
        self._bump()
        # Live, as a sensor notifies each new record, during a RACP report too: a record
        # made after the report's selection reaches the collector this way.
        await self.send(self.measurement, self.corrupt(payload), indicate=False)
        return measurement
