"""Hypothesis strategies of the GATT scalar types every characteristic strategy builds on:
SFLOAT and FLOAT (IEEE 11073-20601 medical floats, every raw value), unsigned integers, Date
Time (GSS 3.70: 0 for an unknown year, month or day) and the optional field."""

from __future__ import annotations

from hypothesis import strategies as st

from protocols.gatt.datetime_ import DateTime
from protocols.gatt.medfloat import float_from_raw, sfloat_from_raw

sfloats = st.integers(0, 0xFFFF).map(sfloat_from_raw)
floats = st.integers(0, 0xFFFFFFFF).map(float_from_raw)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
#: ``opt(s)``: a value of ``s`` or ``None`` (an optional field left out).
opt = st.none().__or__
date_times = st.builds(
    DateTime,
    year=st.one_of(st.just(0), st.integers(1582, 9999)),
    month=st.integers(0, 12),
    day=st.integers(0, 31),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
)
