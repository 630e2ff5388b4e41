"""The hub's one supervisor (gateway/supervisor.py): restarts classified by exception type,
cancellation never swallowed, components that own their TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import pytest

from common.backoff import Backoff
from gateway.supervisor import (
    Component,
    RestartNow,
    RestartPolicy,
    RestartRequested,
    Retry,
    supervise,
)


def _no_wait() -> Backoff:
    """Delays of zero (``uniform(0, 0)``): the tests count restarts, they do not wait."""
    return Backoff(initial_s=0.0, cap_s=0.0, rng=random.Random(1))


class Flaky:
    """A task body that raises the given errors in turn, then stops the test by ending."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.runs = 0
        self.done = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        self.done.set()
        await asyncio.Event().wait()


async def _run_until_done(flaky: Flaky, policy: RestartPolicy) -> None:
    task = asyncio.create_task(supervise("flaky", flaky, policy))
    try:
        async with asyncio.timeout(5):
            await flaky.done.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_errors_of_a_named_class_are_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backoff = _no_wait()
    flaky = Flaky(ConnectionError("refused"), TimeoutError())
    policy = RestartPolicy(((OSError, Retry(backoff)),))
    with caplog.at_level(logging.WARNING, logger="gateway.supervisor"):
        await _run_until_done(flaky, policy)
    assert flaky.runs == 3
    assert backoff.attempt == 2  # each failure drew the next (doubling) delay
    assert [r.getMessage() for r in caplog.records] == [
        "flaky stopped (ConnectionError); restarting in 0.0s",
        "flaky stopped (TimeoutError); restarting in 0.0s",
    ]


async def test_each_restarted_failure_is_told_to_its_owner() -> None:
    seen: list[str] = []
    flaky = Flaky(ConnectionError(), TimeoutError())
    task = asyncio.create_task(
        supervise(
            "flaky",
            flaky,
            RestartPolicy(((OSError, Retry(_no_wait())),)),
            on_failure=lambda error: seen.append(type(error).__name__),
        )
    )
    try:
        async with asyncio.timeout(5):
            await flaky.done.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen == ["ConnectionError", "TimeoutError"]


async def test_the_first_matching_rule_chooses_the_delay() -> None:
    first, second = _no_wait(), _no_wait()
    policy = RestartPolicy(((ConnectionError, Retry(first)), (OSError, Retry(second))))
    await _run_until_done(Flaky(ConnectionError(), FileNotFoundError(), OSError()), policy)
    assert (first.attempt, second.attempt) == (1, 2)


async def test_an_error_no_rule_names_ends_the_task() -> None:
    flaky = Flaky(OSError(), ZeroDivisionError())
    with pytest.raises(ZeroDivisionError):
        await supervise("flaky", flaky, RestartPolicy(((OSError, Retry(_no_wait())),)))
    assert flaky.runs == 2


async def test_a_restart_request_runs_again_at_once_without_backoff() -> None:
    backoff = _no_wait()
    policy = RestartPolicy(((RestartRequested, RestartNow()), (OSError, Retry(backoff))))
    flaky = Flaky(RestartRequested(), RestartRequested())
    await _run_until_done(flaky, policy)
    assert flaky.runs == 3
    assert backoff.attempt == 0


def test_a_broker_session_reconnects_at_once_when_asked_and_after_backoff_on_its_errors() -> None:
    backoff = _no_wait()
    policy = RestartPolicy.reconnecting((ConnectionError, TimeoutError), backoff)
    assert policy.action_for(RestartRequested()) == RestartNow()
    assert policy.action_for(TimeoutError()) == Retry(backoff, with_message=True)
    assert policy.action_for(KeyError()) is None

    class Renewed(RestartRequested):
        pass

    only_renewal = RestartPolicy.reconnecting(OSError, backoff, at_once=Renewed)
    assert only_renewal.action_for(Renewed()) == RestartNow()
    assert only_renewal.action_for(RestartRequested()) is None


async def test_an_exception_group_matches_when_all_of_it_does() -> None:
    policy = RestartPolicy(((OSError, Retry(_no_wait())),))
    both = ExceptionGroup("session", [ConnectionError(), TimeoutError()])
    assert isinstance(policy.action_for(both), Retry)
    mixed = ExceptionGroup("session", [ConnectionError(), KeyError()])
    assert policy.action_for(mixed) is None


async def test_cancellation_is_never_swallowed() -> None:
    started = asyncio.Event()

    async def body() -> None:
        started.set()
        await asyncio.Event().wait()

    policy = RestartPolicy(((Exception, Retry(_no_wait())),))  # even the broadest rule
    task = asyncio.create_task(supervise("body", body, policy))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancel_turned_into_an_error_is_not_restarted() -> None:
    """Python 3.11's ``asyncio.timeout``/``wait_for`` can turn a racing cancel into an error;
    the supervisor sees the pending cancel and ends the task instead of restarting it."""
    started = asyncio.Event()
    runs = 0

    async def swallows_cancel() -> None:
        nonlocal runs
        runs += 1
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise TimeoutError from None  # what a 3.11 race can hand the task instead

    # A long delay: a supervisor that waited it out before noticing the cancel fails here.
    slow = Backoff(initial_s=1000.0, cap_s=1000.0, rng=random.Random(1))
    policy = RestartPolicy(((TimeoutError, Retry(slow)),))
    task = asyncio.create_task(supervise("body", swallows_cancel, policy))
    await started.wait()
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()
    assert runs == 1


class Pair(Component):
    """Two tasks, and a resource closed after them."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.log: list[str] = []
        self.started = asyncio.Event()

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        stack.callback(self.log.append, "closed")
        await self._open_tasks(stack)
        self._start("a", self._forever("a"))
        self._start("b", self._forever("b"))

    async def _forever(self, name: str) -> None:
        try:
            self.started.set()
            if self.fail is not None and name == "b":
                raise self.fail
            await asyncio.Event().wait()
        finally:
            self.log.append(f"{name} ended")


async def test_a_component_owns_its_tasks_and_leaves_in_reverse_order() -> None:
    pair = Pair()
    async with pair:
        await pair.started.wait()
        assert sorted(t.get_name() for t in pair.tasks()) == ["a", "b"]
        assert pair.running
    assert not pair.running
    assert pair.tasks() == []
    assert sorted(pair.log[:2]) == ["a ended", "b ended"]
    assert pair.log[2:] == ["closed"]  # after its tasks, as entered before the group


async def test_a_task_failing_fails_its_component() -> None:
    pair = Pair(fail=KeyError("boom"))
    with pytest.raises(ExceptionGroup) as caught:
        async with pair:
            await asyncio.Event().wait()  # the group cancels this body
    assert caught.group_contains(KeyError)
    assert pair.log[-1] == "closed"


async def test_a_task_is_stopped_and_started_again_by_name() -> None:
    pair = Pair()
    async with pair:
        await pair.started.wait()
        await pair._stop("a")
        assert [t.get_name() for t in pair.tasks()] == ["b"]
        assert "a ended" in pair.log
        pair._start("a", pair._forever("a"))
        assert sorted(t.get_name() for t in pair.tasks()) == ["a", "b"]
    with pytest.raises(RuntimeError, match="not running"):
        pair._start("a", pair._forever("a"))


async def test_a_component_runs_once_at_a_time() -> None:
    pair = Pair()
    async with pair:
        with pytest.raises(RuntimeError, match="running already"):
            await pair.__aenter__()
