"""The hub's clock: when its wall clock can be trusted, as a seam the store asks.

A Raspberry Pi has no real-time clock. After a power cut it boots with the time
``fake-hwclock`` saved last (plausible, but hours or days behind) or with 1970, until NTP
answers. adjtimex(2) says which: it returns ``TIME_ERROR`` while the kernel clock is not
synchronised (systemd-timesyncd and chrony clear it when they synchronise;
``timedatectl``'s "System clock synchronized" is the same bit). The wall clock is
*trusted* when the kernel says it is synchronised and it is not before
:data:`gateway.validate.MIN_PLAUSIBLE_WALL_MS`.

Readings taken before that are held by the outbox with their monotonic time and the kernel's
boot id, and get their wall time back-filled when the clock is trusted (docs/pipeline.md,
"The hub's clock"). The store asks a :class:`ClockSource` (the seam: a test supplies one that
says "untrusted", then "trusted", without touching the real clock).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.validate import MIN_PLAUSIBLE_WALL_MS

#: adjtimex(2) returns TIME_ERROR when the kernel clock is not synchronised (by NTP or PTP).
TIME_ERROR = 5
#: The kernel's id of the current boot (random per boot; monotonic time counts from the boot).
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
#: systemd-timesyncd's state directory; it creates ``synchronized`` there once synchronised.
TIMESYNCD_DIR = Path("/run/systemd/timesync")

_libc: ctypes.CDLL | None = None


def kernel_clock_synchronised() -> bool | None:
    """True when adjtimex(2) says the clock is synchronised; None if it cannot be asked."""
    global _libc  # noqa: PLW0603 - loaded once: this is asked at every commit until trusted
    if _libc is None:
        path = ctypes.util.find_library("c")
        if path is None:
            return None
        _libc = ctypes.CDLL(path, use_errno=True)
    timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
    state = int(_libc.adjtimex(timex))
    if state < 0:
        return None
    return state != TIME_ERROR


def timesyncd_synchronised(directory: Path = TIMESYNCD_DIR) -> bool | None:
    """systemd-timesyncd's own flag file (systemd-timesyncd.service(8)); None without it."""
    if not directory.is_dir():
        return None
    return (directory / "synchronized").exists()


def clock_synchronised() -> bool | None:
    """The kernel's answer (adjtimex), else timesyncd's flag file, else None (unknown)."""
    synced = kernel_clock_synchronised()
    return synced if synced is not None else timesyncd_synchronised()


def read_boot_id(path: Path = BOOT_ID_PATH) -> str:
    """The kernel's boot id; without one, a random id (no back-fill across a restart then)."""
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return f"process-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class ClockSample:
    """The wall and monotonic clocks read together, and whether the wall clock is trusted.

    ``wall_ns`` and ``mono_ns`` are ``time.time_ns()`` and ``time.monotonic_ns()`` (the
    clock of :attr:`gateway.reading.Reading.hub_mono_ns`); ``boot_id`` names the boot the
    monotonic clock counts from; ``reason`` says why, for ``narhub doctor`` and the log.
    """

    trusted: bool
    wall_ns: int
    mono_ns: int
    boot_id: str
    reason: str


class ClockSource(Protocol):
    """What the outbox asks before it lets readings leave with their wall time."""

    def sample(self) -> ClockSample:
        """The clocks now."""
        ...


class SystemClock:
    """The real clocks: adjtimex(2) for synchronisation, the plausibility floor for the rest.

    ``require_sync=False`` trusts any wall clock after the floor: for machines whose time
    service does not report to the kernel (containers, the virtual rig), never for a Pi.
    """

    def __init__(
        self,
        *,
        require_sync: bool = True,
        floor_ms: int = MIN_PLAUSIBLE_WALL_MS,
        synchronised: Callable[[], bool | None] = clock_synchronised,
        boot_id: str | None = None,
    ) -> None:
        self.require_sync = require_sync
        self.floor_ms = floor_ms
        self._synchronised = synchronised
        self.boot_id = boot_id or read_boot_id()

    def sample(self) -> ClockSample:
        """Read both clocks and judge the wall clock."""
        synced = self._synchronised() if self.require_sync else True
        wall_ns = time.time_ns()
        mono_ns = time.monotonic_ns()
        if wall_ns // 1_000_000 < self.floor_ms:
            trusted, reason = False, "wall clock before the plausibility floor (not set yet)"
        elif synced is False:
            trusted, reason = False, "kernel clock not synchronised (adjtimex TIME_ERROR)"
        elif synced is None:
            trusted, reason = True, "wall clock plausible (no way to ask whether NTP synced)"
        else:
            trusted = True
            reason = (
                "synchronised" if self.require_sync else "wall clock plausible (sync not required)"
            )
        return ClockSample(trusted, wall_ns, mono_ns, self.boot_id, reason)


def require_sync_for(backend: str, require_sync: bool | None) -> bool:
    """The configured ``[clock] require_sync``; unset: yes, except on the virtual rig
    (``ble.backend = "sim"``: a development machine or container, whose kernel often says
    "unsynchronised" while the host keeps its time)."""
    if require_sync is not None:
        return require_sync
    return backend != "sim"
