"""An emulated Generic Health Sensor (GHS Service 0x1840, GHSS 1.0) with an Elapsed Time clock
(ETS 1.0, service 0x183F), built as the Philips GHS server simulator behaves.

Each :meth:`EmulatedGhsDevice.observe` makes the next ACOM observation, cycling through a body
temperature (numeric), a blood pressure (compound), an SpO2 (numeric), a plethysmogram
(sample array) and a meal context (simple discrete), time-stamped by the device's Elapsed Time
(a UTC time of day in 100 ms units). While a central has started live observations (GHS
Control Point 0x01) and listens, the observation goes out on Live Health Observations 0x2B8B;
otherwise it is stored with the next Record Number, for the RACP's Combined Report on Stored
Health Observations 0x2BDD. Messages are segmented to the link's ATT MTU (one header byte
each, a rolling counter per characteristic).

* Health Sensor Features 0x2BF3 (read): the observation types;
* GHS Control Point 0x2BF4 (write, indicate): 0x01 start and 0x02 stop live observations,
  answered 0x80 success;
* Observation Schedule Changed 0x2BF1 (indicate): :meth:`change_schedule`;
* the RACP in the GHS dialect (:mod:`protocols.gatt.ghs_racp`): Combined Report (all or by
  record number), Report Number of Stored Records, Delete, Abort;
* Elapsed Time 0x2BF2 (read, write): a collector may set the clock.

Bonding is on by default (a GHS device holds personal health data).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

from drivers.ble.sim._bumble import ATT_Error, Characteristic, Connection, Service
from drivers.ble.sim.peripheral import (
    VALUE_NOT_ALLOWED,
    DeviceDefaults,
    EmulatedDevice,
    Properties,
    _uuid,
    written,
)
from drivers.ble.sim.racp import CCCD_IMPROPERLY_CONFIGURED, PROCEDURE_ALREADY_IN_PROGRESS
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    ELAPSED_TIME,
    GHS_CONTROL_POINT,
    HEALTH_SENSOR_FEATURES,
    LIVE_HEALTH_OBSERVATIONS,
    OBSERVATION_SCHEDULE_CHANGED,
    RECORD_ACCESS_CONTROL_POINT,
    STORED_HEALTH_OBSERVATIONS,
    DecodeError,
    ElapsedTime,
    GhsControlPoint,
    HealthObservation,
    HealthSensorFeatures,
    MedFloat,
    ObservationSchedule,
    StoredHealthObservation,
    encode,
)
from protocols.gatt import observation as mdc
from protocols.gatt.acom import (
    CompoundComponent,
    CompoundValue,
    DiscreteValue,
    NumericValue,
    ObservationValue,
    SampleArrayValue,
)
from protocols.gatt.elapsed_time import EPOCH_2000, TimeResolution, TimeSource
from protocols.gatt.ghs import (
    GhsControlPointOpCode,
    encode_live_health_observation_message,
    encode_stored_health_observation_message,
    segment_message,
)
from protocols.gatt.ghs_racp import (
    GhsRacpOpCode,
    GhsRacpOperator,
    GhsRacpRecordCount,
    GhsRacpRequest,
    GhsRacpResponse,
    GhsRacpResponseCode,
    decode_ghs_racp,
    encode_ghs_racp,
)
from protocols.gatt.numbers import ELAPSED_TIME_SERVICE, GENERIC_HEALTH_SENSOR_SERVICE
from protocols.gatt.segmentation import COUNTER_MODULO

_EPOCH_UTC = EPOCH_2000.replace(tzinfo=dt.UTC)
#: MDC terms this device uses beyond protocols.gatt.observation's (IEEE 11073-10101).
MDC_PULS_OXIM_PLETH = 150452
_DIM_DEGC, _DIM_MMHG, _DIM_PERCENT, _DIM_DIMLESS = 6048, 3872, 544, 512
OBSERVATION_TYPES = (
    mdc.MDC_TEMP_BODY,
    mdc.MDC_PRESS_BLD_NONINV,
    mdc.MDC_PULS_OXIM_SAT_O2,
    MDC_PULS_OXIM_PLETH,
    mdc.MDC_CTXT_GLU_MEAL,
)


class EmulatedGhsDevice(EmulatedDevice):
    """A GHS device: live observations when asked for, stored ones behind a RACP."""

    service_uuid = GENERIC_HEALTH_SENSOR_SERVICE
    defaults = DeviceDefaults(name="narhub-ghs", bonding_required=True, current_time=False)

    def __init__(self, radio: SimRadio, address: str, **kwargs: Any) -> None:
        self.stored_observations: list[StoredHealthObservation] = []
        self._next_record = 1
        self._kind = 0
        self.live_enabled = False
        self._counters: dict[int, int] = {}
        self._procedure: asyncio.Task[None] | None = None
        #: Values sent live and records reported, for tests.
        self.live_sent = 0
        self.stored_sent = 0
        #: RACP requests received, decoded (for tests).
        self.racp_requests: list[GhsRacpRequest] = []
        super().__init__(radio, address, **kwargs)

    def build_services(self) -> list[Service]:
        """GHS Service 0x1840 and the Elapsed Time Service 0x183F."""
        self.live = self._measurement(LIVE_HEALTH_OBSERVATIONS, indicate=False)
        self.stored_char = self._measurement(STORED_HEALTH_OBSERVATIONS, indicate=False)
        features = encode(HealthSensorFeatures(OBSERVATION_TYPES))
        self.control_point = self._characteristic(
            GHS_CONTROL_POINT,
            Properties.WRITE | Properties.INDICATE,
            write=self._write_control_point,
            protected=True,
        )
        self.schedule = self._measurement(OBSERVATION_SCHEDULE_CHANGED, indicate=True)
        self.racp = self._characteristic(
            RECORD_ACCESS_CONTROL_POINT,
            Properties.WRITE | Properties.INDICATE,
            write=self._write_racp,
            protected=True,
        )
        ghs = self._service(
            self.live,
            self.stored_char,
            self._fixed(HEALTH_SENSOR_FEATURES, features),
            self.control_point,
            self.schedule,
            self.racp,
        )
        self.elapsed = self._characteristic(
            ELAPSED_TIME,
            Properties.READ | Properties.WRITE,
            read=lambda: encode(self.elapsed_time()),
            write=self._write_elapsed_time,
        )
        return [ghs, Service(_uuid(ELAPSED_TIME_SERVICE), [self.elapsed])]

    # --- the clock -------------------------------------------------------------------------

    def elapsed_time(self) -> ElapsedTime:
        """The device clock as a UTC time of day in 100 ms units (ETS 1.0)."""
        now_utc = self.clock.now().astimezone(dt.UTC)
        units = (now_utc - _EPOCH_UTC) // dt.timedelta(milliseconds=100)
        return ElapsedTime(
            units,
            TimeResolution.HUNDRED_MILLISECONDS,
            utc=True,
            time_sync_source=TimeSource.MANUAL,
        )

    def _write_elapsed_time(self, _connection: Connection | None, value: bytes) -> None:
        when = written(ELAPSED_TIME, value, ElapsedTime).to_datetime()
        if when is None:
            raise ATT_Error(VALUE_NOT_ALLOWED)
        local = when.astimezone().replace(tzinfo=None) if when.tzinfo is not None else when
        self.clock.set(local)
        self._bump()

    # --- observations ----------------------------------------------------------------------

    def next_value(self) -> tuple[int, ObservationValue]:
        """The next observation type and value (a seeded cycle through five classes)."""
        kind = self._kind % len(OBSERVATION_TYPES)
        self._kind += 1
        rng = self.rng
        code = OBSERVATION_TYPES[kind]
        if kind == 0:
            temperature = Decimal(rng.randint(361, 378)).scaleb(-1)
            return code, NumericValue(_DIM_DEGC, MedFloat(temperature, None))
        if kind == 1:
            systolic = rng.randint(105, 150)
            diastolic = rng.randint(60, min(95, systolic - 25))
            parts = (
                (mdc.MDC_PRESS_BLD_NONINV_SYS, systolic),
                (mdc.MDC_PRESS_BLD_NONINV_DIA, diastolic),
                (mdc.MDC_PRESS_BLD_NONINV_MEAN, diastolic + (systolic - diastolic) // 3),
            )
            return code, CompoundValue(
                tuple(
                    CompoundComponent(c, NumericValue(_DIM_MMHG, MedFloat.of(v))) for c, v in parts
                )
            )
        if kind == 2:
            return code, NumericValue(_DIM_PERCENT, MedFloat.of(rng.randint(92, 99)))
        if kind == 3:
            samples = bytes(rng.randint(40, 220) for _ in range(25))
            return code, SampleArrayValue(
                _DIM_DIMLESS,
                MedFloat(Decimal("0.01"), None),
                MedFloat.of(0),
                MedFloat(Decimal("0.5"), None),
                25,
                1,
                samples,
            )
        return code, DiscreteValue(rng.choice((8417868, 8417872, 8417876)))

    async def observe(self) -> HealthObservation:
        """Make the next observation; send it live or store it as the next record."""
        code, value = self.next_value()
        observation = HealthObservation(
            value, observation_type=code, time_stamp=self.elapsed_time(), patient_id=1
        )
        if self.live_enabled and self.subscribed(self.live, indicate=False):
            message = encode_live_health_observation_message(observation)
            if await self._send_message(self.live, message):
                self.live_sent += 1
                return observation
        self.stored_observations.append(StoredHealthObservation(self._next_record, observation))
        self._next_record += 1
        self._bump()
        return observation

    async def _send_message(self, characteristic: Characteristic[bytes], message: bytes) -> bool:
        connection = self._connection
        mtu = 23 if connection is None else int(connection.att_mtu)
        uuid = int.from_bytes(bytes(characteristic.uuid.to_bytes()), "little") & 0xFFFF
        counter = self._counters.get(uuid, 0)
        segments = segment_message(message, max_segment=mtu - 3, first_counter=counter)
        self._counters[uuid] = (counter + len(segments)) % COUNTER_MODULO
        for segment in segments:
            if not await self.send(characteristic, self.corrupt(segment), indicate=False):
                return False
        return True

    async def change_schedule(self, observation_type: int, period_s: int) -> bool:
        """Indicate a changed measurement schedule (period and update interval, seconds)."""
        value = ObservationSchedule(observation_type, MedFloat.of(period_s), MedFloat.of(period_s))
        return await self.send(self.schedule, encode(value), indicate=True)

    def on_connected(self) -> None:
        """Live observations are asked for again on every connection; counters restart."""
        self.live_enabled = False
        self._counters = {}

    # --- GHS Control Point -----------------------------------------------------------------

    def _write_control_point(self, _connection: Connection | None, value: bytes) -> None:
        if not self.subscribed(self.control_point, indicate=True):
            raise ATT_Error(CCCD_IMPROPERLY_CONFIGURED)
        request = written(GHS_CONTROL_POINT, value, GhsControlPoint)
        if request.op_code == GhsControlPointOpCode.START_SEND_LIVE_OBSERVATIONS:
            self.live_enabled = True
        elif request.op_code == GhsControlPointOpCode.STOP_SEND_LIVE_OBSERVATIONS:
            self.live_enabled = False
        self._bump()
        answer = GhsControlPoint(GhsControlPointOpCode.SUCCESS)
        self.spawn(self.send(self.control_point, encode(answer), indicate=True), "ghs-cp")

    # --- RACP (GHS dialect) ----------------------------------------------------------------

    def _write_racp(self, _connection: Connection | None, value: bytes) -> None:
        if not (
            self.subscribed(self.racp, indicate=True)
            and self.subscribed(self.stored_char, indicate=False)
        ):
            raise ATT_Error(CCCD_IMPROPERLY_CONFIGURED)
        try:
            request = decode_ghs_racp(bytes(value))
        except DecodeError:
            self._answer(value[0] if value else 0, GhsRacpResponseCode.INVALID_OPERATOR)
            return
        if not isinstance(request, GhsRacpRequest):
            self._answer(value[0], GhsRacpResponseCode.OP_CODE_NOT_SUPPORTED)
            return
        self.racp_requests.append(request)
        running = self._procedure is not None and not self._procedure.done()
        if request.op_code is GhsRacpOpCode.ABORT_OPERATION:
            if running and self._procedure is not None:
                self._procedure.cancel()
            self._answer(request.op_code, GhsRacpResponseCode.SUCCESS)
            return
        if running:
            raise ATT_Error(PROCEDURE_ALREADY_IN_PROGRESS)
        self._procedure = self.spawn(self._perform(request), "ghs-racp")

    def _select(self, request: GhsRacpRequest) -> list[StoredHealthObservation]:
        records = self.stored_observations
        if request.operator is GhsRacpOperator.ALL_RECORDS:
            return list(records)
        if request.operator is GhsRacpOperator.FIRST_RECORD:
            return records[:1]
        if request.operator is GhsRacpOperator.LAST_RECORD:
            return records[-1:]
        low = 0 if request.minimum is None else request.minimum
        high = 0xFFFFFFFF if request.maximum is None else request.maximum
        return [r for r in records if low <= r.record_number <= high]

    async def _perform(self, request: GhsRacpRequest) -> None:
        selected = self._select(request)
        op = request.op_code
        if op is GhsRacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            count = GhsRacpRecordCount(
                GhsRacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, len(selected)
            )
            await self.send(self.racp, encode_ghs_racp(count), indicate=True)
            return
        if op is GhsRacpOpCode.DELETE_STORED_RECORDS:
            doomed = {id(r) for r in selected}
            self.stored_observations = [r for r in self.stored_observations if id(r) not in doomed]
            code = GhsRacpResponseCode.SUCCESS if selected else GhsRacpResponseCode.NO_RECORDS_FOUND
            await self._respond(op, code)
            return
        if not selected:
            await self._respond(op, GhsRacpResponseCode.NO_RECORDS_FOUND)
            return
        for record in selected:
            message = encode_stored_health_observation_message(record)
            if not await self._send_message(self.stored_char, message):
                return  # link lost: the procedure ends without a response
            self.stored_sent += 1
            if await self.count_down_records():
                return
            await asyncio.sleep(0)
        done = GhsRacpRecordCount(GhsRacpOpCode.COMBINED_REPORT_RESPONSE, len(selected))
        await self.send(self.racp, encode_ghs_racp(done), indicate=True)

    def _answer(self, op_code: int, code: GhsRacpResponseCode) -> None:
        self.spawn(self._respond(op_code, code), "ghs-racp")

    async def _respond(self, op_code: int, code: GhsRacpResponseCode) -> None:
        await self.send(self.racp, encode_ghs_racp(GhsRacpResponse(op_code, code)), indicate=True)
