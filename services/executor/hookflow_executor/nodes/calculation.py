"""Running `calculation`: a CEL expression whose value is the node's result."""

from hookflow_executor.nodes.base import RunState, Step
from hookflow_shared.workflow.configs import CalculationConfig
from hookflow_shared.workflow.expressions import evaluate


async def run(config: CalculationConfig, state: RunState) -> Step:
    return Step(result=evaluate(config.expression, state.scope))
