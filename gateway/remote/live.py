"""Apply an updated configuration to the running hub where that is safe without a restart.

Thresholds: the pipeline sorts every reading stored from now on by the new limits (readings
already stored keep the priority they had: nothing stored is altered). Batching: readings
committed from now on get the new deadlines; the uplink is woken to look again.
"""

from __future__ import annotations

from gateway.config import HubConfig
from gateway.outbox import AsyncOutbox, BatchingPolicy
from gateway.pipeline import Pipeline
from gateway.thresholds import Threshold


def apply_live(pipeline: Pipeline, outbox: AsyncOutbox, new: HubConfig) -> None:
    """Switch the running pipeline and outbox to ``new``'s thresholds and batching (both set
    every time: the running values may differ from the file's previous content)."""
    thresholds = tuple(
        Threshold(t.mdc_code, t.unit, t.below, t.above) for t in new.pipeline.thresholds
    )
    if thresholds != pipeline.settings.thresholds:
        pipeline.set_thresholds(thresholds)
    policy = BatchingPolicy.from_config(new.batching)
    if policy != outbox.outbox.batching:
        outbox.outbox.batching = policy
        for name in outbox.recipients:  # every recipient's uplink looks at its deadline again
            outbox.changed_for(name).set()
