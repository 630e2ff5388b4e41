"""The signed batch: lossless round trip, tamper/unknown-kid/malformed rejected with types."""

from __future__ import annotations

from decimal import Decimal

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.uplink import (
    BadSignatureError,
    BatchHeader,
    MalformedBatchError,
    Priority,
    UnknownKidError,
    WireReading,
    encode_body,
)
from protocols.uplink.body import decode_body

KEY = new_private_key_pem()
OTHER_KEY = new_private_key_pem()

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.as_tuple().exponent) < 30 if isinstance(d.as_tuple().exponent, int) else False
)
readings = st.builds(
    WireReading,
    stream=st.text(max_size=20),
    mdc_code=st.integers(0, 2**32 - 1),
    unit=st.sampled_from(["Cel", "[degF]", "mm[Hg]", "%", "/min"]),
    t_ms=st.integers(0, 2**45),
    value=decimals,
    special=st.none(),
    flags=st.frozensets(st.sampled_from(["quirk", "implausible", "clock-unsynced"])),
    device=st.text(max_size=17),
)
specials = st.builds(
    WireReading,
    stream=st.just("s"),
    mdc_code=st.just(150364),
    unit=st.just("Cel"),
    t_ms=st.integers(0, 2**45),
    value=st.none(),
    special=st.sampled_from(["nan", "nres", "+inf", "-inf", "reserved"]),
)


_ONE = WireReading("s", 150364, "Cel", 1_795_000_000_000, Decimal("37.2"))


def _header(count: int, hub: str = "hub-a") -> BatchHeader:
    return BatchHeader(hub, "boot1", 7, 1_795_000_000_000, Priority.CLINICAL, count)


@given(st.lists(st.one_of(readings, specials), max_size=30))
def test_body_round_trip_is_lossless(items: list[WireReading]) -> None:
    batch = decode_body(encode_body(_header(len(items)), items), "hub-a")
    assert batch.readings == tuple(items)
    assert batch.header == _header(len(items))


def test_precision_survives() -> None:
    item = WireReading("s", 150364, "Cel", 0, Decimal("37.20"))
    (out,) = decode_body(encode_body(_header(1), [item]), "hub-a").readings
    assert out.value is not None
    assert str(out.value) == "37.20"


def test_sign_and_verify() -> None:
    body = encode_body(_header(0), [])
    message = PemBatchSigner("hub-a", KEY).sign(body)
    verifier = PemBatchVerifier({"hub-a": public_key_pem(KEY)})
    assert verifier.verify(message).header.hub_id == "hub-a"


def test_tampered_batch_is_rejected() -> None:
    message = bytearray(PemBatchSigner("hub-a", KEY).sign(encode_body(_header(0), [])))
    message[-70] ^= 0x01  # inside the payload or signature
    with pytest.raises((BadSignatureError, MalformedBatchError)):
        PemBatchVerifier({"hub-a": public_key_pem(KEY)}).verify(bytes(message))


def test_signature_by_another_key_is_rejected() -> None:
    message = PemBatchSigner("hub-a", OTHER_KEY).sign(encode_body(_header(0), []))
    with pytest.raises(BadSignatureError) as info:
        PemBatchVerifier({"hub-a": public_key_pem(KEY)}).verify(message)
    assert info.value.kid == "hub-a"


def test_unknown_kid() -> None:
    message = PemBatchSigner("hub-x", KEY).sign(encode_body(_header(0, "hub-x"), []))
    with pytest.raises(UnknownKidError) as info:
        PemBatchVerifier({"hub-a": public_key_pem(KEY)}).verify(message)
    assert info.value.kid == "hub-x"


def test_a_body_cannot_be_passed_off_as_another_hubs() -> None:
    """The body does not name its hub: the signature binds it to the kid (external AAD), so
    even two hubs sharing a key (a provisioning mistake) cannot take each other's batches."""
    message = PemBatchSigner("hub-a", KEY).sign(encode_body(_header(1), [_ONE]))
    verifier = PemBatchVerifier({"hub-a": public_key_pem(KEY), "hub-b": public_key_pem(KEY)})
    assert verifier.verify(message).header.hub_id == "hub-a"
    tag = cbor2.loads(message)
    tag.value[1][4] = b"hub-b"
    with pytest.raises(BadSignatureError) as info:
        verifier.verify(cbor2.dumps(tag))
    assert info.value.kid == "hub-b"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_typed_error(data: bytes) -> None:
    verifier = PemBatchVerifier({"hub-a": public_key_pem(KEY)})
    with pytest.raises((MalformedBatchError, UnknownKidError, BadSignatureError)):
        verifier.verify(data)


@given(st.binary(max_size=300))
def test_arbitrary_body_bytes_give_malformed(data: bytes) -> None:
    with pytest.raises(MalformedBatchError):
        decode_body(data, "hub-a")
