"""COSE_Sign1 (RFC 9052 section 4.2) signatures over batch bodies, ES256, kid = hub id.

ES256 (ECDSA P-256, RFC 9053 section 2.1) so that a TPM or an ATECC608 secure element can hold
the hub key. Implemented with the ``cwt`` library.
"""

from __future__ import annotations

from collections.abc import Mapping

import cbor2
from cwt import COSE, COSEKey
from cwt.exceptions import CWTError

from protocols.errors import ProtocolError
from protocols.uplink.batch import Batch, MalformedBatchError, decode_body


class UplinkError(ProtocolError):
    """Base of the region-side verification errors."""


class UnknownKidError(UplinkError, KeyError):
    """The batch names a hub (kid) the region has no key for."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        super().__init__(f"unknown kid {kid!r}")

    def __str__(self) -> str:
        return f"unknown kid {self.kid!r}"


class BadSignatureError(UplinkError, ValueError):
    """The signature does not verify, or the signed header disagrees with the kid."""

    def __init__(self, kid: str, reason: str) -> None:
        self.kid = kid
        super().__init__(f"batch from {kid!r}: {reason}")


class BatchSigner:
    """Signs batch bodies with the hub's private key (PEM, P-256)."""

    def __init__(self, hub_id: str, private_key_pem: bytes) -> None:
        self.hub_id = hub_id
        self._key = COSEKey.from_pem(private_key_pem, alg="ES256", kid=hub_id)
        self._cose = COSE.new()

    def sign(self, body: bytes) -> bytes:
        """A tagged COSE_Sign1 message carrying ``body`` as its payload."""
        message = self._cose.encode_and_sign(
            body, self._key, protected={"alg": "ES256"}, unprotected={"kid": self.hub_id}
        )
        assert isinstance(message, bytes)
        return message


def _kid_of(message: bytes) -> str:
    try:
        tag = cbor2.loads(message)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedBatchError(f"not a COSE message: {exc}") from None
    if not (
        isinstance(tag, cbor2.CBORTag)
        and tag.tag == 18
        and isinstance(tag.value, list)
        and len(tag.value) == 4
        and isinstance(tag.value[1], dict)
    ):
        raise MalformedBatchError("not a tagged COSE_Sign1 (tag 18) array")
    kid = tag.value[1].get(4)
    if not isinstance(kid, bytes):
        raise MalformedBatchError("COSE_Sign1 without a kid")
    try:
        return kid.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBatchError("kid is not UTF-8") from None


class BatchVerifier:
    """Verifies batches against the hubs' public keys (PEM), selected by kid."""

    def __init__(self, public_keys_pem: Mapping[str, bytes]) -> None:
        self._keys = {
            hub: COSEKey.from_pem(pem, alg="ES256", kid=hub) for hub, pem in public_keys_pem.items()
        }
        self._cose = COSE.new()

    def add_key(self, hub_id: str, public_key_pem: bytes) -> None:
        """Trust one more hub key."""
        self._keys[hub_id] = COSEKey.from_pem(public_key_pem, alg="ES256", kid=hub_id)

    def verify(self, message: bytes) -> Batch:
        """Verify the signature, decode the body, and check the header names the signer."""
        kid = _kid_of(message)
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKidError(kid)
        try:
            body = self._cose.decode(message, key)
        except CWTError as exc:
            raise BadSignatureError(kid, str(exc)) from None
        batch = decode_body(body)
        if batch.header.hub_id != kid:
            raise BadSignatureError(kid, f"header names hub {batch.header.hub_id!r}")
        return batch
