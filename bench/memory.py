"""Peak memory of the benchmark's processes: VmHWM (the resident set's high-water mark) from
/proc/<pid>/status, read before a process is stopped and once more at the end."""

from __future__ import annotations

from pathlib import Path

TARGETS_MB = {"gateway": 150.0, "executor": 200.0}
"""Issue 11's targets: peak RSS of one gateway, of one executor."""


def parse_vmhwm(status: str) -> float:
    """VmHWM of a /proc/<pid>/status text, in MB (the kernel writes it in kB)."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"VmHWM in an unknown unit: {line!r}")
            return int(value) / 1024
    raise ValueError("no VmHWM line (a kernel thread, or not Linux)")


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a running process, in MB."""
    return parse_vmhwm(Path(f"/proc/{pid}/status").read_text())


def kind_of(name: str) -> str:
    """The kind of a process of the benchmark: "executor-2" is an executor."""
    return name.split("-", 1)[0] if name.startswith("executor") else name


def target_of(name: str) -> float | None:
    """The target for a process of the benchmark."""
    return TARGETS_MB.get(kind_of(name))


def describe(memory: dict[str, float]) -> list[str]:
    """One line per process: its peak, and its target when it has one."""
    lines = []
    for name, mb in sorted(memory.items()):
        target = target_of(name)
        verdict = ""
        if target is not None:
            verdict = f"   target < {target:.0f} MB: {'ok' if mb < target else 'OVER'}"
        lines.append(f"  {name:<11} {mb:7.1f} MB{verdict}")
    return lines
