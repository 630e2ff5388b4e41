"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) "medical floats".

IEEE 11073-20601:2019 section F.8 (FLOAT-Type, SFLOAT-Type); the special values are the
table in the HL7 FHIR PHD IG "FLOATs" page, summarised in docs/protocols/phd.md section 1.3.

* SFLOAT: 4-bit two's-complement exponent (bits 15..12), 12-bit two's-complement mantissa.
* FLOAT: 8-bit two's-complement exponent (bits 31..24), 24-bit two's-complement mantissa.
* value = mantissa x 10**exponent, kept as a :class:`decimal.Decimal` so that the precision the
  device reported survives (``0xF014`` is ``Decimal('2.0')``, ``0x0002`` is ``Decimal('2')``).
* Special values (NaN, NRes, +INF, -INF, reserved) are exact raw values with exponent 0 and are
  reported as a :class:`Special` status, never as ``float('nan')``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from protocols.errors import EncodeError
from protocols.gatt.errors import DecodeError


class Special(enum.Enum):
    """An 11073 special value; the string is the one used in observations and on the wire."""

    NAN = "nan"
    NRES = "nres"
    POS_INF = "+inf"
    NEG_INF = "-inf"
    RESERVED = "reserved"


@dataclass(frozen=True, slots=True)
class MedFloat:
    """A decoded medical float: exactly one of ``value`` and ``special`` is set."""

    value: Decimal | None
    special: Special | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.special is None):
            raise ValueError("MedFloat needs exactly one of value and special")

    @classmethod
    def of(cls, value: Decimal | int | str) -> MedFloat:
        """A finite value; ``str`` and ``int`` go through :class:`Decimal` exactly."""
        return cls(Decimal(value))

    @classmethod
    def of_special(cls, special: Special) -> MedFloat:
        """A special value (NaN, NRes, +/-INF, reserved)."""
        return cls(None, special)


# Raw values of the specials (exponent 0), SFLOAT and FLOAT.
_SFLOAT_SPECIALS: dict[int, Special] = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.POS_INF,
    0x0802: Special.NEG_INF,
    0x0801: Special.RESERVED,
}
_FLOAT_SPECIALS: dict[int, Special] = {
    0x007FFFFF: Special.NAN,
    0x00800000: Special.NRES,
    0x007FFFFE: Special.POS_INF,
    0x00800002: Special.NEG_INF,
    0x00800001: Special.RESERVED,
}
_SFLOAT_RAW = {special: raw for raw, special in _SFLOAT_SPECIALS.items()}
_FLOAT_RAW = {special: raw for raw, special in _FLOAT_SPECIALS.items()}

# Decoded SFLOATs are cached by raw value: there are only 65,536 of them and devices repeat.
_SFLOAT_CACHE: dict[int, MedFloat] = {}


def sfloat_from_raw(raw: int) -> MedFloat:
    """Decode a 16-bit SFLOAT already read as an unsigned integer (IEEE 11073-20601 F.8)."""
    cached = _SFLOAT_CACHE.get(raw)
    if cached is not None:
        return cached
    special = _SFLOAT_SPECIALS.get(raw)
    result = MedFloat(None, special) if special is not None else _finite(raw, 12, 4)
    _SFLOAT_CACHE[raw] = result
    return result


def float_from_raw(raw: int) -> MedFloat:
    """Decode a 32-bit FLOAT already read as an unsigned integer (IEEE 11073-20601 F.8)."""
    special = _FLOAT_SPECIALS.get(raw)
    if special is not None:
        return MedFloat(None, special)
    return _finite(raw, 24, 8)


def _finite(raw: int, mantissa_bits: int, exponent_bits: int) -> MedFloat:
    """The value of a raw SFLOAT (12 + 4 bits) or FLOAT (24 + 8) that is not a special
    (IEEE 11073-20601 F.8): a two's complement exponent in the high ``exponent_bits`` over a
    two's complement mantissa in the low ``mantissa_bits``."""
    exponent = _signed(raw >> mantissa_bits, exponent_bits)
    mantissa = _signed(raw & ((1 << mantissa_bits) - 1), mantissa_bits)
    return MedFloat(Decimal(mantissa).scaleb(exponent))


def _signed(raw: int, bits: int) -> int:
    """``raw``, a ``bits``-wide field, read as two's complement."""
    return raw - (1 << bits) if raw >> (bits - 1) else raw


def _raw(data: bytes, size: int, name: str) -> int:
    """The little-endian unsigned integer of ``size`` wire bytes of an SFLOAT or FLOAT."""
    if len(data) != size:
        raise DecodeError(
            None, name, f"needs {size} bytes, got {len(data)}", offset=min(len(data), size)
        )
    return int.from_bytes(data, "little")


def medfloat16(data: bytes) -> MedFloat:
    """Decode SFLOAT wire bytes (2 bytes, little-endian) to a value or a special."""
    return sfloat_from_raw(_raw(data, 2, "SFLOAT"))


def medfloat32(data: bytes) -> MedFloat:
    """Decode FLOAT wire bytes (4 bytes, little-endian) to a value or a special."""
    return float_from_raw(_raw(data, 4, "FLOAT"))


def _mantissa_exponent(value: Decimal, what: str) -> tuple[int, int]:
    if not value.is_finite():
        raise EncodeError(what, f"{value} is not finite; use a Special")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    mantissa = 0
    for digit in digits:
        mantissa = mantissa * 10 + digit
    return (-mantissa if sign else mantissa), exponent


def _to_raw(
    m: MedFloat,
    *,
    what: str,
    mantissa_bits: int,
    exponent_bits: int,
    specials: dict[Special, int],
) -> int:
    if m.special is not None:
        return specials[m.special]
    assert m.value is not None
    mantissa, exponent = _mantissa_exponent(m.value, what)
    m_max = (1 << (mantissa_bits - 1)) - 1
    e_min, e_max = -(1 << (exponent_bits - 1)), (1 << (exponent_bits - 1)) - 1
    # Only lossless normalisation: drop trailing zeros of the mantissa into the exponent.
    while (abs(mantissa) > m_max or exponent < e_min) and mantissa % 10 == 0 and mantissa:
        mantissa //= 10
        exponent += 1
    if mantissa == 0:
        exponent = max(min(exponent, e_max), e_min)
    if not -m_max - 1 <= mantissa <= m_max or not e_min <= exponent <= e_max:
        raise EncodeError(what, f"{m.value} does not fit exactly")
    raw = ((exponent & ((1 << exponent_bits) - 1)) << mantissa_bits) | (
        mantissa & ((1 << mantissa_bits) - 1)
    )
    if exponent == 0 and raw in specials.values():
        raise EncodeError(what, f"{m.value} collides with a special value")
    return raw


def sfloat_to_raw(m: MedFloat) -> int:
    """The SFLOAT as an unsigned 16-bit integer; :class:`EncodeError` if not exact."""
    return _to_raw(m, what="SFLOAT", mantissa_bits=12, exponent_bits=4, specials=_SFLOAT_RAW)


def float_to_raw(m: MedFloat) -> int:
    """The FLOAT as an unsigned 32-bit integer; :class:`EncodeError` if not exact."""
    return _to_raw(m, what="FLOAT", mantissa_bits=24, exponent_bits=8, specials=_FLOAT_RAW)


def encode_medfloat16(m: MedFloat) -> bytes:
    """Encode to SFLOAT wire bytes; raises :class:`EncodeError` if not exactly representable."""
    return sfloat_to_raw(m).to_bytes(2, "little")


def encode_medfloat32(m: MedFloat) -> bytes:
    """Encode to FLOAT wire bytes; raises :class:`EncodeError` if not exactly representable."""
    return float_to_raw(m).to_bytes(4, "little")
