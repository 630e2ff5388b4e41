"""What ``narhub bench e2e`` says about the machine it ran on, and how it reads ``--rates``."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

_MIB = 1024


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), Path("/proc/cpuinfo").open(encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory_mib = None
    with contextlib.suppress(OSError), Path("/proc/meminfo").open(encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory_mib = int(line.split()[1]) // _MIB
                break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_mib": memory_mib,
        "arch": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "kernel": f"{platform.system()} {platform.release()}",
    }


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def parse_rates(text: str) -> tuple[float, ...]:
    """``"100,200,400"`` as rates; each must be positive, in increasing order."""
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"rates must be numbers separated by commas, got {text!r}") from None
    if not rates or any(r <= 0 for r in rates) or list(rates) != sorted(set(rates)):
        raise ValueError(f"rates must be positive and increasing, got {text!r}")
    return rates
