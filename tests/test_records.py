"""The execution record as the executor writes it (orjson, field by field) is the document the
API and the stores read (pydantic): the same fields, the same values, whatever a node gave."""

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from hookflow_shared.models import (
    EXECUTION,
    ExecutionRecord,
    NodeResult,
    ResponseRecord,
    TriggerContext,
    execution_json,
)
from tests.support import T0


def full_record(**changes: object) -> ExecutionRecord:
    """A record with every field set, none left at its default."""
    fields: dict[str, object] = {
        "id": "0196f0a1c0de4a5b8c9d0e1f2a3b4c5d",
        "workflow_id": "0196f0a1c0de4a5b8c9d0e1f2a3b4c00",
        "version": 3,
        "status": "failed",
        "received_at": T0,
        "started_at": T0 + timedelta(microseconds=1000),
        "finished_at": T0 + timedelta(milliseconds=4),
        "request_id": "r-7",
        "context": TriggerContext(
            headers={"x-request-id": "r-7"},
            query={"a": ["1", "2"]},
            body={"status": "paid", "amount": 12.5, "order": {"id": "A1"}, "tags": None},
        ),
        "nodes": [
            NodeResult(
                key="paid",
                type="condition",
                status="succeeded",
                result=True,
                started_at=T0,
                finished_at=T0 + timedelta(milliseconds=1),
            ),
            NodeResult(
                key="call",
                type="request",
                status="failed",
                result={"status": 502, "data": [1, "two", {"three": 3.0}]},
                error="HTTP 502",
                started_at=T0 + timedelta(milliseconds=1),
                finished_at=T0 + timedelta(milliseconds=3),
            ),
        ],
        "response": ResponseRecord(
            status_code=502, headers={"X-Order": "A1"}, body={"received": "A1"}
        ),
        "error": "node call failed: HTTP 502",
        "idempotency_key": "evt_1",
        "replay_of": "0196f0a1c0de4a5b8c9d0e1f2a3b4c01",
    }
    fields.update(changes)
    return ExecutionRecord(**fields)  # type: ignore[arg-type]


def test_the_written_document_is_what_pydantic_writes() -> None:
    record = full_record()
    written = orjson.loads(execution_json(record))
    assert written == EXECUTION.dump_python(record, mode="json")
    assert set(written) == {
        "id",
        "workflowId",
        "version",
        "status",
        "receivedAt",
        "startedAt",
        "finishedAt",
        "requestId",
        "context",
        "nodes",
        "response",
        "error",
        "idempotencyKey",
        "replayOf",
    }
    assert written["receivedAt"] == "2025-06-01T12:00:00Z"
    assert written["startedAt"] == "2025-06-01T12:00:00.001000Z"


def test_a_record_reads_back_as_it_was_written() -> None:
    record = full_record()
    assert EXECUTION.validate_json(execution_json(record)) == record
    bare = full_record(nodes=[], response=None, error=None, idempotency_key=None, replay_of=None)
    assert EXECUTION.validate_json(execution_json(bare)) == bare
    assert orjson.loads(execution_json(bare))["response"] is None


@pytest.mark.parametrize(
    "result",
    [2**70, Decimal("12.50"), {1: "a key that is a number"}, {"set": {3}}],
    ids=["big-int", "decimal", "int-key", "set"],
)
def test_what_orjson_cannot_write_is_written_as_pydantic_would(result: object) -> None:
    node = NodeResult(
        key="calc", type="code", status="succeeded", result=result, started_at=T0, finished_at=T0
    )
    record = full_record(nodes=[node])
    written = orjson.loads(execution_json(record))
    assert written == orjson.loads(EXECUTION.dump_json(record))
    assert written["nodes"][0]["result"] is not None
