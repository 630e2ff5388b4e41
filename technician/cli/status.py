"""``narhub status``: a live view of devices, readings, queue and uplink (status_view.py)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table

from technician.cli._common import EXIT_FAILED, ConfigOption, JsonFlag, console, emit, load
from technician.status_view import StatusError, StatusSnapshot, collect_status


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def render(snapshot: StatusSnapshot) -> Group:
    """The tables a technician reads (addresses as in ``devices list``; no patient id, no
    values)."""
    state = "running" if snapshot.hub_running else "not running"
    devices = _table(
        f"hub {snapshot.hub_id} ({state}): devices",
        ("address", "kind", "last seen", "battery", "connected"),
    )
    for d in snapshot.devices:
        devices.add_row(
            d.address,
            d.kind,
            _age(snapshot.age_s(d.last_seen_ms)),
            "?" if d.battery_percent is None else f"{d.battery_percent} %",
            _yes_no(d.connected),
        )
    readings = _table(
        f"readings today ({snapshot.day})",
        ("source", "kind", "count", "undecoded", "last reading"),
    )
    for s in snapshot.readings:
        readings.add_row(
            s.source,
            s.kind,
            str(s.count_today),
            str(s.undecoded_today),
            _age(snapshot.age_s(s.last_reading_ms)),
        )
    queue = _table("queue", ("priority", "readings waiting", "batches waiting"))
    q = snapshot.queue
    if q is not None:
        for name, n in q.readings_by_priority.items():
            queue.add_row(name, str(n), str(q.batches_by_priority[name]))
    backlog = _table(
        "per recipient",
        ("recipient", "readings waiting", "batches waiting", "tombstones", "evicted"),
    )
    for name, b in ({} if q is None else q.recipients).items():
        backlog.add_row(
            name,
            str(b.get("waiting_readings", "-")),
            f"{b.get('pending_batches', '-')} ({b.get('batched_readings', '-')} readings)",
            str(b.get("tombstones_pending", "-")),
            str(b.get("evicted_readings_total", "-")),
        )
    lines = [
        "oldest unsent: "
        + (
            "-"
            if q is None or q.oldest_unsent_ms is None
            else _age(snapshot.age_s(q.oldest_unsent_ms))
        ),
        f"rejected batches: {'-' if q is None else q.rejected_batches}, "
        f"evicted readings: {'-' if q is None else q.evicted_readings_total}, "
        f"held for the clock: {'-' if q is None else q.held_readings}",
        f"uplink {snapshot.uplink.broker}: connected {_yes_no(snapshot.uplink.connected)}, "
        f"last PUBACK {_age(snapshot.age_s(snapshot.uplink.last_puback_ms))}",
        *(
            [
                f"bluetooth adapter power cycles: {ble.get('adapter_resets', 0)} "
                f"(failed: {ble.get('adapter_reset_failures', 0)}; D-Bus calls timed out: "
                f"{ble.get('adapter_call_timeouts', 0)}), other users' readings "
                f"not forwarded: {ble.get('other_user_readings', 0)}"
            ]
            if (ble := snapshot.ble)
            else []
        ),
        *(f"note: {n}" for n in snapshot.notes),
    ]
    tables = [devices, readings, queue, *([backlog] if q is not None and q.recipients else [])]
    return Group(*tables, *lines)


def status(
    config: ConfigOption = None,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between refreshes (TTY).")
    ] = 2.0,
    as_json: JsonFlag = False,
) -> None:
    """Devices (last seen, battery), readings today, queue and uplink; live on a TTY.

    On a TTY the view refreshes every few seconds (the interval option)
    until Ctrl-C. Without a TTY, or with the JSON option, it prints one
    snapshot and exits.

    JSON keys: hub_id, now, hub_running, activity_updated, devices (address,
    kind, last_seen, last_seen_age_s, battery_percent, connected), readings
    (day, sources: source, kind, count_today, undecoded_today, last_reading_age_s), queue
    (readings_by_priority, batches_by_priority, oldest_unsent_age_s,
    rejected_batches, evicted_readings_total, tombstones_pending,
    held_readings, recipients: per recipient waiting_readings, pending_batches,
    batched_readings, tombstones_pending; null before the hub ran), uplink (broker, connected,
    last_puback, last_puback_age_s, last_reason_code, published_batches),
    notes. Details: README.
    """
    hub = load(config, as_json)

    def snap() -> StatusSnapshot:
        try:
            return collect_status(hub)
        except StatusError as exc:
            emit({"ok": False, "error": f"{exc.what}: {exc.reason}", "hint": exc.hint}, as_json)
            raise typer.Exit(EXIT_FAILED) from None

    out = console()
    if as_json or not out.is_terminal:
        snapshot = snap()
        if as_json:
            emit(snapshot.to_json(), as_json=True)
        else:
            out.print(render(snapshot))
        return
    from rich.live import Live

    with Live(render(snap()), console=out, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval_s)
                live.update(render(snap()), refresh=True)
        except KeyboardInterrupt:
            pass
