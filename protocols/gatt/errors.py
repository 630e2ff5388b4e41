"""Errors of :mod:`protocols.gatt`."""

from __future__ import annotations

from protocols.errors import DecodeError as _BaseDecodeError
from protocols.errors import ProtocolError


class DecodeError(_BaseDecodeError):
    """A characteristic value could not be decoded.

    Attributes:
        characteristic: the 16-bit characteristic UUID (0x2A1C), or ``None`` for a bare field.
        offset: byte offset where decoding failed.
        reason: why.
    """

    def __init__(self, characteristic: int | None, name: str, reason: str, *, offset: int) -> None:
        self.characteristic = characteristic
        label = f"{name} (0x{characteristic:04X})" if characteristic is not None else name
        super().__init__(label, reason, offset=offset)


class RegistryError(ProtocolError, ValueError):
    """A characteristic, encoder or observation mapping was registered twice.

    Attributes:
        key: the 16-bit UUID or the value type's name that was already taken.
        reason: what it was already registered as.
    """

    def __init__(self, key: int | str, reason: str) -> None:
        self.key = key
        self.reason = reason
        label = f"0x{key:04X}" if isinstance(key, int) else key
        super().__init__(f"{label}: {reason}")
