"""A fleet of hubs against one broker restart (``narhub bench fleet --hubs N --json``).

N light simulated hubs in this process, each as a hub connects: its own certificate (CN =
hub id, issued by the rig's region CA), mutual TLS 1.3, MQTT 5 through :class:`MqttLink`,
the hub's own reconnect policy (:class:`common.backoff.Backoff` with the uplink's defaults:
full jitter from 0.5 s, capped at 60 s) and its rule for batches (:class:`gateway.uplink.Uplink`):
one is delivered only when the broker's PUBACK says so; after a lost connection it is sent
again, and after 0x10 "No matching subscribers" (MQTT 5.0 section 3.4.2.1: accepted, but no
session will get it) it is kept and sent again 10 s later. The broker is
the region's configuration (:class:`rig.broker.MosquittoBroker`: the ACL, the identity
plugin, persistence on, as ``narhub region broker-config --persistence``) and one counting
receiver holds a never-expiring session on the shared subscription.

Mosquitto 2.0 does not persist shared subscriptions (its ``persist__subs_save`` writes a
topic node's ordinary subscribers only): after a restart the receivers' share is gone until
each receiver connects and subscribes again, and a batch published in that window is
answered 0x10 and dropped by the broker. The hub keeps such batches, so none is lost; the
benchmark counts those answers (``no_subscribers``).

Phases: every hub connects and publishes a batch; the broker is restarted (SIGTERM, start
on the same port) under them; every hub notices, backs off, reconnects and publishes its
next batch. Reported: connects per second at the start and after the restart, the time from
the broker listening again until every hub is connected, and batches lost: acknowledged to
a hub (PUBACK) but never received (must be 0). RSS of this process and of the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.backoff import Backoff
from common.pki import issue_identity
from drivers.mqtt import REASON_FAILURE_THRESHOLD, MqttError, MqttLink, TlsFiles
from gateway.uplink import NO_MATCHING_SUBSCRIBERS
from region.broker_config import RECEIVER_USER
from rig.bench.waits import wait_until
from rig.broker import MosquittoBroker, RigPki

logger = logging.getLogger(__name__)

SHARE = "$share/fleet/narhub/v1/+/up/+"
#: Batches each hub sends: one before the restart, one after.
BATCHES_PER_HUB = 2
#: How long a phase may take before the benchmark reports what it has (seconds).
PHASE_TIMEOUT_S = 600.0
#: The uplink's ``no_subscriber_retry_s`` default (gateway/uplink.py).
NO_SUBSCRIBER_RETRY_S = 10.0


@dataclass
class FleetState:
    """What the hubs and the receiver saw."""

    hubs: int
    connected: set[str] = field(default_factory=set)
    connect_times: list[float] = field(default_factory=list)
    acked: set[tuple[str, int]] = field(default_factory=set)
    received: set[tuple[str, int]] = field(default_factory=set)
    connect_failures: int = 0
    no_subscribers: int = 0
    local_errors: Counter[str] = field(default_factory=Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self) -> None:
        """Wake whoever waits for a count."""
        self.changed.set()

    async def until(self, predicate: Any, timeout_s: float = PHASE_TIMEOUT_S) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every change)."""
        return await wait_until(predicate, self.changed, timeout_s)


class SimHub:
    """One hub's connection loop: connect, publish what is due, stay until the link drops."""

    def __init__(
        self, hub_id: str, tls: TlsFiles, broker: MosquittoBroker, state: FleetState
    ) -> None:
        self.hub_id = hub_id
        self._tls = tls
        self._broker = broker
        self._state = state
        self._backoff = Backoff()  # the uplink's defaults (gateway/uplink.py)
        self.due = 1  # batches the hub has made so far; the next one is made after the restart
        self.wake = asyncio.Event()
        self.retry_s = NO_SUBSCRIBER_RETRY_S

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            try:
                await self._session()
            except MqttError:
                pass
            except OSError as exc:
                # Local, not the broker: most often EMFILE (the open-files limit) when N
                # is larger than this machine allows. Counted and retried like a failure.
                self._state.local_errors[errno.errorcode.get(exc.errno or 0, "?")] += 1
            self._state.connected.discard(self.hub_id)
            self._state.note()
            await asyncio.sleep(self._backoff.next_delay_s())

    async def _session(self) -> None:
        link = MqttLink(
            self._broker.host, self._broker.port, client_id=self.hub_id, tls=self._tls,
            keepalive_s=60, timeout_s=30,
        )  # fmt: skip
        entered = False
        try:
            async with link:
                entered = True
                await self._connected(link)
        except MqttError:
            if not entered:
                self._state.connect_failures += 1
            raise

    async def _connected(self, link: MqttLink) -> None:
        self._backoff.reset()
        self._state.connected.add(self.hub_id)
        self._state.connect_times.append(time.monotonic())
        self._state.note()
        closed = asyncio.create_task(link.wait_closed(), name=f"{self.hub_id}-closed")
        try:
            while True:
                kept = await self._publish_due(link)
                self.wake.clear()
                woken = asyncio.create_task(self.wake.wait())
                await asyncio.wait(
                    {closed, woken},
                    timeout=self.retry_s if kept else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                if closed.done():
                    closed.result()  # raises MqttError
        finally:
            closed.cancel()
            with contextlib.suppress(asyncio.CancelledError, MqttError):
                await closed

    async def _publish_due(self, link: MqttLink) -> bool:
        """Publish what is not acknowledged yet; whether a batch was kept (0x10)."""
        kept = False
        for seq in range(self.due):
            if (self.hub_id, seq) in self._state.acked:
                continue
            topic = f"narhub/v1/{self.hub_id}/up/clinical"
            reason = await link.publish(topic, f"{self.hub_id} {seq}".encode())
            if reason == NO_MATCHING_SUBSCRIBERS:
                self._state.no_subscribers += 1
                kept = True
            elif reason < REASON_FAILURE_THRESHOLD:
                self._state.acked.add((self.hub_id, seq))
                self._state.note()
        return kept


async def _receive(broker: MosquittoBroker, tls: TlsFiles, state: FleetState) -> None:
    """A receiver with a persistent session: counts every batch, PUBACKs after counting."""
    backoff = Backoff(initial_s=0.1, cap_s=1.0)
    while True:
        try:
            link = MqttLink(
                broker.host, broker.port, client_id=f"{RECEIVER_USER}-fleet", tls=tls,
                manual_ack=True, session_expiry_s=0xFFFFFFFF, max_inflight=100,
            )  # fmt: skip
            async with link:
                await link.subscribe(SHARE)
                backoff.reset()
                async for message in link.messages():
                    hub, seq = message.payload.decode().split()
                    state.received.add((hub, int(seq)))
                    state.note()
                    link.ack(message)
        except MqttError:
            await asyncio.sleep(backoff.next_delay_s())


def _rss_kib(pid: int | str = "self") -> dict[str, int]:
    """Current and peak resident set of a process (``/proc/PID/status`` VmRSS, VmHWM)."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:  # noqa: PTH123 - tiny
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss_kib" if line.startswith("VmRSS") else "max_rss_kib"
                found[key] = int(line.split()[1])
    return found


def _open_files(pid: int | str) -> int:
    """Descriptors a process holds (one per hub connection on each side)."""
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def _raise_fd_limit(needed: int) -> int:
    """Raise the open-files limit (inherited by the broker) to ``needed`` where allowed:
    the soft limit up to the hard one, and the hard one too when we may (root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def _loop_errors(counter: list[int]) -> Any:
    """An event-loop exception handler that counts instead of printing: paho (under aiomqtt)
    may ask the loop to watch a socket the broker has just closed (``add_writer`` on a dead
    descriptor) when thousands of connections drop at once; the connection is gone either
    way and the hub reconnects. Counted in the result (``loop_callback_errors``)."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        del loop
        counter[0] += 1
        logger.debug("event loop: %s", context.get("message"))

    return handle


async def _fleet(
    hubs: int, directory: Path, *, no_subscriber_retry_s: float = NO_SUBSCRIBER_RETRY_S
) -> dict[str, Any]:
    pki = RigPki.create(directory / "pki")
    started = time.monotonic()
    identities = [issue_identity(pki.ca, directory / "hubs", f"hub-{n:05d}") for n in range(hubs)]
    issue_s = time.monotonic() - started
    receiver_identity = pki.client(RECEIVER_USER)
    broker = MosquittoBroker(pki, directory / "broker", persistence=True)
    broker.start()
    broker_pid = broker.pid
    state = FleetState(hubs)
    loop_errors = [0]
    asyncio.get_running_loop().set_exception_handler(_loop_errors(loop_errors))
    sims = [
        SimHub(f"hub-{n:05d}", TlsFiles(pki.ca_file, i.cert_file, i.key_file), broker, state)
        for n, i in enumerate(identities)
    ]
    for sim in sims:
        sim.retry_s = no_subscriber_retry_s
    result: dict[str, Any] = {"hubs": hubs, "certificates_issued_s": round(issue_s, 2)}
    rx_tls = TlsFiles(pki.ca_file, receiver_identity.cert_file, receiver_identity.key_file)
    try:
        async with asyncio.TaskGroup() as group:
            rx = group.create_task(_receive(broker, rx_tls, state), name="receiver")
            t0 = time.monotonic()
            tasks = [group.create_task(s.run(), name=s.hub_id) for s in sims]
            all_up = await state.until(lambda: len(state.connected) == hubs)
            up_s = time.monotonic() - t0
            first_sent = await state.until(lambda: len(state.acked) == hubs)
            result["start"] = {
                "all_connected": all_up,
                "connect_s": round(up_s, 2),
                "connects_per_s": _rate(hubs, up_s),
                "connect_failures": state.connect_failures,
                "batches_acked": len(state.acked),
            }
            result["broker_rss_before_restart"] = _rss_kib(broker_pid) if broker_pid else {}
            del first_sent
            # The restart: every hub's connection drops; the broker comes back with its
            # persisted sessions and queued messages.
            state.connect_times.clear()
            failures_before = state.connect_failures
            broker.stop()
            await state.until(lambda: not state.connected, timeout_s=60)
            broker.start()
            broker_pid = broker.pid
            back = time.monotonic()
            for sim in sims:
                sim.due = BATCHES_PER_HUB
                sim.wake.set()
            all_back = await state.until(lambda: len(state.connected) == hubs)
            back_s = time.monotonic() - back
            total = hubs * BATCHES_PER_HUB
            all_acked = await state.until(lambda: len(state.acked) == total)
            all_received = await state.until(lambda: state.acked <= state.received, 120)
            result["restart"] = {
                "all_back": all_back,
                "time_until_all_back_s": round(back_s, 2),
                "reconnects_per_s": _rate(hubs, back_s),
                "connect_failures": state.connect_failures - failures_before,
                "all_acked": all_acked,
            }
            result["batches"] = {
                "sent": total,
                "acked": len(state.acked),
                "received": len(state.received & state.acked),
                "lost": len(state.acked - state.received),
                "no_subscribers": state.no_subscribers,
                "all_received": all_received,
            }
            result["rss"] = {"bench": _rss_kib(), "broker": _rss_kib(broker_pid or "self")}
            result["open_files"] = {
                "bench": _open_files("self"),
                "broker": _open_files(broker_pid) if broker_pid else 0,
            }
            result["local_errors"] = dict(state.local_errors)
            result["loop_callback_errors"] = loop_errors[0]
            for task in [rx, *tasks]:
                task.cancel()
    finally:
        broker.stop()
    return result


def run(
    duration_s: float = 1.0, hubs: int = 100, no_subscriber_retry_s: float = NO_SUBSCRIBER_RETRY_S
) -> dict[str, Any]:
    """The fleet benchmark (``duration_s`` unused: the phases decide the length)."""
    del duration_s
    limit = _raise_fd_limit(hubs * 3 + 256)
    directory = Path(tempfile.mkdtemp(prefix="narhub-fleet-"))
    try:
        result = asyncio.run(_fleet(hubs, directory, no_subscriber_retry_s=no_subscriber_retry_s))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    result["open_files_limit"] = limit
    result["cpus"] = os.cpu_count()
    return result
