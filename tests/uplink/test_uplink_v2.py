"""Format 2, read only (protocols/uplink/v2.py, docs/protocols/uplink.md "Format 2 (read
only)"): the published format-2 vectors still decode exactly and verify, and the external-AAD
rule (empty for format 2, the kid for format 3) cannot be swapped by relabelling a body.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import cbor2
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from drivers.es256 import load_signing_key
from protocols.cose import encode_sign1
from protocols.uplink import (
    BadSignatureError,
    Batch,
    BatchHeader,
    BatchVerifier,
    MalformedBatchError,
    Priority,
    UnsupportedVersionError,
    WireReading,
    _zdict1,
    encode_body,
    v2,
)
from protocols.uplink.body import decode_body
from protocols.uplink.signing import _stated_version
from rig.wiregen.vectors import header, readings

VECTORS: dict[str, Any] = json.loads(
    resources.files("protocols.uplink").joinpath("vectors/uplink-vectors-v2.json").read_text()
)
BY_NAME = {v["name"]: v for v in VECTORS["vectors"]}
KEY = new_private_key_pem()
HUB = "hub-0001"


def _header(v: dict[str, Any]) -> BatchHeader:
    return dataclasses.replace(header(v), version=2)


_readings = readings  # JSON vector -> readings: rig.wiregen.vectors, which writes them


def _assert_exact(batch: Batch, vector: dict[str, Any]) -> None:
    assert batch.header == _header(vector)
    assert batch.header.version == 2
    assert batch.readings == _readings(vector)
    # Exact decimal text: 37.20 keeps its trailing zero, -0 its sign.
    assert [None if r.value is None else str(r.value) for r in batch.readings] == [
        r["value"] for r in vector["readings"]
    ]


def _v2_body(vector: dict[str, Any], *, zdict: int | None = None, hub: str | None = None) -> bytes:
    """A format-2 body as the format-2 encoder wrote it: the vector's columns, plain
    (``zdict`` null) or in a zstd frame with its magic number and content size."""
    columns = bytes.fromhex(vector["columns_hex"])
    payload = columns
    if zdict is not None:
        params = zstandard.ZstdCompressionParameters.from_level(
            19, write_checksum=0, write_content_size=1, write_dict_id=0
        )
        data = base64.b64decode(_zdict1.BASE64) if zdict else None
        zd = (
            zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)
            if data
            else None
        )
        payload = zstandard.ZstdCompressor(compression_params=params, dict_data=zd).compress(
            columns
        )
    items = cbor2.loads(bytes.fromhex(vector["body_hex"]))
    items[1] = items[1] if hub is None else hub
    items[7:] = [zdict, payload]
    return cbor2.dumps(items)


def _sign_v2(body: bytes, kid: str = HUB, external_aad: bytes = b"") -> bytes:
    """A COSE_Sign1 message the way a format-2 hub signed it (empty external AAD)."""
    return encode_sign1(load_signing_key(KEY), kid.encode(), body, external_aad=external_aad)


def _verifier(*hubs: str) -> BatchVerifier:
    return PemBatchVerifier({hub: public_key_pem(KEY) for hub in hubs or (HUB,)})


# -- the published format-2 vectors ----------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_every_v2_vector_decodes_exactly(vector: dict[str, Any]) -> None:
    body = bytes.fromhex(vector["body_hex"])
    _assert_exact(v2.decode_body(body), vector)
    # Through the region's one entry point too, which dispatches on the version.
    batch = decode_body(body, vector["header"]["hub_id"])
    _assert_exact(batch, vector)
    assert batch.dictionary_id is None


@pytest.mark.parametrize("zdict", [0, 1])
@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_zstd_frames_with_and_without_dictionary_1(vector: dict[str, Any], zdict: int) -> None:
    body = _v2_body(vector, zdict=zdict)
    assert cbor2.loads(body)[8][:4] == b"\x28\xb5\x2f\xfd"  # format 2 kept the magic number
    batch = decode_body(body, vector["header"]["hub_id"])
    _assert_exact(batch, vector)
    assert batch.dictionary_id == (zdict or None)


def test_the_signed_v2_vector_verifies_with_todays_verifier() -> None:
    signed = VECTORS["signed"]
    verifier = PemBatchVerifier({HUB: signed["public_key_pem"].encode()})
    batch = verifier.verify(bytes.fromhex(signed["message_hex"]))
    _assert_exact(batch, BY_NAME[signed["vector"]])


def test_a_v2_batch_signed_now_verifies_and_a_flipped_bit_does_not() -> None:
    vector = BY_NAME["oximeter-shared-times-nan"]
    message = _sign_v2(_v2_body(vector, zdict=1))
    _assert_exact(_verifier().verify(message), vector)
    tampered = bytearray(message)
    tampered[-1] ^= 0x01
    with pytest.raises(BadSignatureError):
        _verifier().verify(bytes(tampered))


# -- the hub id of a format-2 body must be the kid ------------------------------------------


def test_a_v2_header_naming_another_hub_is_refused() -> None:
    vector = BY_NAME["temperature-precision"]
    body = _v2_body(vector, hub="hub-0002")
    # Signed by hub-0001 (its key, its kid) but naming hub-0002 in the header.
    with pytest.raises(BadSignatureError, match="header names hub 'hub-0002'") as caught:
        _verifier(HUB, "hub-0002").verify(_sign_v2(body))
    assert caught.value.kid == HUB
    # decode_body alone refuses it as malformed, with both names.
    with pytest.raises(v2.HubMismatchError) as info:
        decode_body(body, HUB)
    assert isinstance(info.value, MalformedBatchError)
    assert (info.value.hub_id, info.value.kid, info.value.where) == ("hub-0002", HUB, "header")


# -- the external AAD follows the signed version, not a label --------------------------------


def test_a_v3_batch_still_verifies() -> None:
    reading = WireReading("s", 150364, "Cel", 1_795_000_000_000, Decimal("37.20"))
    header = BatchHeader("hub-3", "b00d", 1, 1_795_000_000_000, Priority.CLINICAL, 1)
    message = PemBatchSigner("hub-3", KEY).sign(encode_body(header, [reading]))
    batch = _verifier("hub-3").verify(message)
    assert batch.header.version == 3
    assert batch.header.hub_id == "hub-3"
    assert batch.readings == (reading,)


def test_a_v3_body_signed_without_the_kid_as_aad_is_refused() -> None:
    reading = WireReading("s", 150364, "Cel", 1_795_000_000_000, Decimal("37.20"))
    header = BatchHeader("hub-3", "b00d", 1, 1_795_000_000_000, Priority.CLINICAL, 1)
    body = encode_body(header, [reading])
    message = encode_sign1(load_signing_key(KEY), b"hub-3", body)  # default: empty AAD
    with pytest.raises(BadSignatureError) as caught:
        _verifier("hub-3").verify(message)
    assert caught.value.kid == "hub-3"


def test_a_v2_body_signed_with_the_kid_as_aad_is_refused() -> None:
    body = bytes.fromhex(BY_NAME["temperature-precision"]["body_hex"])
    with pytest.raises(BadSignatureError):
        _verifier().verify(_sign_v2(body, external_aad=HUB.encode()))


def test_a_version_that_decodes_as_2_only_by_a_tag_is_refused() -> None:
    """A bignum (tag 2) holding 2 decodes as the integer 2 but does not state version 2 in
    its head: the AAD (the kid) and the decoder (format 2) would disagree, so it is refused."""
    items = cbor2.loads(bytes.fromhex(BY_NAME["temperature-precision"]["body_hex"]))
    body = b"\x89\xc2\x41\x02" + b"".join(cbor2.dumps(item) for item in items[1:])
    assert cbor2.loads(body)[0] == 2
    message = _sign_v2(body, external_aad=HUB.encode())
    with pytest.raises(BadSignatureError, match="states None"):
        _verifier().verify(message)


@pytest.mark.parametrize(
    ("payload", "version"),
    [
        (b"\x89\x02", 2),
        (b"\x88\x03", 3),
        (b"\x98\x09\x02", 2),  # array length in one extra byte
        (b"\x9f\x02", 2),  # indefinite-length array
        (b"\x89\x18\x02", 2),  # non-minimal version head
        (b"\x89\x19\x00\x02", 2),
        (b"\x89\x22", None),  # a negative integer
        (b"\x89\x62", None),  # text
        (b"\x89\xc2\x41\x02", None),  # a tagged bignum
        (b"\x80\x02", None),  # an empty array
        (b"\x02\x02", None),  # not an array
        (b"\x89", None),
        (b"\x89\x19\x00", None),  # truncated
        (b"\x9c\x02", None),  # reserved additional information
        (None, None),
    ],
)
def test_the_stated_version_is_read_from_the_heads(
    payload: bytes | None, version: int | None
) -> None:
    assert _stated_version(payload) == version


# -- bad input: typed errors only ------------------------------------------------------------


@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_malformed_batch_error(data: bytes) -> None:
    try:
        batch = v2.decode_body(data)
    except MalformedBatchError:
        return
    assert batch.header.version == 2


_BODIES = [bytes.fromhex(v["body_hex"]) for v in VECTORS["vectors"]] + [
    _v2_body(v, zdict=z) for v in VECTORS["vectors"] for z in (0, 1)
]


@given(
    body=st.sampled_from(_BODIES),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_mutated_v2_bodies_raise_only_malformed_batch_error(
    body: bytes, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(body)
    for at, mask in flips:
        data[at % len(data)] ^= mask
    try:
        batch = decode_body(bytes(data), HUB)
    except MalformedBatchError:
        return
    assert batch.header.hub_id == HUB


@given(
    items=st.lists(
        st.one_of(st.none(), st.integers(-5, 2**40), st.binary(max_size=8), st.text(max_size=8)),
        max_size=10,
    )
)
def test_v2_shaped_arrays_raise_only_malformed_batch_error(items: list[Any]) -> None:
    try:
        batch = v2.decode_body(cbor2.dumps([2, *items]))
    except MalformedBatchError:
        return
    assert batch.header.version == 2


def test_bad_headers_and_payloads_are_typed() -> None:
    vector = BY_NAME["rr-intervals-exact"]
    good = cbor2.loads(_v2_body(vector, zdict=1))
    with pytest.raises(UnsupportedVersionError) as info:
        v2.decode_body(cbor2.dumps([3, *good[1:]]))
    assert info.value.version == 3
    with pytest.raises(MalformedBatchError, match="unknown zstd dictionary 2") as bad:
        v2.decode_body(cbor2.dumps([*good[:7], 2, good[8]]))
    assert bad.value.where == "payload"
    with pytest.raises(MalformedBatchError, match="9") as bad:
        v2.decode_body(cbor2.dumps(good[:8]))
    assert bad.value.where == "header"
    with pytest.raises(MalformedBatchError, match="trailing") as bad:
        v2.decode_body(cbor2.dumps(good) + b"\x00")
    bomb = zstandard.ZstdCompressor(level=3).compress(b"\x00" * (5 * 1024 * 1024))
    with pytest.raises(MalformedBatchError, match="zstd frame states") as bad:
        v2.decode_body(cbor2.dumps([*good[:7], 0, bomb]))
    assert bad.value.where == "payload"
    # A frame without its magic number (format 3's) is not a format-2 frame.
    with pytest.raises(MalformedBatchError) as bad:
        v2.decode_body(cbor2.dumps([*good[:8], good[8][4:]]))
    assert bad.value.where == "payload"
    with pytest.raises(MalformedBatchError, match="3 readings in the streams, 4 in") as bad:
        v2.decode_body(cbor2.dumps([*good[:6], good[6] + 1, *good[7:]]))
    assert bad.value.where == "columns"
