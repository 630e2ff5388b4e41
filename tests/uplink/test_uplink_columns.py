"""Format 3 bodies: lossless for arbitrary streams and decimals; bad bytes give typed errors."""

from __future__ import annotations

from decimal import Decimal
from itertools import accumulate

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
    encode_body,
)
from protocols.uplink.body import decode_body
from protocols.uplink.columns import earlier_times
from protocols.uplink.decimals import encode_values
from protocols.uplink.dictionary import DEFAULT_DICTIONARY_ID, field_model
from protocols.uplink.fields import (
    F_VALUE_FIRST,
    F_VALUE_LOW,
    F_VALUE_RULE,
    F_VALUE_SCALE,
    MAX_READINGS,
    _Writer,
)

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


@given(st.lists(readings(), max_size=40), st.sampled_from([None, 2]), st.booleans())
def test_round_trip_of_arbitrary_streams_is_exact(
    items: list[WireReading], zdict: int | None, compress: bool
) -> None:
    body = encode_body(header(len(items)), items, dictionary_id=zdict, compress=compress)
    batch = decode_body(body, "hub-a")
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
    out = decode_body(encode_body(header(len(items)), items), "hub-a").readings
    assert [str(r.value) for r in out] == [str(v) for v in values]


@given(
    st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=80),
    st.lists(st.integers(0, 2**40), min_size=1, max_size=80),
)
def test_long_columns_of_any_integers_are_exact(mantissas: list[int], gaps: list[int]) -> None:
    """Columns long enough to be entropy coded, with big integers that escape the symbols."""
    times = list(accumulate(gaps, initial=T0))[: len(mantissas)]
    items = [
        WireReading("d/1", 1, "1", t, Decimal(m).scaleb(-2), device="d")
        for t, m in zip(times, mantissas, strict=False)
    ]
    out = decode_body(encode_body(header(len(items)), items), "hub-a").readings
    assert out == tuple(items)


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
    (out,) = decode_body(encode_body(header(1), [item]), "hub-a").readings
    assert str(out.value) == text


def _fields(values: list[Decimal]) -> dict[int, int]:
    """The fields the value column of ``values`` puts in the rANS stream, by context."""
    out = _Writer(field_model(DEFAULT_DICTIONARY_ID))
    encode_values(values, out)
    fields: dict[int, int] = {}
    for table, items, _ in out.packer.runs:
        if table is None:
            for field_table, _, u in items:
                ctx = out.model.index(field_table)
                fields.setdefault(ctx, u >> 1 if not u & 1 else -(u >> 1) - 1)
    return fields


def test_rr_intervals_use_a_common_scale() -> None:
    values = [Decimal(n * 1000) / 1024 for n in (600, 601, 603, 599, 612, 640)]
    items = [
        WireReading("h/147240", 147240, "ms", T0 + i, v, device="h") for i, v in enumerate(values)
    ]
    body = encode_body(header(len(items)), items)
    assert [str(r.value) for r in decode_body(body, "hub-a").readings] == [str(v) for v in values]
    fields = _fields(values)
    # Normalised exponents, base 10**-7 and the common step 1000/1024 ms = 9765625 x 10**-7.
    assert (fields[F_VALUE_RULE], fields[F_VALUE_LOW], fields[F_VALUE_SCALE] + 1) == (
        1,
        -7,
        9765625,
    )
    assert fields[F_VALUE_FIRST] == 600


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


def _magicless(data: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, write_content_size=1, format=zstandard.FORMAT_ZSTD1_MAGICLESS
    )
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


S0 = T0 // 1000


def test_unknown_versions_are_typed() -> None:
    good = cbor2.loads(encode_body(header(0), []))
    assert good[0] == FORMAT_VERSION
    for version in (1, 4, "3", None):  # 2 is read by protocols.uplink.v2
        with pytest.raises(UnsupportedVersionError) as info:
            decode_body(_body([version, *good[1:]]), "hub-a")
        assert info.value.version == version


def test_decompression_bomb_is_refused() -> None:
    bomb = _magicless(b"\x00" * (5 * 1024 * 1024))
    assert len(bomb) < 1024
    with pytest.raises(MalformedBatchError, match="zstd frame states"):
        decode_body(_body([3, "b00d", 0, S0, 1, 1, 0, bomb]), "hub-a")


def test_count_cap_and_trailing_bytes() -> None:
    with pytest.raises(MalformedBatchError, match="count"):
        decode_body(_body([3, "b00d", 0, S0, 1, MAX_READINGS + 1, 0, b""]), "hub-a")
    with pytest.raises(MalformedBatchError, match="trailing"):
        decode_body(encode_body(header(0), []) + b"\x00", "hub-a")


def test_unknown_dictionary_is_refused() -> None:
    for zdict in (99, 1, -1, None):
        with pytest.raises(MalformedBatchError, match="dictionary"):
            decode_body(_body([3, "b00d", 0, S0, 1, 0, zdict, _magicless(b"\x80")]), "hub-a")


@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_malformed(data: bytes) -> None:
    with pytest.raises(MalformedBatchError):
        decode_body(data, "hub-a")


@given(st.lists(readings(), min_size=1, max_size=12), st.data())
def test_mutated_columns_decode_or_give_malformed(
    items: list[WireReading], data: st.DataObject
) -> None:
    """Any byte of a body (header, columns, tables, rANS stream) changed: the body decodes
    to as many readings as its header says, or is refused as malformed; nothing else."""
    body = bytearray(encode_body(header(len(items)), items, compress=data.draw(st.booleans())))
    index = data.draw(st.integers(0, len(body) - 1))
    body[index] = data.draw(st.integers(0, 255))
    try:
        batch = decode_body(bytes(body), "hub-a")
    except MalformedBatchError:
        return
    assert len(batch.readings) == batch.header.count


@given(st.lists(readings(), min_size=1, max_size=12), st.data())
def test_a_changed_rans_stream_is_refused_or_decodes_other_readings(
    items: list[WireReading], data: st.DataObject
) -> None:
    doc = cbor2.loads(encode_body(header(len(items)), items, compress=False))
    stream = bytearray(doc[7][5])
    index = data.draw(st.integers(0, len(stream) - 1))
    stream[index] ^= data.draw(st.integers(1, 255))
    doc[7][5] = bytes(stream)
    try:
        batch = decode_body(cbor2.dumps(doc), "hub-a")
    except MalformedBatchError:
        return
    # By text as well: Decimal("0E+8") == Decimal("0E-9"), but they are not the same reading.
    assert [(r, str(r.value)) for r in batch.readings] != [(r, str(r.value)) for r in items]


def test_a_reused_time_column_must_be_an_earlier_stream_of_the_same_length() -> None:
    times = [[1, 2], [3]]
    assert earlier_times(times, 0, 2, "stream 2") is times[0]
    for index, n in ((1, 2), (2, 1), (-1, 1)):
        with pytest.raises(MalformedBatchError, match=f"times refer to stream {index},") as info:
            earlier_times(times, index, n, "stream 2")
        assert info.value.where == "stream 2"
