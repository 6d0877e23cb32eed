"""`calculation`: a CEL expression whose value is the node's result."""

from typing import Literal

from pydantic import field_validator

from hookflow_executor.expressions import ExpressionError, compile_expression, evaluate
from hookflow_executor.nodes.base import NodeConfig, NodeType, RunState, Step, register


class CalculationConfig(NodeConfig):
    engine: Literal["cel"] = "cel"
    expression: str

    @field_validator("expression")
    @classmethod
    def _compiles(cls, expression: str) -> str:
        try:
            compile_expression(expression)
        except ExpressionError as error:
            raise ValueError(f"expression does not compile: {error}") from error
        return expression


class Calculation(NodeType[CalculationConfig]):
    name = "calculation"
    config = CalculationConfig

    async def run(self, config: CalculationConfig, state: RunState) -> Step:
        return Step(result=evaluate(config.expression, state.scope))


register(Calculation())
