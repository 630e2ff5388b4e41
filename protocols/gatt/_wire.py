"""Error construction shared by the characteristic codecs, generated and hand-written.

Only the *error path* walks field layouts; the fast paths check one precomputed length per
flags value and unpack with a precompiled :class:`struct.Struct` (the length is checked first,
so ``struct.error`` cannot escape). See :mod:`protocols.gatt.generator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from protocols.gatt.errors import DecodeError

#: A layout: ``(field name, size in bytes)`` in wire order.
Layout = Sequence[tuple[str, int]]


def fail(characteristic: int | None, name: str, reason: str, offset: int) -> NoReturn:
    """Raise the gatt :class:`DecodeError` (a ``ValueError``) with all its fields."""
    raise DecodeError(characteristic, name, reason, offset=offset)


def length_error(characteristic: int | None, name: str, layout: Layout, n: int) -> DecodeError:
    """The error for a value of ``n`` bytes that does not match ``layout``.

    Names the first field that does not fit (truncation), or counts the trailing bytes.
    """
    offset = 0
    for field, size in layout:
        if offset + size > n:
            have = max(n - offset, 0)
            return DecodeError(
                characteristic,
                name,
                f"truncated {field}: needs {size} bytes, has {have}",
                offset=offset,
            )
        offset += size
    return DecodeError(characteristic, name, f"{n - offset} trailing bytes", offset=offset)
