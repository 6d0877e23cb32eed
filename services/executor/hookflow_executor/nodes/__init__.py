"""The executor's runners, one per node type of the language (hookflow_shared.workflow): a
runner takes a node's parsed config and the run's state and gives a Step."""

from hookflow_executor.nodes import calculation, condition, end, request, response
from hookflow_executor.nodes.base import Runner, RunState, Step
from hookflow_shared.workflow.language import Language

__all__ = ["RunState", "Runner", "Step", "standard_runners"]


def standard_runners(language: Language) -> dict[str, Runner]:
    """A runner for every node type of `language`; a type without one is a startup error."""
    runners: dict[str, Runner] = {
        "condition": condition.run,
        "calculation": calculation.run,
        "request": request.run,
        "response": response.run,
        "end": end.run,
    }
    missing = [spec.name for spec in language if spec.name not in runners]
    if missing:
        raise ValueError(f"no runner for the node types {', '.join(missing)}")
    return {spec.name: runners[spec.name] for spec in language}
