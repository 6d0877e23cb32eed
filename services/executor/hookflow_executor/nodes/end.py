"""Running `end`: finish the execution here, as succeeded or failed."""

from hookflow_executor.nodes.base import RunState, Step
from hookflow_shared.workflow.configs import EndConfig


async def run(config: EndConfig, state: RunState) -> Step:
    return Step(result=config.end_status, end=config.end_status)
