"""How the hub's long-lived work starts, restarts and stops: one place for every component.

**Components.** Each long-lived part of the hub (the :class:`gateway.hub.Hub` itself, the
uplink, the command handler, the BLE and sensor-board sources, the activity recorder) is a
:class:`Component`: an async context manager that owns one :class:`asyncio.TaskGroup`.
Entering it enters what it owns (other components, files to close) on an
:class:`contextlib.AsyncExitStack` and starts its named tasks; leaving it cancels those tasks,
waits for them and leaves the rest in reverse order. A task that fails for a reason its
policy does not name fails its group, leaving raises the error, and the service ends
(systemd starts it again: deploy/systemd/narhub.service, ``Restart=on-failure``).

**Restarts.** A task that is expected to fail and come back (a broker session, a serial link,
the BLE central) runs under :func:`supervise`, which classifies each failure by its exception
type with the task's :class:`RestartPolicy`: :class:`Retry` after a jittered exponential delay
(:class:`common.backoff.Backoff`, "full jitter": a fleet restarting after a broker outage
spreads out), :class:`RestartNow` for a control signal (:class:`RestartRequested`, e.g. new
credentials), anything else ends the task with its error.

Cancellation is never swallowed: :class:`asyncio.CancelledError` is a ``BaseException`` no
rule sees, and a cancel that raced with a failure (Python 3.11's ``asyncio.timeout`` and
``wait_for`` can turn it into ``TimeoutError``, which a task may report as another error) wins
over any restart (:func:`drivers._aio.reraise_if_cancelling`, before and after each run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self

from common.backoff import Backoff
from drivers._aio import reraise_if_cancelling

logger = logging.getLogger(__name__)


class RestartRequested(Exception):  # noqa: N818 - a control signal, not an error
    """Raised by a supervised task to be run again at once (e.g. to reconnect with a renewed
    certificate); its policy says :class:`RestartNow` for it."""


@dataclass(frozen=True)
class Retry:
    """Run the task again after ``backoff.next_delay_s()``.

    The owner may keep ``backoff`` and reset it once the task is healthy again (a session
    connected): the next failure then waits briefly again. ``with_message``: log the error's
    text, not only its type (only for errors that carry no address or value).
    """

    backoff: Backoff
    level: int = logging.WARNING
    with_message: bool = False


@dataclass(frozen=True)
class RestartNow:
    """Run the task again at once (a control signal, not a failure)."""

    level: int = logging.INFO


#: What follows a failure of a supervised task.
Action = Retry | RestartNow
#: Exception classes a rule matches (as ``isinstance`` takes them).
Classes = type[Exception] | tuple[type[Exception], ...]


@dataclass(frozen=True)
class RestartPolicy:
    """Rules ``(exception classes, action)``, the first match wins; no match: the task ends
    with its error. An exception group matches when every exception in it does (a task that
    runs a TaskGroup of its own fails with one)."""

    rules: tuple[tuple[Classes, Action], ...]

    @classmethod
    def reconnecting(
        cls, failures: Classes, backoff: Backoff, *, at_once: Classes = RestartRequested
    ) -> RestartPolicy:
        """A broker session's: ``at_once`` (a restart asked for, e.g. new credentials)
        reconnects at once; ``failures`` (the link's errors) after ``backoff``, logged with
        their message (the link's errors carry no address or value)."""
        return cls(((at_once, RestartNow()), (failures, Retry(backoff, with_message=True))))

    def action_for(self, error: Exception) -> Action | None:
        """What follows ``error``, or None: not restarted."""
        for classes, action in self.rules:
            if isinstance(error, classes):
                return action
            if isinstance(error, BaseExceptionGroup) and error.split(classes)[1] is None:
                return action
        return None


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    policy: RestartPolicy,
    *,
    on_failure: Callable[[Exception], None] | None = None,
) -> NoReturn:
    """Run ``run()`` until cancelled, again after each failure as ``policy`` says.

    A run that returns is started again at once (a session the other side closed cleanly).
    ``on_failure`` is told of each failure that is restarted (counters, a report). Raises the
    first error the policy does not name, and any cancellation.
    """
    while True:
        reraise_if_cancelling()
        try:
            await run()
        except Exception as error:
            reraise_if_cancelling()  # a cancel that raced with the failure: never restarted
            action = policy.action_for(error)
            if action is None:
                raise
            if on_failure is not None:
                on_failure(error)
            await _pause(name, error, action)


async def _pause(name: str, error: Exception, action: Action) -> None:
    """Log the failure and wait as ``action`` says (no values or addresses: type only unless
    the rule allows the message)."""
    with_message = isinstance(action, Retry) and action.with_message
    what = f"{type(error).__name__}: {error}" if with_message else type(error).__name__
    if isinstance(action, RestartNow):
        logger.log(action.level, "%s restarts (%s)", name, what)
        return
    delay_s = action.backoff.next_delay_s()
    logger.log(action.level, "%s stopped (%s); restarting in %.1fs", name, what, delay_s)
    logger.debug("%s failure detail", name, exc_info=error)
    await asyncio.sleep(delay_s)


class Component:
    """Base of the hub's long-lived parts: an async context manager owning one TaskGroup.

    A subclass implements :meth:`_enter`: it enters what it owns on the stack it is given
    (left in reverse order), calls :meth:`_open_tasks` to put its TaskGroup there, and starts
    its named tasks with :meth:`_start`. Leaving cancels the tasks started, waits for them,
    then leaves what was entered before the group. A component runs once at a time.
    """

    _exit_stack: contextlib.AsyncExitStack | None = None
    _group: asyncio.TaskGroup | None = None
    _running: dict[str, asyncio.Task[None]]

    async def __aenter__(self) -> Self:
        if self._exit_stack is not None:
            raise RuntimeError(f"{type(self).__name__} is running already")
        self._running = {}
        async with contextlib.AsyncExitStack() as stack:
            await self._enter(stack)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            return False
        return await stack.__aexit__(exc_type, exc, tb)

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        """Enter what the component owns and start its tasks (see the class docstring)."""
        raise NotImplementedError

    async def _open_tasks(self, stack: contextlib.AsyncExitStack) -> None:
        """Put the component's TaskGroup on ``stack``; its tasks are cancelled when left."""
        self._group = await stack.enter_async_context(asyncio.TaskGroup())
        stack.callback(self._cancel_tasks)

    def _cancel_tasks(self) -> None:
        self._group = None  # no new task from here on
        for task in self._running.values():
            task.cancel()
        self._running.clear()

    @property
    def running(self) -> bool:
        """True between entering and leaving (tasks may be started)."""
        return self._group is not None

    def _start(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as the task ``name`` of the component's group."""
        if self._group is None:
            coro.close()
            raise RuntimeError(f"{type(self).__name__} is not running: {name} not started")
        task = self._group.create_task(coro, name=name)
        self._running[name] = task
        return task

    async def _stop(self, name: str) -> None:
        """Cancel the task ``name`` and wait until it has ended (no-op if not running)."""
        task = self._running.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks the component runs now."""
        return list(getattr(self, "_running", {}).values())
