"""The hub's side of ``narhub bench e2e``: its configuration and what it says of its outbox.

The configuration is what ``narhub init`` writes (``technician.provision.init_hub``), with
the bench's boards, straps and identity, and the changes :func:`hub_config` lists. The
outbox depth comes from the running hub's activity file (``status.json`` in its runtime
directory, :mod:`gateway.activity`): the hub holds its store exclusively, as installed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.pki import Identity
from gateway.activity import ACTIVITY_FILE
from gateway.config import (
    BleConfig,
    BoardConfig,
    DeviceConfig,
    HubConfig,
    load_config,
    render_config,
)
from rig.broker import RigPki
from technician.provision import init_hub

HUB_ID = "hub-e2e"
#: Batching deadline of the board (environmental) and stream (continuous) readings. Installed:
#: 300 s; here 1 s, so that a step drains in seconds and the latency is the path's, not a
#: configured wait (a batch also leaves at 10,000 readings, ``batching.max_batch_readings``).
BATCH_DEADLINE_S = 1.0


def hub_config(
    directory: Path,
    pki: RigPki,
    identity: Identity,
    *,
    host: str,
    port: int,
    board_ports: Sequence[str],
    commit_window_s: float | None,
    ble_transport: str | None,
    strap_addresses: Sequence[str],
) -> Path:
    """``narhub init``'s configuration with the bench's boards, straps and identity.

    Changed from the defaults: the batching deadlines of environmental and continuous
    readings (:data:`BATCH_DEADLINE_S`), ``clock.require_sync`` off (this machine's kernel
    may call its clock unsynchronised while it is right), and ``store.commit_window_s`` when
    ``commit_window_s`` is given.
    """
    path = directory / "narhub.toml"
    config = init_hub(
        path,
        hub_id=HUB_ID,
        broker_url=f"mqtts://{host}:{port}",
        ca_file=pki.ca_file,
        patient_pseudonym=None,
        data_dir=directory / "data",
        ble_backend="bluez" if ble_transport is None else "sim",
        sim_transport=ble_transport,
    )
    ble = config.ble
    if ble_transport is not None:
        devices = [DeviceConfig(address=a, kind="heart_rate") for a in strap_addresses]
        ble = BleConfig(backend="sim", sim_transport=ble_transport, devices=devices)
    store = config.store
    if commit_window_s is not None:
        store = store.model_copy(update={"commit_window_s": commit_window_s})
    batching = config.batching.model_copy(
        update={"environmental_s": BATCH_DEADLINE_S, "continuous_s": BATCH_DEADLINE_S}
    )
    config = config.model_copy(
        update={
            "ble": ble,
            "uplink": config.uplink.model_copy(
                update={"cert_file": identity.cert_file, "key_file": identity.key_file}
            ),
            "sensors": config.sensors.model_copy(
                update={
                    "boards": [BoardConfig(port=f"serial:{p}", board="esp32") for p in board_ports]
                }
            ),
            "store": store,
            "batching": batching,
            "clock": config.clock.model_copy(update={"require_sync": False}),
        }
    )
    path.write_text(render_config(config))
    load_config(path)  # what the hub will read must be valid
    return path


def config_summary(config: HubConfig) -> dict[str, Any]:
    """The settings that shape the figures."""
    return {
        "commit_window_s": config.store.commit_window_s,
        "continuous_commit_window_s": config.store.continuous_commit_window_s,
        "batching_s": {
            "environmental": config.batching.environmental_s,
            "continuous": config.batching.continuous_s,
            "max_batch_readings": config.batching.max_batch_readings,
        },
        "max_inflight": config.uplink.max_inflight,
        "store_exclusive": config.store.exclusive,
    }


def outbox_depth(runtime: Path | None) -> dict[str, Any] | None:
    """The outbox depth the running hub last wrote to its activity file (``status.json``)."""
    if runtime is None:
        return None
    try:
        data = json.loads((runtime / ACTIVITY_FILE).read_text(encoding="utf-8"))
        queue, updated_ms = data["queue"], int(data["updated_ms"])
        oldest = queue.get("oldest_unsent_ms")
        now_ms = time.time_ns() // 1_000_000
        return {
            "readings_unsealed": sum(int(n) for n in queue["readings_by_priority"].values()),
            "batches_unacknowledged": sum(int(n) for n in queue["batches_by_priority"].values()),
            "oldest_unsent_age_s": None if oldest is None else round((now_ms - oldest) / 1000, 1),
            "evicted_readings_total": int(queue["evicted_readings_total"]),
            "written_s_ago": round((now_ms - updated_ms) / 1000, 1),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
