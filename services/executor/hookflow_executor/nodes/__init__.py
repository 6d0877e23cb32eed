"""Node types. A new type is one module in this package with one `register(...)` call: every
module here is imported below, and the engine and the config API's validation take the types
from the registry."""

import importlib
import pkgutil

from hookflow_executor.nodes.base import NODE_TYPES, NodeType, RunState, Step, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["NODE_TYPES", "NodeType", "RunState", "Step", "register"]
