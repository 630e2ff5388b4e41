"""Fixtures for every test suite (``tests/`` and ``hil_tests/``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A CLI run inside a test (typer's CliRunner) points the root logger at the runner's
    stderr (common/logsetup.py), which is closed once the run returns: each test leaves the
    logging set-up as it found it, so a later test's log line never meets a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
