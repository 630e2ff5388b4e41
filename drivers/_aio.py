"""asyncio helpers shared by the drivers.

Python 3.11's :func:`asyncio.timeout` can turn an outside cancellation that races with the
timeout into :class:`TimeoutError` (fixed in 3.12, CPython gh-102780 era changes). Code that
handles the timeout and carries on would then never see the cancellation and hang a shutdown.
Call :func:`reraise_if_cancelling` first thing in such an ``except TimeoutError`` block.
"""

from __future__ import annotations

import asyncio


def reraise_if_cancelling() -> None:
    """Raise :class:`asyncio.CancelledError` when the current task has a pending cancel."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
