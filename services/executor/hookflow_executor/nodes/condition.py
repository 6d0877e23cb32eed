"""Running `condition`: NocoBase's basic comparisons in and/or groups, or a CEL expression; yes/no
branches, or rejectOnFalse to end the run as failed.

Operands are templates (`{{$context.body.status}}`) or literals. Comparisons are lenient the
way integrators need: a number and a numeric string compare as numbers ("12.50" equals 12.5).
"""

import math
from collections.abc import Callable
from typing import Any

from hookflow_executor.nodes.base import RunState, Step
from hookflow_shared.workflow.configs import Comparison, ConditionConfig
from hookflow_shared.workflow.expressions import ExpressionError
from hookflow_shared.workflow.expressions import evaluate as evaluate_expression


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    x, y = _number(a), _number(b)
    return x is not None and y is not None and x == y


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def calculator(a: Any, b: Any) -> bool:
        x, y = _number(a), _number(b)
        if x is not None and y is not None:
            return compare(x, y)
        if isinstance(a, str) and isinstance(b, str):
            return compare(a, b)
        return False

    return calculator


def _includes(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return b is not None and str(b) in a
    if isinstance(a, list):
        return any(_equal(item, b) for item in a)
    if isinstance(a, dict):
        return isinstance(b, str) and b in a
    return False


def _empty(a: Any) -> bool:
    return a is None or a == "" or a == [] or a == {}


def _text(test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: isinstance(a, str) and b is not None and test(a, str(b))


CALCULATORS: dict[str, Callable[..., bool]] = {
    "equal": _equal,
    "notEqual": lambda a, b: not _equal(a, b),
    "gt": _ordered(lambda a, b: a > b),
    "gte": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "lte": _ordered(lambda a, b: a <= b),
    "includes": _includes,
    "notIncludes": lambda a, b: not _includes(a, b),
    "startsWith": _text(str.startswith),
    "notStartsWith": lambda a, b: not _text(str.startswith)(a, b),
    "endsWith": _text(str.endswith),
    "notEndsWith": lambda a, b: not _text(str.endswith)(a, b),
    "empty": _empty,
    "notEmpty": lambda a: not _empty(a),
}


def evaluate(item: Comparison, state: RunState) -> bool:
    if item.group is None:
        assert item.calculator is not None
        operands = [state.render(operand) for operand in item.operands]
        return CALCULATORS[item.calculator](*operands)
    results = (evaluate(child, state) for child in item.group.calculations)
    return all(results) if item.group.type == "and" else any(results)


async def run(config: ConditionConfig, state: RunState) -> Step:
    if config.expression is not None:
        passed = evaluate_expression(config.expression, state.scope)
        if not isinstance(passed, bool):
            raise ExpressionError(f"the condition gave {passed!r}, not true or false")
    else:
        assert config.calculation is not None
        passed = evaluate(config.calculation, state)
    if not passed and config.reject_on_false:
        return Step(result=False, end="failed")
    return Step(result=passed, branch=None if config.reject_on_false else str(passed).lower())
