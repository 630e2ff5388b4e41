"""Decoding a batch body of any format the region reads: 3 (:mod:`protocols.uplink.batch`,
what hubs write) and 2 (:mod:`protocols.uplink.v2`, read only: batches queued before an
upgrade). The format is the body's first CBOR item (docs/protocols/uplink.md)."""

from __future__ import annotations

from protocols.uplink import batch, v2
from protocols.uplink.batch import MAX_BODY_BYTES, Batch, MalformedBatchError, _loads


def decode_body(data: bytes, hub_id: str) -> Batch:
    """Decode the body of a batch from ``hub_id`` (the kid that verified it): header checks,
    bounded decompression, every column type-checked.

    A format-2 body names its hub itself; one naming another hub than ``hub_id`` raises
    :class:`protocols.uplink.v2.HubMismatchError`."""
    if len(data) > MAX_BODY_BYTES:
        raise MalformedBatchError(f"{len(data)} bytes; the cap is {MAX_BODY_BYTES}")
    doc = _loads(data, "header")
    if isinstance(doc, list) and doc and type(doc[0]) is int and doc[0] == v2.FORMAT_VERSION:
        return v2.decode_document(doc, kid=hub_id)
    return batch.decode_document(doc, hub_id)
