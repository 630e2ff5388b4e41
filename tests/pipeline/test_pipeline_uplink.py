"""The uplink seals at the earliest deadline, takes everything waiting, sends alerts first."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.outbox import AsyncOutbox, BatchingPolicy, Outbox
from gateway.reading import Reading
from gateway.uplink import Uplink
from protocols.uplink import Priority
from rig.link_seam import OwnLink

KEY = new_private_key_pem()
VERIFIER = PemBatchVerifier({"hub-u": public_key_pem(KEY)})


class FakeLink(OwnLink):
    """The named seam in place of ``drivers.mqtt.MqttLink``: records PUBLISHes, answers a
    PUBACK reason code chosen by the test."""

    def __init__(self, reason: int = 0) -> None:
        self.reason = reason
        self.published: list[tuple[str, bytes]] = []
        self.got = asyncio.Event()

    async def publish(self, topic: str, payload: bytes) -> int:
        self.published.append((topic, payload))
        self.got.set()
        return self.reason


def _r(i: int, priority: Priority) -> Reading:
    return Reading(
        f"dev/{i}", "dev", 150456, "%", Decimal(90 + i), None, 1_763_800_000_000 + i, i,
        priority=priority,
    )  # fmt: skip


async def test_an_alert_takes_the_waiting_readings_along(tmp_path: Path) -> None:
    outbox = AsyncOutbox(
        Outbox(tmp_path / "o.sqlite3", batching=BatchingPolicy(environmental_s=3600)),
        commit_window_s=0,
    )
    link = FakeLink()
    uplink = Uplink("hub-u", outbox, PemBatchSigner("hub-u", KEY), link)  # type: ignore[arg-type]
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        task = group.create_task(uplink.run(), name="uplink")
        await outbox.add([_r(1, Priority.ENVIRONMENTAL), _r(2, Priority.TELEMETRY)])
        # Not due for an hour: the uplink waits (idle stays clear while readings wait).
        for _ in range(50):
            await asyncio.sleep(0)
        assert link.published == []
        assert not uplink.idle.is_set()
        await outbox.add([_r(3, Priority.ALERT)])
        await link.got.wait()
        await uplink.idle.wait()
        task.cancel()
    ((topic, message),) = link.published
    assert topic == "narhub/v1/hub-u/up/alert"
    batch = VERIFIER.verify(message)
    assert sorted(r.stream for r in batch.readings) == ["dev/1", "dev/2", "dev/3"]
    assert (await outbox.counts())["pending_batches"] == 0
    outbox.close()


async def test_a_refused_batch_is_kept_and_reported_not_resent(tmp_path: Path) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"), commit_window_s=0)
    link = FakeLink(reason=0x87)  # not authorized
    uplink = Uplink("hub-u", outbox, PemBatchSigner("hub-u", KEY), link)  # type: ignore[arg-type]
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        task = group.create_task(uplink.run(), name="uplink")
        await outbox.add([_r(1, Priority.ALERT)])
        await link.got.wait()
        await uplink.idle.wait()
        task.cancel()
    assert len(link.published) == 1
    counts = await outbox.counts()
    assert (counts["rejected_batches"], counts["pending_batches"]) == (1, 0)
    assert uplink.stats.rejected == 1
    outbox.close()


async def test_a_batch_nobody_subscribed_to_stays_and_is_sent_again(tmp_path: Path) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"), commit_window_s=0)
    link = FakeLink(reason=0x10)  # "No matching subscribers": the region would drop it
    uplink = Uplink(
        "hub-u", outbox, PemBatchSigner("hub-u", KEY), link,  # type: ignore[arg-type]
        no_subscriber_retry_s=0.01,
    )  # fmt: skip
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        task = group.create_task(uplink.run(), name="uplink")
        await outbox.add([_r(1, Priority.ALERT)])
        while len(link.published) < 2:  # sent again after the retry delay
            link.got.clear()
            await link.got.wait()
        assert (await outbox.counts())["pending_batches"] == 1  # still kept
        link.reason = 0x00  # a receiver subscribed
        await uplink.idle.wait()
        task.cancel()
    assert link.published[0] == link.published[-1]  # the same signed batch each time
    assert (await outbox.counts())["pending_batches"] == 0
    assert uplink.stats.no_subscribers >= 2
    outbox.close()
