"""``narhub status``: what the hub is doing, collected without disturbing the running service.

Two sources, both read-only:

* the **outbox** (``DATA_DIR/outbox.sqlite3``), opened with SQLite's ``mode=ro`` URI: queue
  depth per priority (readings waiting to be sealed and batches waiting for a PUBACK), the age
  of the oldest unsent reading, rejected batches and evictions (docs/pipeline.md). The
  queries follow the schema of :mod:`gateway.outbox` (versions 2 and 3: held readings);
* the **activity file** (``status.json``: in systemd's runtime directory ``/run/narhub``, RAM,
  when the hub runs as the unit, else in ``DATA_DIR``; see :func:`activity_path`), written by
  the running hub through
  :class:`ActivityRecorder`: each paired device's last sighting, battery and connection, the
  readings stored today per source (counts only, never values), and the uplink's last PUBACK.
  It is rewritten atomically, only when something changed, at most once per ``min_interval_s``
  (2 s) and at least every ``interval_s`` (10 s); no fsync: it is a view, not data, and losing
  it in a power cut costs nothing but history.

Without the activity file (the hub never ran, or runs an older version) the device, reading
and uplink figures are ``null`` and the queue figures still come from the store.

The JSON shape (``narhub status --json``) is :meth:`StatusSnapshot.to_json`, documented in
the README's CLI section.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from drivers._aio import reraise_if_cancelling
from gateway.config import HubConfig
from gateway.outbox import BUSY_CODES
from gateway.outbox.acks import Acks
from gateway.outbox.figures import recipient_backlog
from gateway.outbox.transaction import Database
from gateway.reading import Reading
from protocols.uplink import Priority
from protocols.uplink.undecoded import FLAG_UNDECODED

#: The activity file's name (see :func:`activity_path`).
ACTIVITY_FILE = "status.json"
#: Set by systemd's ``RuntimeDirectory=`` (deploy/systemd/narhub.service): a tmpfs directory.
RUNTIME_DIRECTORY_ENV = "RUNTIME_DIRECTORY"
#: The unit's runtime directory: where ``narhub status`` looks first.
SERVICE_RUNTIME_DIR = Path("/run/narhub")
ACTIVITY_VERSION = 1
#: The activity file is considered current (the hub running) when younger than this.
ACTIVITY_FRESH_S = 60.0
#: What to do when the data directory is the service user's.
SUDO_HINT = "run as root or as the narhub service user (`sudo narhub status`)"
#: The hub's own readings (tombstones, recovery notes) are counted under this source.
HUB_SOURCE = "hub"


class StatusError(RuntimeError):
    """The status cannot be collected; ``what`` names the file, ``hint`` what to do."""

    def __init__(self, what: str, reason: str, hint: str) -> None:
        self.what = what
        self.reason = reason
        self.hint = hint
        super().__init__(f"{what}: {reason}. {hint}")


# -- the running hub's side -------------------------------------------------------------------


class _DeviceView(Protocol):
    """What the recorder reads from :class:`drivers.ble.central.DeviceStatus`."""

    connected: bool
    battery_percent: int | None


class _UplinkView(Protocol):
    """What the recorder reads from :class:`gateway.uplink.UplinkStats`."""

    published: int
    rejected: int
    no_subscribers: int
    connects: int
    last_reason_codes: list[int]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _local_day(ms: int) -> str:
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


class ActivityRecorder:
    """Keeps the activity file (:func:`activity_path`) of a running hub.

    Feed it with :meth:`readings_stored` (the hub's ``on_stored`` callback: after the commit)
    and :meth:`observe` (the central's device status and the uplink's counters); :meth:`run`
    calls ``observe`` and writes the file when something changed, soon after readings are stored
    and at least every ``interval_s``. It keeps counts, times and battery levels only: never a
    reading's value.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        interval_s: float = 10.0,
        min_interval_s: float = 2.0,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.data_dir = data_dir
        self.path = activity_path(data_dir)
        self.interval_s = interval_s
        self.min_interval_s = min_interval_s
        self._stored = asyncio.Event()
        self._clock_ms = clock_ms
        self._day = _local_day(clock_ms())
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
        day = _local_day(now_ms)
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
        devices: Mapping[str, _DeviceView],
        uplink: _UplinkView | None,
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

    async def run(
        self,
        devices: Callable[[], Mapping[str, _DeviceView]],
        uplink: Callable[[], _UplinkView | None],
        uplink_connected: Callable[[], bool | None] = lambda: None,
        queue: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
        ble: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        """Observe and write until cancelled (then write once more).

        Stored readings wake it at once, so a technician sees them within a second; after each
        write it rests ``min_interval_s`` (a night of 1 Hz oximetry is not 1 write a second),
        and it looks at least every ``interval_s`` (device and uplink state).
        """
        try:
            while True:
                self._stored.clear()
                self.observe(devices(), uplink(), uplink_connected=uplink_connected())
                if ble is not None:
                    self.observe_ble(ble())
                if queue is not None:
                    with contextlib.suppress(sqlite3.Error):  # a view: the store reports it
                        self.observe_queue(await queue())
                self._write_quietly()
                await asyncio.sleep(self.min_interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stored.wait(), self.interval_s)
                reraise_if_cancelling()  # Python 3.11 wait_for can swallow a racing cancel
        finally:
            self._uplink["connected"] = False
            self._dirty = True
            self._write_quietly()

    def _write_quietly(self) -> None:
        # A full or read-only disk must not stop the hub over a view: the store reports it.
        with contextlib.suppress(OSError):
            self.write()


# -- the technician's side --------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRow:
    """One paired device."""

    address: str
    kind: str
    last_seen_ms: int | None
    battery_percent: int | None
    connected: bool | None


@dataclass(frozen=True)
class SourceRow:
    """Readings stored today from one source (a device, a board, or the hub itself)."""

    source: str
    kind: str
    count_today: int
    last_reading_ms: int | None
    #: Of ``count_today``: raw records kept because no decoder accepted the value.
    undecoded_today: int = 0


@dataclass(frozen=True)
class QueueView:
    """The outbox, read-only."""

    readings_by_priority: dict[str, int]
    batches_by_priority: dict[str, int]
    oldest_unsent_ms: int | None
    rejected_batches: int
    evicted_readings_total: int
    tombstones_pending: int
    #: Readings held until the hub's clock is trusted (schema 3; 0 before it).
    held_readings: int = 0
    #: Per recipient, what waits for it (gateway/outbox/figures.py ``recipient_backlog``:
    #: waiting_readings, pending_batches, batched_readings, tombstones_pending, ...).
    recipients: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class UplinkView:
    """The connection to the region as the running hub last recorded it."""

    broker: str
    connected: bool | None
    last_puback_ms: int | None
    last_reason_code: int | None
    published_batches: int | None


@dataclass(frozen=True)
class StatusSnapshot:
    """Everything ``narhub status`` shows, at ``now_ms``."""

    hub_id: str
    now_ms: int
    hub_running: bool
    activity_ms: int | None
    day: str
    devices: list[DeviceRow]
    readings: list[SourceRow]
    queue: QueueView | None
    uplink: UplinkView
    notes: list[str] = field(default_factory=list)
    #: The BLE stack's counters as the hub last recorded them (``adapter_resets``,
    #: ``adapter_reset_failures``, ``other_user_readings``); empty when unknown.
    ble: dict[str, int] = field(default_factory=dict)

    def age_s(self, ms: int | None) -> float | None:
        """Seconds between ``ms`` and the snapshot (None stays None)."""
        return None if ms is None else round(max(0, self.now_ms - ms) / 1000, 1)

    def to_json(self) -> dict[str, Any]:
        """The documented ``narhub status --json`` shape (README, CLI section)."""

        def when(ms: int | None) -> str | None:
            return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()

        queue = self.queue
        return {
            "hub_id": self.hub_id,
            "now": when(self.now_ms),
            "hub_running": self.hub_running,
            "activity_updated": when(self.activity_ms),
            "devices": [
                {
                    "address": d.address,
                    "kind": d.kind,
                    "last_seen": when(d.last_seen_ms),
                    "last_seen_age_s": self.age_s(d.last_seen_ms),
                    "battery_percent": d.battery_percent,
                    "connected": d.connected,
                }
                for d in self.devices
            ],
            "readings": {
                "day": self.day,
                "sources": [
                    {
                        "source": s.source,
                        "kind": s.kind,
                        "count_today": s.count_today,
                        "undecoded_today": s.undecoded_today,
                        "last_reading_age_s": self.age_s(s.last_reading_ms),
                    }
                    for s in self.readings
                ],
            },
            "queue": None
            if queue is None
            else {
                "readings_by_priority": queue.readings_by_priority,
                "batches_by_priority": queue.batches_by_priority,
                "oldest_unsent_age_s": self.age_s(queue.oldest_unsent_ms),
                "rejected_batches": queue.rejected_batches,
                "evicted_readings_total": queue.evicted_readings_total,
                "tombstones_pending": queue.tombstones_pending,
                "held_readings": queue.held_readings,
                "recipients": queue.recipients,
            },
            "uplink": {
                "broker": self.uplink.broker,
                "connected": self.uplink.connected,
                "last_puback": when(self.uplink.last_puback_ms),
                "last_puback_age_s": self.age_s(self.uplink.last_puback_ms),
                "last_reason_code": self.uplink.last_reason_code,
                "published_batches": self.uplink.published_batches,
            },
            "notes": self.notes,
            "ble": self.ble,
        }


class OutboxHeldError(StatusError):
    """The running hub holds the outbox exclusively (``store.exclusive``)."""


def read_queue(path: Path, recipients: Sequence[str] = ()) -> QueueView | None:
    """The outbox's queue figures, opened read-only; None when there is no store (yet).
    ``recipients``: the configured recipients, each shown even when the file names it not.

    Raises:
        OutboxHeldError: the running hub holds it (its activity file has the figures).
        StatusError: the file exists but is not a readable outbox.
    """
    if not path.exists():
        return None
    if not os.access(path, os.R_OK):
        raise StatusError(str(path), "permission denied", SUDO_HINT)
    try:
        # WAL readers never wait for the hub's writes: a lock here is the hub's exclusive hold.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.25)
    except sqlite3.Error as exc:
        raise StatusError(str(path), f"cannot open read-only: {exc}", "check permissions") from None
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not {"chunks", "batches", "tombstones", "meta"} <= tables:
            return None  # the hub is creating it right now
        names = {p.topic_name: 0 for p in Priority}
        readings = dict(names)
        for priority, n in db.execute("SELECT priority, sum(n) FROM chunks GROUP BY priority"):
            readings[Priority(priority).topic_name] = int(n or 0)
        batches = dict(names)
        for priority, n in db.execute(
            "SELECT priority, count(*) FROM batches WHERE rejected_reason IS NULL GROUP BY priority"
        ):
            batches[Priority(priority).topic_name] = int(n)
        (oldest,) = db.execute(
            "SELECT min(t) FROM (SELECT min(first_ms) AS t FROM chunks "
            "UNION ALL SELECT min(first_ms) FROM batches WHERE rejected_reason IS NULL)"
        ).fetchone()
        (rejected,) = db.execute(
            "SELECT count(*) FROM batches WHERE rejected_reason IS NOT NULL"
        ).fetchone()
        (tombstones,) = db.execute("SELECT count(*) FROM tombstones").fetchone()
        evicted = db.execute("SELECT value FROM meta WHERE key='evicted_readings'").fetchone()
        held = 0
        if any(row[1] == "held_boot" for row in db.execute("PRAGMA table_info(chunks)")):
            (held,) = db.execute(
                "SELECT coalesce(sum(n), 0) FROM chunks WHERE held_boot IS NOT NULL"
            ).fetchone()
        backlog = _recipients_read_only(db, recipients) if "taken" in tables else {}
    except sqlite3.Error as exc:
        if exc.sqlite_errorcode in BUSY_CODES:
            raise OutboxHeldError(
                str(path), "held by the running hub", "its activity file has the queue"
            ) from None
        raise StatusError(
            str(path), f"not a readable outbox ({exc})", "run `narhub doctor` (store check)"
        ) from None
    finally:
        db.close()
    return QueueView(
        readings_by_priority=readings,
        batches_by_priority=batches,
        oldest_unsent_ms=None if oldest is None else int(oldest),
        rejected_batches=int(rejected),
        evicted_readings_total=0 if evicted is None else int(evicted[0]),
        tombstones_pending=int(tombstones),
        held_readings=int(held),
        recipients=backlog,
    )


def _recipients_read_only(
    db: sqlite3.Connection, configured: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per recipient, configured or named in the file (schema 6), its backlog, as the
    running hub reports it (:func:`gateway.outbox.figures.recipient_backlog`)."""
    named = {
        str(r)
        for (r,) in db.execute(
            "SELECT recipient FROM batches UNION SELECT recipient FROM tombstones "
            "UNION SELECT recipient FROM taken"
        )
    }
    names = [*configured, *sorted(named - set(configured))]
    return recipient_backlog(Database(db), Acks(), names)


def _queue_from_activity(activity: Mapping[str, Any] | None) -> QueueView | None:
    """The queue the running hub recorded in its activity file (None: not there)."""
    queue = None if activity is None else activity.get("queue")
    if not isinstance(queue, dict):
        return None
    try:
        oldest = queue["oldest_unsent_ms"]
        return QueueView(
            readings_by_priority={str(k): int(v) for k, v in queue["readings_by_priority"].items()},
            batches_by_priority={str(k): int(v) for k, v in queue["batches_by_priority"].items()},
            oldest_unsent_ms=None if oldest is None else int(oldest),
            rejected_batches=int(queue["rejected_batches"]),
            evicted_readings_total=int(queue["evicted_readings_total"]),
            tombstones_pending=int(queue["tombstones_pending"]),
            held_readings=int(queue["held_readings"]),
            recipients={str(k): dict(v) for k, v in queue.get("recipients", {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def recorded_queue(data_dir: Path) -> QueueView | None:
    """The queue the running hub (with this data directory) last recorded, or None."""
    return _queue_from_activity(_current_activity(data_dir))


def _read_activity(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except PermissionError:
        raise StatusError(str(path), "permission denied", SUDO_HINT) from None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != ACTIVITY_VERSION:
        return None
    return data


def _current_activity(data_dir: Path) -> dict[str, Any] | None:
    """The newest activity file of the hub with this data directory: the unit's (in
    :data:`SERVICE_RUNTIME_DIR`, if it names this data directory) or the data directory's."""
    found = []
    service = _read_activity(SERVICE_RUNTIME_DIR / ACTIVITY_FILE)
    if service is not None and service.get("data_dir") == str(data_dir):
        found.append(service)
    local = _read_activity(data_dir / ACTIVITY_FILE)
    if local is not None:
        found.append(local)
    updated = [a for a in found if isinstance(a.get("updated_ms"), int)]
    if updated:
        return max(updated, key=lambda a: int(a["updated_ms"]))
    return found[0] if found else None


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by the service user
    return True


def collect_status(config: HubConfig, *, now_ms: int | None = None) -> StatusSnapshot:
    """One snapshot from the configuration, the store and the activity file (read-only).

    Raises:
        StatusError: the outbox or the activity file exists but cannot be read.
    """
    now = _wall_ms() if now_ms is None else now_ms
    notes: list[str] = []
    activity = _current_activity(config.data_dir)
    try:
        names = [config.home_recipient()] + [
            r.name for r in config.all_recipients() if r.name != config.home_recipient()
        ]
        queue = read_queue(config.data_dir / "outbox.sqlite3", names)
    except OutboxHeldError:
        queue = _queue_from_activity(activity)
        notes.append(
            "queue as the running hub last recorded it (it holds the outbox)"
            if queue is not None
            else "queue unknown: the running hub holds the outbox and has not recorded it yet"
        )
    else:
        if queue is None:
            notes.append("no outbox yet: the hub has not run")
    updated = None if activity is None else activity.get("updated_ms")
    running = (
        activity is not None
        and isinstance(updated, int)
        and now - updated <= ACTIVITY_FRESH_S * 1000
        and _pid_alive(activity.get("pid"))
    )
    if activity is None:
        notes.append("no activity file: devices, readings and uplink are unknown until narhub runs")
    elif not running:
        notes.append("the hub is not running: device and uplink figures are from its last run")
    act = activity or {}
    seen = act.get("devices", {})
    devices = []
    kinds: dict[str, str] = {}
    for d in config.ble.devices:
        address = d.address.upper()
        kinds[address] = d.kind
        row = seen.get(address, {})
        devices.append(
            DeviceRow(
                address,
                d.kind,
                row.get("last_seen_ms"),
                row.get("battery_percent"),
                row.get("connected") if running else None,
            )
        )
    day = str(act.get("day") or _local_day(now))
    today = day == _local_day(now)
    readings = [
        SourceRow(
            name,
            kinds.get(name, HUB_SOURCE if name == HUB_SOURCE else "sensor_board"),
            int(s.get("count_today", 0)) if today else 0,
            s.get("last_reading_ms"),
            int(s.get("undecoded_today", 0)) if today else 0,
        )
        for name, s in sorted(act.get("sources", {}).items())
    ]
    up = act.get("uplink", {})
    uplink = UplinkView(
        broker=f"{config.uplink.host}:{config.uplink.port}",
        connected=up.get("connected") if running else None,
        last_puback_ms=up.get("last_puback_ms"),
        last_reason_code=up.get("last_reason_code"),
        published_batches=up.get("published_batches"),
    )
    return StatusSnapshot(
        hub_id=config.hub_id,
        now_ms=now,
        hub_running=running,
        activity_ms=updated if isinstance(updated, int) else None,
        day=_local_day(now),
        devices=devices,
        readings=readings,
        queue=queue,
        uplink=uplink,
        notes=notes,
        ble={k: int(v) for k, v in act.get("ble", {}).items() if isinstance(v, int)},
    )
