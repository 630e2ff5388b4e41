"""MicroPython sensor boards into the pipeline: the sensor link's commit is the store's commit.

:class:`drivers.serial.SensorBoardLink` acknowledges readings to a board only after the
``commit`` coroutine returns; in the hub ``commit`` is :meth:`gateway.pipeline.Pipeline.commit`
(the stages, then the outbox), so a board frees its buffer only for readings on the hub's
disk. The source key ``board/boot/seq`` (:func:`gateway.dedup.board_key`) makes the commit
idempotent: a board that resends after a lost ACK does not create duplicates.
:class:`BoardSources` serves every configured board, each as a supervised task.

Environmental codes: IEEE 11073-10101 has no codes for room climate, motion, doors or bed
pads, so narhub uses private codes in the SCADA partition's private range (partition 2, terms
0xF000 + sensor kind): ``NARHUB_PRIVATE_BASE + kind`` (documented in docs/protocols/sensor-link.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

from common.atomic import write_atomic
from common.backoff import Backoff
from drivers.errors import DriverError
from drivers.serial import SensorBoardLink
from gateway.dedup import board_key
from gateway.reading import Reading
from gateway.supervisor import Component, RestartPolicy, Retry, supervise
from protocols.sensorlink import SENSOR_KINDS, Capability, Config, SequencedReading
from protocols.uplink import Priority

logger = logging.getLogger(__name__)

#: MDC partition 2 (SCADA) x 65536 + private term 0xF000 (IEEE 11073-10101 private range).
NARHUB_PRIVATE_BASE = 2 * 65536 + 0xF000


class BoardOffsets:
    """Each board boot's clock offset (hub monotonic ms minus board mono ms), kept in a small
    file so that a restarted hub process dates the rest of a boot exactly as the one before
    did (``board-offsets.json``, written atomically once per new boot).

    The hub's monotonic clock counts from its host's boot: offsets are kept with the host's
    boot id (``/proc/sys/kernel/random/boot_id``, proc(5)) and dropped when it changed.
    ``path`` ``None``: in memory only.
    """

    #: Boots remembered (the newest); a board keeps one boot for days.
    KEEP = 32

    def __init__(self, path: Path | None, host_boot: str | None = None) -> None:
        self.path = path
        self.host_boot = host_boot if host_boot is not None else _host_boot()
        self._offsets: dict[str, int] = {}
        if path is not None:
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                doc = None
            if isinstance(doc, dict) and doc.get("host_boot") == self.host_boot:
                saved = doc.get("offsets")
                if isinstance(saved, dict):
                    self._offsets = {str(k): int(v) for k, v in saved.items() if isinstance(v, int)}

    def get(self, boot: tuple[str, int]) -> int | None:
        """The offset kept for a board's boot, if any."""
        return self._offsets.get(f"{boot[0]}/{boot[1]}")

    def put(self, boot: tuple[str, int], offset: int) -> None:
        """Keep a new boot's offset (and write the file)."""
        self._offsets[f"{boot[0]}/{boot[1]}"] = offset
        while len(self._offsets) > self.KEEP:
            del self._offsets[next(iter(self._offsets))]
        if self.path is not None:
            doc = {"host_boot": self.host_boot, "offsets": self._offsets}
            write_atomic(self.path, json.dumps(doc).encode())


def _host_boot() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class BoardTimes:
    """Dates a board's readings that carry no wall time, on the hub's clocks (one per link).

    A board without a TIME (the hub sends none unless its clock is synchronised) stamps its
    readings with its monotonic time only (spec §3.3, ``mono_ms``). A backlog read at once
    (a board that sampled while no hub listened) must not share its arrival time: equal
    readings of one sensor at one time would share an identifier at the region, and one
    would be filed as a resend of the other. So each boot has one offset between the hub's
    monotonic clock and the board's, fixed when the hub first hears of that boot (a frame's
    arrival minus its newest ``mono_ms``) and kept (:class:`BoardOffsets`) so that a hub
    restarted in the middle of a boot dates the rest with it too. A reading is dated
    ``mono_ms + offset``, but never after its arrival, and always after the previous reading
    of its sensor: one sensor never gets the same time twice, in one hub process or across
    several (a later process's readings come later on both scales). Both clocks are
    monotonic, so a step of the hub's wall clock (gateway/outbox/held.py) moves nothing here.
    The price: a backlog the hub first meets is dated no earlier than its arrival, a
    millisecond apart per reading of a sensor.
    """

    def __init__(self, offsets: BoardOffsets | None = None) -> None:
        self._offsets = offsets if offsets is not None else BoardOffsets(None, host_boot="")
        self._last: dict[str, int] = {}

    def ages(self, readings: Sequence[SequencedReading], arrival_mono_ms: int) -> list[int]:
        """Per reading: ms it was taken before ``arrival_mono_ms`` (the hub's monotonic
        clock; at least 0 but for the millisecond steps that keep a sensor's times apart); 0
        for one the board stamped with its own wall time."""
        newest: dict[tuple[str, int], int] = {}
        for r in readings:
            boot = (r.board_id, r.boot_id)
            newest[boot] = max(newest.get(boot, r.mono_ms), r.mono_ms)
        for boot, mono in newest.items():
            if self._offsets.get(boot) is None:
                self._offsets.put(boot, arrival_mono_ms - mono)
        out: list[int] = []
        for r in readings:
            if r.wall_ms is not None:
                out.append(0)
                continue
            stream = _stream(r)
            offset = self._offsets.get((r.board_id, r.boot_id))
            taken = r.mono_ms + (offset if offset is not None else arrival_mono_ms - r.mono_ms)
            # Never after its arrival: a first-contact backlog would otherwise be dated late
            # by its age, and the held-reading back-fill takes the monotonic time as receipt.
            taken = min(taken, arrival_mono_ms)
            previous = self._last.get(stream)
            if previous is not None and taken <= previous:
                taken = previous + 1
            self._last[stream] = taken
            out.append(arrival_mono_ms - taken)
        return out


def _stream(r: SequencedReading) -> str:
    return f"{r.board_id}/{r.kind}/{r.index}"


def board_readings(
    readings: Sequence[SequencedReading],
    *,
    hub_wall_ms: int,
    times: BoardTimes | None = None,
    hub_mono_ns: int | None = None,
) -> list[Reading]:
    """Hub Readings for sensor-link readings; unknown kinds keep their raw integer value.

    A reading the board stamped with its wall clock keeps that time (``source_wall_ms``); one
    without is dated by ``times`` (:class:`BoardTimes`, one per link; by default one for this
    frame alone) on the hub's clocks: ``hub_wall_ms`` and ``hub_mono_ns`` (default: now) are
    the frame's arrival, less the reading's age.
    """
    out = []
    mono_ns = time.monotonic_ns() if hub_mono_ns is None else hub_mono_ns
    ages = (times or BoardTimes()).ages(readings, mono_ns // 1_000_000)
    for r, age_ms in zip(readings, ages, strict=True):
        kind = SENSOR_KINDS.get(r.kind)
        value = (
            Reading.exact(r.value, kind.exponent) if kind is not None else Reading.exact(r.value, 0)
        )
        out.append(
            Reading(
                stream=_stream(r),
                device=r.board_id,
                mdc_code=NARHUB_PRIVATE_BASE + r.kind,
                unit=kind.unit if kind is not None else "1",
                value=value,
                special=None,
                hub_wall_ms=hub_wall_ms - age_ms,
                hub_mono_ns=mono_ns - age_ms * 1_000_000,
                priority=Priority.ENVIRONMENTAL,
                flags=frozenset() if kind is not None else frozenset({"unknown-kind"}),
                source_key=board_key(r.board_id, r.boot_id, r.seq),
                source_wall_ms=r.wall_ms,
            )
        )
    return out


#: Sensor kinds whose sampling interval a board takes (spec §3.6; air temperature also paces
#: relative humidity: one SHT4x read gives both).
SAMPLED_KINDS: Mapping[str, int] = {
    "air-temperature": 1,
    "motion-events": 3,
    "door-open": 4,
    "pressure-pad-load": 5,
}
#: How long a board has to answer a CONFIG with its own (it answers at once).
CONFIG_ANSWER_S = 5.0


class BoardSampling:
    """The sampling intervals the hub wants a board to use, and what the board confirmed.

    The hub sends them as CONFIG (sensor-link spec §3.6) at every connection and after every
    board boot (a board starts with its firmware defaults), and again when they change (a
    remote configuration update applies them live). ``confirmed`` is the board's own answer:
    its whole interval table after applying; ``refused`` counts CONFIGs it refused (ERROR).
    """

    def __init__(self, intervals_ms: Mapping[int, int] | None = None) -> None:
        self.intervals_ms: dict[int, int] = dict(intervals_ms or {})
        self.confirmed: dict[int, int] | None = None
        self.refused = 0
        self.changed = asyncio.Event()

    @classmethod
    def from_seconds(cls, intervals_s: Iterable[tuple[str, float]]) -> BoardSampling:
        """From the configuration's ``intervals_s`` items (kind name, seconds)."""
        return cls({SAMPLED_KINDS[k]: round(v * 1000) for k, v in intervals_s})

    def set(self, intervals_ms: Mapping[int, int]) -> None:
        """Want these intervals from now on (sent at once if the board is connected)."""
        if dict(intervals_ms) != self.intervals_ms:
            self.intervals_ms = dict(intervals_ms)
            self.changed.set()

    def satisfied_by(self, reported: Config | None) -> bool:
        """Whether a board's CONFIG shows every wanted interval."""
        if reported is None:
            return False
        have = dict(reported.intervals_ms)
        return all(have.get(k) == v for k, v in self.intervals_ms.items())


async def _configure(link: SensorBoardLink, sampling: BoardSampling, wanted: Config) -> None:
    """Send one CONFIG and record the board's answer (its whole CONFIG, or an ERROR)."""
    error_before = link.last_error
    config_before = link.board_config
    link.configure(wanted)
    try:
        await link.wait_until(
            lambda: link.board_config is not config_before or link.last_error is not error_before,
            CONFIG_ANSWER_S,
        )
    except TimeoutError:
        logger.warning("sensor board did not answer its sampling configuration")
        return
    reported = link.board_config
    if reported is not config_before and reported is not None and sampling.satisfied_by(reported):
        sampling.confirmed = dict(reported.intervals_ms)
        logger.info("sensor board sampling configured")
    else:
        sampling.refused += 1
        logger.warning("sensor board refused its sampling configuration")


async def _keep_configured(link: SensorBoardLink, sampling: BoardSampling) -> None:
    """Send the wanted intervals after each connection and board boot and after each change.

    A board without the CONFIG capability (HELLO, spec §3.2) keeps its firmware defaults,
    said once per boot in the log.
    """
    done: tuple[int, int, tuple[tuple[int, int], ...]] | None = None

    def session() -> tuple[int, int] | None:
        hello = link.hello
        return (link.connects, hello.boot_id) if link.connected and hello is not None else None

    while True:
        sampling.changed.clear()
        current = session()
        if current is not None and sampling.intervals_ms:
            wanted = (*current, tuple(sorted(sampling.intervals_ms.items())))
            if wanted != done:
                done = wanted
                assert link.hello is not None
                if link.hello.capabilities & Capability.CONFIG:
                    await _configure(link, sampling, Config(wanted[2]))
                else:
                    logger.warning("sensor board firmware takes no sampling configuration")
        configured = done[:2] if done else None

        def due(seen: tuple[int, int] | None = configured) -> bool:
            # Nothing wanted: only a change matters (else this would never wait).
            if not sampling.intervals_ms:
                return sampling.changed.is_set()
            return sampling.changed.is_set() or session() not in (None, seen)

        try:
            # Link events wake this at once; a change of the wanted intervals within a second.
            await link.wait_until(due, timeout_s=_RECHECK_S)
        except TimeoutError:
            continue


#: How often a change of the wanted intervals is looked for while the link is quiet.
_RECHECK_S = 1.0


#: Commits readings and returns once they are durable (:meth:`gateway.pipeline.Pipeline.commit`).
Commit = Callable[[Sequence[Reading]], Awaitable[object]]


async def run_board(
    port: str,
    commit: Commit,
    *,
    sampling: BoardSampling | None = None,
    offsets: BoardOffsets | None = None,
) -> None:
    """Serve one board until cancelled; its link reconnects by itself after unplugging.

    ``commit`` returns only after the readings are committed, and only then is the board
    acknowledged. ``sampling``: the intervals the board should sample at (else its firmware
    defaults). ``offsets``: its boots' clock offsets (:class:`BoardOffsets`).
    """

    times = BoardTimes(offsets)

    async def commit_frame(readings: Sequence[SequencedReading]) -> None:
        now_ms = time.time_ns() // 1_000_000
        await commit(board_readings(readings, hub_wall_ms=now_ms, times=times))

    async with SensorBoardLink(port, commit_frame) as link:
        if sampling is None:
            await asyncio.Event().wait()
        else:
            await _keep_configured(link, sampling)


class BoardSources(Component):
    """The configured sensor boards, each served by the task ``board-{index}`` of this
    component's group, restarted with backoff when its link fails (a board unplugged, a
    port gone, a store error: the board keeps what it has not had acknowledged)."""

    def __init__(
        self,
        ports: Sequence[str],
        commit: Commit,
        sampling: Mapping[str, BoardSampling],
        offsets: BoardOffsets | None = None,
    ) -> None:
        self._names = {port: f"board-{index}" for index, port in enumerate(ports)}
        self._commit = commit
        #: The boards' boot clock offsets (one file for every board of the hub).
        self.offsets = offsets if offsets is not None else BoardOffsets(None)
        #: The sampling intervals each board should use, by port (sent as CONFIG).
        self.sampling = dict(sampling)

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        await self._open_tasks(stack)
        for port in self._names:
            self._serve(port)

    def _serve(self, port: str) -> None:
        name = self._names[port]
        policy = RestartPolicy(
            (((DriverError, OSError, sqlite3.Error), Retry(Backoff(initial_s=1.0, cap_s=60.0))),)
        )

        def run() -> Awaitable[None]:
            return run_board(
                port, self._commit, sampling=self.sampling.get(port), offsets=self.offsets
            )

        self._start(name, supervise(name, run, policy))

    @contextlib.asynccontextmanager
    async def released(self, port: str) -> AsyncIterator[None]:
        """Stop serving the board on ``port`` while the body runs (a firmware update flashes
        it), then serve it again; readings it has not had acknowledged wait on the board."""
        await self._stop(self._names[port])
        try:
            yield
        finally:
            if self.running:
                self._serve(port)
