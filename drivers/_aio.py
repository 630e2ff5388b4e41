"""asyncio helpers shared by the drivers.

:class:`Lifecycle` is the async context manager of a part that is started on entry and stopped
on exit, whatever ended the block (an exception, a cancellation).

Python 3.11's :func:`asyncio.timeout` can turn an outside cancellation that races with the
timeout into :class:`TimeoutError` (fixed in 3.12, CPython gh-102780 era changes). Code that
handles the timeout and carries on would then never see the cancellation and hang a shutdown.
Call :func:`reraise_if_cancelling` first thing in such an ``except TimeoutError`` block.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


def cancelling() -> bool:
    """True when the current task has a pending cancel (an outside cancellation, not a
    :class:`asyncio.CancelledError` some library raised on its own)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def reraise_if_cancelling() -> None:
    """Raise :class:`asyncio.CancelledError` when the current task has a pending cancel."""
    if cancelling():
        raise asyncio.CancelledError


class Lifecycle(ABC):
    """``async with`` awaits :meth:`start` and, on the way out, :meth:`stop`."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @abstractmethod
    async def start(self) -> None:
        """Start (what entering the ``async with`` block does)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop and release what :meth:`start` took (what leaving the block does)."""
