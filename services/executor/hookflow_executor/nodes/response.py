"""Running `response` (sync workflows only): what the waiting caller gets. It ends the execution at
once: nothing after it runs."""

from hookflow_executor.nodes.base import RunState, Step
from hookflow_shared.models import ResponseRecord, response_document
from hookflow_shared.workflow.configs import ResponseNodeConfig


async def run(config: ResponseNodeConfig, state: RunState) -> Step:
    status = state.render(config.status_code)
    try:
        code = int(status)
    except (TypeError, ValueError):
        raise ValueError(f"statusCode gave {status!r}, not a number") from None
    if not 200 <= code <= 599:
        raise ValueError(f"statusCode gave {code}, outside 200-599")
    headers = {h.name: str(state.render(h.value)) for h in config.headers}
    response = ResponseRecord(status_code=code, headers=headers, body=state.render(config.body))
    return Step(result=response_document(response), response=response, end="succeeded")
