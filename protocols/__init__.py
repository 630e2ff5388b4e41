"""narhub protocols: pure, sans-I/O codecs.

Bytes in, frozen dataclasses out; time is passed in as a number. Nothing in this package
opens a socket, touches the event loop or reads a clock (enforced by import-linter, see
``pyproject.toml``).
"""

from protocols.errors import DecodeError, EncodeError, ProtocolError

__all__ = ["DecodeError", "EncodeError", "ProtocolError"]
