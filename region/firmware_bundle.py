"""Building and signing a firmware bundle on the region side.

The format and the hub's check are in :mod:`common.firmware_bundle`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from common.firmware_bundle import Manifest, encode_manifest
from drivers.es256 import load_signing_key
from protocols.cose import encode_sign1


def sign_manifest(manifest: Manifest, kid: str, private_key_pem: bytes) -> bytes:
    """The COSE_Sign1 ES256 manifest (RFC 9052 section 4.2), signed with a command key."""
    return encode_sign1(load_signing_key(private_key_pem), kid.encode(), encode_manifest(manifest))


def build_bundle(
    files: Mapping[str, bytes], board_type: str, version: str, kid: str, private_key_pem: bytes
) -> dict[str, Any]:
    """The ``firmware`` command body for ``files`` (region side)."""
    manifest = Manifest(
        board_type, version, {path: hashlib.sha256(data).digest() for path, data in files.items()}
    )
    return {"manifest": sign_manifest(manifest, kid, private_key_pem), "files": dict(files)}
