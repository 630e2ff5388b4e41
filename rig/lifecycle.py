"""One shape for the rig's async context managers: start on entry, stop on exit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class StartStop(ABC):
    """An async context manager in two steps: entering awaits :meth:`_start`, leaving
    awaits :meth:`_stop` whatever ends the block. A start that fails (or is cancelled) is
    undone by :meth:`_stop` before the error goes on, so :meth:`_stop` must cope with a
    start that went only part of the way."""

    @abstractmethod
    async def _start(self) -> None:
        """Bring the part up."""

    @abstractmethod
    async def _stop(self) -> None:
        """Take down whatever :meth:`_start` brought up."""

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()
