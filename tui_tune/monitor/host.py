"""CPU and RAM of the machine the app runs on (psutil), sampled without blocking."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

import psutil

GIB = 1024**3


@dataclass(frozen=True)
class HostReading:
    cpu_pct: float  # all cores, since the previous sample
    cpu_count: int
    ram_used_gib: float
    ram_total_gib: float
    load_1m: float | None


def sample_host() -> HostReading:
    """Call about once a second: CPU% is measured between consecutive calls (the first is 0)."""
    memory = psutil.virtual_memory()
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    return HostReading(cpu_pct=psutil.cpu_percent(interval=None),
                       cpu_count=psutil.cpu_count() or 1,
                       ram_used_gib=(memory.total - memory.available) / GIB,
                       ram_total_gib=memory.total / GIB, load_1m=load)


def peak_rss_bytes() -> int:
    """This program's peak RSS. Linux: VmHWM, which starts anew at exec; ru_maxrss would
    count the parent's memory too (the accelerate launcher's, forked before the exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
