"""asyncio helpers shared by the drivers.

:class:`Lifecycle` is the async context manager of a part that is started on entry and stopped
on exit, whatever ended the block (an exception, a cancellation), with its background tasks,
if it has any, in one :class:`asyncio.TaskGroup` for the length of the block.

Python 3.11's :func:`asyncio.timeout` can turn an outside cancellation that races with the
timeout into :class:`TimeoutError` (fixed in 3.12, CPython gh-102780 era changes). Code that
handles the timeout and carries on would then never see the cancellation and hang a shutdown.
Call :func:`reraise_if_cancelling` first thing in such an ``except TimeoutError`` block.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar, Self


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
    """``async with`` awaits :meth:`start`, then (``has_background``) starts the part's
    :meth:`background` tasks in a TaskGroup of its own. On the way out it cancels those
    tasks, leaves the group (with the block's exception, which the group needs to tell an
    outside cancellation from its own) and, whatever happened, awaits :meth:`stop`.

    With ``has_background``, an exception the block raises leaves it inside an
    :class:`ExceptionGroup` (the TaskGroup's; catch it with ``except*``)."""

    #: Whether the part runs :meth:`background` tasks while the block runs.
    has_background: ClassVar[bool] = False
    #: Whether a :meth:`start` that fails (or is cancelled) is undone by :meth:`stop` before
    #: the error goes on; :meth:`stop` must then cope with a start that went part of the way.
    stop_after_failed_start: ClassVar[bool] = False
    _group: asyncio.TaskGroup | None = None
    _background: Sequence[asyncio.Task[Any]] = ()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            if self.stop_after_failed_start:
                await self.stop()
            raise
        if self.has_background:
            group = asyncio.TaskGroup()
            await group.__aenter__()
            self._group = group
            self._background = self.background(group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._group = self._group, None
        try:
            if group is not None:
                for task in self._background:
                    task.cancel()
                self._background = ()
                await group.__aexit__(exc_type, exc, tb)
        finally:
            await self.stop()

    def background(self, group: asyncio.TaskGroup) -> Sequence[asyncio.Task[Any]]:
        """Start the part's background tasks in ``group`` (with ``has_background``)."""
        return ()

    @abstractmethod
    async def start(self) -> None:
        """Start (what entering the ``async with`` block does)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop and release what :meth:`start` took (what leaving the block does)."""
