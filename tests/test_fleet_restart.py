"""A small fleet through a broker restart loses no batch (what `narhub bench fleet` measures
at scale): every hub reconnects with the uplink's backoff, and the batches the restarted
broker answered 0x10 "No matching subscribers" (Mosquitto 2.0 does not persist shared
subscriptions) are kept and sent again, as the uplink does."""

from __future__ import annotations

import pytest

from rig.bench.fleet import run

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_fleet_loses_no_batch_through_a_broker_restart() -> None:
    result = run(hubs=12, no_subscriber_retry_s=0.5)
    assert result["start"]["all_connected"]
    assert result["restart"]["all_back"]
    batches = result["batches"]
    assert batches["acked"] == batches["sent"] == 24
    assert batches["lost"] == 0
    assert batches["all_received"]
