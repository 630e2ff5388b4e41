"""The home's internet connection on the rig: a TCP relay between the hub and the broker that
can go offline (as 4G does for a night) and come back.

Offline, new connections are refused (closed at once) and open ones are cut; the broker and
everyone else connected to it directly (the region's receiver) are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from drivers._aio import Lifecycle

logger = logging.getLogger(__name__)

_CHUNK = 65536
#: How long a relay may take to end once both its ends are closed.
_CUT_TIMEOUT_S = 5.0


class HomeRouter(Lifecycle):
    """Relays ``127.0.0.1:port`` to ``target``; :meth:`offline` / :meth:`online` switch it."""

    stop_after_failed_start = True

    def __init__(self, target_host: str, target_port: int, *, online: bool = True) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = 0
        self.is_online = online
        self._server: asyncio.Server | None = None
        #: Each relayed connection's task and its two ends.
        self._pipes: dict[asyncio.Task[None], tuple[asyncio.StreamWriter, ...]] = {}
        #: Connections relayed so far.
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def offline(self) -> None:
        """The connection drops: open relays are cut, new ones refused."""
        self.is_online = False
        await self._cut()
        logger.info("home router offline")

    def online(self) -> None:
        """The connection is back."""
        self.is_online = True
        logger.info("home router online")

    async def _cut(self) -> None:
        """Close both ends of every relayed connection; each relay then ends by itself.

        Not by cancelling its task: it is the server's connection callback, and Python 3.11's
        asyncio logs a cancelled callback task as an unhandled exception."""
        pipes = dict(self._pipes)
        for ends in pipes.values():
            for end in ends:
                end.close()
        if pipes:
            _done, stuck = await asyncio.wait(pipes, timeout=_CUT_TIMEOUT_S)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_online:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._pipes[task] = (writer, up_writer)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pump(reader, up_writer))
                group.create_task(_pump(up_reader, writer))
        except* OSError:
            pass
        finally:
            self._pipes.pop(task, None)
            for w in (writer, up_writer):
                w.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.close()
