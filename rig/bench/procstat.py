"""What the benchmarks read of a process from ``/proc`` (proc(5)): memory, CPU time, bytes
written."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def proc_status_kib(pid: int) -> dict[str, int]:
    """``VmRSS``, ``VmHWM``, ``RssAnon`` and ``RssFile`` of ``/proc/PID/status``, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:  # noqa: PTH123 - tiny
        for line in status:
            name, _, rest = line.partition(":")
            if name in {"VmRSS", "VmHWM", "RssAnon", "RssFile"}:
                out[name] = int(rest.split()[0])
    return out


def proc_cpu_s(pid: int) -> float:
    """``utime + stime`` of ``/proc/PID/stat`` (fields 14 and 15), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:  # noqa: PTH123 - tiny
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def self_rss_kib() -> dict[str, int | None]:
    """This process's ``VmRSS`` (``rss_kib``, ``None`` when ``/proc`` cannot be read) and
    peak resident set (``max_rss_kib``: getrusage(2) ``ru_maxrss``, KiB on Linux)."""
    current: int | None = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1])
    except OSError:
        current = None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss_kib": current, "max_rss_kib": int(peak)}
