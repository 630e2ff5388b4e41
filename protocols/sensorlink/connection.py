"""The sans-I/O sensor-link endpoint (docs/protocols/sensor-link.md §2-§3).

:class:`SensorLinkConnection` turns received bytes into typed events and messages into bytes.
It keeps only the framing buffer (hard-capped at the maximum frame size) and counters; it never
raises on bad input: a bad frame becomes a :class:`~protocols.sensorlink.framing.BadFrame`
event, a message of an unknown type (or one this side never receives) an
:class:`~protocols.sensorlink.messages.UnknownMessage` event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import get_args

from protocols.errors import DecodeError, EncodeError
from protocols.sensorlink.codec import decode_payload, encode_payload
from protocols.sensorlink.framing import (
    MAX_FRAME_BYTES,
    BadFrame,
    BadFrameReason,
    FrameDecoder,
    encode_frame,
)
from protocols.sensorlink.messages import (
    MESSAGE_TYPES,
    BoardMessage,
    Hello,
    HubMessage,
    Message,
    UnknownMessage,
)

Event = Message | BadFrame | UnknownMessage


class Role(enum.Enum):
    """Which end of the link this object is."""

    HUB = "hub"
    BOARD = "board"


# The message classes each end receives, as a tuple for ``isinstance``.
_RECEIVES: dict[Role, tuple[type, ...]] = {
    Role.HUB: get_args(BoardMessage),
    Role.BOARD: get_args(HubMessage),
}


@dataclass(slots=True)
class LinkCounters:
    """Running totals of one endpoint; never reset by the endpoint itself."""

    bytes_received: int = 0
    frames_received: int = 0
    bad_frames: int = 0
    unknown_messages: int = 0
    frames_sent: int = 0


class SensorLinkConnection:
    """One end of a sensor link.

    Args:
        role: ``Role.HUB`` (the default) receives board messages and sends hub messages.
        max_frame_bytes: the frame-size limit and hard cap on buffered bytes.
    """

    def __init__(self, role: Role = Role.HUB, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.role = role
        self.counters = LinkCounters()
        self._max = max_frame_bytes
        self._frames = FrameDecoder(max_frame_bytes=max_frame_bytes)
        self._accepts = _RECEIVES[role]
        self._sends = _RECEIVES[Role.BOARD if role is Role.HUB else Role.HUB]

    @property
    def buffered_bytes(self) -> int:
        """Bytes of a partial frame held (at most ``max_frame_bytes``)."""
        return self._frames.buffered_bytes

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed received bytes; return the events they complete, in order. Never raises."""
        c = self.counters
        c.bytes_received += len(data)
        events: list[Event] = []
        append = events.append
        accepts = self._accepts
        for item in self._frames.receive_data(data):
            if type(item) is BadFrame:
                c.bad_frames += 1
                append(item)
                continue
            assert isinstance(item, bytes)
            try:
                msg = decode_payload(item)
            except DecodeError as exc:
                c.bad_frames += 1
                reason = (
                    BadFrameReason.CBOR if exc.what == "CBOR payload" else BadFrameReason.SCHEMA
                )
                append(BadFrame(reason, -1, len(item), str(exc)))
                continue
            c.frames_received += 1
            if type(msg) is UnknownMessage:
                c.unknown_messages += 1
                append(msg)
            elif isinstance(msg, accepts) and not (
                # a HELLO with board fields is a board HELLO; the hub HELLO has none
                self.role is Role.BOARD and type(msg) is Hello
            ):
                append(msg)
            else:
                c.unknown_messages += 1
                append(UnknownMessage(MESSAGE_TYPES[type(msg)]))
        return events

    def send(self, message: Message) -> bytes:
        """Return the frame bytes for ``message``.

        Raises:
            EncodeError: the message is not one this role sends, or does not fit a frame.
        """
        if not isinstance(message, self._sends) or (
            self.role is Role.HUB and type(message) is Hello
        ):
            raise EncodeError(type(message).__name__, f"not sent by the {self.role.value}")
        frame = encode_frame(encode_payload(message), max_frame_bytes=self._max)
        self.counters.frames_sent += 1
        return frame
