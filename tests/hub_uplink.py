"""The hub's uplink and the MQTT connections of the tests that run it against the rig's
broker (rig/broker.py: mutual TLS, a certificate per client)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.backoff import Backoff
from common.pki import Identity
from common.signing import PemBatchSigner
from drivers.mqtt import MqttLink, TlsFiles
from gateway.outbox import AsyncOutbox, BatchingPolicy, Outbox
from gateway.uplink import Uplink
from rig.broker import MosquittoBroker, RigPki


def connects_as(
    rig_pki: RigPki,
    identity: Identity,
    client_id: str,
    at: MosquittoBroker | tuple[str, int],
    **options: Any,
) -> Callable[[], MqttLink]:
    """A new connection on each call, to the broker ``at`` (or a host and port in front of
    it), as ``identity`` with ``client_id`` (``options``: MqttLink's own)."""
    host, port = (at.host, at.port) if isinstance(at, MosquittoBroker) else at

    def connect() -> MqttLink:
        tls = TlsFiles(rig_pki.ca_file, identity.cert_file, identity.key_file)
        return MqttLink(host, port, client_id=client_id, tls=tls, **options)

    return connect


def hub_outbox(tmp_path: Path, commit_window_s: float = 0, **batching: Any) -> AsyncOutbox:
    """The hub's outbox in ``tmp_path``, sealing by ``batching`` (BatchingPolicy's fields)
    and committing after ``commit_window_s`` (at once by default)."""
    store = Outbox(tmp_path / "outbox.sqlite3", batching=BatchingPolicy(**batching))
    return AsyncOutbox(store, commit_window_s=commit_window_s)


def hub_uplink(
    hub_id: str,
    outbox: AsyncOutbox,
    hub: Identity,
    connect: Callable[[], MqttLink],
    **options: Any,
) -> Uplink:
    """The hub's uplink, signing with ``hub``'s key and retrying fast (50 to 200 ms)
    (``options``: Uplink's own)."""
    signer = PemBatchSigner(hub_id, hub.key_file.read_bytes())
    backoff = Backoff(initial_s=0.05, cap_s=0.2)
    return Uplink(hub_id, outbox, signer, connect, backoff=backoff, **options)
