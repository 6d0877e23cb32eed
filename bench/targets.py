"""Hookflow's performance targets, and whether one run of the benchmark meets them.

The targets are ratios to the bare aiohttp handler measured in the same run, latencies and
peak memory, all medians over the run's rounds (README, Performance). A run that does not
measure a target's scenario leaves it unmeasured; the benchmark's exit status does not depend
on them (a shared machine's speed moves a run's ratios by more than most changes do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.memory import TARGETS_MB, kind_of


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    unit: str  # "" for a ratio
    bound: float
    at_least: bool  # True: the figure must reach the bound; False: stay under it
    figure: Callable[[dict[str, Any], dict[str, Any], dict[str, float]], float | None]

    def check(
        self, medians: dict[str, Any], ratios: dict[str, Any], memory: dict[str, float]
    ) -> dict[str, Any]:
        value = self.figure(medians, ratios, memory)
        met = None
        if value is not None:
            met = value >= self.bound if self.at_least else value < self.bound
        return {
            "name": self.name,
            "value": value,
            "bound": self.bound,
            "unit": self.unit,
            "at_least": self.at_least,
            "met": met,
        }


def _median(scenario: str, key: str) -> Callable[..., float | None]:
    def figure(medians: dict[str, Any], _ratios: Any, _memory: Any) -> float | None:
        value = medians.get(scenario, {}).get(key)
        return None if value is None else float(value)

    return figure


def _ratio(key: str) -> Callable[..., float | None]:
    return lambda _medians, ratios, _memory: ratios.get(key)


def _peak(process: str) -> Callable[..., float | None]:
    """The highest peak among the processes of this kind ("executor", "executor-2")."""

    def figure(_medians: Any, _ratios: Any, memory: dict[str, float]) -> float | None:
        peaks = [mb for name, mb in memory.items() if kind_of(name) == process]
        return max(peaks) if peaks else None

    return figure


TARGETS = (
    Target("async-50 2xx/s, share of bare-50", "", 0.5, True, _ratio("async/bare")),
    Target("async-200 p99", "ms", 50.0, False, _median("async-200", "p99_ms")),
    Target("sync-50 2xx/s, share of bare-50", "", 0.35, True, _ratio("sync/bare")),
    Target("sync-1 p50", "ms", 3.0, False, _median("sync-1", "p50_ms")),
    Target("async-1 p50", "ms", 2.5, False, _median("async-1", "p50_ms")),
    *(
        Target(f"{process} peak memory", "MB", mb, False, _peak(process))
        for process, mb in TARGETS_MB.items()
    ),
)


def check(
    medians: dict[str, Any], ratios: dict[str, Any], memory: dict[str, float]
) -> list[dict[str, Any]]:
    """Each target with this run's figure and whether it is met (None: not measured)."""
    return [target.check(medians, ratios, memory) for target in TARGETS]


def describe(results: list[dict[str, Any]]) -> list[str]:
    """The lines the benchmark prints: one per target, then how many were met."""
    lines = []
    for r in results:
        sign = ">=" if r["at_least"] else "<"
        unit = f" {r['unit']}" if r["unit"] else ""
        bound = f"{sign} {r['bound']:g}{unit}"
        if r["value"] is None:
            value, verdict = "-", "not measured in this run"
        else:
            digits = 2 if r["unit"] in ("", "ms") and r["value"] < 10 else 1
            value = f"{r['value']:.{digits}f}{unit}"
            verdict = "met" if r["met"] else "NOT MET"
        lines.append(f"  {r['name']:<34} {value:>9}   {bound:<10} {verdict}")
    measured = [r for r in results if r["met"] is not None]
    met = sum(1 for r in measured if r["met"])
    if measured:
        lines.append(f"  {met} of {len(measured)} measured targets met")
    else:
        lines.append("  no target measured in this run")
    return lines
