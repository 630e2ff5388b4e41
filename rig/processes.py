"""The rig's child processes (``narhub rig``, ``narhub run``): each with its output in a log
file, stopped with SIGTERM or killed with SIGKILL as a power cut would; and
:func:`eventually`, the wait on a condition another process brings about (polled, with a
deadline). Used by :class:`rig.home.VirtualHomeRig`, which re-exports them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

_POLL_S = 0.05
_T = TypeVar("_T")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Service(ABC):
    """A rig service used as a context manager: :meth:`start` on entry (:meth:`stop` when
    starting fails, so that nothing it started is left behind), :meth:`stop` on exit."""

    @abstractmethod
    def start(self) -> None:
        """Start it; return once it serves."""

    @abstractmethod
    def stop(self) -> None:
        """Stop it (nothing to do when it is not running)."""

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RigProcessError(RuntimeError):
    """A rig process exited or did not become ready; the message has its log's tail."""


def narhub_executable() -> str:
    """The ``narhub`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "narhub"
    if not script.exists():
        raise RigProcessError(f"{script} not found: run `pip install -e .[sim]`")
    return str(script)


async def eventually(
    predicate: Callable[[], bool], *, timeout_s: float, what: str, poll_s: float = _POLL_S
) -> None:
    """Wait until ``predicate()`` holds, polling (files and other processes), or raise."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s:.0f}s: {what}")
        await asyncio.sleep(poll_s)


def poll(probe: Callable[[], _T], *, timeout_s: float, poll_s: float = _POLL_S) -> _T | None:
    """``probe()``'s first truthy answer, asked every ``poll_s`` (another process's files: no
    other way to wait on them); ``None`` when ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(poll_s)
    return None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object another process writes at ``path``; ``None`` while it is absent or
    cannot be read (not written yet, or half-written)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def reap(
    process: subprocess.Popen[Any], *, timeout_s: float, kill_wait_s: float | None = None
) -> None:
    """Wait up to ``timeout_s`` for ``process`` to exit, else SIGKILL it and wait for that
    (at most ``kill_wait_s``; ``None``: as long as it takes)."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=kill_wait_s)


def stop_process(
    process: subprocess.Popen[Any], *, timeout_s: float, kill_wait_s: float | None = None
) -> None:
    """SIGTERM ``process`` (nothing when it has exited), then :func:`reap` it."""
    process.terminate()
    reap(process, timeout_s=timeout_s, kill_wait_s=kill_wait_s)


class ManagedProcess:
    """A child process with its output in a log file; stop (SIGTERM), kill (SIGKILL)."""

    def __init__(self, name: str, argv: list[str], log_file: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        #: Environment variables set for the process on top of this one's.
        self.env: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        #: Starts so far.
        self.starts = 0

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it (output appended to the log file)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.starts += 1

    async def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after ``timeout_s``); returns the exit status."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            await eventually(
                lambda: process.poll() is not None, timeout_s=timeout_s, what=f"{self.name} exit"
            )
        except TimeoutError:
            process.kill()
            process.wait()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL, as a power cut would (nothing gets to run)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log, for error messages."""
        return log_tail(self.log_file, lines)
