"""The uplink batch format: readings -> a compressed, COSE-signed batch (and back).

See ``docs/protocols/uplink.md``. This package is pure: keys are passed in, time is a number.
"""

from protocols.uplink.batch import (
    CODED_FLAG,
    FORMAT_VERSION,
    MAX_BODY_BYTES,
    Batch,
    BatchHeader,
    MalformedBatchError,
    Priority,
    UnsupportedVersionError,
    WireReading,
    encode_body,
)
from protocols.uplink.replay import ReplayGuard, SeenBatches
from protocols.uplink.signing import (
    BadSignatureError,
    BatchSigner,
    BatchVerifier,
    ReplayError,
    SigningKeyError,
    UnknownKidError,
    UplinkError,
)

__all__ = [
    "CODED_FLAG",
    "FORMAT_VERSION",
    "MAX_BODY_BYTES",
    "BadSignatureError",
    "Batch",
    "BatchHeader",
    "BatchSigner",
    "BatchVerifier",
    "MalformedBatchError",
    "Priority",
    "ReplayError",
    "ReplayGuard",
    "SeenBatches",
    "SigningKeyError",
    "UnknownKidError",
    "UnsupportedVersionError",
    "UplinkError",
    "WireReading",
    "encode_body",
]
