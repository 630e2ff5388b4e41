"""Format 2 bodies: lossless for arbitrary streams and decimals; bad bytes give typed errors."""

from __future__ import annotations

from decimal import Decimal

import cbor2
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import EncodeError
from protocols.uplink import (
    FORMAT_VERSION,
    BatchHeader,
    MalformedBatchError,
    Priority,
    UnsupportedVersionError,
    WireReading,
    decode_body,
    encode_body,
)
from protocols.uplink.columns import MAX_READINGS

T0 = 1_741_759_200_000


def exact(sign: int, digits: str, exponent: int) -> Decimal:
    """A Decimal built from its parts (never through float, scaleb or a context)."""
    return Decimal((sign, tuple(int(c) for c in digits), exponent))


decimals = st.builds(
    exact,
    st.integers(0, 1),
    st.text("0123456789", min_size=1, max_size=60),
    st.integers(-400, 400),
)
specials = st.one_of(st.sampled_from(["nan", "nres", "+inf", "-inf", "reserved"]), st.text())
devices = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["C4:7F:51:0A:9B:3E", "e14e9647eee4d728", "hub", "", "ab", "AB"]),
)


@st.composite
def readings(draw: st.DrawFn) -> WireReading:
    device = draw(devices)
    mdc = draw(st.sampled_from([150364, 150456, 149530, 192513, 0, 2**32 - 1]))
    stream = draw(
        st.one_of(st.just(f"{device}/{mdc}"), st.just(f"{device}/1/0"), st.text(max_size=8))
    )
    special = draw(st.none() | specials)
    return WireReading(
        stream=stream,
        mdc_code=mdc,
        unit=draw(st.sampled_from(["Cel", "%", "/min", "ms", "1", ""])),
        t_ms=draw(st.integers(-(2**62), 2**62) | st.integers(T0, T0 + 600_000)),
        value=None if special is not None else draw(decimals),
        special=special,
        flags=draw(st.frozensets(st.sampled_from(["coded", "quirk", "implausible"]))),
        device=device,
    )


def header(count: int, **changes: object) -> BatchHeader:
    fields: dict[str, object] = {
        "hub_id": "hub-a",
        "boot_id": "5f3a9c0e12ab",
        "seq": 7,
        "created_ms": T0,
        "priority": Priority.CLINICAL,
        "count": count,
    }
    fields.update(changes)
    return BatchHeader(**fields)  # type: ignore[arg-type]


@given(st.lists(readings(), max_size=40), st.sampled_from([None, 1]))
def test_round_trip_of_arbitrary_streams_is_exact(
    items: list[WireReading], zdict: int | None
) -> None:
    batch = decode_body(encode_body(header(len(items)), items, dictionary_id=zdict))
    assert batch.readings == tuple(items)
    # Equal is not enough for decimals: 37.2 == 37.20. The text keeps the precision.
    assert [str(r.value) for r in batch.readings] == [str(r.value) for r in items]
    assert batch.header == header(len(items))


@given(
    st.lists(decimals, min_size=1, max_size=50),
    st.integers(0, 3),
)
def test_one_stream_of_mixed_exponents_is_exact(values: list[Decimal], step_ms: int) -> None:
    items = [
        WireReading("d/1", 1, "1", T0 + i * step_ms, v, device="d") for i, v in enumerate(values)
    ]
    out = decode_body(encode_body(header(len(items)), items)).readings
    assert [str(r.value) for r in out] == [str(v) for v in values]


@pytest.mark.parametrize(
    "text",
    [
        "37.20",
        "37.2",
        "-0",
        "-0.00",
        "0E+5",
        "1E-400",
        "1234567890123456789012345678901234.5",
        "0.1",
    ],
)
def test_precision_and_sign_of_zero_survive(text: str) -> None:
    item = WireReading("s", 150364, "Cel", T0, Decimal(text))
    (out,) = decode_body(encode_body(header(1), [item])).readings
    assert str(out.value) == text


def test_rr_intervals_use_a_common_scale() -> None:
    values = [Decimal(n * 1000) / 1024 for n in (600, 601, 603, 599, 612, 640)]
    items = [
        WireReading("h/147240", 147240, "ms", T0 + i, v, device="h") for i, v in enumerate(values)
    ]
    body = encode_body(header(len(items)), items, dictionary_id=None)
    assert [str(r.value) for r in decode_body(body).readings] == [str(v) for v in values]
    zdict, payload = cbor2.loads(body)[7:]
    raw = payload if zdict is None else zstandard.ZstdDecompressor().decompress(payload)
    rule, low, scale, _ = cbor2.loads(raw)[2][0][6][:4]
    # Normalised exponents, base 10**-7 and the common step 1000/1024 ms = 9765625 x 10**-7.
    assert (rule, low, scale) == (1, -7, 9765625)


def test_non_finite_value_and_missing_value_are_encode_errors() -> None:
    for bad in (
        WireReading("s", 1, "1", 0, Decimal("NaN")),
        WireReading("s", 1, "1", 0, None),
        WireReading("s", 1, "1", 0, Decimal(1), special="nan"),
        WireReading("s", -1, "1", 0, Decimal(1)),
        WireReading("s", 1, "1", 2**63, Decimal(1)),
        WireReading("s", 1, "1", 0, exact(0, "9" * 1001, 0)),
    ):
        with pytest.raises(EncodeError):
            encode_body(header(1), [bad])
    with pytest.raises(EncodeError):
        encode_body(header(2), [WireReading("s", 1, "1", 0, Decimal(1))])


def _body(items: list[object]) -> bytes:
    return cbor2.dumps(items)


def test_unknown_versions_are_typed() -> None:
    good = cbor2.loads(encode_body(header(0), []))
    assert good[0] == FORMAT_VERSION
    for version in (1, 3, "2", None):
        with pytest.raises(UnsupportedVersionError) as info:
            decode_body(_body([version, *good[1:]]))
        assert info.value.version == version


def test_decompression_bomb_is_refused() -> None:
    bomb = zstandard.ZstdCompressor(level=3).compress(b"\x00" * (5 * 1024 * 1024))
    assert len(bomb) < 1024
    with pytest.raises(MalformedBatchError, match="zstd frame states"):
        decode_body(_body([2, "hub-a", "boot", 0, T0, 1, 1, 0, bomb]))


def test_count_cap_and_trailing_bytes() -> None:
    with pytest.raises(MalformedBatchError, match="count"):
        decode_body(_body([2, "hub-a", "boot", 0, T0, 1, MAX_READINGS + 1, None, b""]))
    with pytest.raises(MalformedBatchError, match="trailing"):
        decode_body(encode_body(header(0), []) + b"\x00")


def test_unknown_dictionary_is_refused() -> None:
    with pytest.raises(MalformedBatchError, match="dictionary"):
        decode_body(_body([2, "hub-a", "boot", 0, T0, 1, 0, 99, b"\x28\xb5\x2f\xfd"]))


@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_malformed(data: bytes) -> None:
    with pytest.raises(MalformedBatchError):
        decode_body(data)


@given(st.lists(readings(), min_size=1, max_size=12), st.data())
def test_mutated_columns_decode_or_give_malformed(
    items: list[WireReading], data: st.DataObject
) -> None:
    body = cbor2.loads(encode_body(header(len(items)), items, dictionary_id=None))
    columns = bytearray(
        body[8] if body[7] is None else zstandard.ZstdDecompressor().decompress(body[8])
    )
    index = data.draw(st.integers(0, len(columns) - 1))
    columns[index] = data.draw(st.integers(0, 255))
    count = data.draw(st.sampled_from([len(items), len(items) + 1, 0]))
    mutated = _body([2, "hub-a", "boot", 7, T0, 1, count, None, bytes(columns)])
    try:
        batch = decode_body(mutated)
    except MalformedBatchError:
        return
    assert len(batch.readings) == count
