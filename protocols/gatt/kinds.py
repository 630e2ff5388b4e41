"""Field kinds shared by the characteristic tables (see :mod:`protocols.gatt.schema`).

* :class:`UInt` / :class:`SInt`: little-endian integers (GSS ``uint8``..``uint32``,
  ``sint16``), optionally range-checked.
* :data:`SFLOAT` / :data:`FLOAT`: IEEE 11073-20601 medical floats (:mod:`~protocols.gatt.medfloat`).
* :class:`Enumerated`: a ``uint8`` enumeration whose undefined values are reserved.
* :class:`Bits`: a bit field kept whole (an ``IntFlag`` or a status class), reserved bits and
  reserved combinations rejected; validated values are cached by raw value.
* :class:`Packed`: several values in one integer (nibbles, resolutions), each checked.
* :class:`Scaled`: a ``uint16`` times a decimal resolution, with an "unknown" sentinel.
* :class:`ByFlag`: one of two kinds, chosen by a flag bit (a unit-dependent resolution).
* :class:`Record`: a nested value made of fields (Day Date Time inside Current Time).

The Date Time kinds live with :class:`~protocols.gatt.datetime_.DateTime`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from protocols.errors import EncodeError
from protocols.gatt.generator import emit_construct
from protocols.gatt.medfloat import (
    _SFLOAT_CACHE,
    MedFloat,
    float_from_raw,
    float_to_raw,
    sfloat_from_raw,
    sfloat_to_raw,
)
from protocols.gatt.schema import BAIL, Field, Kind, Layout, Problem, Source, Table

_INT_FORMATS = {1: "B", 2: "H", 4: "I"}

#: Most validated values a :class:`Bits` or :class:`Packed` kind keeps (devices repeat a handful).
CACHE_CAP = 4096


def _bits(size: int) -> int:
    return 8 * size


def _integer(value: object, what: str, name: str) -> int:
    if not isinstance(value, int):
        raise EncodeError(what, f"{name} is not an integer: {value!r}")
    return int(value)


class UInt(Kind):
    """An unsigned little-endian integer of ``size`` bytes (1, 2 or 4).

    ``maximum`` (inclusive) is checked on decode with ``reason`` (``{value}`` is replaced) and
    on encode; without it any value of the size is valid.
    """

    def __init__(self, size: int, *, maximum: int | None = None, reason: str = "") -> None:
        self.fmt = _INT_FORMATS[size]
        self.size = size
        self.maximum = maximum
        self.reason = reason

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        if self.maximum is not None:
            src.line(f"if {raws[0]} > {self.maximum}: {BAIL}")
        return (raws[0],)

    def check(self, raws: Sequence[int]) -> Problem | None:
        if self.maximum is not None and raws[0] > self.maximum:
            return self.reason.format(value=raws[0]), 0
        return None

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        return (raws[0],)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        value = _integer(values[0], what, name)
        top = (1 << _bits(self.size)) - 1 if self.maximum is None else self.maximum
        if not 0 <= value <= top:
            raise EncodeError(what, f"{name} {value} out of range 0..{top}")
        return (value,)


class SInt(Kind):
    """A signed little-endian integer of 2 bytes (GSS ``sint16``)."""

    fmt = "h"
    size = 2

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        return (raws[0],)

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        return (raws[0],)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        value = _integer(values[0], what, name)
        if not -0x8000 <= value <= 0x7FFF:
            raise EncodeError(what, f"{name} {value} out of range")
        return (value,)


class _MedFloat(Kind):
    """An IEEE 11073-20601 medical float (section F.8): its ``size`` bytes read as one
    unsigned integer, which ``from_raw`` turns into a :class:`MedFloat` and ``to_raw`` back."""

    def __init__(
        self,
        fmt: str,
        size: int,
        from_raw: Callable[[int], MedFloat],
        to_raw: Callable[[MedFloat], int],
    ) -> None:
        self.fmt = fmt
        self.size = size
        self.from_raw = from_raw
        self.to_raw = to_raw

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        return (f"{src.const(self.from_raw, 'float')}({raws[0]})",)

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        return (self.from_raw(raws[0]),)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        value = values[0]
        if not isinstance(value, MedFloat):
            raise EncodeError(what, f"{name} is not a MedFloat: {value!r}")
        return (self.to_raw(value),)


class _SFloat(_MedFloat):
    """SFLOAT, decoded through the per-raw-value cache."""

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        get = src.const(_SFLOAT_CACHE.get, "sfloat_cached")
        decode = src.const(sfloat_from_raw, "sfloat")
        return (f"({get}({raws[0]}) or {decode}({raws[0]}))",)


SFLOAT: Kind = _SFloat("H", 2, sfloat_from_raw, sfloat_to_raw)
FLOAT: Kind = _MedFloat("I", 4, float_from_raw, float_to_raw)


class Enumerated(Kind):
    """A ``uint8`` enumeration; values that are not members are reserved ("reserved Meal 6")."""

    fmt = "B"
    size = 1

    def __init__(self, members: type[enum.IntEnum], label: str) -> None:
        self.members = members
        self.label = label
        self._by_value: dict[int, enum.IntEnum] = {m.value: m for m in members}

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        value = src.local("e")
        src.line(f"{value} = {src.const(self._by_value.get, 'members')}({raws[0]})")
        src.line(f"if {value} is None: {BAIL}")
        return (value,)

    def check(self, raws: Sequence[int]) -> Problem | None:
        if raws[0] not in self._by_value:
            return f"reserved {self.label} {raws[0]}", 0
        return None

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        return (self._by_value[raws[0]],)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        return (_member_value(self.members, values[0], what, name),)


def _member_value(members: type[enum.IntEnum], value: object, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(what, f"{name}: not a {members.__name__}: {value!r}")
    try:
        return int(members(value))
    except ValueError:
        raise EncodeError(what, f"{name}: not a {members.__name__}: {value!r}") from None


@dataclass(frozen=True, slots=True)
class Reserved:
    """A reserved combination of bits: ``raw & mask == value`` is rejected with ``reason``."""

    mask: int
    value: int
    reason: str


class _Cache:
    """Validated values by raw value, capped at :data:`CACHE_CAP` entries."""

    def __init__(self) -> None:
        self.values: dict[int, Any] = {}

    def keep(self, raw: int, value: Any) -> Any:
        if len(self.values) < CACHE_CAP:
            self.values[raw] = value
        return value


class Bits(Kind):
    """A bit field kept whole: ``convert(raw)`` after reserved bits and combinations are
    rejected ("reserved Measurement Status bits set (0x0040)"); ``to_raw`` encodes it back."""

    def __init__(
        self,
        convert: Callable[[int], object],
        *,
        size: int,
        rfu: int,
        label: str,
        reserved: tuple[Reserved, ...] = (),
        to_raw: Callable[[Any], int] = int,
    ) -> None:
        self.fmt = "HB" if size == 3 else _INT_FORMATS[size]
        self.size = size
        self.convert = convert
        self.rfu = rfu
        self.label = label
        self.reserved = reserved
        self.to_raw = to_raw
        self._cache = _Cache()

    def _raw(self, raws: Sequence[int]) -> int:
        return raws[0] | raws[1] << 16 if self.size == 3 else raws[0]

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        raw = f"({raws[0]} | {raws[1]} << 16)" if self.size == 3 else raws[0]
        value = src.local("b")
        src.line(f"{value} = {src.const(self._cache.values.get, 'bits')}({raw})")
        src.line(f"if {value} is None: {BAIL}")
        return (value,)

    def check(self, raws: Sequence[int]) -> Problem | None:
        raw = self._raw(raws)
        if raw & self.rfu:
            return f"reserved {self.label} bits set (0x{raw:0{2 * self.size}X})", 0
        for rule in self.reserved:
            if raw & rule.mask == rule.value:
                return rule.reason, 0
        return None

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        raw = self._raw(raws)
        return (self._cache.keep(raw, self.convert(raw)),)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        try:
            raw = self.to_raw(values[0])
        except (TypeError, ValueError, AttributeError):
            raise EncodeError(what, f"{name}: not a {self.label}: {values[0]!r}") from None
        bad = not 0 <= raw < 1 << _bits(self.size) or raw & self.rfu
        if bad or any(raw & rule.mask == rule.value for rule in self.reserved):
            raise EncodeError(what, f"reserved {self.label} bits in 0x{raw:0{2 * self.size}X}")
        return _split(raw, self.size)


def _split(raw: int, size: int) -> tuple[int, ...]:
    return (raw & 0xFFFF, raw >> 16) if size == 3 else (raw,)


def feature_table(bits: type[enum.IntFlag], *, rfu: int) -> Table:
    """The table of a Feature characteristic that is one ``uint16`` bit field, ``features``,
    with the reserved bits ``rfu`` (GSS 3.32 Blood Pressure Feature, 3.108 Glucose Feature)."""
    return Table(
        fields=(Field("Feature", Bits(bits, size=2, rfu=rfu, label="feature"), "features"),)
    )


@dataclass(frozen=True, slots=True)
class Part:
    """One value packed in a :class:`Packed` integer: ``width`` bits from bit ``shift``.

    ``members`` is an ``IntEnum`` (undefined values are reserved and named by ``label``), or
    ``bool`` for a single bit.
    """

    shift: int
    width: int
    members: type[enum.IntEnum] | type[bool]
    label: str = ""


class Packed(Kind):
    """Several values in one integer ("Type-Sample Location", Weight Scale Feature).

    Reserved bits (``rfu``, named by ``label``) are checked first, then each part in order.
    """

    def __init__(
        self, size: int, parts: tuple[Part, ...], *, rfu: int = 0, label: str = ""
    ) -> None:
        self.fmt = _INT_FORMATS[size]
        self.size = size
        self.width = len(parts)
        self.parts = parts
        self.rfu = rfu
        self.label = label
        self._cache = _Cache()
        self._members = [
            None if p.members is bool else {m.value: m for m in p.members} for p in parts
        ]

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        values = src.local("p")
        src.line(f"{values} = {src.const(self._cache.values.get, 'packed')}({raws[0]})")
        src.line(f"if {values} is None: {BAIL}")
        return tuple(f"{values}[{i}]" for i in range(self.width))

    def check(self, raws: Sequence[int]) -> Problem | None:
        raw = raws[0]
        if raw & self.rfu:
            return f"reserved {self.label} bits set (0x{raw:0{2 * self.size}X})", 0
        for part, members in zip(self.parts, self._members, strict=True):
            value = raw >> part.shift & ((1 << part.width) - 1)
            if members is not None and value not in members:
                return f"reserved {part.label} {value}", 0
        return None

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        raw = raws[0]
        values: list[object] = []
        for part, members in zip(self.parts, self._members, strict=True):
            value = raw >> part.shift & ((1 << part.width) - 1)
            values.append(bool(value) if members is None else members[value])
        return self._cache.keep(raw, tuple(values))  # type: ignore[no-any-return]

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        raw = 0
        for part, value in zip(self.parts, values, strict=True):
            if part.members is bool:
                if value not in (False, True):
                    raise EncodeError(what, f"{name}: not a boolean: {value!r}")
                bits = int(value)
            else:
                bits = _member_value(part.members, value, what, name)
            raw |= bits << part.shift
        return (raw,)


class Scaled(Kind):
    """A ``uint16`` count of a decimal resolution: ``multiplier`` x 10**``exponent`` per LSB.

    ``unknown`` is a sentinel raw value that decodes to ``None`` ("Measurement Unsuccessful").
    Encoding needs an exact multiple of the resolution.
    """

    fmt = "H"
    size = 2

    def __init__(self, multiplier: int, exponent: int, *, unknown: int | None = None) -> None:
        self.multiplier = multiplier
        self.exponent = exponent
        self.unknown = unknown
        self.lsb = Decimal(multiplier).scaleb(exponent)

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        scaled = f"{src.const(Decimal, 'Decimal')}({raws[0]} * {self.multiplier})"
        value = f"{scaled}.scaleb({self.exponent})"
        if self.unknown is None:
            return (value,)
        return (f"(None if {raws[0]} == {self.unknown} else {value})",)

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        if raws[0] == self.unknown:
            return (None,)
        return (Decimal(raws[0] * self.multiplier).scaleb(self.exponent),)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        value = values[0]
        if value is None and self.unknown is not None:
            return (self.unknown,)
        if not isinstance(value, Decimal | int):
            raise EncodeError(what, f"{name} is not a Decimal: {value!r}")
        count = value / self.lsb
        exact = count == count.to_integral_value()
        if not exact or not 0 <= count <= 0xFFFF or int(count) == self.unknown:
            raise EncodeError(what, f"{name} {value} is not a multiple of {self.lsb} in range")
        return (int(count),)


class ByFlag(Kind):
    """``clear`` or ``when_set`` depending on flag bit ``mask`` (a unit-dependent resolution)."""

    def __init__(self, mask: int, clear: Kind, when_set: Kind) -> None:
        if (clear.fmt, clear.size, clear.width) != (when_set.fmt, when_set.size, when_set.width):
            raise TypeError("ByFlag kinds must share their wire format")
        self.mask = mask
        self.clear = clear
        self.when_set = when_set
        self.fmt, self.size, self.width = clear.fmt, clear.size, clear.width

    def specialise(self, flags: int) -> Kind:
        return self.when_set if flags & self.mask else self.clear

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        raise TypeError("ByFlag is specialised before use")

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        raise TypeError("ByFlag is specialised before use")

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        raise TypeError("ByFlag is specialised before use")


class Record(Kind):
    """A nested value of class ``cls`` made of ``fields`` (always present, no flags)."""

    def __init__(self, cls: type, fields: tuple[Field, ...]) -> None:
        if any(f.present for f in fields):
            raise TypeError("a Record's fields are always present")
        self.cls = cls
        self.fields = fields
        self.fmt = "".join(f.kind.fmt for f in fields)
        self.size = sum(f.kind.size for f in fields)

    def layout(self, name: str) -> Layout:
        del name
        return tuple(entry for f in self.fields for entry in f.kind.layout(f.name))

    def _slices(self) -> list[tuple[Field, int, int, int]]:
        """(field, first raw index, raw count, byte offset) per field."""
        out, first, offset = [], 0, 0
        for f in self.fields:
            out.append((f, first, len(f.kind.fmt), offset))
            first += len(f.kind.fmt)
            offset += f.kind.size
        return out

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        values: dict[str, str] = {}
        for f, first, count, _ in self._slices():
            exprs = f.kind.emit(src, raws[first : first + count])
            values.update(zip(f.attrs, exprs, strict=True))
        return (emit_construct(src, self.cls, values),)

    def check(self, raws: Sequence[int]) -> Problem | None:
        for f, first, count, offset in self._slices():
            problem = f.kind.check(raws[first : first + count])
            if problem is not None:
                return problem[0], offset + problem[1]
        return None

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        values: dict[str, object] = {}
        for f, first, count, _ in self._slices():
            values.update(zip(f.attrs, f.kind.build(raws[first : first + count]), strict=True))
        return (self.cls(**values),)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        value = values[0]
        out: list[int] = []
        for f, _, _, _ in self._slices():
            parts = tuple(getattr(value, attr) for attr in f.attrs)
            out.extend(f.kind.encode(parts, what, f.name))
        return tuple(out)
