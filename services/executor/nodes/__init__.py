"""Node types. A new type is one module here and one `register(...)` call in it (plus its
import below); the engine and the config API's validation pick it up from the registry."""

from hookflow.executor.nodes import (  # noqa: F401  (importing registers the types)
    calculation,
    condition,
    end,
    request,
    response,
)
from hookflow.executor.nodes.base import NODE_TYPES, NodeType, RunState, Step, register

__all__ = ["NODE_TYPES", "NodeType", "RunState", "Step", "register"]
