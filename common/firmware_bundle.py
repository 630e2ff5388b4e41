"""The signed firmware bundle of the ``firmware`` remote command: its format and its check.

Bundle (docs/remote-management.md "firmware"): a manifest, CBOR (RFC 8949)
``{"format": 1, "board_type": str, "version": str, "files": {path: SHA-256}}`` signed as
COSE_Sign1 ES256 (RFC 9052 4.2) by a region command key the hub pinned, plus the files
themselves. The command body is ``{"manifest": bytes, "files": {path: bytes}}``. The region
builds and signs bundles (:mod:`region.firmware_bundle`); the hub verifies them here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from drivers.es256 import load_verifying_key
from protocols.cose import CoseError, verify_sign1
from protocols.es256 import Es256Error, Es256PublicKey

#: The firmware tree shipped with narhub (``narhub sensors flash`` and bundles default to it).
FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"

BUNDLE_FORMAT = 1
#: The files a board takes (the ``narhub sensors flash`` layout); nothing else is deployed.
_PATH = re.compile(r"^(main\.py|board\.py|sensorfw/[A-Za-z0-9_]{1,64}\.py)$")
_VERSION = re.compile(r"^[A-Za-z0-9.+_-]{1,32}$")


class BundleError(ValueError):
    """A bundle is not acceptable; ``reason`` is the short code reported."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Manifest:
    """What a signed manifest says."""

    board_type: str
    version: str
    files: Mapping[str, bytes]


def encode_manifest(manifest: Manifest) -> bytes:
    return cbor2.dumps(
        {
            "format": BUNDLE_FORMAT,
            "board_type": manifest.board_type,
            "version": manifest.version,
            "files": dict(manifest.files),
        },
        canonical=True,
    )


def firmware_files(firmware_dir: Path, board_type: str) -> dict[str, bytes]:
    """A board's files from a firmware tree (the layout ``narhub sensors flash`` deploys):
    ``main.py``, ``sensorfw/*.py`` and ``board.py`` from ``boards/{board_type}/``."""
    board_py = firmware_dir / "boards" / board_type / "board.py"
    if not board_py.exists():
        raise BundleError("bad-bundle", f"{board_py} not found")
    files = {"main.py": (firmware_dir / "main.py").read_bytes(), "board.py": board_py.read_bytes()}
    for source in sorted((firmware_dir / "sensorfw").glob("*.py")):
        files[f"sensorfw/{source.name}"] = source.read_bytes()
    return files


def firmware_version(files: Mapping[str, bytes]) -> str:
    """The version the firmware reports in its HELLO (``VERSION`` in sensorfw/__init__.py)."""
    init = files.get("sensorfw/__init__.py", b"").decode(errors="replace")
    found = re.search(r'^VERSION = "([^"]+)"', init, re.MULTILINE)
    if found is None:
        raise BundleError("bad-bundle", "no VERSION in sensorfw/__init__.py: give the version")
    return found.group(1)


def verify_bundle(body: Mapping[str, Any], public_keys_pem: Mapping[str, bytes]) -> Manifest:
    """The verified manifest; raises :class:`BundleError` naming what is wrong."""
    message, files = body.get("manifest"), body.get("files")
    if set(body) != {"manifest", "files"} or not isinstance(message, bytes):
        raise BundleError("bad-bundle", "body must be {'manifest': bytes, 'files': {...}}")
    if not isinstance(files, dict) or not all(
        isinstance(p, str) and isinstance(d, bytes) for p, d in files.items()
    ):
        raise BundleError("bad-bundle", "files must map paths to bytes")
    keys: dict[str, Es256PublicKey] = {}
    for kid, pem in public_keys_pem.items():
        try:
            keys[kid] = load_verifying_key(pem)
        except Es256Error as exc:
            raise BundleError("unsigned-bundle", f"command key {kid!r}: {exc.reason}") from None
    try:
        _kid, payload = verify_sign1(message, keys)
    except CoseError as exc:
        raise BundleError(
            "unsigned-bundle", f"manifest not signed by a pinned key: {exc.reason}"
        ) from None
    try:
        doc = cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
        raise BundleError("bad-bundle", f"manifest is not CBOR: {exc}") from None
    if not (
        isinstance(doc, dict)
        and doc.get("format") == BUNDLE_FORMAT
        and isinstance(doc.get("board_type"), str)
        and isinstance(doc.get("version"), str)
        and _VERSION.match(doc["version"])
        and isinstance(doc.get("files"), dict)
    ):
        raise BundleError("bad-bundle", "manifest fields missing or of the wrong type")
    listed: dict[str, bytes] = doc["files"]
    if set(listed) != set(files):
        raise BundleError("bad-bundle", "the files are not exactly those the manifest lists")
    for path, data in files.items():
        if not _PATH.match(path):
            raise BundleError(
                "bad-bundle", f"{path!r} is not a board file (main.py, board.py, sensorfw/*.py)"
            )
        if hashlib.sha256(data).digest() != listed[path]:
            raise BundleError("bad-bundle", f"{path}: SHA-256 differs from the manifest")
    return Manifest(doc["board_type"], doc["version"], listed)
