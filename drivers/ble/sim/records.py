"""The base of an emulated device that keeps sequence-numbered records behind a Record
Access Control Point 0x2A52 (:mod:`drivers.ble.sim.racp`): a glucose meter (GLS 1.0), a
BLS 1.1.1 cuff with Blood Pressure Records.

It starts with ``stored_records`` records, taken ``record_spacing`` apart up to now, whose
sequence numbers (uint16, GSS 3.106 Sequence Number) run from ``first_sequence``; what a
record holds is the subclass's :meth:`SequencedRecordDevice.add_record`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from drivers.ble.sim.peripheral import EmulatedDevice
from drivers.ble.sim.racp import RacpServer, StoredRecord
from drivers.ble.sim.radio import SimRadio


def backdated(now: dt.datetime, count: int, spacing: dt.timedelta) -> list[dt.datetime]:
    """When ``count`` seeded records were taken, ``spacing`` apart, the first ``count``
    spacings before ``now`` (oldest first)."""
    start = now - spacing * count
    return [start + spacing * i for i in range(count)]


class SequencedRecordDevice(EmulatedDevice):
    """A device with seeded records behind :attr:`racp` (built by :meth:`build_services`)."""

    racp: RacpServer
    #: How many records it starts with unless told (``stored_records``).
    default_stored_records: ClassVar[int] = 0
    #: The time between two seeded records.
    record_spacing: ClassVar[dt.timedelta] = dt.timedelta(hours=8)

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        stored_records: int | None = None,
        first_sequence: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(radio, address, **kwargs)
        self.racp.next_sequence = first_sequence
        count = self.default_stored_records if stored_records is None else stored_records
        for when in backdated(self.clock.now(), count, self.record_spacing):
            self.add_record(when=when)

    @property
    def records(self) -> list[StoredRecord]:
        """The stored records, oldest first."""
        return self.racp.records

    def add_record(self, *, when: dt.datetime | None = None) -> int:
        """Keep a new record (taken ``when``, default now); returns its sequence number."""
        raise NotImplementedError
