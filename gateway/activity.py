"""The running hub's activity file: what ``narhub status`` shows of devices, readings and uplink.

The hub keeps a small JSON file (``status.json``: in systemd's runtime directory
``/run/narhub``, RAM, when the hub runs as the unit, else in ``DATA_DIR``; see
:func:`activity_path`) through :class:`ActivityRecorder`: each paired device's last sighting,
battery and connection, the readings stored today per source (counts only, never values), the
uplink's last PUBACK, the outbox's queue figures (the hub holds its store exclusively) and
the BLE stack's counters.
It is rewritten atomically, only when something changed, at most once per ``min_interval_s``
(2 s) and at least every ``interval_s`` (10 s); no fsync: it is a view, not data, and losing
it in a power cut costs nothing but history.

The technician's side (reading this file and the store, ``narhub status``) is
:mod:`technician.status_view`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from drivers._aio import reraise_if_cancelling
from gateway.reading import Reading
from gateway.supervisor import Component
from protocols.uplink.undecoded import FLAG_UNDECODED

#: The activity file's name (see :func:`activity_path`).
ACTIVITY_FILE = "status.json"
#: Set by systemd's ``RuntimeDirectory=`` (deploy/systemd/narhub.service): a tmpfs directory.
RUNTIME_DIRECTORY_ENV = "RUNTIME_DIRECTORY"
#: Version of the activity file's document.
ACTIVITY_VERSION = 1


class DeviceView(Protocol):
    """What the recorder reads from :class:`drivers.ble.central.DeviceStatus`."""

    connected: bool
    battery_percent: int | None


class UplinkCounters(Protocol):
    """What the recorder reads from :class:`gateway.uplink.UplinkStats`."""

    published: int
    rejected: int
    no_subscribers: int
    connects: int
    last_reason_codes: list[int]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def local_day(ms: int) -> str:
    """The hub's local date of an epoch-ms time (the activity file's ``day``)."""
    return dt.datetime.fromtimestamp(ms / 1000).astimezone().date().isoformat()


@dataclass
class _Source:
    count_today: int = 0
    last_reading_ms: int | None = None
    #: Of ``count_today``: raw records, values no decoder accepted (flag ``undecoded``).
    undecoded_today: int = 0


@dataclass
class _Device:
    last_seen_ms: int | None = None
    battery_percent: int | None = None
    connected: bool | None = None


def activity_path(data_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where a running hub keeps its activity file: in systemd's runtime directory when it
    runs as the unit (``$RUNTIME_DIRECTORY``, RAM), else in the data directory.

    Not on the SD card in the field: the file is replaced every 2 s while readings flow, and
    each replacement is a 4 KiB page written (ext4 writes a file renamed over another at once):
    ~170 MB a day, more than all the readings (docs/pipeline.md, "Bytes on the SD card").
    """
    env = os.environ if environ is None else environ
    runtime = env.get(RUNTIME_DIRECTORY_ENV)
    if runtime:
        return Path(runtime.split(":")[0]) / ACTIVITY_FILE
    return data_dir / ACTIVITY_FILE


def writer_alive(pid: object) -> bool:
    """Whether the process that wrote a runtime file (its ``"pid"``) still exists.

    The activity file and the feedback report stay behind when a hub stops or is killed;
    a reader believes one only while its writer lives. ``kill(pid, 0)`` (POSIX ``kill(2)``:
    signal 0 checks existence only): ``EPERM`` means the process exists under another user
    (the service user), so it counts as alive. A JSON ``true`` is no pid (``bool`` is an
    ``int`` in Python; taken as one it would name init).
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under the service user
    return True


@dataclass(frozen=True)
class ActivityFeeds:
    """What the recorder observes of the running hub, besides the readings stored.

    ``devices``: the central's status per device address; ``uplink``: the uplink's counters;
    ``uplink_connected``: whether it holds a broker connection (None: unknown); ``queue``: the
    outbox's queue figures (:meth:`gateway.outbox.AsyncOutbox.queue_figures`); ``ble``: the
    BLE stack's counters (:meth:`ActivityRecorder.observe_ble`).
    """

    devices: Callable[[], Mapping[str, DeviceView]]
    uplink: Callable[[], UplinkCounters | None]
    uplink_connected: Callable[[], bool | None] = lambda: None
    queue: Callable[[], Awaitable[Mapping[str, Any]]] | None = None
    ble: Callable[[], Mapping[str, int]] | None = None


class ActivityRecorder(Component):
    """Keeps the activity file (:func:`activity_path`) of a running hub.

    Feed it with :meth:`readings_stored` (the hub's ``on_stored`` callback: after the commit)
    and :meth:`observe` (the central's device status and the uplink's counters). ``async with
    recorder`` runs :meth:`run` as the task ``activity`` of its own TaskGroup: it observes
    ``feeds`` and writes the file when something changed, soon after readings are stored and
    at least every ``interval_s``, and once more when left. It keeps counts, times and battery
    levels only: never a reading's value.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        interval_s: float = 10.0,
        min_interval_s: float = 2.0,
        clock_ms: Callable[[], int] = _wall_ms,
        feeds: ActivityFeeds | None = None,
    ) -> None:
        """``feeds``: what to observe of the hub (set before entering; None: only the
        readings stored are recorded)."""
        self.data_dir = data_dir
        self.feeds = feeds
        self.path = activity_path(data_dir)
        self.interval_s = interval_s
        self.min_interval_s = min_interval_s
        self._stored = asyncio.Event()
        self._clock_ms = clock_ms
        self._day = local_day(clock_ms())
        self._sources: dict[str, _Source] = {}
        self._devices: dict[str, _Device] = {}
        self._uplink: dict[str, Any] = {
            "connected": None,
            "last_puback_ms": None,
            "last_reason_code": None,
            "published_batches": 0,
            "rejected_batches": 0,
            "connects": 0,
        }
        self._seen_publishes = 0
        #: The queue as the hub's store reports it (:meth:`observe_queue`); None: not yet.
        self._queue: dict[str, Any] | None = None
        #: The BLE stack's counters since the hub started (:meth:`observe_ble`).
        self._ble: dict[str, int] = {}
        self._dirty = True
        self._load()

    def _load(self) -> None:
        """Carry today's counts and the last sightings over a restart of the hub."""
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            old = json.loads(self.path.read_text(encoding="utf-8"))
            if old.get("version") != ACTIVITY_VERSION:
                return
            for name, d in old.get("devices", {}).items():
                self._devices[name] = _Device(d.get("last_seen_ms"), d.get("battery_percent"))
            if old.get("day") == self._day:
                for name, s in old.get("sources", {}).items():
                    self._sources[name] = _Source(
                        int(s["count_today"]),
                        s.get("last_reading_ms"),
                        int(s.get("undecoded_today", 0)),
                    )
            self._uplink["last_puback_ms"] = old.get("uplink", {}).get("last_puback_ms")

    def _roll_day(self, now_ms: int) -> None:
        day = local_day(now_ms)
        if day != self._day:
            self._day = day
            for source in self._sources.values():
                source.count_today = 0
                source.undecoded_today = 0
            self._dirty = True

    def readings_stored(self, readings: Iterable[Reading]) -> None:
        """Count readings just committed to the outbox, per source (device address, board id)."""
        now = self._clock_ms()
        self._roll_day(now)
        for r in readings:
            name = r.device.upper() if ":" in r.device else r.device
            source = self._sources.setdefault(name, _Source())
            source.count_today += 1
            if FLAG_UNDECODED in r.flags:
                source.undecoded_today += 1
            source.last_reading_ms = max(source.last_reading_ms or 0, r.hub_wall_ms)
            if ":" in name:  # a BLE device (its address); boards have ids
                self._devices.setdefault(name, _Device()).last_seen_ms = now
            self._dirty = True
        self._stored.set()

    def observe(
        self,
        devices: Mapping[str, DeviceView],
        uplink: UplinkCounters | None,
        *,
        uplink_connected: bool | None = None,
    ) -> None:
        """Take the central's per-device status (keyed by address) and the uplink counters."""
        now = self._clock_ms()
        self._roll_day(now)
        for address, status in devices.items():
            device = self._devices.setdefault(address.upper(), _Device())
            before = (device.battery_percent, device.connected)
            if status.battery_percent is not None:
                device.battery_percent = status.battery_percent
            device.connected = bool(status.connected)
            if status.connected:
                device.last_seen_ms = now
            if before != (device.battery_percent, device.connected) or status.connected:
                self._dirty = True
        if uplink is not None:
            answered = uplink.published + uplink.rejected + uplink.no_subscribers
            if answered != self._seen_publishes:
                self._seen_publishes = answered
                if uplink.last_reason_codes:
                    self._uplink["last_reason_code"] = uplink.last_reason_codes[-1]
                    if uplink.last_reason_codes[-1] < 0x80:
                        self._uplink["last_puback_ms"] = now
                self._dirty = True
            for key, value in (
                ("published_batches", uplink.published),
                ("rejected_batches", uplink.rejected),
                ("connects", uplink.connects),
                ("connected", uplink_connected),
            ):
                if self._uplink[key] != value:
                    self._uplink[key] = value
                    self._dirty = True

    def to_json(self) -> dict[str, Any]:
        """The activity file's content."""
        return {
            "version": ACTIVITY_VERSION,
            "pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "updated_ms": self._clock_ms(),
            "day": self._day,
            "devices": {
                name: {
                    "last_seen_ms": d.last_seen_ms,
                    "battery_percent": d.battery_percent,
                    "connected": d.connected,
                }
                for name, d in sorted(self._devices.items())
            },
            "sources": {
                name: {
                    "count_today": s.count_today,
                    "last_reading_ms": s.last_reading_ms,
                    "undecoded_today": s.undecoded_today,
                }
                for name, s in sorted(self._sources.items())
            },
            "uplink": dict(self._uplink),
            "queue": self._queue,
            "ble": dict(self._ble),
        }

    def write(self, *, force: bool = False) -> bool:
        """Replace the file atomically when something changed; True when written."""
        if not (self._dirty or force):
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")
        tmp.replace(self.path)
        self._dirty = False
        return True

    def observe_ble(self, counters: Mapping[str, int]) -> None:
        """The BLE stack's counters: adapter power cycles (and failed ones) after the adapter
        stopped answering, and readings of other users' slots on shared devices."""
        ble = dict(counters)
        if ble != self._ble:
            self._ble = ble
            self._dirty = True

    def observe_queue(self, figures: Mapping[str, Any]) -> None:
        """The store's queue figures (:meth:`gateway.outbox.Outbox.queue_figures`): the running
        hub holds its store exclusively, so ``narhub status`` reads them from here."""
        queue = dict(figures)
        if queue != self._queue:
            self._queue = queue
            self._dirty = True

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        await self._open_tasks(stack)
        self._start("activity", self.run())

    async def run(self) -> None:
        """Observe and write until cancelled (then write once more).

        Stored readings wake it at once, so a technician sees them within a second; after each
        write it rests ``min_interval_s`` (a night of 1 Hz oximetry is not 1 write a second),
        and it looks at least every ``interval_s`` (device and uplink state).
        """
        try:
            while True:
                self._stored.clear()
                await self._observe_feeds()
                self._write_quietly()
                await asyncio.sleep(self.min_interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stored.wait(), self.interval_s)
                reraise_if_cancelling()  # Python 3.11 wait_for can swallow a racing cancel
        finally:
            self._uplink["connected"] = False
            self._dirty = True
            self._write_quietly()

    async def _observe_feeds(self) -> None:
        feeds = self.feeds
        if feeds is None:
            return
        self.observe(feeds.devices(), feeds.uplink(), uplink_connected=feeds.uplink_connected())
        if feeds.ble is not None:
            self.observe_ble(feeds.ble())
        if feeds.queue is not None:
            with contextlib.suppress(sqlite3.Error):  # a view: the store reports it
                self.observe_queue(await feeds.queue())

    def _write_quietly(self) -> None:
        # A full or read-only disk must not stop the hub over a view: the store reports it.
        with contextlib.suppress(OSError):
            self.write()
