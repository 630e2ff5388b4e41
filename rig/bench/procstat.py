"""What the benchmarks read of a process from ``/proc`` (proc(5)): memory, CPU time, bytes
written."""

from __future__ import annotations

import os


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
