"""``narhub run``: the hub as a systemd service (Type=notify, WatchdogSec).

READY=1 is sent once the store is open and every task runs; WATCHDOG=1 is sent by a task on
the event loop itself, so a blocked loop stops the pings and systemd restarts the service
(sd_notify(3), systemd.service(5) ``WatchdogSec=``). The same task measures loop lag: how late
its wake-ups are. SIGTERM and SIGINT stop the hub: sources first, then everything received is
committed, within ``shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.activity import ActivityFeeds, ActivityRecorder
from gateway.ble_backend import make_ble_backend
from gateway.config import HubConfig
from gateway.feedback.hubtap import FeedbackTap, hub_probe
from gateway.hub import Hub
from gateway.reading import Reading

logger = logging.getLogger(__name__)

#: Debug seam for tests: with NARHUB_DEBUG_HOOKS=1, SIGUSR2 blocks the event loop for
#: NARHUB_DEBUG_BLOCK_S seconds (default 5), to prove the watchdog notices a stuck loop.
DEBUG_HOOKS_ENV = "NARHUB_DEBUG_HOOKS"


class SdNotifier:
    """sd_notify(3) over the datagram socket named by ``$NOTIFY_SOCKET`` (a no-op without it)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address:
            # An abstract socket is written with a leading '@' (systemd convention).
            self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test) listens."""
        return self._address is not None

    def notify(self, *fields: str) -> None:
        """Send ``KEY=VALUE`` lines; errors are logged, never raised (the service goes on)."""
        if self._address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            logger.warning("sd_notify failed: %s", exc.strerror)

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval_s(environ: Mapping[str, str]) -> float | None:
    """Half of ``$WATCHDOG_USEC`` (systemd's advice), or None when no watchdog is set."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        return max(int(usec) / 2_000_000, 0.05)
    except ValueError:
        return None


@dataclass
class LoopLag:
    """How late the heartbeat task woke up: the event loop's responsiveness, in ms."""

    samples: int = 0
    last_ms: float = 0.0
    max_ms: float = 0.0
    total_ms: float = 0.0

    def add(self, lag_ms: float) -> None:
        """Record one wake-up."""
        self.samples += 1
        self.last_ms = lag_ms
        self.max_ms = max(self.max_ms, lag_ms)
        self.total_ms += lag_ms

    @property
    def mean_ms(self) -> float:
        """Mean lag."""
        return self.total_ms / self.samples if self.samples else 0.0


async def heartbeat(notifier: SdNotifier, interval_s: float, lag: LoopLag) -> None:
    """WATCHDOG=1 every ``interval_s`` from the loop; a stuck loop stops it. Measures lag."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lag.add(max(0.0, (loop.time() - expected) * 1000))
        notifier.notify("WATCHDOG=1")


def _block_loop() -> None:
    seconds = float(os.environ.get("NARHUB_DEBUG_BLOCK_S", "5"))
    logger.warning("debug hook: blocking the event loop for %.1fs", seconds)
    time.sleep(seconds)  # deliberately blocking: the point of the hook


async def run_service(
    config: HubConfig,
    *,
    environ: Mapping[str, str],
    shutdown_timeout_s: float = 10.0,
    heartbeat_s: float = 1.0,
    config_path: Path | None = None,
) -> LoopLag:
    """Run the hub until SIGTERM/SIGINT; returns the loop-lag figures.

    ``config_path``: the configuration file, which signed remote ``config`` commands rewrite
    (docs/remote-management.md)."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if environ.get(DEBUG_HOOKS_ENV) == "1":
        loop.add_signal_handler(signal.SIGUSR2, _block_loop)
    notifier = SdNotifier(environ)
    lag = LoopLag()
    backend = make_ble_backend(config.ble)
    interval_s = watchdog_interval_s(environ) or heartbeat_s
    overdue: asyncio.TimerHandle | None = None
    try:
        # The activity file behind `narhub status` (gateway/activity.py): counts, no values.
        recorder = ActivityRecorder(config.data_dir)
        # The patient's light, display and voice (docs/feedback.md): off the reading path.
        tap = FeedbackTap(config)

        def stored(readings: list[Reading]) -> None:
            recorder.readings_stored(readings)
            tap.readings_stored(readings)

        hub = Hub(
            config,
            backend,
            on_stored=stored,
            on_published=tap.batch_answered,
            config_path=config_path,
        )
        recorder.feeds = ActivityFeeds(
            devices=lambda: hub.central.status,
            uplink=lambda: hub.uplink.stats,
            uplink_connected=lambda: hub.uplink.connected,
            queue=hub.outbox.queue_figures,  # the hub holds the store: status reads these
            ble=lambda: _ble_counters(hub),
        )
        async with (
            hub,
            tap.running(None if config.feedback is None else hub_probe(hub)),
            recorder,
            asyncio.TaskGroup() as group,
        ):
            beat = group.create_task(heartbeat(notifier, interval_s, lag), name="heartbeat")
            startup_ms = (time.monotonic() - started) * 1000
            notifier.notify("READY=1", f"STATUS=running (started in {startup_ms:.0f} ms)")
            logger.info("narhub running (started in %.0f ms)", startup_ms)
            await stop.wait()
            notifier.notify("STOPPING=1")
            logger.info("narhub stopping")
            beat.cancel()
            # Leaving the recorder and the hub stops sources and stores what was received;
            # bound it.
            overdue = loop.call_later(shutdown_timeout_s, _shutdown_overdue)
    finally:
        if overdue is not None:
            overdue.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        notifier.close()
    return lag


def _shutdown_overdue() -> None:
    logger.error("shutdown did not finish in time; exiting")
    os._exit(1)  # systemd would SIGKILL us anyway; committed data is safe


def _ble_counters(hub: Hub) -> dict[str, int]:
    """What ``narhub status`` and ``narhub doctor`` show of the BLE stack."""
    scanner = hub.central.scanner
    return {
        "adapter_resets": scanner.adapter_resets,
        "adapter_reset_failures": scanner.adapter_reset_failures,
        "adapter_call_timeouts": scanner.adapter_call_timeouts,
        "other_user_readings": sum(hub.pipeline.other_user_events.values()),
    }
