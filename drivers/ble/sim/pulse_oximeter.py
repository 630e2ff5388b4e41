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

from typing import Any

from drivers.ble.sim._bumble import Characteristic, Service
from drivers.ble.sim.peripheral import DeviceDefaults
from drivers.ble.sim.racp import RacpServer, StoredRecord
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.streaming import StreamingDevice
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


class EmulatedPulseOximeter(StreamingDevice):
    """An oximeter with live spot checks, a 1 Hz stream and stored records behind a RACP."""

    service_uuid = PULSE_OXIMETER_SERVICE
    defaults = DeviceDefaults(name="narhub-plx")

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        interval_s: float = 1.0,
        stored_records: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(radio, address, interval_s=interval_s, **kwargs)
        for _ in range(stored_records):
            self._store_record(self.random_spot_check(stored=True))

    def build_services(self) -> list[Service]:
        """Pulse Oximeter Service 0x1822."""
        self.spot_check_char = self._measurement(PLX_SPOT_CHECK_MEASUREMENT, indicate=True)
        self.continuous = self._measurement(PLX_CONTINUOUS_MEASUREMENT, indicate=False)
        features = encode(
            PlxFeatures(
                PlxSupportedFeatures.MEASUREMENT_STATUS
                | PlxSupportedFeatures.SPOT_CHECK_MEASUREMENT_STORAGE
                | PlxSupportedFeatures.SPOT_CHECK_TIME_STAMP,
                measurement_status_support=PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE
                | PlxMeasurementStatus.VALIDATED_DATA,
            )
        )
        self.features = self._fixed(PLX_FEATURES, features)
        self.racp = RacpServer(self, sequence_filter=False)
        self.racp.required = [(self.spot_check_char, True)]
        chars = [self.spot_check_char, self.continuous, self.features]
        return [self._service(*chars, self.racp.characteristic)]

    def streamed(self) -> Characteristic[bytes]:
        """PLX Continuous Measurement."""
        return self.continuous

    def next_streamed(self) -> bytes:
        """The next :meth:`next_continuous`, encoded."""
        return encode(self.next_continuous())

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
