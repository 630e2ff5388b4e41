"""``narhub status``: what the hub is doing, collected without disturbing the running service.

Two sources, both read-only:

* the **outbox** (``DATA_DIR/outbox.sqlite3``), opened with SQLite's ``mode=ro`` URI: queue
  depth per priority (readings waiting to be sealed and batches waiting for a PUBACK), the age
  of the oldest unsent reading, rejected batches and evictions (docs/pipeline.md). The
  queries follow the schema of :mod:`gateway.outbox` (versions 2 and 3: held readings);
* the **activity file** the running hub writes (:mod:`gateway.activity`: in systemd's runtime
  directory ``/run/narhub`` when the hub runs as the unit, else in ``DATA_DIR``): each paired
  device's last sighting, battery and connection, the readings stored today per source
  (counts only, never values), the uplink's last PUBACK, and the queue when the hub holds the
  store exclusively.

Without the activity file (the hub never ran, or runs an older version) the device, reading
and uplink figures are ``null`` and the queue figures still come from the store.

The JSON shape (``narhub status --json``) is :meth:`StatusSnapshot.to_json`, documented in
the README's CLI section.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.activity import ACTIVITY_FILE, ACTIVITY_VERSION, local_day, writer_alive
from gateway.config import HubConfig
from gateway.outbox import BUSY_CODES
from gateway.outbox.acks import Acks
from gateway.outbox.figures import recipient_backlog
from gateway.outbox.transaction import Database
from protocols.uplink import Priority

#: The unit's runtime directory: where ``narhub status`` looks first.
SERVICE_RUNTIME_DIR = Path("/run/narhub")
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


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


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
    #: ``adapter_reset_failures``, ``adapter_call_timeouts``, ``other_user_readings``);
    #: empty when unknown.
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
        and writer_alive(activity.get("pid"))
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
    day = str(act.get("day") or local_day(now))
    today = day == local_day(now)
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
        day=local_day(now),
        devices=devices,
        readings=readings,
        queue=queue,
        uplink=uplink,
        notes=notes,
        ble={k: int(v) for k, v in act.get("ble", {}).items() if isinstance(v, int)},
    )
