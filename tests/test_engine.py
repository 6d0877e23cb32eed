"""The engine's condition and end nodes, and the worker's run-once rule, on real storage."""

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookflow_executor.engine import Engine, compile_plan, execute
from hookflow_executor.nodes.condition import CALCULATORS
from hookflow_executor.worker import RunWorker
from hookflow_shared.messaging import Outcome
from hookflow_shared.models import RunBatch, WorkflowDocument
from hookflow_shared.storage import open_storage
from hookflow_shared.workflow.validation import validate_workflow
from tests.support import delivery, payment_workflow, run_of, stored

ENGINE = Engine.standard()


@pytest.mark.parametrize(
    ("calculator", "operands", "expected"),
    [
        ("equal", ["paid", "paid"], True),
        ("equal", ["12.50", 12.5], True),
        ("equal", [None, None], True),
        ("equal", ["1", True], False),
        ("notEqual", ["a", "b"], True),
        ("gt", ["150.00", 100], True),
        ("gt", ["10", "9"], True),
        ("gte", [3, 3], True),
        ("lt", ["abc", "abd"], True),
        ("lte", [None, 1], False),
        ("includes", ["hello world", "lo w"], True),
        ("includes", [["a", "b"], "b"], True),
        ("includes", [[1, 2], "2"], True),
        ("notIncludes", [["a"], "b"], True),
        ("startsWith", ["wx_pay", "wx_"], True),
        ("endsWith", ["file.xml", ".json"], False),
        ("notEndsWith", ["file.xml", ".json"], True),
        ("notStartsWith", [None, "a"], True),
        ("empty", [""], True),
        ("empty", [[]], True),
        ("empty", [0], False),
        ("notEmpty", [{"a": 1}], True),
    ],
)
def test_calculators(calculator: str, operands: list[Any], expected: bool) -> None:
    assert CALCULATORS[calculator](*operands) is expected


def comparison(calculator: str, *operands: Any) -> dict[str, Any]:
    return {"calculator": calculator, "operands": list(operands)}


async def test_nested_groups_and_continuing_after_a_branch() -> None:
    workflow = stored(
        {
            "title": "groups",
            "nodes": [
                {
                    "key": "check",
                    "type": "condition",
                    "config": {
                        "calculation": {
                            "group": {
                                "type": "and",
                                "calculations": [
                                    comparison("equal", "{{$context.body.status}}", "paid"),
                                    {
                                        "group": {
                                            "type": "or",
                                            "calculations": [
                                                comparison("gt", "{{$context.body.amount}}", 100),
                                                comparison("equal", "{{$context.body.vip}}", True),
                                            ],
                                        }
                                    },
                                ],
                            }
                        }
                    },
                    "branches": {
                        "true": [
                            {
                                "key": "inner",
                                "type": "condition",
                                "config": {"calculation": {"group": {"calculations": []}}},
                            }
                        ]
                    },
                },
                {"key": "finish", "type": "end", "config": {"endStatus": "succeeded"}},
            ],
        }
    )
    plan = compile_plan(workflow, ENGINE)
    big = await execute(plan, run_of(workflow, {"status": "paid", "amount": "150"}))
    assert [n.key for n in big.nodes] == ["check", "inner", "finish"]
    assert big.status == "succeeded"
    vip = await execute(plan, run_of(workflow, {"status": "paid", "amount": 5, "vip": True}))
    assert vip.nodes[0].result is True
    small = await execute(plan, run_of(workflow, {"status": "paid", "amount": 5}))
    assert [(n.key, n.result) for n in small.nodes] == [("check", False), ("finish", "succeeded")]


async def test_reject_on_false_ends_the_execution_failed() -> None:
    workflow = stored(
        {
            "title": "reject",
            "nodes": [
                {
                    "key": "gate",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": True,
                        "calculation": {
                            "group": {
                                "calculations": [comparison("notEmpty", "{{$context.body.id}}")]
                            }
                        },
                    },
                },
                {"key": "after", "type": "end"},
            ],
        }
    )
    plan = compile_plan(workflow, ENGINE)
    rejected = await execute(plan, run_of(workflow, {}))
    assert rejected.status == "failed"
    assert [n.key for n in rejected.nodes] == ["gate"]
    passed = await execute(plan, run_of(workflow, {"id": 7}))
    assert passed.status == "succeeded"
    assert [n.key for n in passed.nodes] == ["gate", "after"]


def test_validation_names_each_fault_by_path() -> None:
    document = WorkflowDocument.model_validate(
        {
            "title": "faults",
            "nodes": [
                {"key": "a", "type": "end", "branches": {"true": []}},
                {
                    "key": "b",
                    "type": "condition",
                    "config": {
                        "calculation": {
                            "group": {
                                "calculations": [comparison("equal", "{{$jobsMapByNodeKey.c}}")]
                            }
                        }
                    },
                    "branches": {"maybe": [{"key": "a", "type": "end"}]},
                },
                {
                    "key": "c",
                    "type": "condition",
                    "config": {
                        "calculation": {
                            "group": {
                                "calculations": [
                                    comparison("equal", "{{$jobsMapByNodeKey.a}}", "{{$nowhere.x}}")
                                ]
                            }
                        }
                    },
                },
            ],
        }
    )
    faults = validate_workflow(document, ENGINE.language)
    assert {(f["path"], f["message"].split(" (")[0]) for f in faults} >= {
        ("nodes[0].branches.true", "a end node has no branch 'true'"),
        (
            "nodes[1].config.calculation.group.calculations[0]",
            "Value error, equal takes 2 operand(s)",
        ),
        (
            "nodes[1].config.calculation.group.calculations[0].operands[0]",
            "node 'c' cannot have run before this node",
        ),
        ("nodes[1].branches.maybe", "a condition node has no branch 'maybe'"),
        ("nodes[1].branches.maybe[0].key", "duplicate node key 'a'"),
        (
            "nodes[2].config.calculation.group.calculations[0].operands[1]",
            "unknown variable $nowhere",
        ),
    }


async def test_a_redelivered_batch_runs_each_webhook_once(tmp_path: Path) -> None:
    storage = open_storage(None, database="", data_dir=tmp_path)
    await storage.open()
    try:
        workflow = stored(payment_workflow())
        await storage.insert_workflow(workflow)
        worker = RunWorker(storage)
        batch = RunBatch(
            runs=[run_of(workflow, {"status": "paid"}), run_of(workflow, {"status": "no"})]
        )
        assert await worker.handle(delivery(batch)) is Outcome.DONE
        first = await storage.get_execution(batch.runs[0].execution_id)
        # The broker delivers it again after a crash before the ack.
        assert await worker.handle(delivery(batch, attempt=2)) is Outcome.DONE
        assert worker.executed == 2
        assert await storage.get_execution(batch.runs[0].execution_id) == first
        missing = run_of(workflow, {})
        missing.version = 9
        await worker.handle(delivery(RunBatch(runs=[missing])))
        record = await storage.get_execution(missing.execution_id)
        assert record is not None and record.status == "failed"
        assert "version 9 not found" in (record.error or "")
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[1].glob("examples/*.json")), ids=lambda p: p.name
)
def test_the_examples_are_valid_workflows(path: Path) -> None:
    document = WorkflowDocument.model_validate_json(path.read_text())
    assert validate_workflow(document, ENGINE.language) == []


async def test_a_request_aiohttp_refuses_to_make_fails_the_node_not_the_executor() -> None:
    # Credentials in the URL and an Authorization header: aiohttp raises ValueError.
    call = {
        "method": "GET",
        "url": "http://user:secret@127.0.0.1:9/",
        "headers": [{"name": "Authorization", "value": "Bearer t"}],
        "ignoreFail": True,
    }
    workflow = stored(
        {"title": "two credentials", "nodes": [{"key": "call", "type": "request", "config": call}]}
    )
    async with aiohttp.ClientSession() as http:
        record = await execute(compile_plan(workflow, ENGINE), run_of(workflow, {}), http=http)
    assert record.status == "succeeded"
    assert "cannot be made" in (record.nodes[0].error or "")
