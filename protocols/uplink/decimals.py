"""Exact decimals of an uplink body as scaled integers (docs/protocols/uplink.md, "Values"):
``Decimal('37.20')`` comes back as ``37.20``, negative zero as ``-0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import accumulate
from typing import Any

from protocols.errors import EncodeError
from protocols.uplink.fields import (
    _CACHE_LIMIT,
    _MAX_SCALED,
    _POW10,
    F_VALUE_FIRST,
    F_VALUE_LOW,
    F_VALUE_RULE,
    F_VALUE_SCALE,
    F_VALUE_SEQ,
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_SPREAD,
    RULE_EXPLICIT,
    RULE_FIXED,
    RULE_NORMALISED,
    _fail,
    _join_cache,
    _Reader,
    _split_cache,
    _Writer,
)

# -- exact decimals --------------------------------------------------------------------------


def split_decimal(value: Decimal) -> tuple[int, int, bool]:
    """``(signed mantissa, exponent, is negative zero)`` of a finite Decimal, exactly."""
    text = str(value)
    hit = _split_cache.get(text)
    if hit is not None:
        return hit
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise EncodeError("uplink batch", f"value {value} is not finite; send it as a special")
    if len(digits) > MAX_DIGITS or abs(exponent) > MAX_EXPONENT:
        raise EncodeError(
            "uplink batch",
            f"value with {len(digits)} digits and exponent {exponent} exceeds the format's "
            f"{MAX_DIGITS} digits or exponent magnitude {MAX_EXPONENT}",
        )
    mantissa = int("".join(map(str, digits)))
    result = (-mantissa if sign else mantissa, exponent, bool(sign) and mantissa == 0)
    if len(_split_cache) >= _CACHE_LIMIT:
        _split_cache.clear()
    _split_cache[text] = result
    return result


def join_decimal(mantissa: int, exponent: int) -> Decimal:
    """``mantissa x 10**exponent`` built exactly from its text (no context rounding)."""
    key = (mantissa, exponent)
    hit = _join_cache.get(key)
    if hit is None:
        hit = Decimal(f"{mantissa}E{exponent}")
        if len(_join_cache) >= _CACHE_LIMIT:
            _join_cache.clear()
        _join_cache[key] = hit
    return hit


def _trailing_zeros(n: int) -> int:
    if n == 0:
        return 0
    text = str(abs(n))
    return len(text) - len(text.rstrip("0"))


def _deltas(values: list[int]) -> list[int]:
    return [values[0], *map(int.__sub__, values[1:], values[:-1])] if values else []


def _sparse(pairs: list[tuple[int, Any]]) -> list[Any]:
    """``[(index, item)]`` (increasing indexes) -> ``[gap, item, gap, item, ...]``."""
    out: list[Any] = []
    last = -1
    for index, item in pairs:
        out += (index - last - 1, item)
        last = index
    return out


# -- values ----------------------------------------------------------------------------------


def encode_values(values: Sequence[Decimal], out: _Writer) -> list[Any]:
    """Fields ``rule, E, g, q(0)`` and the column of q-deltas; returns the exponent
    exceptions (or explicit exponent deltas) and negative zeros, which travel in CBOR."""
    parts = list(map(_split_cache.get, map(str, values)))
    if None in parts:
        parts = [p or split_decimal(v) for p, v in zip(parts, values, strict=True)]
    mantissas_t, exponents_t, negative = zip(*parts, strict=True)
    mantissas = list(mantissas_t)
    exponents = list(exponents_t)
    negative_zeros = [i for i, n in enumerate(negative) if n] if any(negative) else []
    low = min(exponents)
    high = max(exponents)
    extra: list[Any] = []
    if low == high:
        rule, scaled = RULE_FIXED, mantissas
    elif high - low <= MAX_SPREAD:
        scaled = [m * _POW10[e - low] for m, e in zip(mantissas, exponents, strict=True)]
        fixed = [(i, e) for i, e in enumerate(exponents) if e != low]
        normalised = [
            (i, e)
            for i, (s, e) in enumerate(zip(scaled, exponents, strict=True))
            if e != low + _trailing_zeros(s)
        ]
        rule, extra = (
            (RULE_FIXED, fixed) if len(fixed) <= len(normalised) else (RULE_NORMALISED, normalised)
        )
        if 2 * len(extra) > len(values):
            rule, scaled, extra = RULE_EXPLICIT, mantissas, []
        else:
            extra = _sparse(extra)
    else:
        rule, scaled = RULE_EXPLICIT, mantissas
    if rule == RULE_EXPLICIT:
        low = 0
        extra = _deltas(exponents)
    g = math.gcd(*scaled) or 1
    quotients = scaled if g == 1 else [s // g for s in scaled]
    out.field(F_VALUE_RULE, rule)
    out.field(F_VALUE_LOW, low)
    if len(quotients) > 1:  # one value is its own first quotient, with g = 1
        out.field(F_VALUE_SCALE, g - 1)
    else:
        quotients = scaled
    out.field(F_VALUE_FIRST, quotients[0])
    out.seq(F_VALUE_SEQ, list(map(int.__sub__, quotients[1:], quotients[:-1])))
    return [extra, _sparse([(i, 0) for i in negative_zeros])[::2]]


def _ints(where: str, items: Any, *, length: int | None = None) -> list[int]:
    if not isinstance(items, list) or not set(map(type, items)) <= {int}:
        raise _fail(where, "not an array of integers")
    if length is not None and len(items) != length:
        raise _fail(where, f"{len(items)} items where {length} were expected")
    return items


def _pairs(where: str, items: Any, limit: int) -> list[tuple[int, Any]]:
    """``[gap, item, ...]`` -> ``[(index, item)]`` with every index below ``limit``."""
    if not isinstance(items, list) or len(items) % 2:
        raise _fail(where, "not an array of (gap, item) pairs")
    out = []
    index = -1
    for gap, item in zip(items[::2], items[1::2], strict=True):
        if type(gap) is not int or gap < 0:
            raise _fail(where, f"gap {gap!r} is not an unsigned integer")
        index += gap + 1
        if index >= limit:
            raise _fail(where, f"index {index} is beyond the {limit} entries")
        out.append((index, item))
    return out


def _exponent(where: str, e: Any) -> int:
    if type(e) is not int or abs(e) > MAX_EXPONENT:
        raise _fail(where, f"exponent {e!r} is not an integer within +/-{MAX_EXPONENT}")
    return e


def decode_values(
    source: _Reader, count: int, extra: Any, negative: Any, where: str
) -> list[Decimal]:
    """The ``count`` exact values of one stream (fields, then the CBOR extras)."""
    rule = source.field(F_VALUE_RULE, where)
    low = _exponent(where, source.field(F_VALUE_LOW, where))
    g = source.field(F_VALUE_SCALE, where) + 1 if count > 1 else 1
    first = source.field(F_VALUE_FIRST, where)
    deltas = source.seq(F_VALUE_SEQ, count - 1, f"{where} values")
    if rule not in (RULE_FIXED, RULE_NORMALISED, RULE_EXPLICIT):
        raise _fail(where, f"unknown exponent rule {rule!r}")
    if not 0 < g < _MAX_SCALED:
        raise _fail(where, f"scale {g!r} is not a positive integer within bounds")
    if not -_MAX_SCALED < first < _MAX_SCALED:
        raise _fail(where, f"a value has more than {MAX_DIGITS} digits")
    quotients = list(accumulate(deltas, initial=first))
    scaled = quotients if g == 1 else [q * g for q in quotients]
    return restore_decimals(rule, low, scaled, extra, negative, where)


def restore_decimals(
    rule: int, low: int, scaled: list[int], extra: Any, negative: Any, where: str
) -> list[Decimal]:
    """The exact decimals of a stream from its scaled integers ``M`` (checked here), the
    exponent rule with its smallest exponent ``E``, the exponent extras and the gaps of its
    negative zeros (the value column's semantics, shared by every format version)."""
    count = len(scaled)
    if any(not -_MAX_SCALED < s < _MAX_SCALED for s in scaled):
        raise _fail(where, f"a value has more than {MAX_DIGITS} digits")
    if rule == RULE_EXPLICIT:
        exponents = list(accumulate(_ints(f"{where} exponents", extra, length=count)))
        for e in exponents:
            _exponent(where, e)
        mantissas = scaled
    else:
        if rule == RULE_FIXED:
            exponents = [low] * count
        else:
            exponents = [low + _trailing_zeros(s) for s in scaled]
        for index, e in _pairs(f"{where} exponent exceptions", extra, count):
            exponents[index] = _exponent(where, e)
        mantissas = []
        for s, e in zip(scaled, exponents, strict=True):
            shift = e - low
            if not 0 <= shift <= MAX_SPREAD:
                raise _fail(where, f"exponent {e} is outside {low}..{low + MAX_SPREAD}")
            if shift:
                m, rest = divmod(s, _POW10[shift])
                if rest:
                    raise _fail(where, f"value {s} is not a multiple of 10**{shift}")
                mantissas.append(m)
            else:
                mantissas.append(s)
    out = [join_decimal(m, e) for m, e in zip(mantissas, exponents, strict=True)]
    index = -1
    for gap in _ints(f"{where} negative zeros", negative):
        index += gap + 1
        if gap < 0 or index >= count or mantissas[index] != 0:
            raise _fail(where, f"negative zero at {index} is not a zero value")
        out[index] = Decimal(f"-0E{exponents[index]}")
    return out
