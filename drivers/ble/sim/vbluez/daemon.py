"""A private D-Bus message bus: ``dbus-daemon`` on a unix socket in a directory of its own.

The virtual BlueZ and the hub meet on it instead of on the machine's system bus, so tests
need no root and touch no real bluetoothd. The configuration is generated: a bus of the
session kind (D-Bus Specification, "Message Bus Specification"; dbus-daemon(1),
"CONFIGURATION FILE") that listens on ``DIR/system_bus_socket``, authenticates with
EXTERNAL (the peer's uid) and lets any client own any name and send to any destination, as
a development bus does. Clients reach it by exporting :attr:`PrivateBus.address` as
``DBUS_SYSTEM_BUS_ADDRESS``.

``dbus-daemon`` is Debian's package of that name (``dbus`` depends on it; ``make bluez-deps``
installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from drivers._aio import Lifecycle
from drivers.errors import DriverError

logger = logging.getLogger(__name__)

#: How long the daemon may take to print its address.
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class BusUnavailableError(DriverError, FileNotFoundError):
    """``dbus-daemon`` is missing or did not start (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"no private D-Bus: {reason}. Install it: apt-get install dbus-daemon "
            "(Debian's dbus pulls it in), or `make bluez-deps` as root"
        )


def find_dbus_daemon() -> str | None:
    """The ``dbus-daemon`` executable, if installed."""
    found = shutil.which("dbus-daemon")
    if found is None and Path("/usr/bin/dbus-daemon").exists():
        found = "/usr/bin/dbus-daemon"
    return found


class PrivateBus(Lifecycle):
    """A ``dbus-daemon`` of our own, as an async context manager; :attr:`address` is set
    while it runs."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.address: str | None = None

    async def start(self) -> None:
        """Run the daemon and learn its address."""
        executable = find_dbus_daemon()
        if executable is None:
            raise BusUnavailableError("dbus-daemon is not installed")
        directory = self._directory
        if directory is None:
            # Unix socket paths are short (108 bytes): a short temporary directory.
            self._tempdir = tempfile.TemporaryDirectory(prefix="narhub-dbus-")
            directory = Path(self._tempdir.name)
        config = directory / "bus.conf"
        config.write_text(_CONFIG.format(socket=directory / "system_bus_socket"))
        process = await asyncio.create_subprocess_exec(
            executable,
            f"--config-file={config}",
            "--nofork",
            "--nopidfile",
            "--print-address=1",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._process = process
        assert process.stdout is not None
        try:
            async with asyncio.timeout(_START_TIMEOUT_S):
                line = await process.stdout.readline()
        except TimeoutError:
            line = b""
        if not line.strip():
            await self.stop()
            raise BusUnavailableError("dbus-daemon printed no address")
        self.address = line.decode().strip()
        logger.debug("private D-Bus at %s", self.address)

    async def stop(self) -> None:
        """End the daemon and remove its directory."""
        process, self._process = self._process, None
        self.address = None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if process is not None:
            # Read what is left so the transports close cleanly.
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        await stream.read()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    @contextlib.contextmanager
    def as_system_bus(self) -> Iterator[None]:
        """Point ``DBUS_SYSTEM_BUS_ADDRESS`` at this bus while the block runs."""
        assert self.address is not None
        previous = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = previous
