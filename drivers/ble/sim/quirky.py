"""Emulated cuffs that deviate the way real models do (docs/protocols/phd.md 6.2).

Each behaves as the family's quirk profile (:mod:`protocols.gatt.quirks`) says the real one
does, so that a hub that ignores a hint gets a wrong or no reading, and one that applies it
gets the exact value:

* :class:`EmulatedBeurerBM85`: no Device Information Service, advertises ``BM85``, and sends
  Blood Pressure Measurements in its own layout (RFU flag bit 6 set, an unflagged User ID
  byte, Pulse Rate and Measurement Status big-endian): :meth:`~EmulatedBeurerBM85.replay`
  sends the values recorded from a real BM85 (:data:`BM85_CAPTURES`), and
  :meth:`~EmulatedBeurerBM85.measure` builds new ones in the same layout.
* :class:`EmulatedAndCuff`: A&D UA-651BLE: no Current Time Service; its clock is Date Time
  0x2A08 inside the Blood Pressure Service (read, write), and a Date Time written sooner than
  ``settle_ms`` after the central enabled indications is ignored (andengineering
  AndroidSampleCode ``BleReceivedService.java`` waits before the write).
* :class:`EmulatedOmronCuff`: advertises ``BLEsmart_...``, and drops the link when a central
  reads anything before bonding (the hub must pair first).
* :class:`EmulatedOmronRecords`: an Omron device with stored records behind a RACP that
  answers "records from sequence number N" only under Omron's vendor filter type 0x04
  (SpeziOmron ``OmronRecordAccessOperand.swift``); GLS's 0x01 gets "operand not supported",
  so a hub that ignores the profile's ``racp_sequence_filter`` downloads nothing new.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from drivers.ble.sim._bumble import ATT_Error, Characteristic, Connection, Service
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.peripheral import VALUE_NOT_ALLOWED, Properties, written
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    DATE_TIME,
    AdjustReason,
    BloodPressureMeasurement,
    CurrentTime,
    DateTime,
    RacpFilterType,
)
from protocols.gatt import encode as gatt_encode

logger = logging.getLogger(__name__)

_TIME_STAMP = 0x02
_PULSE_RATE = 0x04
_USER_ID = 0x08
_STATUS = 0x10
_RFU_BIT6 = 0x40


def beurer_layout(conformant: bytes) -> bytes:
    """A conformant Blood Pressure Measurement (GSS 3.31) in the Beurer BM85's layout."""
    out = bytearray(conformant)
    flags = out[0]
    out[0] = (flags | _RFU_BIT6) & ~_USER_ID
    offset = 7 + (7 if flags & _TIME_STAMP else 0)
    if flags & _PULSE_RATE:
        out[offset], out[offset + 1] = out[offset + 1], out[offset]
        offset += 2
    if flags & _USER_ID:
        offset += 1
    if flags & _STATUS:
        out[offset], out[offset + 1] = out[offset + 1], out[offset]
    return bytes(out)


#: Blood Pressure Measurement values recorded from a Beurer BM85, as published with their
#: decoded values in derdilla/blood-pressure-monitor-fl,
#: ``app/test/features/bluetooth/logic/characteristics/ble_measurement_data_test.dart``
#: ("Recorded from a Beurer BM85"; PR #737): systolic, diastolic, pulse, user, time, and the
#: last one an irregular pulse in the big-endian status.
BM85_CAPTURES: tuple[bytes, ...] = (
    bytes([86, 106, 0, 71, 0, 0, 0, 234, 7, 8, 11, 18, 31, 0, 0, 63, 0, 0, 0]),
    bytes([86, 113, 0, 73, 0, 0, 0, 234, 7, 8, 11, 20, 56, 0, 0, 65, 1, 0, 0]),
    bytes([86, 119, 0, 70, 0, 0, 0, 234, 7, 8, 11, 20, 57, 0, 0, 87, 1, 0, 64]),
    bytes([86, 118, 0, 80, 0, 0, 0, 234, 7, 8, 11, 20, 27, 0, 0, 60, 0, 0, 4]),
)


class EmulatedBeurerBM85(EmulatedBloodPressureCuff):
    """A Beurer BM85: Beurer's byte layout, no Device Information, named by its advert."""

    defaults = replace(EmulatedBloodPressureCuff.defaults, name="BM85", device_information=False)

    def replay(self, captured: bytes) -> bytes:
        """Store a measurement exactly as a real BM85 sent it (:data:`BM85_CAPTURES`)."""
        return self.store_reading(captured)

    async def measure(
        self, measurement: BloodPressureMeasurement | None = None, **kwargs: Any
    ) -> bytes:
        """Store a measurement in the BM85's layout; returns the bytes sent on the air."""
        m = measurement if measurement is not None else self.random_measurement()
        return self.store_reading(beurer_layout(gatt_encode(m)))


class EmulatedAndCuff(EmulatedBloodPressureCuff):
    """An A&D UA-651BLE: Date Time 0x2A08 in the BP service, a settle time before it."""

    defaults = replace(
        EmulatedBloodPressureCuff.defaults,
        name="A&D_UA-651",
        manufacturer="A&D Medical",
        model="UA-651BLE",
        firmware="BLP008_D014",
        current_time=False,
    )

    def __init__(
        self, radio: SimRadio, address: str, *, settle_ms: float = 100.0, **kwargs: Any
    ) -> None:
        self.settle_ms = settle_ms
        self._subscribed_at: float | None = None
        #: Date Time writes ignored because they came before the settle time.
        self.early_clock_writes = 0
        super().__init__(radio, address, **kwargs)

    def build_services(self) -> list[Service]:
        """The Blood Pressure Service with Date Time 0x2A08 in it."""
        services = super().build_services()
        self.date_time: Characteristic[bytes] = self._characteristic(
            DATE_TIME,
            Properties.READ | Properties.WRITE,
            read=lambda: gatt_encode(DateTime.from_datetime(self.clock.now())),
            write=self._write_date_time,
            protected=True,
        )
        bp = services[0]
        return [self._service(*bp.characteristics, self.date_time)]

    def on_subscribed(self, characteristic: Characteristic[bytes], enabled: bool) -> None:
        """Remember when indications were enabled (the settle time runs from there)."""
        if enabled and characteristic is self.measurement:
            self._subscribed_at = time.monotonic()
        super().on_subscribed(characteristic, enabled)

    def _write_date_time(self, _connection: Connection | None, value: bytes) -> None:
        when = written(DATE_TIME, value, DateTime).to_datetime()
        if when is None:
            raise ATT_Error(VALUE_NOT_ALLOWED)
        since = self._subscribed_at
        if since is None or (time.monotonic() - since) * 1000 < self.settle_ms:
            self.early_clock_writes += 1  # acknowledged, and ignored, as the real one does
            return
        self.clock.set(when)
        self._bump()


class EmulatedOmronCuff(EmulatedBloodPressureCuff):
    """An Omron cuff: ``BLEsmart_`` name, nothing read before bonding, and its clock set only
    by a Current Time write after it notified its time (SpeziOmron writes right then)."""

    defaults = replace(
        EmulatedBloodPressureCuff.defaults,
        name="BLEsmart_00000116A1B2C3",
        manufacturer="OMRON HEALTHCARE",
        model="BP7150",
        drops_unencrypted_reads=True,
    )

    def __init__(self, radio: SimRadio, address: str, **kwargs: Any) -> None:
        self._time_notified = False
        #: Current Time writes ignored because the cuff had not notified its time yet.
        self.early_clock_writes = 0
        super().__init__(radio, address, **kwargs)

    def on_subscribed(self, characteristic: Characteristic[bytes], enabled: bool) -> None:
        """Notify the time once Current Time notifications are enabled."""
        clock = self._current_time
        if enabled and clock is not None and characteristic is clock:
            self.spawn(self._notify_time(clock), "notify-time")
        super().on_subscribed(characteristic, enabled)

    async def _notify_time(self, clock: Characteristic[bytes]) -> None:
        now = gatt_encode(CurrentTime.from_datetime(self.clock.now(), AdjustReason(0)))
        if await self.send(clock, now, indicate=False):
            self._time_notified = True

    def _write_current_time(self, connection: Connection | None, value: bytes) -> None:
        if not self._time_notified:
            self.early_clock_writes += 1  # acknowledged and ignored
            return
        super()._write_current_time(connection, value)


class EmulatedOmronRecords(EmulatedGlucoseMeter):
    """Stored records (glucose records, sequence-numbered) behind Omron's RACP dialect: the
    Device Information says OMRON HEALTHCARE, and only filter type 0x04 selects by sequence
    number. All-records requests (``01 01``) are answered as usual."""

    defaults = replace(
        EmulatedGlucoseMeter.defaults,
        name="BLEsmart_00000200D4E5F6",
        manufacturer="OMRON HEALTHCARE",
        model="HEM-OMRON-RACP",
    )

    def __init__(self, radio: SimRadio, address: str, **kwargs: Any) -> None:
        super().__init__(radio, address, **kwargs)
        self.racp.filter_type = RacpFilterType.OMRON_SEQUENCE_NUMBER
