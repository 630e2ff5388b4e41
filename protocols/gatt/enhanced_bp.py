"""Blood Pressure Service 1.1 additions: Enhanced Blood Pressure Measurement 0x2B34, Enhanced
Intermediate Cuff Pressure 0x2B35 and Blood Pressure Record 0x2B36 (BLS 1.1.1).

Enhanced Blood Pressure Measurement (GSS *Enhanced Blood Pressure Measurement*):

====== ==== ============================================================= ==========
Offset Size Field                                                         Present if
====== ==== ============================================================= ==========
0      1    Flags: bit0 unit (0 mmHg, 1 kPa), bit1 time stamp, bit2 pulse  always
            rate, bit3 user ID, bit4 measurement status, bit5 user facing
            time, bit6 Epoch Start 2000 (0: 1900-01-01, 1: 2000-01-01),
            bit7 RFU
1      6    Systolic, Diastolic, Mean Arterial Pressure (3 x SFLOAT)      always
7      4    Time Stamp (uint32 seconds since the epoch start; the sensor's bit1
            base time, possibly UTC aligned)
+0     2    Pulse Rate (SFLOAT, beats/min)                                bit2
+0     1    User ID (0xFF = unknown user)                                 bit3
+0     2    Measurement Status (as 0x2A35, GSS 3.31.2.6)                  bit4
+0     4    User Facing Time (uint32 seconds since the epoch start; time  bit5
            zone, DST and manual adjustments included)
====== ==== ============================================================= ==========

Enhanced Intermediate Cuff Pressure has the same layout with one SFLOAT, the current cuff
pressure, instead of the compound value; it is display-only.

Blood Pressure Record (GSS *Blood Pressure Record*): Segmentation Header (1), Sequence Number
(uint16, per user, rolls over), UUID (uint16, the recorded characteristic, typically 0x2B34),
Recorded Characteristic (a part of, or a whole, characteristic value), E2E-CRC (2, when the
Blood Pressure Feature's E2E-CRC bit 6 is set) over all fields of all parts of the record. A
record that needs several values is sent as segments; :func:`assemble_blood_pressure_record`
joins them. Reading of the segmented form (each segment repeats Sequence Number and UUID, the
E2E-CRC follows the last part only) is this module's, from the GSS field list; single-segment
records, the common case, do not depend on it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.blood_pressure import (
    MEASUREMENT_STATUS_FIELD,
    BloodPressureMeasurementStatus,
    PressureUnit,
)
from protocols.gatt.e2e_crc import E2E_CRC_SIZE, E2ECrcError, crc16_mcrf4xx
from protocols.gatt.errors import DecodeError
from protocols.gatt.kinds import SFLOAT, UInt
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.numbers import (
    BLOOD_PRESSURE_RECORD,
    ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
    ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
)
from protocols.gatt.registry import REGISTRY, characteristic, codec
from protocols.gatt.schema import Field, Flags, FlagValue, Table
from protocols.gatt.segmentation import COUNTER_MODULO, SegmentationHeader

_EBPM_NAME = "Enhanced Blood Pressure Measurement"
_EICP_NAME = "Enhanced Intermediate Cuff Pressure"
_RECORD_NAME = "Blood Pressure Record"

_FLAG_KPA = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_PULSE_RATE = 0x04
_FLAG_USER_ID = 0x08
_FLAG_STATUS = 0x10
_FLAG_USER_FACING_TIME = 0x20
_FLAG_EPOCH_2000 = 0x40
_FLAGS_RFU = 0x80


class EpochStart(enum.IntEnum):
    """Flags bit 6: where Time Stamp and User Facing Time count their seconds from."""

    YEAR_1900 = 0
    YEAR_2000 = 1

    @property
    def start(self) -> dt.datetime:
        """The epoch start, 00:00:00 on January 1 (no zone: the fields say none)."""
        return dt.datetime(1900 if self is EpochStart.YEAR_1900 else 2000, 1, 1)  # noqa: DTZ001


def _table(*sfloats: str) -> Table:
    """The shared layout of 0x2B34 (three SFLOATs) and 0x2B35 (one)."""
    return Table(
        flags=Flags(rfu=_FLAGS_RFU),
        fields=(
            *(Field(f"SFLOAT {i + 1}", SFLOAT, attr) for i, attr in enumerate(sfloats)),
            Field("Time Stamp", UInt(4), "time_stamp_s", present=_FLAG_TIME_STAMP),
            Field("Pulse Rate", SFLOAT, "pulse_rate_bpm", present=_FLAG_PULSE_RATE),
            Field("User ID", UInt(1), "user_id", present=_FLAG_USER_ID),
            Field(
                "Measurement Status",
                MEASUREMENT_STATUS_FIELD,
                "measurement_status",
                present=_FLAG_STATUS,
            ),
            Field(
                "User Facing Time", UInt(4), "user_facing_time_s", present=_FLAG_USER_FACING_TIME
            ),
        ),
        flag_values=(
            FlagValue("unit", _FLAG_KPA, PressureUnit.MMHG, PressureUnit.KPA),
            FlagValue("epoch_start", _FLAG_EPOCH_2000, EpochStart.YEAR_1900, EpochStart.YEAR_2000),
        ),
    )


class _Times:
    """The calendar times of the two enhanced values' second counts (BLS 1.1.1: seconds since
    the epoch the flags name)."""

    __slots__ = ()
    epoch_start: EpochStart
    time_stamp_s: int | None
    user_facing_time_s: int | None

    @property
    def time_stamp(self) -> dt.datetime | None:
        """The sensor's base time (naive; possibly UTC aligned, the value does not say)."""
        return _at(self.epoch_start, self.time_stamp_s)

    @property
    def user_facing_time(self) -> dt.datetime | None:
        """The time the user saw (naive, local wall clock)."""
        return _at(self.epoch_start, self.user_facing_time_s)


@characteristic(
    ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
    _EBPM_NAME,
    gss="Enhanced Blood Pressure Measurement",
    service="BLS 1.1.1 (Enhanced Blood Pressure Measurement characteristic)",
    table=_table("systolic", "diastolic", "mean_arterial_pressure"),
)
@dataclass(frozen=True, slots=True)
class EnhancedBloodPressureMeasurement(_Times):
    """Enhanced Blood Pressure Measurement 0x2B34 (GSS, BLS 1.1.1).

    ``time_stamp_s`` and ``user_facing_time_s`` are seconds since ``epoch_start``; use
    :attr:`time_stamp` and :attr:`user_facing_time` for the calendar times.
    """

    systolic: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp_s: int | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None
    user_facing_time_s: int | None = None
    epoch_start: EpochStart = EpochStart.YEAR_2000


@characteristic(
    ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
    _EICP_NAME,
    gss="Enhanced Intermediate Cuff Pressure",
    service="BLS 1.1.1 (Enhanced Intermediate Cuff Pressure characteristic)",
    table=_table("current_cuff_pressure"),
)
@dataclass(frozen=True, slots=True)
class EnhancedIntermediateCuffPressure(_Times):
    """Enhanced Intermediate Cuff Pressure 0x2B35: the live cuff pressure, display only."""

    current_cuff_pressure: MedFloat
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp_s: int | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None
    user_facing_time_s: int | None = None
    epoch_start: EpochStart = EpochStart.YEAR_2000


def _at(epoch: EpochStart, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else epoch.start + dt.timedelta(seconds=seconds)


_EBPM = REGISTRY.spec(ENHANCED_BLOOD_PRESSURE_MEASUREMENT)
_EICP = REGISTRY.spec(ENHANCED_INTERMEDIATE_CUFF_PRESSURE)


def decode_enhanced_blood_pressure_measurement(data: bytes) -> EnhancedBloodPressureMeasurement:
    """Decode 0x2B34 strictly: RFU flag and status bits, truncation and trailing bytes raise."""
    value: EnhancedBloodPressureMeasurement = _EBPM.decode(data)
    return value


def decode_enhanced_intermediate_cuff_pressure(data: bytes) -> EnhancedIntermediateCuffPressure:
    """Decode 0x2B35 strictly."""
    value: EnhancedIntermediateCuffPressure = _EICP.decode(data)
    return value


def encode_enhanced_blood_pressure_measurement(m: EnhancedBloodPressureMeasurement) -> bytes:
    """Encode 0x2B34; flags follow from the fields that are set."""
    return _EBPM.encode(m)


def encode_enhanced_intermediate_cuff_pressure(m: EnhancedIntermediateCuffPressure) -> bytes:
    """Encode 0x2B35; flags follow from the fields that are set."""
    return _EICP.encode(m)


def _measurement_size(flags: int) -> int:
    """The size of a 0x2B34 value with these (valid) flags."""
    generated = _EBPM.generated
    assert generated is not None
    return generated.plan(flags).struct.size


# --- Blood Pressure Record ------------------------------------------------------------------

_RECORD_HEADER = 5


@dataclass(frozen=True, slots=True)
class BloodPressureRecordSegment:
    """One Blood Pressure Record value (GSS *Blood Pressure Record*), possibly a segment.

    ``part`` is the Recorded Characteristic bytes this value carries. ``secured`` says an
    E2E-CRC followed (only in a record's last segment); a complete record's CRC is checked on
    decoding, a segmented one's by :func:`assemble_blood_pressure_record`.
    """

    segmentation: SegmentationHeader
    sequence_number: int
    uuid: int
    part: bytes
    secured: bool = False
    e2e_crc: int | None = None

    @property
    def complete(self) -> bool:
        """True for a record in one value (first and last segment)."""
        return self.segmentation.first and self.segmentation.last


@dataclass(frozen=True, slots=True)
class BloodPressureRecord:
    """A whole stored record: its sequence number, recorded UUID and characteristic value."""

    sequence_number: int
    uuid: int
    recorded: bytes

    def recorded_measurement(self) -> EnhancedBloodPressureMeasurement | None:
        """The recorded value decoded when it is an Enhanced BPM (0x2B34), else ``None``."""
        if self.uuid != ENHANCED_BLOOD_PRESSURE_MEASUREMENT:
            return None
        return decode_enhanced_blood_pressure_measurement(self.recorded)


def _crc_follows(data: bytes, header: SegmentationHeader, uuid: int, e2e_crc: bool | None) -> bool:
    """Whether the last two bytes are an E2E-CRC. Without the Feature (``None``) only a
    complete Enhanced BPM record tells, by its own flags; otherwise none is assumed."""
    if not header.last:
        return False
    if e2e_crc is not None:
        return e2e_crc
    if not header.first or uuid != ENHANCED_BLOOD_PRESSURE_MEASUREMENT:
        return False
    n = len(data)
    if n <= _RECORD_HEADER or data[_RECORD_HEADER] & _FLAGS_RFU:
        return False
    return n == _RECORD_HEADER + _measurement_size(data[_RECORD_HEADER]) + E2E_CRC_SIZE


def decode_blood_pressure_record(
    data: bytes, *, e2e_crc: bool | None = None
) -> BloodPressureRecordSegment:
    """Decode one 0x2B36 value. ``e2e_crc`` is the Blood Pressure Feature's E2E-CRC bit."""
    c, name = BLOOD_PRESSURE_RECORD, _RECORD_NAME
    n = len(data)
    if n < _RECORD_HEADER:
        layout = (("Segmentation Header", 1), ("Sequence Number", 2), ("UUID", 2))
        raise length_error(c, name, layout, n)
    header = SegmentationHeader.from_byte(data[0])
    sequence = data[1] | data[2] << 8
    uuid = data[3] | data[4] << 8
    secured = _crc_follows(data, header, uuid, e2e_crc)
    end = n - E2E_CRC_SIZE if secured else n
    if end < _RECORD_HEADER:
        fail(c, name, "truncated E2E-CRC", n)
    crc = data[end] | data[end + 1] << 8 if secured else None
    if secured and header.first and crc is not None:
        computed = crc16_mcrf4xx(memoryview(data)[:end])
        if computed != crc:
            raise E2ECrcError(c, name, received=crc, computed=computed, offset=end)
    # A complete record's CRC is verified here and recomputed on encoding; only a segmented
    # record's last segment keeps it, for assemble_blood_pressure_record.
    kept_crc = None if header.first else crc
    segment = BloodPressureRecordSegment(
        header, sequence, uuid, bytes(data[5:end]), secured, kept_crc
    )
    if segment.complete and uuid == ENHANCED_BLOOD_PRESSURE_MEASUREMENT:
        try:
            decode_enhanced_blood_pressure_measurement(segment.part)
        except DecodeError as error:
            offset = _RECORD_HEADER + (error.offset or 0)
            fail(c, name, f"recorded {_EBPM_NAME}: {error.reason}", offset)
    return segment


def _segment_bytes(segment: BloodPressureRecordSegment) -> bytes:
    if not 0 <= segment.sequence_number <= 0xFFFF or not 0 <= segment.uuid <= 0xFFFF:
        raise EncodeError(_RECORD_NAME, "sequence number or UUID does not fit uint16")
    return (
        bytes((segment.segmentation.to_byte(),))
        + segment.sequence_number.to_bytes(2, "little")
        + segment.uuid.to_bytes(2, "little")
        + segment.part
    )


def encode_blood_pressure_record(segment: BloodPressureRecordSegment) -> bytes:
    """Encode one 0x2B36 value. A complete ``secured`` record gets its CRC computed; a
    segmented one carries the ``e2e_crc`` that :func:`split_blood_pressure_record` set."""
    body = _segment_bytes(segment)
    if not segment.secured:
        return body
    if segment.complete:
        return body + crc16_mcrf4xx(body).to_bytes(2, "little")
    if segment.e2e_crc is None or not segment.segmentation.last:
        raise EncodeError(_RECORD_NAME, "only a last segment carries an E2E-CRC value")
    return body + segment.e2e_crc.to_bytes(2, "little")


def assemble_blood_pressure_record(
    segments: Sequence[BloodPressureRecordSegment],
) -> BloodPressureRecord:
    """Join the segments of one record, checking order, identity and the E2E-CRC over the
    bytes of every segment (the CRC field excluded)."""
    c, name = BLOOD_PRESSURE_RECORD, _RECORD_NAME
    if not segments:
        fail(c, name, "no segments", 0)
    first = segments[0]
    for index, segment in enumerate(segments):
        header = segment.segmentation
        if header.first != (index == 0) or header.last != (index == len(segments) - 1):
            fail(c, name, f"segment {index} has the wrong first/last flags", 0)
        expected = (first.segmentation.counter + index) % COUNTER_MODULO
        if header.counter != expected:
            fail(c, name, f"segment counter {header.counter}, expected {expected}", 0)
        if (segment.sequence_number, segment.uuid) != (first.sequence_number, first.uuid):
            fail(c, name, f"segment {index} belongs to another record", 1)
    last = segments[-1]
    if last.secured and last.e2e_crc is not None and not last.complete:
        crc = 0xFFFF
        for segment in segments:
            crc = crc16_mcrf4xx(_segment_bytes(segment), crc)
        if crc != last.e2e_crc:
            raise E2ECrcError(c, name, received=last.e2e_crc, computed=crc, offset=0)
    recorded = b"".join(segment.part for segment in segments)
    record = BloodPressureRecord(first.sequence_number, first.uuid, recorded)
    if record.uuid == ENHANCED_BLOOD_PRESSURE_MEASUREMENT:
        record.recorded_measurement()
    return record


def split_blood_pressure_record(
    record: BloodPressureRecord, *, max_part: int, secured: bool, first_counter: int = 0
) -> list[BloodPressureRecordSegment]:
    """The segments a server sends for ``record``, each part at most ``max_part`` bytes."""
    if max_part < 1:
        raise EncodeError(_RECORD_NAME, f"part size {max_part} too small")
    parts = [record.recorded[i : i + max_part] for i in range(0, len(record.recorded), max_part)]
    parts = parts or [b""]
    segments = [
        BloodPressureRecordSegment(
            SegmentationHeader(
                first=i == 0, last=i == len(parts) - 1, counter=(first_counter + i) % 64
            ),
            record.sequence_number,
            record.uuid,
            part,
            secured and i == len(parts) - 1,
        )
        for i, part in enumerate(parts)
    ]
    if secured and len(segments) > 1:
        crc = 0xFFFF
        for segment in segments:
            crc = crc16_mcrf4xx(_segment_bytes(segment), crc)
        last = segments[-1]
        segments[-1] = BloodPressureRecordSegment(
            last.segmentation, last.sequence_number, last.uuid, last.part, True, crc
        )
    return segments


codec(
    BLOOD_PRESSURE_RECORD,
    _RECORD_NAME,
    gss="Blood Pressure Record",
    service="BLS 1.1.1 (Blood Pressure Record characteristic, stored records through RACP)",
    values=(BloodPressureRecordSegment,),
    encode=encode_blood_pressure_record,
)(decode_blood_pressure_record)
