"""Region-to-hub commands: COSE-signed CBOR documents with a sequence number and an expiry.

A command is the CBOR map (RFC 8949) below, signed as COSE_Sign1 with ES256 (RFC 9052 4.2,
RFC 9053 2.1) by the region's command key, whose kid the hub pinned at provisioning. The hub
accepts a command only if the signature verifies, it names this hub, it has not expired, and
its sequence number is above the last one accepted (no replay).

=====  ==========  ==================================================================
key    field       meaning
=====  ==========  ==================================================================
1      version     document version (1)
2      hub_id      the target hub
3      seq         per-hub sequence number, strictly increasing
4      issued_ms   Unix time the region issued it, ms
5      expires_ms  Unix time after which the hub must refuse it, ms
6      kind        "config", "renew-cert", "firmware" or "consent"
7      body        a map whose meaning depends on ``kind``
=====  ==========  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2

from protocols.cose import CoseError, encode_sign1, verify_sign1
from protocols.errors import DecodeError, ProtocolError
from protocols.es256 import Es256Key, Es256PublicKey

COMMAND_VERSION = 1
#: ``consent``: the body is a consent record (protocols/consent.py), accepted only from the
#: command key of the recipient it names (docs/consent.md).
KINDS = frozenset({"config", "renew-cert", "firmware", "consent"})
MAX_COMMAND_BYTES = 1024 * 1024


class CommandError(ProtocolError):
    """Base of the reasons a hub refuses a command (each is reported on the status topic)."""

    reason = "refused"


class MalformedCommandError(CommandError, DecodeError):
    """The bytes are not a command document of this version."""

    reason = "malformed"

    def __init__(self, detail: str) -> None:
        DecodeError.__init__(self, "command", detail)


class UnsignedCommandError(CommandError, ValueError):
    """No signature by a pinned command key: unknown kid or a signature that fails."""

    reason = "unsigned"


class ExpiredCommandError(CommandError, ValueError):
    """The command's expiry has passed."""

    reason = "expired"


class ReplayedCommandError(CommandError, ValueError):
    """The sequence number is not above the last accepted one."""

    reason = "replayed"


class WrongHubError(CommandError, ValueError):
    """The command names another hub."""

    reason = "wrong-hub"


@dataclass(frozen=True)
class Command:
    """A verified command."""

    hub_id: str
    seq: int
    issued_ms: int
    expires_ms: int
    kind: str
    body: Mapping[str, Any]
    #: The kid of the key that signed it (set by :class:`CommandVerifier`; not encoded).
    kid: str = field(default="", compare=False)


def encode_command(command: Command) -> bytes:
    """The CBOR document (unsigned)."""
    if command.kind not in KINDS:
        raise ValueError(f"unknown command kind {command.kind!r}")
    return cbor2.dumps(
        {
            1: COMMAND_VERSION,
            2: command.hub_id,
            3: command.seq,
            4: command.issued_ms,
            5: command.expires_ms,
            6: command.kind,
            7: dict(command.body),
        },
        canonical=True,
    )


def decode_command(data: bytes) -> Command:
    """Parse a CBOR command document; every field is type-checked."""
    if len(data) > MAX_COMMAND_BYTES:
        raise MalformedCommandError("too large")
    try:
        doc = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedCommandError(f"not CBOR: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {1, 2, 3, 4, 5, 6, 7}:
        raise MalformedCommandError("not a command map with keys 1..7")
    if doc[1] != COMMAND_VERSION:
        raise MalformedCommandError(f"unsupported version {doc[1]!r}")
    hub_id, seq, issued, expires, kind, body = (doc[k] for k in range(2, 8))
    if not (
        isinstance(hub_id, str)
        and isinstance(kind, str)
        and isinstance(body, dict)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, issued, expires))
        and all(isinstance(k, str) for k in body)
    ):
        raise MalformedCommandError("a field has the wrong type")
    if kind not in KINDS:
        raise MalformedCommandError(f"unknown kind {kind!r}")
    return Command(hub_id, seq, issued, expires, kind, body)


class CommandSigner:
    """The region side: signs commands with a command key (P-256; from PEM:
    :mod:`common.signing`), with the COSE_Sign1 of :mod:`protocols.cose`."""

    def __init__(self, kid: str, key: Es256Key) -> None:
        self.kid = kid
        self._key = key

    def sign(self, command: Command) -> bytes:
        """A tagged COSE_Sign1 message carrying the command document."""
        return encode_sign1(self._key, self.kid.encode(), encode_command(command))


class CommandVerifier:
    """The hub side: accepts only commands signed by a pinned key, for this hub, in time.

    The COSE_Sign1 message is checked by :func:`protocols.cose.verify_sign1` (strict: tag 18,
    ES256 only, the kid of a pinned key, a 64-byte signature that key verifies)."""

    def __init__(self, hub_id: str, keys: Mapping[str, Es256PublicKey]) -> None:
        self.hub_id = hub_id
        self._keys = dict(keys)

    def verify(self, message: bytes, *, now_ms: int, last_seq: int | None) -> Command:
        """The command, or the :class:`CommandError` that says why it is refused."""
        if len(message) > MAX_COMMAND_BYTES:
            raise MalformedCommandError("too large")
        try:
            kid, payload = verify_sign1(message, self._keys)
        except CoseError as exc:
            # Not a COSE_Sign1 ES256, no pinned key for its kid or a failing signature.
            raise UnsignedCommandError(f"not signed by a pinned key: {exc.reason}") from None
        command = decode_command(payload)
        if command.hub_id != self.hub_id:
            raise WrongHubError(f"for hub {command.hub_id!r}")
        if now_ms >= command.expires_ms:
            raise ExpiredCommandError(f"expired at {command.expires_ms}")
        if last_seq is not None and command.seq <= last_seq:
            raise ReplayedCommandError(f"seq {command.seq} <= last accepted {last_seq}")
        return replace(command, kid=kid)
