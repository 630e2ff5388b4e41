"""Enumerations that keep values the specification reserves (bumble's style).

A peer may send a value a later specification defines. Where that value does not change the
layout of what follows, decoding keeps it as a pseudo-member named ``RESERVED_<value>`` instead
of refusing the whole value; ``int(member)`` is the value on the wire, so it re-encodes exactly.
"""

from __future__ import annotations

import enum
from typing import Self


class OpenIntEnum(enum.IntEnum):
    """An :class:`enum.IntEnum` whose unknown non-negative values become pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, int) and value >= 0:
            member = int.__new__(cls, value)
            member._name_ = f"RESERVED_{value}"
            member._value_ = value
            return member
        return None

    @property
    def is_reserved(self) -> bool:
        """True for a value the specification does not define."""
        return self._name_.startswith("RESERVED_")
