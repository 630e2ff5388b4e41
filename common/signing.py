"""Batch signers and verifiers made from PEM keys (the edge of COSE; commands:
:mod:`common.command_keys`).

:mod:`protocols.uplink.signing` takes key objects and stays pure;
here a P-256 PEM (PKCS#8 private key or SubjectPublicKeyInfo) becomes such an object through
:mod:`drivers.es256` (the ``ssl`` module's OpenSSL, ``cryptography`` as its fallback).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from drivers.es256 import load_signing_key, load_verifying_key
from protocols.es256 import Es256Error, Es256PublicKey
from protocols.uplink.signing import BatchSigner, BatchVerifier, SigningKeyError

PemKeys = Mapping[str, bytes | Sequence[bytes]]


class PemBatchSigner(BatchSigner):
    """A :class:`BatchSigner` with the hub's private key as PEM; :class:`SigningKeyError` names
    a key that cannot sign ES256."""

    def __init__(self, hub_id: str, private_key_pem: bytes) -> None:
        try:
            key = load_signing_key(private_key_pem)
        except Es256Error as exc:
            raise SigningKeyError(exc.reason) from None
        super().__init__(hub_id, key)


def _public_keys(pems: bytes | Sequence[bytes]) -> list[Es256PublicKey]:
    listed = [pems] if isinstance(pems, bytes) else list(pems)
    return [load_verifying_key(pem) for pem in listed]


class PemBatchVerifier(BatchVerifier):
    """A :class:`BatchVerifier` given the hubs' public keys as PEM (newest first per hub)."""

    def __init__(self, public_keys_pem: PemKeys) -> None:
        super().__init__({})
        self.replace_keys(public_keys_pem)

    def replace_keys(self, public_keys_pem: PemKeys) -> None:
        """Trust exactly these keys from now on (a reloaded key list)."""
        self.trust_exactly({hub: _public_keys(pems) for hub, pems in public_keys_pem.items()})

    def add_key(self, hub_id: str, public_key_pem: bytes) -> None:
        """Trust one more hub key (tried first)."""
        self.trust(hub_id, load_verifying_key(public_key_pem))
