"""Draining a backlog built offline, through a real broker to a real receiver: the newest alert
first, then the other alerts, clinical, environmental, telemetry; several batches in flight,
each leaving the store only on its own PUBACK."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from hub_records import body_temperature
from hub_uplink import connects_as, hub_outbox, hub_uplink

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from drivers.mqtt import MqttLink
from gateway.reading import Reading
from protocols.uplink import Batch, Priority
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-drain"
T0_MS = 1_795_000_000_000
HOUR_MS = 3_600_000
WINDOW = 4


def _reading(kind: Priority, t_ms: int) -> Reading:
    return body_temperature(
        t_ms,
        Decimal("36.6"),
        stream=f"dev/{kind.topic_name}",
        hub_wall_ms=t_ms,
        priority=kind,
    )


class CountingLink:
    """The real MqttLink, counting publishes that await their PUBACK (the in-flight window)."""

    def __init__(self, make: MqttLink) -> None:
        self._link = make
        self.outstanding = 0
        self.max_outstanding = 0

    def __call__(self) -> CountingLink:
        return self

    async def __aenter__(self) -> CountingLink:
        await self._link.__aenter__()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._link.__aexit__(t, e, tb)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        try:
            return await self._link.publish(topic, payload, retain=retain)
        finally:
            self.outstanding -= 1


async def test_backlog_drains_newest_alert_first_then_by_priority(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    hub = rig_pki.client(HUB)
    rx = rig_pki.client(RECEIVER_NAME)
    # Batches of at most 4 readings, commits of 1 alert or 4 others: each batch is whole chunks.
    outbox = hub_outbox(tmp_path, max_batch_readings=4)
    # Three days offline: readings of every priority, interleaved in time, one commit each.
    expected: dict[Priority, list[int]] = {p: [] for p in Priority}
    for hour in range(72):
        t = T0_MS + hour * HOUR_MS
        if hour % 24 == 12:
            kind = Priority.ALERT
            commit = [_reading(kind, t)]
        else:
            kind = (Priority.CLINICAL, Priority.ENVIRONMENTAL, Priority.TELEMETRY)[hour % 3]
            commit = [_reading(kind, t + i) for i in range(4)]
        expected[kind] += [r.hub_wall_ms for r in commit]
        await outbox.add(commit)
    assert (await outbox.counts())["pending_batches"] == 0  # nothing sealed while offline

    arrived: list[tuple[Priority, list[tuple[str, int]]]] = []
    total = sum(len(v) for v in expected.values())
    done = asyncio.Event()

    def on_batch(batch: Batch, _lines: list[str]) -> None:
        arrived.append((batch.header.priority, [(r.stream, r.t_ms) for r in batch.readings]))
        if sum(len(readings) for _p, readings in arrived) >= total:
            done.set()

    verifier = PemBatchVerifier({HUB: certificate_public_key_pem(hub.cert_file.read_bytes())})
    receiver = Receiver(
        verifier, SqliteState(tmp_path / "seen.sqlite3", tmp_path / "obs.ndjson"), on_batch=on_batch
    )
    link = CountingLink(connects_as(rig_pki, hub, HUB, broker, timeout_s=5)())
    uplink = hub_uplink(HUB, outbox, hub, link, max_inflight=WINDOW)  # type: ignore[arg-type]
    receiver_link = connects_as(rig_pki, rx, f"{RECEIVER_NAME}-1", broker, manual_ack=True)

    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        rx_task = group.create_task(receiver.run(receiver_link), name="receiver")
        await receiver.subscribed.wait()
        up_task = group.create_task(uplink.run(), name="uplink")  # the hub comes back online
        await done.wait()
        await uplink.idle.wait()
        up_task.cancel()
        rx_task.cancel()
    receiver.close()

    readings = [item for _priority, batch in arrived for item in batch]
    newest_alert = max(expected[Priority.ALERT])
    # The newest alert alone, first; then the other alerts, then each priority, oldest first.
    assert arrived[0] == (Priority.ALERT, [("dev/alert", newest_alert)])
    assert readings == [("dev/alert", newest_alert)] + [
        (f"dev/{p.topic_name}", t)
        for p in Priority
        for t in sorted(expected[p])
        if (p, t) != (Priority.ALERT, newest_alert)
    ]
    assert [p for p, _ in arrived[1:]] == sorted(p for p, _ in arrived[1:])
    # Several batches were in flight at once, never more than the window.
    assert link.max_outstanding == WINDOW
    assert uplink.stats.published == len(arrived)
    counts = await outbox.counts()
    assert (counts["pending_batches"], counts["unbatched_readings"]) == (0, 0)
    outbox.close()
