"""Unit conversions between the units health devices report, always keeping the original.

Factors are the UCUM definitions (the unit system the FHIR PHD IG requires):

* ``mm[Hg]``: UCUM defines ``m[Hg]`` = 133.3220 kPa, so 1 mm[Hg] = 0.1333220 kPa.
* ``[lb_av]``: 7000 ``[gr]`` x 64.79891 mg = 0.45359237 kg exactly.
* ``[degF]``: Cel x 9/5 + 32.
* glucose ``mg/dL`` <-> ``mmol/L``: molar mass of glucose 180.156 g/mol (mmol/L = mg/dL x 10 /
  180.156); UCUM has no substance-specific factor, this is the clinical-chemistry convention.

A converted value is rounded to the significant digits of the input plus one guard digit
(ROUND_HALF_UP) unless ``significant_digits`` says otherwise, so it claims no more precision
than the device reported while a round trip back still recovers the input. Converting an
:class:`~protocols.gatt.Observation` keeps the device's value and unit in ``original_value`` /
``original_unit``; the device's observation is never replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext

from protocols.gatt.observation import Observation

KPA_PER_MMHG = Decimal("0.1333220")
KG_PER_LB = Decimal("0.45359237")
GLUCOSE_MOLAR_MASS_G_PER_MOL = Decimal("180.156")

_NINE_FIFTHS = Decimal(9) / Decimal(5)
_THIRTY_TWO = Decimal(32)


def _significant(value: Decimal) -> int:
    return max(len(value.as_tuple().digits), 1)


def round_significant(value: Decimal, digits: int) -> Decimal:
    """``value`` rounded half-up to ``digits`` significant digits."""
    if digits < 1:
        raise ValueError("digits must be >= 1")
    if not value:
        return value
    exponent = value.adjusted() - digits + 1
    return value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)


def _convert(
    value: Decimal, function: Callable[[Decimal], Decimal], significant_digits: int | None
) -> Decimal:
    digits = significant_digits if significant_digits is not None else _significant(value) + 1
    with localcontext() as context:
        context.prec = 34
        exact = function(value)
    return round_significant(exact, digits)


def mmhg_from_kpa(value_kpa: Decimal, *, significant_digits: int | None = None) -> Decimal:
    """kPa to mm[Hg]."""
    return _convert(value_kpa, lambda v: v / KPA_PER_MMHG, significant_digits)


def kpa_from_mmhg(value_mmhg: Decimal, *, significant_digits: int | None = None) -> Decimal:
    """mm[Hg] to kPa."""
    return _convert(value_mmhg, lambda v: v * KPA_PER_MMHG, significant_digits)


def fahrenheit_from_celsius(
    value_cel: Decimal, *, significant_digits: int | None = None
) -> Decimal:
    """Cel to [degF]."""
    return _convert(value_cel, lambda v: v * _NINE_FIFTHS + _THIRTY_TWO, significant_digits)


def celsius_from_fahrenheit(
    value_degf: Decimal, *, significant_digits: int | None = None
) -> Decimal:
    """[degF] to Cel."""
    return _convert(value_degf, lambda v: (v - _THIRTY_TWO) / _NINE_FIFTHS, significant_digits)


def kg_from_lb(value_lb: Decimal, *, significant_digits: int | None = None) -> Decimal:
    """[lb_av] to kg."""
    return _convert(value_lb, lambda v: v * KG_PER_LB, significant_digits)


def lb_from_kg(value_kg: Decimal, *, significant_digits: int | None = None) -> Decimal:
    """kg to [lb_av]."""
    return _convert(value_kg, lambda v: v / KG_PER_LB, significant_digits)


def mmol_per_l_from_mg_per_dl(
    value_mg_dl: Decimal, *, significant_digits: int | None = None
) -> Decimal:
    """Glucose mg/dL to mmol/L."""
    return _convert(
        value_mg_dl, lambda v: v * 10 / GLUCOSE_MOLAR_MASS_G_PER_MOL, significant_digits
    )


def mg_per_dl_from_mmol_per_l(
    value_mmol_l: Decimal, *, significant_digits: int | None = None
) -> Decimal:
    """Glucose mmol/L to mg/dL."""
    return _convert(
        value_mmol_l, lambda v: v * GLUCOSE_MOLAR_MASS_G_PER_MOL / 10, significant_digits
    )


#: (from UCUM unit, to UCUM unit) -> conversion function.
CONVERSIONS: dict[tuple[str, str], Callable[..., Decimal]] = {
    ("kPa", "mm[Hg]"): mmhg_from_kpa,
    ("mm[Hg]", "kPa"): kpa_from_mmhg,
    ("Cel", "[degF]"): fahrenheit_from_celsius,
    ("[degF]", "Cel"): celsius_from_fahrenheit,
    ("[lb_av]", "kg"): kg_from_lb,
    ("kg", "[lb_av]"): lb_from_kg,
    ("mg/dL", "mmol/L"): mmol_per_l_from_mg_per_dl,
    ("mmol/L", "mg/dL"): mg_per_dl_from_mmol_per_l,
}


def convert_observation(
    observation: Observation, unit: str, *, significant_digits: int | None = None
) -> Observation:
    """A copy of ``observation`` in ``unit`` that keeps the device's value and unit.

    The same unit returns the observation unchanged; a special value stays special. Raises
    ``ValueError`` for a conversion not in :data:`CONVERSIONS`.
    """
    if observation.unit == unit:
        return observation
    function = CONVERSIONS.get((observation.unit, unit))
    if function is None:
        raise ValueError(f"no conversion from {observation.unit!r} to {unit!r}")
    original_value = observation.original_value
    original_unit = observation.original_unit
    if original_unit is None:
        original_value, original_unit = observation.value, observation.unit
    value = (
        None
        if observation.value is None
        else function(observation.value, significant_digits=significant_digits)
    )
    return dataclasses.replace(
        observation,
        value=value,
        unit=unit,
        original_value=original_value,
        original_unit=original_unit,
    )
