"""The uplink batch format: readings -> a compressed, COSE-signed batch (and back).

See ``docs/protocols/uplink.md``. This package is pure: keys are passed in, time is a number.
"""

from protocols.uplink.batch import (
    CODED_FLAG,
    FORMAT_VERSION,
    Batch,
    BatchHeader,
    MalformedBatchError,
    Priority,
    WireReading,
    decode_body,
    encode_body,
)
from protocols.uplink.signing import (
    BadSignatureError,
    BatchSigner,
    BatchVerifier,
    UnknownKidError,
    UplinkError,
)

__all__ = [
    "CODED_FLAG",
    "FORMAT_VERSION",
    "BadSignatureError",
    "Batch",
    "BatchHeader",
    "BatchSigner",
    "BatchVerifier",
    "MalformedBatchError",
    "Priority",
    "UnknownKidError",
    "UplinkError",
    "WireReading",
    "decode_body",
    "encode_body",
]
