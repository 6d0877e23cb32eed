"""An executor SIGKILLed under load, on MongoDB, two gateways and two executors: every 2xx is
recorded exactly once, none lost; the runs the killed executor was in the middle of are run
again by the other (at-least-once side effects: the witness shows which), and the killed one
comes back and takes its share again."""

import time

import pytest

from tests.faults.accounting import account
from tests.faults.conftest import MakeInstallation
from tests.faults.load import LoadDriver
from tests.faults.processes import Mongo
from tests.faults.waiting import wait_until
from tests.faults.witness import Witness

pytestmark = [pytest.mark.faults, pytest.mark.rabbitmq, pytest.mark.mongodb]


async def test_an_executor_killed_under_load_loses_nothing(
    rabbitmq: str,
    mongodb: tuple[str, str],
    installation: MakeInstallation,
    witness: Witness,
) -> None:
    system = await installation(rabbitmq, Mongo(*mongodb)).start(gateways=2, executors=2)
    workflow = await system.create_workflow(
        {"title": "executor kill", "nodes": [witness.node(delay=0.3)]}
    )
    urls = system.webhook_urls(workflow)
    load = LoadDriver(urls, concurrency=6, pace=0.02)
    load.start()
    await load.wait_accepting(0.0, per_url=60)
    await wait_until(lambda: witness.in_progress >= 4, 10, "runs in progress")

    victim = system.executors[0]
    in_progress = witness.in_progress
    victim.kill()
    killed = time.monotonic()
    await load.wait_accepting(killed, per_url=60)
    answers = await load.stop()

    result = await account(
        "executor kill",
        answers,
        recorded=lambda: system.recorded(workflow["id"]),
        witness=witness.counts,
        deadline=30,
    )
    print(f"\n{result.line()} in-progress-at-kill={in_progress} reran-ids={result.reran[:5]}")
    result.assert_promise(allow_reruns=True)

    # The killed executor comes back and takes runs again.
    await victim.restart()
    executed_before = (await victim.health())["executed"]
    after = await LoadDriver(urls, concurrency=4).run(count=40)
    assert all(a.accepted for a in after), after

    async def victim_ran_some() -> bool:
        return bool((await victim.health())["executed"] > executed_before)

    await wait_until(victim_ran_some, 15, "the restarted executor runs webhooks")
