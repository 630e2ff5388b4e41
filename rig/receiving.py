"""A rig's receiver kept running across broker restarts, and stopped: for the region's and
another recipient's receivers in the virtual home, and the benchmarks' receiver processes
(which import only this, not the rest of the rig)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from drivers.mqtt import MqttError, MqttLink
from region.receiver import Receiver

logger = logging.getLogger(__name__)


async def keep_receiving(
    receiver: Receiver, connect: Callable[[], MqttLink], subscribed: asyncio.Event
) -> None:
    """Run a rig's receiver until cancelled, connecting again whenever the broker goes
    away; ``subscribed`` is set while it is subscribed."""
    while True:
        receiver.subscribed = subscribed
        try:
            await receiver.run(connect)
        except (MqttError, OSError) as exc:
            logger.debug("rig receiver: %s", exc)
        subscribed.clear()
        await asyncio.sleep(0.1)  # reconnect pause while the broker is down


async def stop_receiving(task: asyncio.Task[None] | None, receiver: Receiver | None) -> None:
    """Cancel the task running a rig's receiver (:func:`keep_receiving`) and close it."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if receiver is not None:
        receiver.close()
