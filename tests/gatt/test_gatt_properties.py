"""Properties of every codec: round trips, arbitrary bytes, truncation, trailing bytes."""

from __future__ import annotations

import pytest
from gatt_strategies import BY_CHARACTERISTIC, NUL_PADDED, VARIABLE_TAIL
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import gatt as g
from protocols.gatt.codec import SUPPORTED_CHARACTERISTICS

ALL = sorted(BY_CHARACTERISTIC)


def test_every_supported_characteristic_has_a_strategy() -> None:
    assert set(BY_CHARACTERISTIC) == set(SUPPORTED_CHARACTERISTICS)


def _canonical(value: object) -> object:
    """A comparison key that also distinguishes Decimal precision (2.0 vs 2)."""
    return repr(value)


@pytest.mark.parametrize("characteristic", ALL, ids=lambda c: f"0x{c:04X}")
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_decode_encode_round_trip(characteristic: int, data: st.DataObject) -> None:
    m = data.draw(BY_CHARACTERISTIC[characteristic])
    wire = g.encode(m)  # type: ignore[arg-type]
    back = g.decode(characteristic, wire)
    assert back == m
    assert _canonical(back) == _canonical(g.decode(characteristic, g.encode(back)))
    assert g.encode(back) == wire


@pytest.mark.parametrize("characteristic", ALL, ids=lambda c: f"0x{c:04X}")
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=24))
def test_arbitrary_bytes_give_a_value_or_decode_error(characteristic: int, raw: bytes) -> None:
    error: g.DecodeError | None = None
    try:
        m = g.decode(characteristic, raw)
    except g.DecodeError as exc:
        error = exc
    if error is not None:
        assert isinstance(error, ValueError)
        assert error.characteristic in {characteristic, None}
        assert error.offset is not None
        assert 0 <= error.offset <= len(raw)
        assert error.reason
        return
    # Strict decoding accepts only canonical encodings: re-encoding gives the same bytes
    # (device strings drop trailing NUL padding).
    wire = g.encode(m)
    if characteristic in NUL_PADDED:
        assert wire == raw.rstrip(b"\x00")
    else:
        assert wire == raw
    g.to_observations(m)


@pytest.mark.parametrize("characteristic", ALL, ids=lambda c: f"0x{c:04X}")
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_truncation_at_every_offset(characteristic: int, data: st.DataObject) -> None:
    m = data.draw(BY_CHARACTERISTIC[characteristic])
    wire = g.encode(m)  # type: ignore[arg-type]
    for cut in range(len(wire)):
        if characteristic in VARIABLE_TAIL:
            try:
                shorter = g.decode(characteristic, wire[:cut])
            except g.DecodeError:
                continue
            assert shorter != m
        else:
            with pytest.raises(g.DecodeError) as info:
                g.decode(characteristic, wire[:cut])
            assert info.value.offset is not None
            assert info.value.offset <= cut


@pytest.mark.parametrize(
    "characteristic", sorted(set(ALL) - VARIABLE_TAIL), ids=lambda c: f"0x{c:04X}"
)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), extra=st.binary(min_size=1, max_size=3))
def test_trailing_bytes_are_rejected(
    characteristic: int, data: st.DataObject, extra: bytes
) -> None:
    m = data.draw(BY_CHARACTERISTIC[characteristic])
    wire = g.encode(m)  # type: ignore[arg-type]
    with pytest.raises(g.DecodeError) as info:
        g.decode(characteristic, wire + extra)
    assert info.value.offset == len(wire) or characteristic == g.RECORD_ACCESS_CONTROL_POINT


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_heart_rate_odd_trailing_byte_is_rejected(data: st.DataObject) -> None:
    m = data.draw(BY_CHARACTERISTIC[g.HEART_RATE_MEASUREMENT])
    with pytest.raises(g.DecodeError):
        g.decode(g.HEART_RATE_MEASUREMENT, g.encode(m) + b"\x01")  # type: ignore[arg-type]


@pytest.mark.parametrize("characteristic", ALL, ids=lambda c: f"0x{c:04X}")
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_observations_never_fail_and_keep_values(characteristic: int, data: st.DataObject) -> None:
    m = data.draw(BY_CHARACTERISTIC[characteristic])
    for o in g.to_observations(m):  # type: ignore[arg-type]
        assert (o.value is None) == (o.special is not None or o.coded_value is not None)
        assert o.unit or o.coded_value is not None
