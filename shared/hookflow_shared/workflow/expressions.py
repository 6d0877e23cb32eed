"""Expressions in CEL (Common Expression Language, https://cel.dev): the safe, established
language of the condition node's expression mode and the calculation node. Never `eval`.

An expression sees three variables: `context` ($context: headers, query, body), `jobs`
($jobsMapByNodeKey: results of the nodes that ran, `jobs.check` or `jobs["node-1"]`) and
`system` ($system: `system.now`). CEL does not mix types: write `double(context.body.amount)
> 10.0` for a number that may come as text, and `has(context.body.x)` before reading a field
that may be missing.
"""

from functools import lru_cache
from typing import Any

import cel

VARIABLES = {"context": "$context", "jobs": "$jobsMapByNodeKey", "system": "$system"}


class ExpressionError(ValueError):
    pass


@lru_cache(maxsize=2048)
def compile_expression(source: str) -> cel.Program:
    """Compile once (cached); raises ExpressionError saying what is wrong."""
    try:
        program = cel.compile(source)
    except Exception as error:  # ValueError for syntax; anything else is still the source's fault
        raise ExpressionError(str(error).replace("\n", " ")) from error
    unknown = sorted(set(program.variables()) - VARIABLES.keys())
    if unknown:
        raise ExpressionError(
            f"unknown variable(s) {', '.join(unknown)}: an expression can read "
            + ", ".join(VARIABLES)
        )
    return program


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    program = compile_expression(source)
    activation = {name: scope.get(root) for name, root in VARIABLES.items()}
    try:
        return program.execute(activation)
    except KeyError as error:
        raise ExpressionError(f"no such field {error} (test with has(...) first)") from error
    except Exception as error:  # TypeError, ValueError... all say what the expression did wrong
        raise ExpressionError(str(error)) from error
