"""The files a running hub leaves in its runtime directory (the activity file, the feedback
report) are believed only while the process that wrote them exists (gateway/activity.py,
``writer_alive``; POSIX ``kill(2)`` with signal 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.activity import writer_alive
from gateway.feedback.report import read_report, write_report


def exited_pid() -> int:
    """The pid of a child that has exited and been reaped: no process has it now (the
    kernel could hand it to a new process only after cycling through pid_max others)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_process_is_alive_and_a_reaped_child_is_not() -> None:
    assert writer_alive(os.getpid())
    assert not writer_alive(exited_pid())


@pytest.mark.parametrize("pid", [0, -1, None, "4242", 3.0, True, [1]])
def test_a_pid_that_is_not_a_positive_integer_is_no_writer(pid: object) -> None:
    assert not writer_alive(pid)


def test_a_feedback_report_counts_only_while_its_writer_runs(tmp_path: Path) -> None:
    path = tmp_path / "feedback.json"
    write_report(path, opened={"light"}, failures={}, last={})
    report = read_report(path)
    assert report is not None
    assert report["opened"] == ["light"]
    document = json.loads(path.read_text(encoding="utf-8"))
    document["pid"] = exited_pid()
    path.write_text(json.dumps(document), encoding="utf-8")
    assert read_report(path) is None
