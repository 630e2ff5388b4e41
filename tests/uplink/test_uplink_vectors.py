"""The published vectors (protocols/uplink/vectors, docs/protocols/uplink.md) both ways."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import cbor2
import pytest

from common.signing import PemBatchVerifier
from protocols.uplink import (
    encode_body,
)
from protocols.uplink.body import decode_body
from rig.wiregen.vectors import header, readings

VECTORS: dict[str, Any] = json.loads(
    resources.files("protocols.uplink").joinpath("vectors/uplink-vectors.json").read_text()
)


# JSON vector -> header and readings: rig.wiregen.vectors, which writes the vectors.
_header = header
_readings = readings


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_decodes_exactly(vector: dict[str, Any]) -> None:
    batch = decode_body(bytes.fromhex(vector["body_hex"]), vector["header"]["hub_id"])
    assert batch.header == _header(vector)
    assert batch.readings == _readings(vector)
    assert [None if r.value is None else str(r.value) for r in batch.readings] == [
        r["value"] for r in vector["readings"]
    ]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_encodes_byte_for_byte(vector: dict[str, Any]) -> None:
    body = encode_body(
        _header(vector),
        _readings(vector),
        dictionary_id=vector["header"]["dictionary"],
        compress=False,
    )
    assert body.hex() == vector["body_hex"]
    assert cbor2.dumps(cbor2.loads(body)[7]).hex() == vector["columns_hex"]


def test_signed_vector_verifies() -> None:
    signed = VECTORS["signed"]
    verifier = PemBatchVerifier({"hub-0001": signed["public_key_pem"].encode()})
    batch = verifier.verify(bytes.fromhex(signed["message_hex"]))
    (vector,) = [v for v in VECTORS["vectors"] if v["name"] == signed["vector"]]
    assert batch.readings == _readings(vector)
