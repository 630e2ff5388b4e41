"""The durable outbox: readings and signed batches in SQLite, safe across power cuts.

One module per concern, every write through the one transaction seam
(:mod:`gateway.outbox.transaction`):

=============== ==================================================================
``transaction`` the one connection; ``BEGIN IMMEDIATE`` ... ``COMMIT`` and its hooks
``schema``      settings, tables, upgrades, a damaged file moved aside
``streams``     stream identities interned
``chunks``      a commit's readings per priority as one row of columnar CBOR
``keys``        idempotency: source keys seen, folded and pruned
``quota``       quota, eviction and tombstones
``held``        readings held until the clock is trusted, and their back-fill
``batching``    the batching policy, pure: what to seal, when it is due
``sealing``     chunks into a batch: encoded, signed outside the write lock, stored
``acks``        batches waiting for the broker, acknowledged or refused
``figures``     queue depths and counts
``telemetry``   the outbox's own readings (store recovered, evicted)
``store``       :class:`Outbox`, the blocking API wiring them together
``worker``      :class:`AsyncOutbox`: one worker thread, group commit, backpressure
=============== ==================================================================

Design, schema, quota and the crash/power-cut proof: docs/pipeline.md.
"""

from gateway.outbox.acks import PendingBatch
from gateway.outbox.batching import HELD_RECHECK_S, BatchingPolicy
from gateway.outbox.chunks import CHUNK_MAX_READINGS
from gateway.outbox.errors import DamagedStoreError, NewerSchemaError, StoreBusyError, StoreError
from gateway.outbox.figures import StoreStats
from gateway.outbox.held import CLOCK_STEP_TOLERANCE_NS, backfilled_ms
from gateway.outbox.schema import (
    BUSY_CODES,
    PAGE_SIZE,
    SCHEMA_VERSION,
    WAL_AUTOCHECKPOINT_PAGES,
    RecoveryReport,
)
from gateway.outbox.sealing import SealPlan
from gateway.outbox.store import (
    DEFAULT_DEDUP_RETENTION_S,
    DEFAULT_MIN_FREE_BYTES,
    DEFAULT_QUOTA_BYTES,
    Outbox,
)
from gateway.outbox.telemetry import (
    FLAG_EVICTED,
    FLAG_STORE_RECOVERED,
    HUB_DEVICE,
    MDC_NARHUB_EVICTED,
    MDC_NARHUB_STORE_RECOVERED,
    NARHUB_TELEMETRY_BASE,
)
from gateway.outbox.worker import (
    DEFAULT_COMMIT_WINDOW_S,
    DEFAULT_MAX_PENDING_READINGS,
    AsyncOutbox,
    waits_long,
)

__all__ = [
    "BUSY_CODES",
    "CHUNK_MAX_READINGS",
    "CLOCK_STEP_TOLERANCE_NS",
    "DEFAULT_COMMIT_WINDOW_S",
    "DEFAULT_DEDUP_RETENTION_S",
    "DEFAULT_MAX_PENDING_READINGS",
    "DEFAULT_MIN_FREE_BYTES",
    "DEFAULT_QUOTA_BYTES",
    "FLAG_EVICTED",
    "FLAG_STORE_RECOVERED",
    "HELD_RECHECK_S",
    "HUB_DEVICE",
    "MDC_NARHUB_EVICTED",
    "MDC_NARHUB_STORE_RECOVERED",
    "NARHUB_TELEMETRY_BASE",
    "PAGE_SIZE",
    "SCHEMA_VERSION",
    "WAL_AUTOCHECKPOINT_PAGES",
    "AsyncOutbox",
    "BatchingPolicy",
    "DamagedStoreError",
    "NewerSchemaError",
    "Outbox",
    "PendingBatch",
    "RecoveryReport",
    "SealPlan",
    "StoreBusyError",
    "StoreError",
    "StoreStats",
    "backfilled_ms",
    "waits_long",
]
