"""Shared helpers of the characteristic codecs: error construction and fast construction.

Only the *error path* walks field layouts; the hot path checks one precomputed length per flags
value and unpacks with a precompiled :class:`struct.Struct` (the length is checked first, so
``struct.error`` cannot escape).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from protocols.gatt.errors import DecodeError

T = TypeVar("T")

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


def layout_size(layout: Layout) -> int:
    """Total size in bytes of a layout."""
    return sum(size for _, size in layout)


def fast_constructor(cls: type[T], fields: Sequence[str]) -> Callable[..., T]:
    """A positional constructor for a frozen, slotted dataclass that skips ``__init__``.

    Frozen dataclasses set each field through ``object.__setattr__``, which costs about 150 ns
    per field; the slot descriptors' ``__set__`` costs a third of that. Use only on decoder hot
    paths, after the values have been validated (``__post_init__`` does not run). The
    instances are identical to ones built by ``__init__`` and stay immutable.
    """
    setters: list[Callable[[Any, Any], None]] = [cls.__dict__[f].__set__ for f in fields]
    new = object.__new__
    count = len(setters)

    if count == 6:
        s0, s1, s2, s3, s4, s5 = setters

        def build6(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any) -> T:
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            s4(obj, e)
            s5(obj, f)
            return obj

        return build6

    def build(*values: Any) -> T:
        obj = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(obj, value)
        return obj

    return build
