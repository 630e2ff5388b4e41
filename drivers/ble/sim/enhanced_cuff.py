"""An emulated BLS 1.1 cuff: Enhanced Blood Pressure Measurement 0x2B34 (indicate) and Enhanced
Intermediate Cuff Pressure 0x2B35 (notify) in the Blood Pressure Service 0x1810.

It behaves as :class:`~drivers.ble.sim.blood_pressure.EmulatedBloodPressureCuff` (measure,
wake, flush stored readings, linger, sleep); its readings carry the BLS 1.1 time fields: a
Time Stamp and a User Facing Time in seconds since 2000-01-01 (Flags bit 6), from the device
clock, which Current Time 0x2A2B keeps settable. The Blood Pressure Feature says so (bit 8
user facing time).

It also keeps a memory of readings (``stored_records`` seeded ones, :meth:`add_record` for
more) as BLS 1.1.1 describes: Blood Pressure Record 0x2B36 (notify) behind a Record Access
Control Point 0x2A52 (:class:`~drivers.ble.sim.racp.RacpServer`: report, count, delete, abort,
the Sequence Number filter). Each record is an Enhanced BPM with its uint16 sequence number,
split into segments that fit the default ATT MTU (20-byte values: a 5-byte record header and
15 bytes of the recorded value), so the hub must join them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.peripheral import Properties, _uuid
from drivers.ble.sim.racp import RacpServer, StoredRecord
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    BLOOD_PRESSURE_FEATURE,
    BLOOD_PRESSURE_RECORD,
    ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
    ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurementStatus,
    EnhancedBloodPressureMeasurement,
    EnhancedIntermediateCuffPressure,
    MedFloat,
    encode,
)
from protocols.gatt.enhanced_bp import (
    BloodPressureRecord,
    EpochStart,
    encode_blood_pressure_record,
    split_blood_pressure_record,
)
from protocols.gatt.numbers import BLOOD_PRESSURE_SERVICE

_EPOCH_2000 = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - the value's own (zone-less) epoch
#: Recorded-value bytes per Blood Pressure Record value at the default ATT MTU (23 - 3 - 5).
_RECORD_PART = 15


class EmulatedEnhancedCuff(EmulatedBloodPressureCuff):
    """A BLS 1.1 cuff with epoch-2000 time stamps."""

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        name: str = "narhub-ecuff",
        stored_records: int = 0,
        first_sequence: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(radio, address, name=name, **kwargs)
        self._next_sequence = first_sequence
        start = self.clock.now() - dt.timedelta(hours=12 * stored_records)
        for i in range(stored_records):
            self.add_record(when=start + dt.timedelta(hours=12 * i))

    def build_services(self) -> list[Service]:
        """Blood Pressure Service 0x1810 with the BLS 1.1 characteristics."""
        self.measurement = self._characteristic(
            ENHANCED_BLOOD_PRESSURE_MEASUREMENT, Properties.INDICATE, protected=True
        )
        self.intermediate = self._characteristic(
            ENHANCED_INTERMEDIATE_CUFF_PRESSURE, Properties.NOTIFY, protected=True
        )
        feature = encode(
            BloodPressureFeature(
                BloodPressureFeatureBits.BODY_MOVEMENT_DETECTION
                | BloodPressureFeatureBits.IRREGULAR_PULSE_DETECTION
                | BloodPressureFeatureBits.USER_FACING_TIME
            )
        )
        self.feature = self._characteristic(
            BLOOD_PRESSURE_FEATURE, Properties.READ, read=lambda: feature, protected=True
        )
        self.record = self._characteristic(BLOOD_PRESSURE_RECORD, Properties.NOTIFY, protected=True)
        self.racp = RacpServer(self, sequence_filter=True)
        self.racp.required = [(self.record, False)]
        chars = [self.measurement, self.intermediate, self.feature, self.record]
        return [Service(_uuid(BLOOD_PRESSURE_SERVICE), [*chars, self.racp.characteristic])]

    @property
    def records(self) -> list[StoredRecord]:
        """The stored records, oldest first."""
        return self.racp.records

    def add_record(self, *, when: dt.datetime | None = None) -> int:
        """Keep a new reading (taken ``when``, default now) as a record; its sequence number."""
        sequence = self._next_sequence
        self._next_sequence = (sequence + 1) & 0xFFFF
        m = self.random_enhanced_measurement(when)
        record = BloodPressureRecord(sequence, ENHANCED_BLOOD_PRESSURE_MEASUREMENT, encode(m))
        segments = split_blood_pressure_record(record, max_part=_RECORD_PART, secured=False)
        pdus = [(self.record, encode_blood_pressure_record(s), False) for s in segments]
        self.racp.records.append(StoredRecord(sequence, pdus))
        return sequence

    def _seconds(self, when: dt.datetime | None = None) -> int:
        return int(((when or self.clock.stamp()) - _EPOCH_2000).total_seconds())

    def random_enhanced_measurement(
        self, when: dt.datetime | None = None
    ) -> EnhancedBloodPressureMeasurement:
        """A plausible reading in mmHg with pulse, stamped by the device clock (or ``when``)."""
        systolic = self.rng.randint(105, 150)
        diastolic = self.rng.randint(60, min(95, systolic - 25))
        now_s = self._seconds(when)
        return EnhancedBloodPressureMeasurement(
            MedFloat.of(systolic),
            MedFloat.of(diastolic),
            MedFloat.of(diastolic + (systolic - diastolic) // 3),
            time_stamp_s=now_s,
            pulse_rate_bpm=MedFloat.of(self.rng.randint(55, 95)),
            user_id=1,
            measurement_status=BloodPressureMeasurementStatus(0),
            user_facing_time_s=now_s,
            epoch_start=EpochStart.YEAR_2000,
        )

    async def measure(  # type: ignore[override]
        self,
        measurement: EnhancedBloodPressureMeasurement | None = None,
        *,
        cuff_pressures_mmhg: Sequence[int] = (),
    ) -> bytes:
        """Take a reading: notify cuff pressures to a listening central, store, wake."""
        for pressure in cuff_pressures_mmhg:
            icp = EnhancedIntermediateCuffPressure(MedFloat.of(Decimal(pressure)))
            await self.send(self.intermediate, encode(icp), indicate=False)
        m = measurement if measurement is not None else self.random_enhanced_measurement()
        payload = encode(m)
        self.store(self.measurement, payload)
        self._wake.set()
        return payload
