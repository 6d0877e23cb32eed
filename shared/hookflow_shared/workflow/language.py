"""The node types a workflow may use, as an explicit registry.

A node type's spec says its name, its config's model, its branches and whether it is only for
sync workflows. `standard_language()` lists the types Hookflow has; the config API validates
documents against it and the executor pairs each type with a runner of its own. A new type is
a config model in configs.py, a spec in the list below, and a runner in the executor's
nodes (hookflow_executor.nodes.standard_runners), which checks that every type has one.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hookflow_shared.workflow.configs import (
    CalculationConfig,
    ConditionConfig,
    EndConfig,
    NodeConfig,
    RequestNodeConfig,
    ResponseNodeConfig,
)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    config: type[NodeConfig]
    branches: tuple[str, ...] = ()
    """Names of the branches this node may have (a condition: "true" and "false")."""
    sync_only: bool = False
    """Only valid in sync workflows (the response node)."""


class Language:
    def __init__(self, specs: Iterable[NodeSpec]) -> None:
        self._specs: dict[str, NodeSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"node type {spec.name!r} is listed twice")
            self._specs[spec.name] = spec

    def get(self, name: str) -> NodeSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(self._specs.values())

    def names(self) -> list[str]:
        return sorted(self._specs)


def standard_language() -> Language:
    return Language(
        [
            NodeSpec("condition", ConditionConfig, branches=("true", "false")),
            NodeSpec("calculation", CalculationConfig),
            NodeSpec("request", RequestNodeConfig),
            NodeSpec("response", ResponseNodeConfig, sync_only=True),
            NodeSpec("end", EndConfig),
        ]
    )
