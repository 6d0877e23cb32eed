"""What the executor's /healthz reports: is each dependency answering, and is it consuming."""

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Health:
    storage_error: str | None = None
    """The last storage failure, while calls keep failing; None once one succeeds."""
    storage_failing_since: float | None = None
    halted: str | None = None
    """Why this executor stopped consuming (runs of another installation on its queue)."""
    stuck_calls: dict[str, float] = field(default_factory=dict)
    """Storage calls being retried, by what they do, with when they started failing."""

    def storage_failed(self, what: str, error: str) -> None:
        moment = time.monotonic()
        self.storage_error = f"{what}: {error}"
        if self.storage_failing_since is None:
            self.storage_failing_since = moment
        self.stuck_calls.setdefault(what, moment)

    def storage_answered(self, what: str) -> None:
        self.stuck_calls.pop(what, None)
        if not self.stuck_calls:
            self.storage_error = None
            self.storage_failing_since = None

    @property
    def storage_ok(self) -> bool:
        return self.storage_error is None

    def storage_report(self) -> dict[str, Any]:
        if self.storage_ok:
            return {"ok": True}
        since = self.storage_failing_since or time.monotonic()
        return {
            "ok": False,
            "error": self.storage_error,
            "failingFor": round(time.monotonic() - since, 1),
            "retrying": sorted(self.stuck_calls),
        }
