"""An emulated blood glucose meter (Glucose Service 0x1808, GLS 1.0).

Hundreds of stored records (seeded), each a Glucose Measurement 0x2A18 notification with a
sequence number, most followed by a Glucose Measurement Context 0x2A34 notification (flag bit
4), behind a Record Access Control Point 0x2A52 supporting report / count / delete with all,
<=, >=, within range (sequence number filter), first and last, and abort (GLS 1.0 4.9).
Glucose Feature 0x2A51 (read). GLS requires an encrypted link, so bonding is on by default.
Current Time is present.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.peripheral import DeviceDefaults
from drivers.ble.sim.racp import RacpServer, StoredRecord
from drivers.ble.sim.records import SequencedRecordDevice
from protocols.gatt import (
    GLUCOSE_FEATURE,
    GLUCOSE_MEASUREMENT,
    GLUCOSE_MEASUREMENT_CONTEXT,
    DateTime,
    GlucoseFeature,
    GlucoseFeatureBits,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseType,
    Health,
    Meal,
    MedFloat,
    SampleLocation,
    Tester,
    encode,
)
from protocols.gatt.numbers import GLUCOSE_SERVICE


class EmulatedGlucoseMeter(SequencedRecordDevice):
    """A meter with ``stored_records`` records (sequence numbers from ``first_sequence``)."""

    service_uuid = GLUCOSE_SERVICE
    defaults = DeviceDefaults(name="narhub-glucose", bonding_required=True)
    default_stored_records = 300
    record_spacing = dt.timedelta(hours=8)

    def build_services(self) -> list[Service]:
        """Glucose Service 0x1808."""
        self.measurement = self._measurement(GLUCOSE_MEASUREMENT, indicate=False)
        self.context = self._measurement(GLUCOSE_MEASUREMENT_CONTEXT, indicate=False)
        feature = encode(
            GlucoseFeature(GlucoseFeatureBits.LOW_BATTERY_DETECTION | GlucoseFeatureBits.TIME_FAULT)
        )
        self.feature = self._fixed(GLUCOSE_FEATURE, feature)
        self.racp = RacpServer(self, sequence_filter=True)
        self.racp.required = [(self.measurement, False)]
        return [
            self._service(self.measurement, self.context, self.feature, self.racp.characteristic)
        ]

    def add_record(self, *, when: dt.datetime | None = None) -> int:
        """Store a new seeded record (mg/dL, capillary plasma); returns its sequence number."""
        seq = self.racp.take_sequence_number()
        with_context = self.rng.random() < 0.7
        m = GlucoseMeasurement(
            seq,
            DateTime.from_datetime(when or self.clock.stamp()),
            concentration=MedFloat.of(Decimal(self.rng.randint(70, 180)).scaleb(-5)),
            type=GlucoseType.CAPILLARY_PLASMA,
            sample_location=SampleLocation.FINGER,
            context_information_follows=with_context,
        )
        pdus = [(self.measurement, encode(m), False)]
        if with_context:
            cx = GlucoseMeasurementContext(
                seq,
                meal=self.rng.choice(list(Meal)),
                tester=Tester.SELF,
                health=Health.NO_HEALTH_ISSUES,
            )
            pdus.append((self.context, encode(cx), False))
        self.racp.records.append(StoredRecord(seq, pdus))
        return seq
