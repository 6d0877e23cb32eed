"""The chart of a results document (bench/results/*.json): a PNG next to the JSON.

Left, each HTTP scenario's rate of 2xx answers as a share of the bare aiohttp handler measured
in the same run (the median of each round's ratio: the figure that holds across hosts); middle,
its latency percentiles p50 and p99 (log scale); right, when the run drained a backlog, the
executors' runs per second. Drawn with matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

HOOKFLOW_COLOUR = "#3b6fb6"
PEER_COLOUR = "#999999"


def http_scenarios(medians: dict[str, Any]) -> list[str]:
    """The scenarios measured with wrk (they have latencies), in the run's order."""
    return [name for name, m in medians.items() if m.get("p50_ms") is not None]


def backlog_scenarios(medians: dict[str, Any]) -> list[str]:
    return [name for name, m in medians.items() if m.get("backlog_runs_per_s") is not None]


def colour(name: str) -> str:
    return PEER_COLOUR if name.startswith(("bare", "nodered")) else HOOKFLOW_COLOUR


def draw_ratios(ax: Axes, medians: dict[str, Any], names: list[str]) -> None:
    values = [medians[n].get("ratio_to_bare") or 0.0 for n in names]
    bars = ax.bar(names, values, color=[colour(n) for n in names])
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.margins(y=0.1)
    ax.set_title("2xx/s as a share of bare aiohttp (same run)")
    ax.set_ylabel("ratio to bare-50")
    ax.tick_params(axis="x", rotation=45)


def draw_latencies(ax: Axes, medians: dict[str, Any], names: list[str]) -> None:
    positions = range(len(names))
    width = 0.4
    for offset, key, label in ((-width / 2, "p50_ms", "p50"), (width / 2, "p99_ms", "p99")):
        values = [medians[n].get(key) or 0.0 for n in names]
        bars = ax.bar([p + offset for p in positions], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7)
    ax.set_xticks(list(positions), names, rotation=45)
    ax.set_yscale("log")
    # Plain numbers at 1, 2, 5 of each decade (matplotlib writes 6x10^1 on short ranges).
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title("latency (ms, log scale)")
    ax.legend()


def draw_backlog(ax: Axes, medians: dict[str, Any], names: list[str]) -> None:
    values = [medians[n]["backlog_runs_per_s"] for n in names]
    bars = ax.bar(names, values, color=HOOKFLOW_COLOUR)
    cpu = [medians[n].get("executor_cpu_us_per_run") for n in names]
    labels = [
        f"{v:,.0f}/s\n{c:,.0f} µs CPU/run" if c else f"{v:,.0f}/s"
        for v, c in zip(values, cpu, strict=True)
    ]
    ax.bar_label(bars, labels=labels, fontsize=8)
    ax.margins(y=0.2)
    ax.set_title("backlog drain (runs/s)")
    ax.set_ylabel("runs per second")


def draw_chart(document: dict[str, Any], path: Path) -> Path:
    """Draw the chart of `document` (with its `medians`) into the PNG `path`."""
    medians: dict[str, Any] = document.get("medians") or {}
    http = http_scenarios(medians)
    backlog = backlog_scenarios(medians)
    if not http and not backlog:
        raise ValueError("the results hold no medians to draw")
    panels = (1 if http else 0) * 2 + (1 if backlog else 0)
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.8), squeeze=False)
    row = list(axes[0])
    if http:
        draw_ratios(row.pop(0), medians, http)
        draw_latencies(row.pop(0), medians, http)
    if backlog:
        draw_backlog(row.pop(0), medians, backlog)
    settings = document.get("settings") or {}
    figure.suptitle(
        f"Hookflow bench {document.get('started', '')}: medians of "
        f"{settings.get('rounds', '?')} round(s), storage {settings.get('storage', '?')}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
