"""The hostile-input properties at two sizes: a few dozen examples each in the suite, and
`make fuzz` (HOOKFLOW_FUZZ=1), which loads the `hookflow-fuzz` Hypothesis profile and runs
HOOKFLOW_FUZZ_EXAMPLES (100,000) examples of each, printing progress and, at the end, the
figures of each property (conftest.py wires the hooks)."""

import os
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

FUZZ = os.environ.get("HOOKFLOW_FUZZ") == "1"
FUZZ_EXAMPLES = int(os.environ.get("HOOKFLOW_FUZZ_EXAMPLES", "100000"))
PROGRESS_EVERY = 1000

settings.register_profile(
    "hookflow-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
if FUZZ:
    settings.load_profile("hookflow-fuzz")


def hostile_settings(examples: int) -> settings:
    """`examples` in the suite; the fuzz profile's count under `make fuzz`."""
    return settings(
        max_examples=FUZZ_EXAMPLES if FUZZ else examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass
class Tally:
    """What one property saw: examples run (shrinking included), answers by status."""

    name: str
    started: float = field(default_factory=time.monotonic)
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    outcome: str = "running"

    def count(self, status: int) -> None:
        self.examples += 1
        self.statuses[status] += 1
        if FUZZ and self.examples % PROGRESS_EVERY == 0:
            _say(f"fuzz {self.name}: {self.examples:,} examples, {self.line()}")

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(self.statuses.items()))
        return f"{elapsed:.0f} s ({self.examples / max(elapsed, 1e-9):.0f}/s); {statuses}"


TALLIES: dict[str, Tally] = {}
_config: pytest.Config | None = None


def tally(name: str) -> Tally:
    TALLIES[name] = Tally(name)
    return TALLIES[name]


def _say(line: str) -> None:
    """A line on the terminal, past pytest's output capture."""
    capture = _config.pluginmanager.getplugin("capturemanager") if _config else None
    writer = _config.get_terminal_writer() if _config else None
    if capture is None or writer is None:
        print(line, flush=True)
        return
    with capture.global_and_fixture_disabled():
        writer.line(line)
        writer.flush()


def configure(config: pytest.Config) -> None:
    global _config
    _config = config


def finished(report: pytest.TestReport) -> None:
    """Note how a property's test ended (its name is the test function's)."""
    if report.when != "call":
        return
    name = report.nodeid.rsplit("::", 1)[-1].split("[", 1)[0]
    if name in TALLIES:
        TALLIES[name].outcome = report.outcome
        TALLIES[name].seconds = report.duration


def summary(reporter: pytest.TerminalReporter) -> None:
    if not FUZZ or not TALLIES:
        return
    reporter.write_sep("=", "fuzz figures")
    failures = 0
    for tally in TALLIES.values():
        failures += tally.outcome != "passed"
        reporter.write_line(
            f"{tally.name}: {tally.outcome}, {tally.examples:,} examples in "
            f"{tally.seconds:.0f} s; " + tally.line().split("; ", 1)[1]
        )
    total = sum(tally.examples for tally in TALLIES.values())
    reporter.write_line(
        f"{len(TALLIES)} properties, {total:,} examples, {failures} failing "
        "(each failing property's smallest example is in its report above)"
    )
