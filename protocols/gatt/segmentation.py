"""The one-byte Segmentation Header that BLS 1.1 records and GHS 1.0 observations share.

GSS *Blood Pressure Record*, field Segmentation Header; GHSS 1.0 *Live/Stored Health
Observations*: bit 0 First Segment, bit 1 Last Segment, bits 2-7 Rolling Segment Counter
(0..63, rolling over to 0 after 63). A value that fits one segment has both bits set.

:class:`SegmentReassembler` is a small sans-I/O machine: segments in, events out (complete
payloads, and a :class:`SegmentationError` for each partial message it drops). A segment out of
order (a counter that does not follow, a middle segment with nothing begun, a new first segment
in the middle of a message) drops the partial message and the reassembler resynchronises on the
next first segment. Its buffer is capped.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt.errors import DecodeError

_FIRST = 0x01
_LAST = 0x02
_COUNTER_SHIFT = 2
COUNTER_MODULO = 64


@dataclass(frozen=True, slots=True)
class SegmentationHeader:
    """First/last flags and the rolling segment counter of one segment."""

    first: bool = True
    last: bool = True
    counter: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.counter < COUNTER_MODULO:
            raise ValueError(f"rolling segment counter {self.counter} out of 0..63")

    @classmethod
    def from_byte(cls, byte: int) -> SegmentationHeader:
        """The header of a wire byte (every byte is a valid header)."""
        return cls(bool(byte & _FIRST), bool(byte & _LAST), byte >> _COUNTER_SHIFT)

    def to_byte(self) -> int:
        """The wire byte."""
        return int(self.first) | int(self.last) << 1 | self.counter << _COUNTER_SHIFT


class SegmentationError(DecodeError):
    """A segment that does not continue the message being reassembled.

    Attributes (besides :class:`~protocols.gatt.DecodeError`'s):
        dropped_bytes: bytes of the partial message that were discarded.
    """

    def __init__(
        self, characteristic: int | None, name: str, reason: str, *, dropped_bytes: int
    ) -> None:
        self.dropped_bytes = dropped_bytes
        super().__init__(characteristic, name, reason, offset=0)


class SegmentReassembler:
    """Joins segments (header byte + payload part) into complete payloads.

    :meth:`receive_segment` returns events: each complete payload as ``bytes``, and a
    :class:`SegmentationError` for every partial message it had to drop (an out-of-order
    segment, a first segment before the previous message's last one, a message over
    ``max_bytes``). Errors are events, not exceptions, so a good payload that arrives with the
    news of a dropped one is never lost.
    """

    def __init__(self, *, characteristic: int | None, name: str, max_bytes: int = 65_536) -> None:
        self._characteristic = characteristic
        self._name = name
        self._max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self._next_counter: int | None = None

    @property
    def in_progress(self) -> bool:
        """True while a message has begun and its last segment has not arrived."""
        return self._next_counter is not None

    def _reset(self) -> None:
        self._parts.clear()
        self._size = 0
        self._next_counter = None

    def _drop(self, reason: str, extra: int = 0) -> SegmentationError:
        dropped = self._size + extra
        self._reset()
        return SegmentationError(self._characteristic, self._name, reason, dropped_bytes=dropped)

    def receive_segment(self, segment: bytes) -> list[bytes | SegmentationError]:
        """Take one characteristic value; return the events it causes."""
        if not segment:
            return [self._drop("empty value: needs a Segmentation Header")]
        events: list[bytes | SegmentationError] = []
        header = SegmentationHeader.from_byte(segment[0])
        if header.first:
            if self.in_progress:
                events.append(self._drop("first segment before the previous last segment"))
            self._next_counter = header.counter
        elif not self.in_progress:
            extra = len(segment) - 1
            return [self._drop(f"segment {header.counter} continues no message", extra)]
        elif header.counter != self._next_counter:
            reason = f"segment counter {header.counter}, expected {self._next_counter}"
            return [self._drop(reason, len(segment) - 1)]
        self._size += len(segment) - 1
        if self._size > self._max_bytes:
            events.append(self._drop(f"message exceeds {self._max_bytes} bytes"))
            return events
        self._parts.append(segment[1:])
        if header.last:
            events.append(b"".join(self._parts))
            self._reset()
        else:
            self._next_counter = (header.counter + 1) % COUNTER_MODULO
        return events


def split_into_segments(payload: bytes, *, max_segment: int, first_counter: int = 0) -> list[bytes]:
    """Split ``payload`` into values of at most ``max_segment`` bytes, header byte included
    (``max_segment`` is typically ATT_MTU - 3)."""
    if max_segment < 2:
        raise EncodeError("Segmentation Header", f"segment size {max_segment} leaves no room")
    if not 0 <= first_counter < COUNTER_MODULO:
        raise EncodeError("Segmentation Header", f"counter {first_counter} out of 0..63")
    part = max_segment - 1
    chunks = [payload[i : i + part] for i in range(0, len(payload), part)] or [b""]
    segments = []
    for index, chunk in enumerate(chunks):
        header = SegmentationHeader(
            first=index == 0,
            last=index == len(chunks) - 1,
            counter=(first_counter + index) % COUNTER_MODULO,
        )
        segments.append(bytes((header.to_byte(),)) + chunk)
    return segments
