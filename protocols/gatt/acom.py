"""The Health Observation Body of GHS 1.0: an IEEE 11073-10206 (ACOM) observation in bytes.

GHSS 1.0 *Health Observation Body*, as the Philips GHS server simulator and client example
(``philips-labs/BLE-GHS-*``, by the specification's editors) and Realtek's GHSS server
(``ghss.c``) build it, all little-endian:

====== ==== ===================================================================== ========
Offset Size Field                                                                 Present
====== ==== ===================================================================== ========
0      1    Observation Class Type: 1 numeric, 2 simple discrete, 3 string, 4     always
            sample array, 5 compound discrete event, 6 compound state/event, 7
            compound, 8 TLV-encoded, 0xFF observation bundle
1      2    Length of the whole body, these first three bytes included            always
3      2    Flags: bit0 observation type, bit1 time stamp, bit2 measurement        always
            duration, bit3 measurement status, bit4 object id, bit5 patient, bit6
            supplemental information, bit7 derived-from, bit8 is-member-of, bit9
            TLVs, bits 10-15 RFU
+0     4    Observation Type (MDC code, uint32)                                   bit0
+0     9    Time Stamp (the Elapsed Time layout, :mod:`.elapsed_time`)            bit1
+0     4    Measurement Duration (FLOAT, seconds)                                 bit2
+0     2    Measurement Status (16 bits, :class:`MeasurementStatus`)             bit3
+0     4    Object Id (uint32)                                                    bit4
+0     1    Patient (uint8, the User Data Service user index)                     bit5
+0     1+4n Supplemental Information: count, MDC codes                            bit6
+0     1+4n Derived-From: count, object ids                                      bit7
+0     1+4n Is-Member-Of: count, object ids                                      bit8
+0     1+.. TLVs: count, then per TLV: type (MDC attribute, uint32), length        bit9
            (uint16, of the value), format (uint8), value
+0     ..   Observation Value, by class (below)                                   always
====== ==== ===================================================================== ========

Values: numeric = unit code (uint16, the MDC term in partition 4 "dimensions") + FLOAT;
simple discrete = MDC code (uint32); string = length (uint16) + UTF-8; sample array = unit code,
scale factor, offset, sample period (3 x FLOAT), samples per period (uint8), bytes per sample
(uint8), number of samples (uint32), samples; compound discrete event = count (uint8) + MDC
codes; compound state/event (bit-field types) = size (uint8) + supported mask, state/event mask
and value (size bytes each); compound = count (uint8) + per component: type (uint32), value
class (uint8, 1-6) and a value as above; TLV-encoded = the TLVs field; bundle = count (uint8)
+ whole observation bodies.

Where the public implementations differ, this module follows the two that agree: the Length
counts the class and length bytes (Philips ``withLengthPrefix``, Realtek
``ghss_format_health_obs_body_length``; ST's STM32WBA example counts from the Flags on), and
unit codes are 16 bits (all three). An unknown class keeps its value bytes raw: the Length
says where the observation ends, so nothing is lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._enum import OpenIntEnum
from protocols.gatt._wire import fail
from protocols.gatt.elapsed_time import (
    ELAPSED_TIME_SIZE,
    ElapsedTime,
    decode_elapsed_time_at,
    encode_elapsed_time,
)
from protocols.gatt.medfloat import (
    MedFloat,
    encode_medfloat32,
    float_from_raw,
)

_NAME = "Health Observation"


class ObservationClass(OpenIntEnum):
    """Observation Class Type (GHSS 1.0); unknown classes are kept."""

    NUMERIC = 0x01
    SIMPLE_DISCRETE = 0x02
    STRING = 0x03
    SAMPLE_ARRAY = 0x04
    COMPOUND_DISCRETE_EVENT = 0x05
    COMPOUND_STATE_EVENT = 0x06
    COMPOUND = 0x07
    TLV_ENCODED = 0x08
    BUNDLE = 0xFF


class MeasurementStatus(enum.IntFlag):
    """Measurement Status (ACOM; bit names as in Realtek's ``T_GHSS_HOB_MEAS_STATUS``).

    Bits 8-13 are RFU and kept as sent.
    """

    INVALID = 1 << 0
    QUESTIONABLE = 1 << 1
    NOT_AVAILABLE = 1 << 2
    CALIBRATING = 1 << 3
    TEST_DATA = 1 << 4
    EARLY_ESTIMATE = 1 << 5
    MANUALLY_ENTERED = 1 << 6
    SETTING = 1 << 7
    THRESHOLD_ERROR = 1 << 14
    THRESHOLDING_DISABLED = 1 << 15


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumericValue:
    """A numeric observation value: MDC unit code (partition 4 term) and a FLOAT."""

    unit_code: int
    value: MedFloat


@dataclass(frozen=True, slots=True)
class DiscreteValue:
    """A simple discrete observation value: one MDC code."""

    code: int


@dataclass(frozen=True, slots=True)
class StringValue:
    """A string observation value (UTF-8 on the wire)."""

    text: str


@dataclass(frozen=True, slots=True)
class SampleArrayValue:
    """A sample array: raw samples with the scale that turns them into values.

    value_i = sample_i x scale_factor + offset, in ``unit_code``; ``samples_per_period``
    samples every ``sample_period_s`` seconds.
    """

    unit_code: int
    scale_factor: MedFloat
    offset: MedFloat
    sample_period_s: MedFloat
    samples_per_period: int
    bytes_per_sample: int
    samples: bytes

    @property
    def number_of_samples(self) -> int:
        """Samples in :attr:`samples`."""
        return len(self.samples) // self.bytes_per_sample if self.bytes_per_sample else 0

    def raw_samples(self) -> list[int]:
        """The samples as unsigned integers of ``bytes_per_sample`` bytes."""
        width = self.bytes_per_sample
        return [
            int.from_bytes(self.samples[i : i + width], "little")
            for i in range(0, len(self.samples), width)
        ]


@dataclass(frozen=True, slots=True)
class CompoundDiscreteEventValue:
    """A compound discrete event value: the MDC codes of the events that occurred."""

    codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CompoundStateEventValue:
    """A bit-field (state/event) value: which bits are supported, which are events rather
    than states, and the bits themselves; each field ``size`` bytes."""

    supported_mask: bytes
    state_event_mask: bytes
    value: bytes


ComponentValue = (
    NumericValue
    | DiscreteValue
    | StringValue
    | SampleArrayValue
    | CompoundDiscreteEventValue
    | CompoundStateEventValue
)


@dataclass(frozen=True, slots=True)
class CompoundComponent:
    """One component of a compound observation: its MDC type and its value."""

    type: int
    value: ComponentValue


@dataclass(frozen=True, slots=True)
class CompoundValue:
    """A compound observation value (blood pressure: systolic, diastolic, mean)."""

    components: tuple[CompoundComponent, ...]


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV: an MDC attribute type, a format byte and the value bytes."""

    type: int
    format: int
    value: bytes


@dataclass(frozen=True, slots=True)
class TlvValue:
    """A TLV-encoded observation value."""

    tlvs: tuple[Tlv, ...]


@dataclass(frozen=True, slots=True)
class BundleValue:
    """An observation bundle: observations that share the bundle's common fields."""

    observations: tuple[HealthObservation, ...]


@dataclass(frozen=True, slots=True)
class UnknownValue:
    """The value bytes of an Observation Class Type this module does not know."""

    class_type: int
    raw: bytes


ObservationValue = ComponentValue | CompoundValue | TlvValue | BundleValue | UnknownValue

_CLASS_OF: dict[type, ObservationClass] = {
    NumericValue: ObservationClass.NUMERIC,
    DiscreteValue: ObservationClass.SIMPLE_DISCRETE,
    StringValue: ObservationClass.STRING,
    SampleArrayValue: ObservationClass.SAMPLE_ARRAY,
    CompoundDiscreteEventValue: ObservationClass.COMPOUND_DISCRETE_EVENT,
    CompoundStateEventValue: ObservationClass.COMPOUND_STATE_EVENT,
    CompoundValue: ObservationClass.COMPOUND,
    TlvValue: ObservationClass.TLV_ENCODED,
    BundleValue: ObservationClass.BUNDLE,
}


@dataclass(frozen=True, slots=True)
class HealthObservation:
    """One Health Observation Body (GHSS 1.0, ACOM observation).

    Optional fields are ``None`` when absent; a present list field may be empty. The class
    follows from the type of ``value``.
    """

    value: ObservationValue
    observation_type: int | None = None
    time_stamp: ElapsedTime | None = None
    measurement_duration_s: MedFloat | None = None
    measurement_status: MeasurementStatus | None = None
    object_id: int | None = None
    patient_id: int | None = None
    supplemental_information: tuple[int, ...] | None = None
    derived_from: tuple[int, ...] | None = None
    is_member_of: tuple[int, ...] | None = None
    tlvs: tuple[Tlv, ...] | None = None

    @property
    def observation_class(self) -> ObservationClass:
        """The Observation Class Type this observation encodes with."""
        if isinstance(self.value, UnknownValue):
            return ObservationClass(self.value.class_type)
        return _CLASS_OF[type(self.value)]


# --- decoding -------------------------------------------------------------------------------

_FLAG_TYPE = 1 << 0
_FLAG_TIME_STAMP = 1 << 1
_FLAG_DURATION = 1 << 2
_FLAG_STATUS = 1 << 3
_FLAG_OBJECT_ID = 1 << 4
_FLAG_PATIENT = 1 << 5
_FLAG_SUPPLEMENTAL = 1 << 6
_FLAG_DERIVED_FROM = 1 << 7
_FLAG_IS_MEMBER_OF = 1 << 8
_FLAG_TLVS = 1 << 9
_FLAGS_RFU = 0xFC00
_HEADER = 5
_MAX_DEPTH = 4


class _Reader:
    """Bounded little-endian reads that fail with the observation's offset."""

    __slots__ = ("characteristic", "data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int, characteristic: int | None) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.characteristic = characteristic

    def need(self, size: int, what: str) -> int:
        start = self.pos
        if start + size > self.end:
            fail(self.characteristic, _NAME, f"truncated {what}: needs {size} bytes", start)
        self.pos = start + size
        return start

    def u8(self, what: str) -> int:
        return self.data[self.need(1, what)]

    def u16(self, what: str) -> int:
        start = self.need(2, what)
        return self.data[start] | self.data[start + 1] << 8

    def u32(self, what: str) -> int:
        start = self.need(4, what)
        return int.from_bytes(self.data[start : start + 4], "little")

    def float32(self, what: str) -> MedFloat:
        return float_from_raw(self.u32(what))

    def take(self, size: int, what: str) -> bytes:
        start = self.need(size, what)
        return bytes(self.data[start : start + size])

    def codes(self, what: str) -> tuple[int, ...]:
        count = self.u8(f"{what} count")
        return tuple(self.u32(what) for _ in range(count))


def _tlvs(reader: _Reader) -> tuple[Tlv, ...]:
    count = reader.u8("TLV count")
    tlvs = []
    for _ in range(count):
        tlv_type = reader.u32("TLV type")
        length = reader.u16("TLV length")
        tlv_format = reader.u8("TLV format")
        tlvs.append(Tlv(tlv_type, tlv_format, reader.take(length, "TLV value")))
    return tuple(tlvs)


def _simple_value(reader: _Reader, class_type: int) -> ComponentValue | None:
    """A value of classes 1-6, or ``None`` for another class."""
    if class_type == ObservationClass.NUMERIC:
        return NumericValue(reader.u16("unit code"), reader.float32("numeric value"))
    if class_type == ObservationClass.SIMPLE_DISCRETE:
        return DiscreteValue(reader.u32("discrete value"))
    if class_type == ObservationClass.STRING:
        length = reader.u16("string length")
        start = reader.pos
        raw = reader.take(length, "string")
        try:
            return StringValue(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            fail(reader.characteristic, _NAME, "string is not UTF-8", start + error.start)
    if class_type == ObservationClass.SAMPLE_ARRAY:
        unit = reader.u16("unit code")
        scale = reader.float32("scale factor")
        offset = reader.float32("offset")
        period = reader.float32("sample period")
        per_period = reader.u8("samples per period")
        width = reader.u8("bytes per sample")
        count_at = reader.pos
        count = reader.u32("number of samples")
        if width == 0 and count:
            fail(reader.characteristic, _NAME, "samples of 0 bytes", count_at)
        samples = reader.take(width * count, "samples")
        return SampleArrayValue(unit, scale, offset, period, per_period, width, samples)
    if class_type == ObservationClass.COMPOUND_DISCRETE_EVENT:
        return CompoundDiscreteEventValue(reader.codes("discrete event"))
    if class_type == ObservationClass.COMPOUND_STATE_EVENT:
        size = reader.u8("state/event size")
        return CompoundStateEventValue(
            reader.take(size, "supported mask"),
            reader.take(size, "state/event mask"),
            reader.take(size, "state/event value"),
        )
    return None


def _value(reader: _Reader, class_type: int, depth: int) -> ObservationValue:
    simple = _simple_value(reader, class_type)
    if simple is not None:
        return simple
    if class_type == ObservationClass.COMPOUND:
        count = reader.u8("component count")
        components = []
        for _ in range(count):
            component_type = reader.u32("component type")
            at = reader.pos
            value_class = reader.u8("component value class")
            value = _simple_value(reader, value_class)
            if value is None:
                fail(reader.characteristic, _NAME, f"component value class {value_class}", at)
            components.append(CompoundComponent(component_type, value))
        return CompoundValue(tuple(components))
    if class_type == ObservationClass.TLV_ENCODED:
        return TlvValue(_tlvs(reader))
    if class_type == ObservationClass.BUNDLE:
        count = reader.u8("bundle count")
        observations = []
        for _ in range(count):
            observation, reader.pos = _observation(reader, depth + 1)
            observations.append(observation)
        return BundleValue(tuple(observations))
    return UnknownValue(class_type, reader.take(reader.end - reader.pos, "value"))


def _observation(outer: _Reader, depth: int) -> tuple[HealthObservation, int]:
    """Decode the body at ``outer.pos``; return it and the offset after it."""
    c = outer.characteristic
    start = outer.pos
    if depth > _MAX_DEPTH:
        fail(c, _NAME, f"bundles nested deeper than {_MAX_DEPTH}", start)
    outer.need(_HEADER, "observation header")
    data = outer.data
    class_type = data[start]
    length = data[start + 1] | data[start + 2] << 8
    if length < _HEADER:
        fail(c, _NAME, f"Length {length} is below the header's {_HEADER} bytes", start + 1)
    if start + length > outer.end:
        fail(c, _NAME, f"truncated: Length {length}, has {outer.end - start}", outer.end)
    flags = data[start + 3] | data[start + 4] << 8
    if flags & _FLAGS_RFU:
        fail(c, _NAME, f"reserved flag bits set (0x{flags:04X})", start + 3)
    reader = _Reader(data, start + _HEADER, start + length, c)
    fields: dict[str, object] = {}
    if flags & _FLAG_TYPE:
        fields["observation_type"] = reader.u32("observation type")
    if flags & _FLAG_TIME_STAMP:
        at = reader.need(ELAPSED_TIME_SIZE, "time stamp")
        fields["time_stamp"] = decode_elapsed_time_at(data, at, characteristic=c, name=_NAME)
    if flags & _FLAG_DURATION:
        fields["measurement_duration_s"] = reader.float32("measurement duration")
    if flags & _FLAG_STATUS:
        fields["measurement_status"] = MeasurementStatus(reader.u16("measurement status"))
    if flags & _FLAG_OBJECT_ID:
        fields["object_id"] = reader.u32("object id")
    if flags & _FLAG_PATIENT:
        fields["patient_id"] = reader.u8("patient")
    if flags & _FLAG_SUPPLEMENTAL:
        fields["supplemental_information"] = reader.codes("supplemental information")
    if flags & _FLAG_DERIVED_FROM:
        fields["derived_from"] = reader.codes("derived-from")
    if flags & _FLAG_IS_MEMBER_OF:
        fields["is_member_of"] = reader.codes("is-member-of")
    if flags & _FLAG_TLVS:
        fields["tlvs"] = _tlvs(reader)
    value = _value(reader, class_type, depth)
    if reader.pos != reader.end:
        fail(c, _NAME, f"{reader.end - reader.pos} bytes after the value", reader.pos)
    return HealthObservation(value, **fields), start + length  # type: ignore[arg-type]


def decode_health_observation(
    data: bytes, offset: int = 0, *, characteristic: int | None = None
) -> HealthObservation:
    """Decode one Health Observation Body that fills ``data[offset:]`` exactly."""
    reader = _Reader(data, offset, len(data), characteristic)
    observation, end = _observation(reader, 0)
    if end != len(data):
        fail(characteristic, _NAME, f"{len(data) - end} trailing bytes", end)
    return observation


# --- encoding -------------------------------------------------------------------------------


def _u8(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFF:
        raise EncodeError(_NAME, f"{what} {value} does not fit uint8")
    return bytes((value,))


def _u16(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise EncodeError(_NAME, f"{what} {value} does not fit uint16")
    return value.to_bytes(2, "little")


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError(_NAME, f"{what} {value} does not fit uint32")
    return value.to_bytes(4, "little")


def _encode_codes(codes: tuple[int, ...], what: str) -> bytes:
    return _u8(len(codes), f"{what} count") + b"".join(_u32(code, what) for code in codes)


def _encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    out = _u8(len(tlvs), "TLV count")
    for tlv in tlvs:
        out += _u32(tlv.type, "TLV type") + _u16(len(tlv.value), "TLV length")
        out += _u8(tlv.format, "TLV format") + tlv.value
    return out


def _encode_simple(value: ComponentValue) -> bytes:
    if isinstance(value, NumericValue):
        return _u16(value.unit_code, "unit code") + encode_medfloat32(value.value)
    if isinstance(value, DiscreteValue):
        return _u32(value.code, "discrete value")
    if isinstance(value, StringValue):
        raw = value.text.encode("utf-8")
        return _u16(len(raw), "string length") + raw
    if isinstance(value, SampleArrayValue):
        width = value.bytes_per_sample
        if (width == 0 and value.samples) or (width and len(value.samples) % width):
            raise EncodeError(_NAME, "samples are not a whole number of bytes_per_sample")
        return (
            _u16(value.unit_code, "unit code")
            + encode_medfloat32(value.scale_factor)
            + encode_medfloat32(value.offset)
            + encode_medfloat32(value.sample_period_s)
            + _u8(value.samples_per_period, "samples per period")
            + _u8(width, "bytes per sample")
            + _u32(value.number_of_samples, "number of samples")
            + value.samples
        )
    if isinstance(value, CompoundDiscreteEventValue):
        return _encode_codes(value.codes, "discrete event")
    size = len(value.supported_mask)
    if len(value.state_event_mask) != size or len(value.value) != size:
        raise EncodeError(_NAME, "state/event masks and value differ in size")
    return (
        _u8(size, "state/event size") + value.supported_mask + value.state_event_mask + value.value
    )


def _encode_value(value: ObservationValue) -> bytes:
    if isinstance(value, CompoundValue):
        out = _u8(len(value.components), "component count")
        for component in value.components:
            out += _u32(component.type, "component type")
            out += bytes((_CLASS_OF[type(component.value)],)) + _encode_simple(component.value)
        return out
    if isinstance(value, TlvValue):
        return _encode_tlvs(value.tlvs)
    if isinstance(value, BundleValue):
        count = _u8(len(value.observations), "bundle count")
        return count + b"".join(encode_health_observation(o) for o in value.observations)
    if isinstance(value, UnknownValue):
        return value.raw
    return _encode_simple(value)


def encode_health_observation(observation: HealthObservation) -> bytes:
    """Encode a Health Observation Body; flags follow from the fields that are set."""
    o = observation
    class_type = int(o.observation_class)
    if not 0 <= class_type <= 0xFF:
        raise EncodeError(_NAME, f"class type {class_type} does not fit uint8")
    flags = 0
    body = b""
    optional: tuple[tuple[int, object, object], ...] = (
        (_FLAG_TYPE, o.observation_type, lambda v: _u32(v, "observation type")),
        (_FLAG_TIME_STAMP, o.time_stamp, encode_elapsed_time),
        (_FLAG_DURATION, o.measurement_duration_s, encode_medfloat32),
        (_FLAG_STATUS, o.measurement_status, lambda v: _u16(int(v), "measurement status")),
        (_FLAG_OBJECT_ID, o.object_id, lambda v: _u32(v, "object id")),
        (_FLAG_PATIENT, o.patient_id, lambda v: _u8(v, "patient")),
        (_FLAG_SUPPLEMENTAL, o.supplemental_information, lambda v: _encode_codes(v, "code")),
        (_FLAG_DERIVED_FROM, o.derived_from, lambda v: _encode_codes(v, "derived-from")),
        (_FLAG_IS_MEMBER_OF, o.is_member_of, lambda v: _encode_codes(v, "is-member-of")),
        (_FLAG_TLVS, o.tlvs, _encode_tlvs),
    )
    for bit, field, encoder in optional:
        if field is not None:
            flags |= bit
            body += encoder(field)  # type: ignore[operator]
    body += _encode_value(o.value)
    length = _HEADER + len(body)
    return bytes((class_type,)) + _u16(length, "Length") + flags.to_bytes(2, "little") + body
