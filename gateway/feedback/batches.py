"""Which paired devices' readings an acknowledged batch carried (the hub's own batch, read
back: COSE_Sign1 per RFC 9052 section 4.2, body per docs/protocols/uplink.md).

The signature is not checked: the hub signed the batch itself a moment ago. A batch that
does not decode is counted by the caller and changes nothing on the screen.
"""

from __future__ import annotations

from collections.abc import Collection

from protocols.cose import CoseError, decode_sign1
from protocols.uplink import MalformedBatchError
from protocols.uplink.body import decode_body


class UnreadableBatchError(ValueError):
    """The hub's own batch did not decode (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"acknowledged batch unreadable: {reason}")


def newest_by_device(message: bytes, hub_id: str, devices: Collection[str]) -> dict[str, int]:
    """Upper-case address -> the newest reading time (epoch ms) of each of ``devices`` in the
    batch ``message``.

    Raises:
        UnreadableBatchError: not a COSE_Sign1 message or not a batch body.
    """
    try:
        batch = decode_body(decode_sign1(message).payload, hub_id)
    except (CoseError, MalformedBatchError) as exc:
        raise UnreadableBatchError(str(exc)) from None
    newest: dict[str, int] = {}
    for reading in batch.readings:
        device = reading.device.upper()
        if device in devices and reading.t_ms >= newest.get(device, reading.t_ms):
            newest[device] = reading.t_ms
    return newest
