"""What a fault test counts, and the promise it checks.

- sent: requests sent; accepted: 2xx; refused_503 (with Retry-After) and refused_503_bare
  (without); other statuses; connection errors by kind (load.py).
- executed: accepted runs that are recorded.
- reran: accepted runs whose side effect (a witness call) happened more than once (a run cut
  off by a crash is run again from its start: at-least-once side effects).
- unaccepted: executions recorded (or witnessed) that no caller was given a 2xx for: a caller
  told "retry" whose run went ahead anyway, so a retry runs it twice.
- duplicated = reran + unaccepted; lost: accepted but not recorded within the deadline.

The promise (README, "The public contract"): every 2xx is recorded exactly once (nothing lost,
nothing recorded that was not accepted), and every other answer is a 503 with Retry-After.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from tests.faults.load import Answer


@dataclass
class Accounting:
    label: str
    sent: int = 0
    accepted: int = 0
    refused_503: int = 0
    refused_503_bare: int = 0
    other_statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    executed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    """Recorded executions by status (succeeded, failed)."""
    reran: list[str] = field(default_factory=list)
    unaccepted: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    accepted_without_id: int = 0
    settled_in: float = 0.0
    """Seconds from the end of the load until every accepted run was recorded (or deadline)."""

    @property
    def duplicated(self) -> int:
        return len(self.reran) + len(self.unaccepted)

    def line(self) -> str:
        other = ",".join(f"{s}x{n}" for s, n in sorted(self.other_statuses.items())) or "0"
        errors = ",".join(f"{k}x{n}" for k, n in sorted(self.errors.items())) or "0"
        statuses = ",".join(f"{k}x{n}" for k, n in sorted(self.statuses.items())) or "0"
        return (
            f"[{self.label}] sent={self.sent} accepted={self.accepted} "
            f"503+retry-after={self.refused_503} 503-bare={self.refused_503_bare} "
            f"other={other} conn-errors={errors} executed={self.executed} ({statuses}) "
            f"duplicated={self.duplicated} (reran={len(self.reran)} "
            f"unaccepted={len(self.unaccepted)}) lost={len(self.lost)} "
            f"settled-in={self.settled_in:.1f}s"
        )

    def check(
        self,
        *,
        allow_reruns: bool,
        allowed_errors: Iterable[str] = (),
        excused: Collection[str] = (),
        min_accepted: int = 1,
    ) -> list[str]:
        """The broken promises, as sentences (empty when it is kept). `excused`: execution ids
        that may run without a 2xx because the test knows why (a product bug shown by an
        xfail test of its own)."""
        broken = []
        if self.accepted < min_accepted:
            broken.append(f"only {self.accepted} accepted (wanted {min_accepted}): no real load")
        if self.lost:
            broken.append(f"{len(self.lost)} accepted runs never recorded: {self.lost[:5]}")
        unexcused = [i for i in self.unaccepted if i not in set(excused)]
        if unexcused:
            broken.append(f"{len(unexcused)} runs recorded or run without a 2xx: {unexcused[:5]}")
        if self.reran and not allow_reruns:
            broken.append(f"{len(self.reran)} accepted runs ran twice: {self.reran[:5]}")
        if self.accepted_without_id:
            broken.append(f"{self.accepted_without_id} 2xx without X-Hookflow-Execution-Id")
        if self.refused_503_bare:
            broken.append(f"{self.refused_503_bare} 503 without Retry-After")
        if self.other_statuses:
            broken.append(f"answers other than 2xx or 503: {dict(self.other_statuses)}")
        unexpected = {k: n for k, n in self.errors.items() if k not in set(allowed_errors)}
        if unexpected:
            broken.append(f"connection errors: {unexpected}")
        return broken

    def assert_promise(
        self,
        *,
        allow_reruns: bool,
        allowed_errors: Iterable[str] = (),
        excused: Collection[str] = (),
        min_accepted: int = 1,
    ) -> None:
        broken = self.check(
            allow_reruns=allow_reruns,
            allowed_errors=allowed_errors,
            excused=excused,
            min_accepted=min_accepted,
        )
        assert not broken, self.line() + "\n" + "\n".join(broken)


def answers_summary(label: str, answers: list[Answer]) -> Accounting:
    """The callers' side alone (no records yet)."""
    account = Accounting(label, sent=len(answers))
    for answer in answers:
        if answer.error is not None:
            account.errors[answer.error] += 1
        elif answer.accepted:
            account.accepted += 1
            if not answer.execution_id:
                account.accepted_without_id += 1
        elif answer.status == 503:
            if answer.retry_after:
                account.refused_503 += 1
            else:
                account.refused_503_bare += 1
        else:
            assert answer.status is not None
            account.other_statuses[answer.status] += 1
    return account


async def account(
    label: str,
    answers: list[Answer],
    *,
    recorded: Callable[[], Awaitable[dict[str, str]]],
    witness: Callable[[], dict[str, int]] | None = None,
    deadline: float = 20.0,
    settle: float = 0.5,
) -> Accounting:
    """Wait (up to `deadline` s) until every accepted run is recorded, then `settle` s more for
    stragglers (a late duplicate, a run nobody accepted), and count. `recorded` gives the
    workflow's recorded executions (id -> status); `witness` the side effects per id."""
    result = answers_summary(label, answers)
    accepted = {a.execution_id for a in answers if a.accepted and a.execution_id}
    began = time.monotonic()
    records = await recorded()
    while not accepted <= records.keys() and time.monotonic() - began < deadline:
        await asyncio.sleep(0.2)
        records = await recorded()
    result.settled_in = time.monotonic() - began
    await asyncio.sleep(settle)
    records = await recorded()
    calls = witness() if witness is not None else {}
    result.executed = len(accepted & records.keys())
    result.statuses = Counter(records[i] for i in accepted & records.keys())
    result.lost = sorted(accepted - records.keys())
    result.unaccepted = sorted((records.keys() | calls.keys()) - accepted)
    result.reran = sorted(i for i in accepted if calls.get(i, 0) > 1)
    return result
