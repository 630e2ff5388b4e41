"""The error hierarchy of :mod:`protocols`.

One base class for the package; each subclass also inherits the matching builtin so that
callers that only know ``ValueError`` still catch it. Every error carries structured fields
saying *what* was being decoded, *where* (byte offset) and *why*.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by :mod:`protocols`."""


class DecodeError(ProtocolError, ValueError):
    """Bytes from a peer could not be decoded.

    Attributes:
        what: the thing being decoded (a characteristic name and UUID, a frame type, ...).
        offset: byte offset in the input where decoding failed, or ``None``.
        reason: a short human-readable reason.
    """

    def __init__(self, what: str, reason: str, *, offset: int | None = None) -> None:
        self.what = what
        self.offset = offset
        self.reason = reason
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{what}: {reason}{where}")


class EncodeError(ProtocolError, ValueError):
    """A value cannot be represented in the requested wire format."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: {reason}")
