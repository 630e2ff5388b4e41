"""Command signers (region) and verifiers (hub) made from PEM keys.

Apart from :mod:`common.signing` so that a hub without ``[remote]`` never loads
:mod:`protocols.commands` (``tests/test_footprint_imports.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.es256 import load_signing_key, load_verifying_key
from protocols.commands import CommandSigner, CommandVerifier
from protocols.es256 import Es256Error, Es256PublicKey


class PemCommandSigner(CommandSigner):
    """The region's :class:`CommandSigner` with its command key as PEM."""

    def __init__(self, kid: str, private_key_pem: bytes) -> None:
        super().__init__(kid, load_signing_key(private_key_pem))


class PemCommandVerifier(CommandVerifier):
    """The hub's :class:`CommandVerifier` with the pinned command keys as PEM; raises
    :class:`Es256Error` (a ValueError) naming a key that is not a P-256 public key."""

    def __init__(self, hub_id: str, public_keys_pem: Mapping[str, bytes]) -> None:
        keys: dict[str, Es256PublicKey] = {}
        for kid, pem in public_keys_pem.items():
            try:
                keys[kid] = load_verifying_key(pem)
            except Es256Error as exc:
                raise Es256Error(f"command key {kid!r}: {exc.reason}") from None
        super().__init__(hub_id, keys)
