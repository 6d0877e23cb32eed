"""CPU accounting from /proc: per process, for wrk (a finished child) and for the whole host."""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def host_cpu() -> tuple[int, int, int]:
    """(total, busy, steal) clock ticks of the whole host, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, iowait, steal = fields[3], fields[4], fields[7]  # user nice system idle iowait ...
    total = sum(fields)
    return total, total - idle - iowait - steal, steal


def children_cpu() -> float:
    """CPU of the finished children (wrk is the only one that finishes during a run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def find_broker_pids() -> list[int]:
    """The local RabbitMQ's Erlang VM, when it runs on this machine (for its CPU share)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "beam.smp":
                pids.append(int(entry.name))
    return pids


def processes_cpu(pids: list[int]) -> float | None:
    """CPU seconds of these processes (the broker's); None when there are none, or one ended."""
    if not pids:
        return None
    try:
        return sum(cpu_seconds(pid) for pid in pids)
    except OSError:
        return None


@dataclass
class Snapshot:
    """The counters at one instant; the figures of a run are differences of two snapshots."""

    at: float
    cpu: dict[str, float]
    broker_cpu: float | None
    children_cpu: float
    host: tuple[int, int, int]
    executed: int | None
