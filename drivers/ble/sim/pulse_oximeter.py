"""An emulated pulse oximeter (Pulse Oximeter Service 0x1822, PLXS 1.0).

* PLX Spot-check Measurement 0x2A5E (indicate): :meth:`spot_check` indicates it live when a
  central listens, else stores it as a record (status bit "data from measurement storage").
* PLX Continuous Measurement 0x2A5F (notify) at 1 Hz (``interval_s``) while subscribed.
* PLX Features 0x2A60 (read): measurement status, spot-check storage, time stamp.
* Record Access Control Point 0x2A52 over the stored spot checks. PLXS records carry no
  sequence number, so only "all", "first" and "last" are supported; the hub deletes records
  with "delete all" once it has committed them (PLXS 1.0 section 3.4).
"""

from __future__ import annotations

import asyncio
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.peripheral import EmulatedDevice, Properties, _uuid
from drivers.ble.sim.racp import RacpServer, StoredRecord
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_FEATURES,
    PLX_SPOT_CHECK_MEASUREMENT,
    DateTime,
    MedFloat,
    PlxContinuousMeasurement,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PlxSupportedFeatures,
    encode,
)
from protocols.gatt.numbers import PULSE_OXIMETER_SERVICE


class EmulatedPulseOximeter(EmulatedDevice):
    """An oximeter with live spot checks, a 1 Hz stream and stored records behind a RACP."""

    service_uuid = PULSE_OXIMETER_SERVICE

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        name: str = "narhub-plx",
        interval_s: float = 1.0,
        stored_records: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(radio, address, name=name, **kwargs)
        self.interval_s = interval_s
        for _ in range(stored_records):
            self._store_record(self.random_spot_check(stored=True))
        #: Continuous notifications sent.
        self.sent = 0

    def build_services(self) -> list[Service]:
        """Pulse Oximeter Service 0x1822."""
        self.spot_check_char = self._characteristic(
            PLX_SPOT_CHECK_MEASUREMENT, Properties.INDICATE, protected=True
        )
        self.continuous = self._characteristic(
            PLX_CONTINUOUS_MEASUREMENT, Properties.NOTIFY, protected=True
        )
        features = encode(
            PlxFeatures(
                PlxSupportedFeatures.MEASUREMENT_STATUS
                | PlxSupportedFeatures.SPOT_CHECK_MEASUREMENT_STORAGE
                | PlxSupportedFeatures.SPOT_CHECK_TIME_STAMP,
                measurement_status_support=PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE
                | PlxMeasurementStatus.VALIDATED_DATA,
            )
        )
        self.features = self._characteristic(
            PLX_FEATURES, Properties.READ, read=lambda: features, protected=True
        )
        self.racp = RacpServer(self, sequence_filter=False)
        self.racp.required = [(self.spot_check_char, True)]
        return [
            Service(
                _uuid(PULSE_OXIMETER_SERVICE),
                [self.spot_check_char, self.continuous, self.features, self.racp.characteristic],
            )
        ]

    def on_started(self) -> None:
        """Start the continuous stream."""
        self.spawn(self._stream(), "stream")

    def random_spot_check(self, *, stored: bool = False) -> PlxSpotCheckMeasurement:
        """A plausible spot check (SpO2 92-99 %, pulse 55-95 /min), device-time stamped."""
        status = PlxMeasurementStatus.VALIDATED_DATA
        if stored:
            status |= PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE
        return PlxSpotCheckMeasurement(
            MedFloat.of(self.rng.randint(92, 99)),
            MedFloat.of(self.rng.randint(55, 95)),
            time_stamp=DateTime.from_datetime(self.clock.stamp()),
            measurement_status=status,
        )

    def _store_record(self, m: PlxSpotCheckMeasurement) -> None:
        self.racp.records.append(StoredRecord(None, [(self.spot_check_char, encode(m), True)]))

    async def spot_check(self, measurement: PlxSpotCheckMeasurement | None = None) -> bytes:
        """Indicate a spot check to a listening central, or store it as a record."""
        m = measurement if measurement is not None else self.random_spot_check()
        payload = encode(m)
        if not await self.send(self.spot_check_char, self.corrupt(payload), indicate=True):
            self._store_record(
                m
                if measurement is not None
                else PlxSpotCheckMeasurement(
                    m.spo2_percent,
                    m.pulse_rate_bpm,
                    m.time_stamp,
                    (m.measurement_status or PlxMeasurementStatus(0))
                    | PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE,
                )
            )
        return payload

    def next_continuous(self) -> PlxContinuousMeasurement:
        """The next 1 Hz sample."""
        return PlxContinuousMeasurement(
            MedFloat.of(self.rng.randint(93, 99)), MedFloat.of(self.rng.randint(55, 95))
        )

    async def _stream(self) -> None:
        while True:
            await self.wait_until(lambda: self.subscribed(self.continuous, indicate=False))
            payload = self.corrupt(encode(self.next_continuous()))
            if await self.send(self.continuous, payload, indicate=False):
                self.sent += 1
            await asyncio.sleep(self.interval_s)
