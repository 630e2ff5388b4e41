"""Blood Pressure Records (BLS 1.1.1) of an enhanced cuff, joined segment by segment.

A cuff that keeps its readings sends them, when the hub asks through the Record Access
Control Point (the same procedures and Sequence Number filter as GLS 1.0 4.9), as Blood
Pressure Record 0x2B36 values: a Segmentation Header, the record's Sequence Number (uint16),
the UUID of the recorded characteristic (an Enhanced Blood Pressure Measurement 0x2B34) and
the recorded value, split into segments when it does not fit the ATT MTU (GSS *Blood
Pressure Record*; :mod:`protocols.gatt.enhanced_bp`).

The session downloads them like a glucose meter's records, by sequence number above the
committed cursor (:mod:`drivers.ble.record_cursors`), so a hub restart neither repeats nor skips a
record. :class:`RecordAssembler` joins the segments of one record: the last one becomes a
whole record (one value that maps to observations, with the record's sequence number); the
others carry no sequence number for the cursor, so a link lost in the middle of a record
never commits it. A record that cannot be joined (a lost segment, a wrong E2E-CRC) is a
malformed value: its acknowledgement fails, which holds the cursor before it, and it is
asked for again.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from protocols.gatt.enhanced_bp import BloodPressureRecordSegment, assemble_blood_pressure_record
from protocols.gatt.errors import DecodeError
from protocols.gatt.numbers import BLOOD_PRESSURE_RECORD
from protocols.gatt.segmentation import SegmentationHeader

if TYPE_CHECKING:
    from drivers.ble.events import MeasurementEvent
    from drivers.ble.session import DeviceSession


class RecordAssembler:
    """The segments of the record being received (one at a time, in order)."""

    def __init__(self) -> None:
        self._segments: list[BloodPressureRecordSegment] = []

    def add(self, segment: BloodPressureRecordSegment) -> BloodPressureRecordSegment | None:
        """The whole record once ``segment`` completes it (as a complete segment), ``None``
        while it is still partial.

        Raises:
            DecodeError: the segments do not make one record (order, identity, E2E-CRC).
        """
        if segment.complete:
            self._segments.clear()
            return segment
        if segment.segmentation.first:
            self._segments = [segment]
            return None
        self._segments.append(segment)
        if not segment.segmentation.last:
            return None
        segments, self._segments = self._segments, []
        record = assemble_blood_pressure_record(segments)
        header = SegmentationHeader(True, True, segments[0].segmentation.counter)
        return BloodPressureRecordSegment(
            header, record.sequence_number, record.uuid, record.recorded
        )


def on_record_value(
    session: DeviceSession, assembler: RecordAssembler, event: MeasurementEvent
) -> None:
    """Hand on one Blood Pressure Record value: a whole record with its sequence number
    (tracked for the cursor), a partial one without, a malformed one with a failed
    acknowledgement; a record at or below the committed cursor is dropped as a duplicate."""
    tracker = session.tracker
    segment = event.measurement
    if not isinstance(segment, BloodPressureRecordSegment):
        session.emit(event)  # the decoding error, counted by the session
        missing = DecodeError(BLOOD_PRESSURE_RECORD, _NAME, "no value", offset=0)
        tracker.new_ack(None).set_exception(event.error or missing)
        return
    sequence = segment.sequence_number
    if tracker.already_committed(sequence):
        tracker.duplicates += 1
        session.status.duplicates += 1
        return
    try:
        whole = assembler.add(segment)
    except DecodeError as error:
        session.emit(session.new_event(BLOOD_PRESSURE_RECORD, event.raw, None, error))
        tracker.new_ack(None).set_exception(error)
        return
    if whole is None:
        session.emit(dataclasses.replace(event, stored=True, ack=tracker.new_ack(None)))
        return
    session.status.records_total += 1
    session.emit(
        dataclasses.replace(
            event,
            measurement=whole,
            sequence_number=sequence,
            stored=True,
            ack=tracker.new_ack(sequence),
        )
    )


_NAME = "Blood Pressure Record"
