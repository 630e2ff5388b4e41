"""Regenerate the uplink test vectors (``python -m rig.wiregen.vectors``).

``protocols/uplink/vectors/uplink-vectors.json`` lists, per vector, a header and readings
(exact decimal text); this writes what the encoder makes of them: the body (column document
embedded uncompressed, so it can be read with any CBOR tool), the column document alone, and
one signed message with a fresh key (ECDSA signatures are randomised: only verification is
reproducible). The tests (``tests/uplink/test_uplink_vectors.py``) check both directions, so
an encoder change that alters a byte shows up as a vector diff to review.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import cbor2

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body

VECTORS = Path("protocols/uplink/vectors/uplink-vectors.json")
DESCRIPTION = (
    "narhub uplink batch format 3: bodies (column document embedded uncompressed) and what "
    "they decode to. Values are exact decimal text; t is epoch ms. header.dictionary names the "
    "shipped dictionary whose field model codes the rANS stream (0: uniform tables)."
)


def header(vector: dict[str, Any]) -> BatchHeader:
    """The header a vector describes."""
    h = vector["header"]
    return BatchHeader(
        h["hub_id"],
        h["boot_id"],
        h["seq"],
        h["created_ms"],
        Priority[h["priority"].upper()],
        h["count"],
    )


def readings(vector: dict[str, Any]) -> tuple[WireReading, ...]:
    """The readings a vector describes."""
    return tuple(
        WireReading(
            stream=r["stream"],
            mdc_code=r["mdc_code"],
            unit=r["unit"],
            t_ms=r["t_ms"],
            value=None if r["value"] is None else Decimal(r["value"]),
            special=r["special"],
            flags=frozenset(r["flags"]),
            device=r["device"],
        )
        for r in vector["readings"]
    )


def body(vector: dict[str, Any]) -> bytes:
    """The body the encoder makes of a vector."""
    return encode_body(
        header(vector),
        readings(vector),
        dictionary_id=vector["header"]["dictionary"],
        compress=False,
    )


def regenerate(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every body, column document and the signed message recomputed."""
    document["description"] = DESCRIPTION
    for vector in document["vectors"]:
        data = body(vector)
        vector["body_hex"] = data.hex()
        vector["columns_hex"] = cbor2.dumps(cbor2.loads(data)[7]).hex()
    signed = document["signed"]
    (vector,) = [v for v in document["vectors"] if v["name"] == signed["vector"]]
    key = new_private_key_pem()
    signed["message_hex"] = PemBatchSigner(vector["header"]["hub_id"], key).sign(body(vector)).hex()
    signed["public_key_pem"] = public_key_pem(key).decode()
    return document


def main() -> None:
    """Rewrite the vectors file (path from argv, default in the package)."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else VECTORS
    document = regenerate(json.loads(path.read_text(encoding="utf-8")))
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
